"""Small inline SVG charts for the HTML report: no scripts, no network, no plotting library."""

from __future__ import annotations

import math
from collections.abc import Callable, Mapping, Sequence
from html import escape

PALETTE = ("#1b1b1b", "#1f77b4", "#d62728", "#2ca02c", "#9467bd", "#ff7f0e", "#8c564b", "#17becf")
WIDTH, HEIGHT = 560, 300
LEFT, RIGHT, TOP, BOTTOM = 72, 12, 34, 58
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


def _frame(title: str, ticks: list[float], y_of: Callable[[float], float], size: Size) -> list[str]:
    width, height = size
    parts = [f'<svg xmlns="http://www.w3.org/2000/svg" viewBox="0 0 {width} {height}" width="{width}" '
             f'height="{height}" font-family="sans-serif" font-size="11">',
             f'<text x="{LEFT}" y="18" font-size="13" font-weight="bold">{escape(title)}</text>']
    for tick in ticks:
        y = y_of(tick)
        parts.append(f'<line x1="{LEFT}" x2="{width - RIGHT}" y1="{y:.1f}" y2="{y:.1f}" stroke="#ddd"/>')
        parts.append(f'<text x="{LEFT - 6}" y="{y + 4:.1f}" text-anchor="end">{_label(tick)}</text>')
    return parts


def _legend(names: Sequence[str], height: int) -> list[str]:
    parts: list[str] = []
    x: float = LEFT
    for i, name in enumerate(names):
        colour = PALETTE[i % len(PALETTE)]
        parts.append(f'<rect x="{x}" y="{height - 16}" width="10" height="10" fill="{colour}"/>')
        parts.append(f'<text x="{x + 14}" y="{height - 7}">{escape(name)}</text>')
        x += 24 + 6.5 * len(name)
    return parts


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

    parts = _frame(title, ticks, y_of, size)
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
    return "".join([*parts, *_legend(list(lines), height), "</svg>"])


def bar_chart(title: str, groups: Sequence[str], bars: Mapping[str, Sequence[float | None]]) -> str:
    """Grouped bars: for each group (a trim), one bar per entry of `bars` (a policy)."""
    values = [v for series in bars.values() for v in series if v is not None]
    ticks = _ticks(max(values, default=0.0))

    def y_of(v: float) -> float:
        return HEIGHT - BOTTOM - (HEIGHT - BOTTOM - TOP) * v / ticks[-1]

    parts = _frame(title, ticks, y_of, (WIDTH, HEIGHT))
    group_width = (WIDTH - LEFT - RIGHT) / max(len(groups), 1)
    bar_width = group_width * 0.8 / max(len(bars), 1)
    for g, group in enumerate(groups):
        x0 = LEFT + g * group_width + group_width * 0.1
        parts.append(f'<text x="{x0 + group_width * 0.4:.1f}" y="{HEIGHT - BOTTOM + 16}" '
                     f'text-anchor="middle">{escape(group)}</text>')
        for k, (name, series) in enumerate(bars.items()):
            value = series[g]
            if value is None:
                continue
            y = y_of(value)
            parts.append(f'<rect x="{x0 + k * bar_width:.1f}" y="{y:.1f}" width="{bar_width * 0.9:.1f}" '
                         f'height="{HEIGHT - BOTTOM - y:.1f}" fill="{PALETTE[k % len(PALETTE)]}">'
                         f"<title>{escape(name)}: {value:,.1f}</title></rect>")
    return "".join([*parts, *_legend(list(bars), HEIGHT), "</svg>"])


def calibration_chart(title: str, nominal: Sequence[float], observed: Mapping[str, Sequence[float | None]]) -> str:
    """Observed shares against nominal probabilities (both 0..1), one line per entry, over the dashed diagonal
    a calibrated forecast would follow."""
    ticks = [i / 5 for i in range(6)]
    side = HEIGHT - BOTTOM - TOP

    def x_of(p: float) -> float:
        return LEFT + side * p

    def y_of(p: float) -> float:
        return HEIGHT - BOTTOM - side * p

    parts = _frame(title, ticks, y_of, (WIDTH, HEIGHT))
    for tick in ticks:
        parts.append(f'<text x="{x_of(tick):.1f}" y="{HEIGHT - BOTTOM + 16}" text-anchor="middle">{tick:g}</text>')
    parts.append(f'<line x1="{x_of(0):.1f}" y1="{y_of(0):.1f}" x2="{x_of(1):.1f}" y2="{y_of(1):.1f}" '
                 f'stroke="{PALETTE[0]}" stroke-dasharray="5,3"><title>calibrated</title></line>')
    for k, (name, series) in enumerate(observed.items()):
        colour = PALETTE[(k + 1) % len(PALETTE)]
        points = [(x_of(p), y_of(v)) for p, v in zip(nominal, series, strict=True) if v is not None]
        parts.append(f'<polyline fill="none" stroke="{colour}" stroke-width="1.6" '
                     f'points="{" ".join(f"{x:.1f},{y:.1f}" for x, y in points)}"><title>{escape(name)}</title>'
                     "</polyline>")
        parts += [f'<circle cx="{x:.1f}" cy="{y:.1f}" r="3" fill="{colour}"/>' for x, y in points]
    return "".join([*parts, *_legend(["calibrated", *observed], HEIGHT), "</svg>"])
