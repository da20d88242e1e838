"""Small inline SVG charts for the HTML report: no scripts, no network, no plotting library."""

from __future__ import annotations

import math
from collections.abc import Callable, Mapping, Sequence
from html import escape

PALETTE = ("#1b1b1b", "#1f77b4", "#d62728", "#2ca02c", "#9467bd", "#ff7f0e", "#8c564b", "#17becf")
WIDTH, HEIGHT = 560, 300
LEFT, RIGHT, TOP, BOTTOM = 72, 12, 34, 58
LEGEND_ROW = 16
CHAR_WIDTH = 6.5
"""At least the width of a digit or a lower-case letter at 11 px sans-serif: a legend row never runs over."""
Size = tuple[int, int]


def _ticks(top: float) -> list[float]:
    """About five round tick values from 0 to at least `top`."""
    if top <= 0:
        return [0.0, 1.0]
    raw = top / 5
    magnitude = 10 ** math.floor(math.log10(raw))
    step = next(m * magnitude for m in (1, 2, 2.5, 5, 10) if m * magnitude >= raw)
    return [i * step for i in range(math.ceil(top / step) + 1)]


def _label(value: float) -> str:
    for limit, suffix in ((1e9, "bn"), (1e6, "m"), (1e3, "k")):
        if abs(value) >= limit:
            return f"{value / limit:g}{suffix}"
    return f"{value:g}"


def _frame(title: str, ticks: list[float], y_of: Callable[[float], float], width: int,
           label: Callable[[float], str] = _label) -> list[str]:
    parts = [f'<text x="{LEFT}" y="18" font-size="13" font-weight="bold">{escape(title)}</text>']
    for tick in ticks:
        y = y_of(tick)
        parts.append(f'<line x1="{LEFT}" x2="{width - RIGHT}" y1="{y:.1f}" y2="{y:.1f}" stroke="#ddd"/>')
        parts.append(f'<text x="{LEFT - 6}" y="{y + 4:.1f}" text-anchor="end">{label(tick)}</text>')
    return parts


def _legend(names: Sequence[str], top: int, width: int) -> tuple[list[str], int]:
    """One swatch and name per entry from `top` down, starting a new row where the next name would pass the
    right edge (names are never cut): the parts and the number of rows."""
    parts: list[str] = []
    x, row = float(LEFT), 0
    for i, name in enumerate(names):
        item = 14 + CHAR_WIDTH * len(name)
        if x > LEFT and x + item > width - RIGHT:
            x, row = LEFT, row + 1
        y = top + row * LEGEND_ROW
        parts.append(f'<rect x="{x:.1f}" y="{y}" width="10" height="10" fill="{PALETTE[i % len(PALETTE)]}"/>')
        parts.append(f'<text x="{x + 14:.1f}" y="{y + 9}">{escape(name)}</text>')
        x += item + 10
    return parts, max(row + 1, 1)


def _svg(size: Size, body: list[str], names: Sequence[str]) -> str:
    """The chart: its body, and the legend below it (the chart grows by a row for each extra legend row)."""
    width, height = size
    legend, rows = _legend(names, height - 16, width)
    total = height + (rows - 1) * LEGEND_ROW
    return "".join([f'<svg xmlns="http://www.w3.org/2000/svg" viewBox="0 0 {width} {total}" width="{width}" '
                    f'height="{total}" font-family="sans-serif" font-size="11">', *body, *legend, "</svg>"])


