"""Charts drawn on the server as SVG: the queue sparklines and the loss curve.

They need no script and no library; the page's script only reloads them.
Colours come from classes in ``console.css``, so the charts follow its theme.
"""

from __future__ import annotations

import math
from collections.abc import Sequence

from .markup import Markup, join, render

__all__ = ["loss_chart", "sparkline"]

Point = tuple[float, float]


def _fmt(value: float) -> str:
    return f"{value:.1f}"


def _polyline(points: Sequence[Point], css: str) -> Markup:
    text = " ".join(f"{_fmt(x)},{_fmt(y)}" for x, y in points)
    return render('<polyline class="{css}" fill="none" points="{points}"/>', css=css, points=text)


def sparkline(rates: dict[str, list[float]], seconds_per_point: int) -> Markup:
    """Three small lines (sent, received, deleted per second) on one shared scale."""
    width, height, pad = 160, 28, 2
    length = max((len(v) for v in rates.values()), default=0)
    top = max((max(v) for v in rates.values() if v), default=0.0) or 1.0
    lines = []
    summary = []
    for kind, values in rates.items():
        if length > 1:
            step = (width - 2 * pad) / (length - 1)
            points = [
                (pad + i * step, height - pad - (value / top) * (height - 2 * pad))
                for i, value in enumerate(values)
            ]
            lines.append(_polyline(points, f"spark-{kind}"))
        recent = values[-6:] if values else []
        average = sum(recent) / len(recent) if recent else 0.0
        summary.append(f"{kind} {average:.2f}/s")
    minutes = length * seconds_per_point / 60
    label = f"Last {minutes:g} minutes: " + ", ".join(summary) + " (last minute)"
    return render(
        '<svg class="spark" viewBox="0 0 {w} {h}" width="{w}" height="{h}" role="img" '
        'aria-label="{label}"><title>{label}</title>{lines}</svg>',
        w=width,
        h=height,
        label=label,
        lines=join(lines),
    )


def _nice_ticks(low: float, high: float, count: int = 5) -> list[float]:
    if high <= low:
        high = low + 1.0
    raw = (high - low) / count
    magnitude = 10 ** math.floor(math.log10(raw))
    step = min((m * magnitude for m in (1, 2, 2.5, 5, 10) if m * magnitude >= raw), default=raw)
    first = math.ceil(low / step) * step
    ticks = []
    value = first
    while value <= high + step * 1e-9:
        ticks.append(round(value, 10))
        value += step
    return ticks


def _downsample(points: Sequence[Point], limit: int) -> list[Point]:
    if len(points) <= limit:
        return list(points)
    stride = len(points) / limit
    kept = [points[int(i * stride)] for i in range(limit)]
    return [*kept[:-1], points[-1]]


def loss_chart(
    train: Sequence[Point],
    validation: Sequence[Point],
    *,
    total_steps: int | None = None,
    resumes: Sequence[int] = (),
) -> Markup:
    """Loss against step: the training curve as a line, validation losses as dots,
    and a dashed mark where a later attempt resumed."""
    width, height = 720, 300
    left, right, top, bottom = 56, 16, 16, 40
    if not train and not validation:
        return Markup('<p class="empty">No loss reported yet.</p>')
    steps = [s for s, _ in train] + [s for s, _ in validation]
    losses = [v for _, v in train] + [v for _, v in validation]
    x_high = max([*steps, float(total_steps or 0), 1.0])
    y_low, y_high = min(losses), max(losses)
    if y_high - y_low < 1e-9:
        y_low, y_high = y_low - 0.5, y_high + 0.5
    margin = (y_high - y_low) * 0.05
    y_low, y_high = y_low - margin, y_high + margin

    def x_of(step: float) -> float:
        return left + (step / x_high) * (width - left - right)

    def y_of(loss: float) -> float:
        return top + (y_high - loss) / (y_high - y_low) * (height - top - bottom)

    grid = []
    for tick in _nice_ticks(y_low, y_high):
        y = y_of(tick)
        grid.append(
            render(
                '<line class="grid" x1="{x1}" x2="{x2}" y1="{y}" y2="{y}"/>'
                '<text class="tick" x="{tx}" y="{ty}" text-anchor="end">{label}</text>',
                x1=left,
                x2=width - right,
                y=_fmt(y),
                tx=left - 6,
                ty=_fmt(y + 4),
                label=f"{tick:g}",
            )
        )
    for tick in _nice_ticks(0, x_high):
        x = x_of(tick)
        grid.append(
            render(
                '<line class="grid" x1="{x}" x2="{x}" y1="{y1}" y2="{y2}"/>'
                '<text class="tick" x="{x}" y="{ty}" text-anchor="middle">{label}</text>',
                x=_fmt(x),
                y1=top,
                y2=height - bottom,
                ty=height - bottom + 16,
                label=f"{int(tick)}",
            )
        )
    marks = [
        render(
            '<line class="resume" x1="{x}" x2="{x}" y1="{y1}" y2="{y2}">'
            "<title>resumed at step {step}</title></line>",
            x=_fmt(x_of(step)),
            y1=top,
            y2=height - bottom,
            step=step,
        )
        for step in resumes
    ]
    drawn = _downsample(train, 600)
    line = _polyline([(x_of(s), y_of(v)) for s, v in drawn], "train") if drawn else Markup("")
    dots = [
        render(
            '<circle class="val" cx="{cx}" cy="{cy}" r="4"><title>step {step}: validation '
            "loss {loss}</title></circle>",
            cx=_fmt(x_of(s)),
            cy=_fmt(y_of(v)),
            step=int(s),
            loss=f"{v:.4f}",
        )
        for s, v in _downsample(validation, 300)
    ]
    label = f"Loss curve: {len(train)} training points, {len(validation)} validation points"
    return render(
        '<svg class="chart" viewBox="0 0 {w} {h}" role="img" aria-label="{label}" '
        'data-train-points="{n_train}" data-val-points="{n_val}">'
        "<title>{label}</title>{grid}{marks}{line}{dots}"
        '<text class="axis" x="{cx}" y="{ay}" text-anchor="middle">step</text>'
        '<text class="axis" x="14" y="{cy}" text-anchor="middle" '
        'transform="rotate(-90 14 {cy})">loss</text></svg>',
        w=width,
        h=height,
        label=label,
        n_train=len(drawn),
        n_val=len(dots),
        grid=join(grid),
        marks=join(marks),
        line=line,
        dots=join(dots),
        cx=(left + width - right) // 2,
        ay=height - 6,
        cy=(top + height - bottom) // 2,
    )
