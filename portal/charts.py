"""Charts as server-rendered inline SVG: no JavaScript library, no CDN, nothing for the CSP to
block (sizes are SVG attributes, colours come from static/css/portal.css classes).

Each chart is an ``<svg role="img">`` with a ``<title>`` and ``<desc>`` summarizing it; the page
also carries the same numbers in a table for screen readers and for copying."""

from __future__ import annotations

from django.utils.html import escape, format_html
from django.utils.safestring import SafeString, mark_safe

WIDTH = 720
HEIGHT = 240
PAD_LEFT = 64
PAD_RIGHT = 8
PAD_TOP = 10
PAD_BOTTOM = 48
SERIES_CLASSES = ["s1", "s2", "s3", "s4", "s5"]


def _nice_max(value: float) -> int:
    """A round axis maximum at or above value (1, 2, 5 x 10^n)."""
    if value <= 0:
        return 1
    step = 1
    while True:
        for m in (1, 2, 5):
            if m * step >= value:
                return m * step
        step *= 10


def _fmt(n: float) -> str:
    if n >= 1_000_000:
        return f"{n / 1_000_000:g}M"
    if n >= 1000:
        return f"{n / 1000:g}k"
    return f"{n:g}"


def _frame(
    top: int, title: str, desc: str, extra_class: str = "", *, x_title: str = "", y_title: str = ""
) -> list[str]:
    """The SVG, its grid and the y axis labels, and the axis titles (with their units)."""
    parts = [
        f'<svg class="chart {escape(extra_class)}" viewBox="0 0 {WIDTH} {HEIGHT}" role="img" '
        f'preserveAspectRatio="xMidYMid meet" aria-label="{escape(title)}">',
        f"<title>{escape(title)}</title><desc>{escape(desc)}</desc>",
    ]
    if y_title:
        cy = PAD_TOP + (HEIGHT - PAD_TOP - PAD_BOTTOM) / 2
        parts.append(
            f'<text class="axis-title" x="14" y="{cy:.1f}" text-anchor="middle" '
            f'transform="rotate(-90 14 {cy:.1f})">{escape(y_title)}</text>'
        )
    if x_title:
        parts.append(
            f'<text class="axis-title" x="{PAD_LEFT + (WIDTH - PAD_LEFT - PAD_RIGHT) / 2:.1f}" y="{HEIGHT - 4}" '
            f'text-anchor="middle">{escape(x_title)}</text>'
        )
    plot_h = HEIGHT - PAD_TOP - PAD_BOTTOM
    for k in range(5):
        v = top * k / 4
        y = PAD_TOP + plot_h - plot_h * k / 4
        parts.append(
            f'<line class="grid" x1="{PAD_LEFT}" x2="{WIDTH - PAD_RIGHT}" y1="{y:.1f}" y2="{y:.1f}"/>'
            f'<text class="axis" x="{PAD_LEFT - 6}" y="{y + 4:.1f}" text-anchor="end">{_fmt(v)}</text>'
        )
    return parts


