"""The replay's results as tidy tables for analysts, written beside the report so that `pandas.read_parquet` (or
any Parquet reader) is the whole loading step:

- figures.parquet and figures.csv: one row per policy x replication x figure: `policy`, `replication`, `figure`,
  `value` (null where the figure has none, e.g. the wait of a trim with no car delivered);
- orders.parquet: one row per order x policy x replication: `order`, `lane`, `trim`, `policy`, `replication`,
  `outcome` (delivered, cancelled, or open at the end of the log), `cancel_reason` (null unless cancelled) and
  `wait_days` (placed_at to delivery or cancellation; null while open). Parquet only: at a launch's size it holds
  millions of rows (yu7: 3.9 million), which CSV would make a slow file of hundreds of MB.

History is policy "as it happened", replication 0; replication r of a policy drew its customers from seed + r - 1,
the same customers for every policy. Each run's orders are one row group, written as the run is read, so memory
holds one run's strings at a time.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
import numpy.typing as npt
import pyarrow as pa
import pyarrow.csv as csv
import pyarrow.parquet as pq

from orderbank.projections.orders import US_PER_DAY
from orderbank.replay.figures import Figures, Scalars
from orderbank.replay.orderlog import CANCEL_REASONS, NEVER, OrderLog
from orderbank.replay.outcome import Outcome
from orderbank.replay.report import replace_into

OUTCOMES = ("delivered", "cancelled", "open")
F64 = npt.NDArray[np.float64]
I8 = npt.NDArray[np.int8]
FIGURES = pa.schema([("policy", pa.string()), ("replication", pa.int32()), ("figure", pa.string()),
                     ("value", pa.float64())])
ORDERS = pa.schema([("order", pa.string()), ("lane", pa.string()), ("trim", pa.string()), ("policy", pa.string()),
                    ("replication", pa.int32()), ("outcome", pa.string()), ("cancel_reason", pa.string()),
                    ("wait_days", pa.float64())])


@dataclass(frozen=True)
class Ends:
    """How each order of one run ended: an index into OUTCOMES, its cancellation reason (0: none, else 1 + the
    index in CANCEL_REASONS) and its wait in days (NaN while open)."""

    outcome: I8
    reason: I8
    wait_days: F64


def ends(log: OrderLog, outcome: Outcome) -> Ends:
    """How each order ended in this outcome, its wait counted as the figures count it (from placed_at)."""
    delivered = outcome.delivered_us != NEVER
    cancelled = outcome.cancelled_us != NEVER
    ended_us = np.where(delivered, outcome.delivered_us, outcome.cancelled_us)
    wait = np.where(delivered | cancelled, (ended_us - log.placed_us) / US_PER_DAY, np.nan)
    code = np.where(delivered, 0, np.where(cancelled, 1, 2)).astype(np.int8)
    return Ends(code, np.where(cancelled, outcome.reason, 0).astype(np.int8), wait)


@dataclass
class Results:
    """Every run of a comparison, kept for the tidy tables: `record` is what `compare` calls after each run."""

    runs: list[tuple[str, int, Scalars, Ends]] = field(default_factory=list)
    log: OrderLog | None = None

    def record(self, policy: str, replication: int, log: OrderLog, outcome: Outcome, figures: Figures) -> None:
        self.log = log
        self.runs.append((policy, replication, figures.scalars, ends(log, outcome)))

    def figures(self) -> pa.Table:
        rows = [(policy, replication, name, value) for policy, replication, scalars, _ in self.runs
                for name, value in sorted(scalars.items())]
        columns = list(zip(*rows, strict=True)) if rows else [(), (), (), ()]
        return pa.table([pa.array(column, type=kind.type) for column, kind in zip(columns, FIGURES, strict=True)],
                        schema=FIGURES)

    def orders(self, policy: str, replication: int, run: Ends) -> pa.Table:
        """One run's orders."""
        log = self.log
        assert log is not None
        n = log.orders
        lanes, trims = np.array(log.lanes, dtype=object), np.array(log.trims, dtype=object)
        reasons = np.array([None, *CANCEL_REASONS], dtype=object)
        columns = [log.order_id, lanes[log.lane], trims[log.trim], np.full(n, policy, dtype=object),
                   np.full(n, replication, dtype=np.int32), np.array(OUTCOMES, dtype=object)[run.outcome],
                   reasons[run.reason], run.wait_days]
        return pa.table([pa.array(column, type=kind.type, from_pandas=True)
                         for column, kind in zip(columns, ORDERS, strict=True)], schema=ORDERS)


def write_tables(results: Results, directory: Path) -> list[Path]:
    """figures.parquet, figures.csv and orders.parquet in `directory`, each renamed into place once whole."""
    figures = results.figures()

    def orders(path: Path) -> None:
        with pq.ParquetWriter(path, ORDERS, compression="zstd") as writer:
            for policy, replication, _, run in results.runs:
                writer.write_table(results.orders(policy, replication, run))

    return [
        replace_into(directory / "figures.parquet", lambda path: pq.write_table(figures, path, compression="zstd")),
        replace_into(directory / "figures.csv", lambda path: csv.write_csv(figures, path)),
        replace_into(directory / "orders.parquet", orders),
    ]