def line_chart(title: str, x_labels: Sequence[str], lines: Mapping[str, Sequence[float | None]],
               size: Size = (WIDTH, HEIGHT)) -> str:
    """One line per entry of `lines`, all sampled at `x_labels` (dates)."""
    width, height = size
    values = [v for series in lines.values() for v in series if v is not None]
    ticks = _ticks(max(values, default=0.0))
    span_x = max(len(x_labels) - 1, 1)

    def x_of(i: int) -> float:
        return LEFT + (width - LEFT - RIGHT) * i / span_x

    def y_of(v: float) -> float:
        return height - BOTTOM - (height - BOTTOM - TOP) * v / ticks[-1]

    parts = _frame(title, ticks, y_of, width)
    for i in sorted({0, span_x // 3, 2 * span_x // 3, span_x}):
        if i < len(x_labels):
            anchor = "end" if i == span_x and i else "middle"  # the last label ends at the plot's edge
            parts.append(f'<text x="{x_of(i):.1f}" y="{height - BOTTOM + 16}" text-anchor="{anchor}">'
                         f"{escape(x_labels[i])}</text>")
    for k, (name, series) in enumerate(lines.items()):
        points = " ".join(f"{x_of(i):.1f},{y_of(v):.1f}" for i, v in enumerate(series) if v is not None)
        dash = ' stroke-dasharray="5,3"' if k == 0 and name == "as it happened" else ""
        parts.append(f'<polyline fill="none" stroke="{PALETTE[k % len(PALETTE)]}" stroke-width="1.6"{dash} '
                     f'points="{points}"><title>{escape(name)}</title></polyline>')
    return _svg(size, parts, list(lines))


def _percent(share: float) -> str:
    return f"{share * 100:.3g}%"


def bar_chart(title: str, groups: Sequence[str], bars: Mapping[str, Sequence[float | None]], *,
              percent: bool = False) -> str:
    """Grouped bars: for each group (a trim), one bar per entry of `bars` (a policy); `percent`: the values are
    shares, labelled in %. A bar without a value is marked with a dash on the axis."""
    values = [v for series in bars.values() for v in series if v is not None]
    ticks = _ticks(max(values, default=0.0))

    def y_of(v: float) -> float:
        return HEIGHT - BOTTOM - (HEIGHT - BOTTOM - TOP) * v / ticks[-1]

    parts = _frame(title, ticks, y_of, WIDTH, _percent if percent else _label)
    group_width = (WIDTH - LEFT - RIGHT) / max(len(groups), 1)
    bar_width = group_width * 0.8 / max(len(bars), 1)
    for g, group in enumerate(groups):
        x0 = LEFT + g * group_width + group_width * 0.1
        parts.append(f'<text x="{x0 + group_width * 0.4:.1f}" y="{HEIGHT - BOTTOM + 16}" '
                     f'text-anchor="middle">{escape(group)}</text>')
        for k, (name, series) in enumerate(bars.items()):
            x, value = x0 + k * bar_width, series[g]
            if value is None:
                parts.append(f'<text x="{x + bar_width * 0.45:.1f}" y="{HEIGHT - BOTTOM - 3}" text-anchor="middle" '
                             f'fill="#888">&#8211;<title>{escape(name)}: no value</title></text>')
                continue
            y = y_of(value)
            shown = _percent(value) if percent else f"{value:,.1f}"
            parts.append(f'<rect x="{x:.1f}" y="{y:.1f}" width="{bar_width * 0.9:.1f}" '
                         f'height="{HEIGHT - BOTTOM - y:.1f}" fill="{PALETTE[k % len(PALETTE)]}">'
                         f"<title>{escape(name)}: {shown}</title></rect>")
    return _svg((WIDTH, HEIGHT), parts, list(bars))


def bar_figure(title: str, groups: Sequence[str], bars: Mapping[str, Sequence[float | None]], why_missing: str, *,
               percent: bool = False) -> str:
    """The bar chart in a figure whose caption names the bars that have no value and says why (`why_missing`)."""
    gaps = [f"{name} in {group}" for name, series in bars.items()
            for group, value in zip(groups, series, strict=True) if value is None]
    note = f"<figcaption>No bar for {escape(', '.join(gaps))}: {escape(why_missing)}.</figcaption>" if gaps else ""
    return f"<figure>{bar_chart(title, groups, bars, percent=percent)}{note}</figure>"


def calibration_chart(title: str, nominal: Sequence[float], observed: Mapping[str, Sequence[float | None]]) -> str:
    """Observed shares against nominal probabilities (both 0..1), one line per entry, over the dashed diagonal
    a calibrated forecast would follow."""
    ticks = [i / 5 for i in range(6)]
    side = HEIGHT - BOTTOM - TOP

    def x_of(p: float) -> float:
        return LEFT + side * p

    def y_of(p: float) -> float:
        return HEIGHT - BOTTOM - side * p

    parts = _frame(title, ticks, y_of, WIDTH, _percent)
    for tick in ticks:
        parts.append(f'<text x="{x_of(tick):.1f}" y="{HEIGHT - BOTTOM + 16}" text-anchor="middle">'
                     f"{_percent(tick)}</text>")
    parts.append(f'<line x1="{x_of(0):.1f}" y1="{y_of(0):.1f}" x2="{x_of(1):.1f}" y2="{y_of(1):.1f}" '
                 f'stroke="{PALETTE[0]}" stroke-dasharray="5,3"><title>calibrated</title></line>')
    for k, (name, series) in enumerate(observed.items()):
        colour = PALETTE[(k + 1) % len(PALETTE)]
        points = [(x_of(p), y_of(v)) for p, v in zip(nominal, series, strict=True) if v is not None]
        parts.append(f'<polyline fill="none" stroke="{colour}" stroke-width="1.6" '
                     f'points="{" ".join(f"{x:.1f},{y:.1f}" for x, y in points)}"><title>{escape(name)}</title>'
                     "</polyline>")
        parts += [f'<circle cx="{x:.1f}" cy="{y:.1f}" r="3" fill="{colour}"/>' for x, y in points]
    return _svg((WIDTH, HEIGHT), parts, ["calibrated", *observed])
