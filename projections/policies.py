"""Ordering policies: which open order of a lane gets the next car.

A policy is a strategy object with a `name`, a docstring, and `key(order)`: the lane's open
orders sorted by key are the delivery sequence, so an order's 1-based rank is its queue
position. Keys are static except where a policy says otherwise:

- `rekeys_on_payment`: the key reads `fully_paid`, so a payment can move the order;
- `uses_ordinal`: the key reads `ordinal`, the order's rank by (placed_at, order_id) among
  every order ever placed in the lane (the queue keeps it exact when placements arrive late).

Every key ends with (placed_us, order_id), so keys are unique and ties are first-come.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import ClassVar, Protocol

from orderbank.projections.errors import ConfigError

Key = tuple[int | str, ...]


class PolicyError(ConfigError):
    """A policy spec names no policy, or gives it a parameter it does not take or a value out of its range."""


class Queued(Protocol):
    """What a policy may read of an order."""

    @property
    def order_id(self) -> str: ...
    @property
    def placed_us(self) -> int: ...
    @property
    def trim_rank(self) -> int: ...
    @property
    def fully_paid(self) -> bool: ...
    @property
    def ordinal(self) -> int: ...


class Policy(Protocol):
    name: ClassVar[str]
    rekeys_on_payment: ClassVar[bool]
    uses_ordinal: ClassVar[bool]

    def key(self, order: Queued) -> Key: ...
    def describe(self) -> str: ...


class _Base:
    name: ClassVar[str]
    rekeys_on_payment: ClassVar[bool] = False
    uses_ordinal: ClassVar[bool] = False

    def describe(self) -> str:
        doc = (type(self).__doc__ or "").strip()
        return " ".join(doc.split())


@dataclass(frozen=True)
class Fifo(_Base):
    """First come, first served: by placed_at, then order_id."""

    name: ClassVar[str] = "fifo"

    def key(self, order: Queued) -> Key:
        return (order.placed_us, order.order_id)


@dataclass(frozen=True)
class HighTrimFirst(_Base):
    """Higher-margin trims first (higher trim_rank), first come, first served within a trim."""

    name: ClassVar[str] = "high-trim-first"

    def key(self, order: Queued) -> Key:
        return (-order.trim_rank, order.placed_us, order.order_id)


@dataclass(frozen=True)
class PaidFirst(_Base):
    """Orders whose full price is paid first, first come, first served within each group;
    an order moves up when the payment that completes it arrives."""

    name: ClassVar[str] = "paid-first"
    rekeys_on_payment: ClassVar[bool] = True

    def key(self, order: Queued) -> Key:
        return (0 if order.fully_paid else 1, order.placed_us, order.order_id)


@dataclass(frozen=True)
class BoundedOvertake(_Base):
    """High-trim-first, but no order is passed by more than k later orders. An order of trim
    rank r is moved forward by boost = k*min(r, top_rank)//top_rank places of the lane's
    placement sequence, so order i passes an earlier order j only when
    ordinal_i - ordinal_j <= boost_i - boost_j <= k."""

    name: ClassVar[str] = "bounded-overtake"
    uses_ordinal: ClassVar[bool] = True
    k: int = 1000
    top_rank: int = 2

    def __post_init__(self) -> None:
        if self.k < 0:
            raise PolicyError(f"bounded-overtake: k must be >= 0, got {self.k}")
        if self.top_rank < 1:
            raise PolicyError(f"bounded-overtake: top_rank must be >= 1, got {self.top_rank}")

    def boost(self, trim_rank: int) -> int:
        return self.k * min(trim_rank, self.top_rank) // self.top_rank

    def key(self, order: Queued) -> Key:
        boost = self.boost(order.trim_rank)
        # Ties (same boosted slot) go to the higher trim, then to the earlier order.
        return (order.ordinal - boost, -boost, order.placed_us, order.order_id)


REGISTRY: dict[str, type[Fifo | HighTrimFirst | PaidFirst | BoundedOvertake]] = {
    Fifo.name: Fifo,
    HighTrimFirst.name: HighTrimFirst,
    PaidFirst.name: PaidFirst,
    BoundedOvertake.name: BoundedOvertake,
}


def parse_policy(spec: str) -> Policy:
    """Build a policy from `name` or `name:param=value,...`, e.g. `bounded-overtake:k=500`."""
    name, _, params = spec.partition(":")
    if name not in REGISTRY:
        raise PolicyError(f"unknown policy {name!r}; known: {', '.join(sorted(REGISTRY))}")
    kwargs: dict[str, int] = {}
    for item in filter(None, params.split(",")):
        key, sep, value = item.partition("=")
        if not sep or not value.strip().lstrip("-").isdigit():
            raise PolicyError(f"policy {name!r}: parameter {item!r} must be name=integer")
        kwargs[key.strip()] = int(value)
    try:
        return REGISTRY[name](**kwargs)
    except TypeError as exc:
        raise PolicyError(f"policy {name!r}: {exc}") from None


def spec_of(policy: Policy) -> str:
    """The inverse of parse_policy, for labels and reports."""
    if isinstance(policy, BoundedOvertake):
        return f"{policy.name}:k={policy.k}"
    return policy.name