def line_chart(
    labels: list[str], series: list[tuple[str, list[int]]], *, title: str, x_title: str = "", y_title: str = ""
) -> SafeString:
    """One polyline per series over shared x labels (e.g. days), with a legend and axis titles."""
    if not labels or not series:
        return format_html('<p class="muted">{}</p>', "No usage in this period.")
    peak = max((max(values) for _, values in series if values), default=0)
    top = _nice_max(peak)
    plot_w = WIDTH - PAD_LEFT - PAD_RIGHT
    plot_h = HEIGHT - PAD_TOP - PAD_BOTTOM
    n = len(labels)
    dx = plot_w / max(1, n - 1)
    desc = "; ".join(f"{name}: total {sum(values)}, highest {max(values) if values else 0}" for name, values in series)
    parts = _frame(top, title, f"{labels[0]} to {labels[-1]}. {desc}", x_title=x_title, y_title=y_title)

    def x(i: int) -> float:
        return PAD_LEFT + (dx * i if n > 1 else plot_w / 2)

    def y(v: int) -> float:
        return PAD_TOP + plot_h - plot_h * v / top

    tick_every = max(1, n // 8)
    shown = 0
    for i, label in enumerate(labels):
        # Every tick_every-th label, and the last one (not crowding the one before it). Every
        # other one is "minor": hidden at phone width, where the text is drawn larger.
        if i in (0, n - 1) or (i % tick_every == 0 and (n - 1 - i) * dx >= 70):
            anchor = "middle" if n == 1 else "start" if i == 0 else "end" if i == n - 1 else "middle"
            minor = " minor" if shown % 2 and i != n - 1 else ""
            shown += 1
            parts.append(
                f'<text class="axis x-label{minor}" x="{x(i):.1f}" y="{HEIGHT - PAD_BOTTOM + 18}" '
                f'text-anchor="{anchor}">{escape(label)}</text>'
            )
    for k, (name, values) in enumerate(series):
        cls = SERIES_CLASSES[k % len(SERIES_CLASSES)]
        points = " ".join(f"{x(i):.1f},{y(v):.1f}" for i, v in enumerate(values))
        parts.append(f'<polyline class="line {cls}" points="{points}"/>')
        for i, v in enumerate(values):
            parts.append(
                f'<circle class="dot {cls}" cx="{x(i):.1f}" cy="{y(v):.1f}" r="2.5">'
                f"<title>{escape(labels[i])}: {escape(name)} {v}</title></circle>"
            )
    parts.append("</svg>")
    legend = "".join(
        f'<li><span class="swatch {SERIES_CLASSES[k % len(SERIES_CLASSES)]}" aria-hidden="true"></span>{escape(name)}</li>'
        for k, (name, _) in enumerate(series)
    )
    return mark_safe("".join(parts) + f'<ul class="legend" aria-label="Legend">{legend}</ul>')  # noqa: S308


def slot_chart(
    slots: list[tuple[int, int, int, str]],
    *,
    limit: int,
    ceiling: int,
    title: str,
    x_title: str = "",
    y_title: str = "",
) -> SafeString:
    """Concurrency of one day: one bar per 3-minute slot (index 0..479), the part above the limit
    marked as overuse, and the limit drawn as a line. slots: (index, active, overuse, label)."""
    peak = max([a for _, a, _, _ in slots] + [ceiling, limit, 1])
    top = _nice_max(peak)
    plot_w = WIDTH - PAD_LEFT - PAD_RIGHT
    plot_h = HEIGHT - PAD_TOP - PAD_BOTTOM
    bar_w = plot_w / 480
    over_slots = sum(1 for _, a, _, _ in slots if a > limit)
    desc = (
        f"{len(slots)} slots with devices, highest {max((a for _, a, _, _ in slots), default=0)} against a limit "
        f"of {limit}; {over_slots} slots above the limit."
    )
    parts = _frame(top, title, desc, "slots", x_title=x_title, y_title=y_title)

    def y(v: float) -> float:
        return PAD_TOP + plot_h - plot_h * v / top

    for hour in range(0, 25, 3):
        xx = PAD_LEFT + bar_w * hour * 20
        anchor = "start" if hour == 0 else "end" if hour == 24 else "middle"
        minor = " minor" if hour % 6 else ""
        parts.append(
            f'<text class="axis x-label{minor}" x="{xx:.1f}" y="{HEIGHT - PAD_BOTTOM + 18}" '
            f'text-anchor="{anchor}">{hour:02d}:00</text>'
        )
    for index, active, _overuse, label in slots:
        xx = PAD_LEFT + bar_w * index
        within = min(active, limit)
        parts.append(
            f'<rect class="bar" x="{xx:.2f}" y="{y(within):.1f}" width="{max(bar_w, 1):.2f}" '
            f'height="{y(0) - y(within):.1f}"><title>{escape(label)}: {active} devices</title></rect>'
        )
        if active > limit:
            parts.append(
                f'<rect class="bar over" x="{xx:.2f}" y="{y(active):.1f}" width="{max(bar_w, 1):.2f}" '
                f'height="{y(limit) - y(active):.1f}"><title>{escape(label)}: {active} devices, '
                f"{active - limit} above the limit</title></rect>"
            )
    parts.append(
        f'<line class="limit" x1="{PAD_LEFT}" x2="{WIDTH - PAD_RIGHT}" y1="{y(limit):.1f}" y2="{y(limit):.1f}"/>'
        f'<text class="axis limit-label" x="{WIDTH - PAD_RIGHT}" y="{y(limit) - 4:.1f}" text-anchor="end">'
        f"limit {limit}</text>"
    )
    parts.append("</svg>")
    return mark_safe("".join(parts))  # noqa: S308


def _n(value: int) -> str:
    return f"{value:,}"


def pie_chart(slices: list[tuple[str, int]], *, title: str) -> SafeString:
    """One pie: each slice's share of the total, in the series colours, with a legend that gives
    every slice's number and percentage (the pie alone is never the only place of a number)."""
    import math

    total = sum(v for _, v in slices)
    if total <= 0:
        return format_html('<p class="muted">{}</p>', "No usage.")
    parts = [
        f'<svg class="pie" viewBox="-1 -1 2 2" role="img" aria-label="{escape(title)}">'
        f"<title>{escape(title)}</title>"
        f"<desc>{escape('; '.join(f'{name}: {_n(v)}' for name, v in slices))}</desc>"
    ]
    angle = -math.pi / 2
    nonzero = [(k, name, v) for k, (name, v) in enumerate(slices) if v > 0]
    for k, name, v in nonzero:
        cls = SERIES_CLASSES[k % len(SERIES_CLASSES)]
        share = v / total
        label = f"{escape(name)}: {_n(v)} ({100 * share:.1f} %)"
        if len(nonzero) == 1:
            parts.append(f'<circle class="slice {cls}" cx="0" cy="0" r="0.98"><title>{label}</title></circle>')
            break
        end = angle + 2 * math.pi * share
        x1, y1, x2, y2 = math.cos(angle), math.sin(angle), math.cos(end), math.sin(end)
        large = 1 if share > 0.5 else 0
        parts.append(
            f'<path class="slice {cls}" d="M0,0 L{x1:.4f},{y1:.4f} A1,1 0 {large} 1 {x2:.4f},{y2:.4f} Z">'
            f"<title>{label}</title></path>"
        )
        angle = end
    parts.append("</svg>")
    legend = "".join(
        f'<li><span class="swatch {SERIES_CLASSES[k % len(SERIES_CLASSES)]}" aria-hidden="true"></span>'
        f"{escape(name)}: <strong>{_n(v)}</strong> ({100 * v / total:.1f} %)</li>"
        for k, (name, v) in enumerate(slices)
    )
    return mark_safe("".join(parts) + f'<ul class="legend">{legend}</ul>')  # noqa: S308


WEEKDAYS = ["Mon", "Tue", "Wed", "Thu", "Fri", "Sat", "Sun"]


def heat_map(peaks: dict[tuple[int, int], int], *, limit: int, title: str) -> SafeString:
    """Concurrency by weekday (rows, Monday first) and hour of the day (columns, UTC): each cell
    is the peak of active devices in any slot of that weekday and hour over the period; cells
    above the limit are outlined in red and say so. peaks: (weekday 0=Monday, hour) -> peak."""
    cell_w, cell_h, left, top = 28, 24, 40, 30
    width, height = left + 24 * cell_w + 4, top + 7 * cell_h + 4
    peak = max(list(peaks.values()) + [limit, 1])
    over = sum(1 for v in peaks.values() if v > limit)
    desc = (
        f"Highest peak {_n(max(peaks.values(), default=0))} against a limit of {_n(limit)}; "
        f"{over} weekday-hour cell{'s' if over != 1 else ''} above the limit."
    )
    parts = [
        f'<svg class="chart heat" viewBox="0 0 {width} {height}" role="img" aria-label="{escape(title)}">'
        f"<title>{escape(title)}</title><desc>{escape(desc)}</desc>"
    ]
    for hour in range(0, 24, 3):
        parts.append(
            f'<text class="axis" x="{left + hour * cell_w + cell_w / 2:.1f}" y="{top - 8}" '
            f'text-anchor="middle">{hour:02d}h</text>'
        )
    for day in range(7):
        y = top + day * cell_h
        parts.append(
            f'<text class="axis" x="{left - 6}" y="{y + cell_h / 2 + 4:.1f}" text-anchor="end">{WEEKDAYS[day]}</text>'
        )
        for hour in range(24):
            v = peaks.get((day, hour), 0)
            level = 0 if v == 0 else min(4, 1 + int(3 * v / peak))
            cls = f"cell h{level}" + (" over" if v > limit else "")
            x = left + hour * cell_w
            state = f", {v - limit} above the limit" if v > limit else ""
            parts.append(
                f'<rect class="{cls}" x="{x}" y="{y}" width="{cell_w}" height="{cell_h}">'
                f"<title>{WEEKDAYS[day]} {hour:02d}:00-{hour + 1:02d}:00 UTC: peak {_n(v)} devices{state}</title></rect>"
            )
            if v:
                dark = " dark" if level >= 3 else ""
                parts.append(
                    f'<text class="val{dark}" x="{x + cell_w / 2:.1f}" y="{y + cell_h / 2 + 4:.1f}" '
                    f'text-anchor="middle">{_n(v)}</text>'
                )
    parts.append("</svg>")
    return mark_safe("".join(parts))  # noqa: S308
