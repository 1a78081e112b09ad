"""Charts drawn on the server as inline SVG: no script, no CDN, readable without colour.

Every chart carries its numbers as text (axis labels, value labels, a
``<title>`` per mark for hover) and series differ by marker shape and dash
pattern, not only by colour; the page shows the same numbers in a table.
Output is ``markupsafe.Markup`` with every label escaped.
"""

from __future__ import annotations

from typing import Sequence

from markupsafe import Markup, escape

W, H = 640, 220
LEFT, RIGHT, TOP, BOTTOM = 48, 12, 16, 40
MARKERS = ("circle", "square", "triangle", "diamond")
DASHES = ("", "6 3", "2 3", "8 3 2 3")


def _fmt(v: float) -> str:
    if abs(v) >= 1000:
        return f"{v:,.0f}"
    if abs(v) >= 10 or v == int(v):
        return f"{v:.0f}"
    return f"{v:.3g}"


def _frame(label: str, body: list[str]) -> Markup:
    head = (f'<svg class="chart" viewBox="0 0 {W} {H}" role="img" aria-label="{escape(label)}" '
            f'xmlns="http://www.w3.org/2000/svg" preserveAspectRatio="xMidYMid meet">'
            f'<title>{escape(label)}</title>')
    return Markup(head + "".join(body) + "</svg>")


def _axis(ymax: float, ymin: float = 0.0) -> list[str]:
    out = [f'<line x1="{LEFT}" y1="{H - BOTTOM}" x2="{W - RIGHT}" y2="{H - BOTTOM}" stroke="#555"/>',
           f'<line x1="{LEFT}" y1="{TOP}" x2="{LEFT}" y2="{H - BOTTOM}" stroke="#555"/>']
    for frac in (0.0, 0.5, 1.0):
        v = ymin + (ymax - ymin) * frac
        y = H - BOTTOM - (H - TOP - BOTTOM) * frac
        out.append(f'<text x="{LEFT - 4}" y="{y + 4:.1f}" text-anchor="end" font-size="11">{escape(_fmt(v))}</text>')
        if frac:
            out.append(f'<line x1="{LEFT}" y1="{y:.1f}" x2="{W - RIGHT}" y2="{y:.1f}" stroke="#ccc" '
                       'stroke-dasharray="2 3"/>')
    return out


def bars(points: Sequence[tuple[str, float]], label: str) -> Markup:
    """A bar per point (label, value); the first, last and highest bars are labelled with their value."""
    if not points:
        return _frame(label, [f'<text x="{W / 2}" y="{H / 2}" text-anchor="middle">no data</text>'])
    ymax = max(v for _, v in points) or 1.0
    inner_w = W - LEFT - RIGHT
    step = inner_w / len(points)
    body = _axis(ymax)
    top = max(range(len(points)), key=lambda i: points[i][1])
    for i, (name, v) in enumerate(points):
        h = (H - TOP - BOTTOM) * (v / ymax)
        x = LEFT + i * step + step * 0.1
        y = H - BOTTOM - h
        body.append(f'<rect x="{x:.1f}" y="{y:.1f}" width="{step * 0.8:.1f}" height="{h:.1f}" fill="#3b6ea5">'
                    f'<title>{escape(name)}: {escape(_fmt(v))}</title></rect>')
        if i in (0, len(points) - 1, top):
            body.append(f'<text x="{x + step * 0.4:.1f}" y="{y - 3:.1f}" text-anchor="middle" font-size="10">'
                        f'{escape(_fmt(v))}</text>')
        if i in (0, len(points) // 2, len(points) - 1):
            body.append(f'<text x="{x + step * 0.4:.1f}" y="{H - BOTTOM + 14}" text-anchor="middle" '
                        f'font-size="11">{escape(name)}</text>')
    return _frame(label, body)


def _marker(kind: str, x: float, y: float, tip: str) -> str:
    t = f"<title>{escape(tip)}</title>"
    if kind == "square":
        return f'<rect x="{x - 4:.1f}" y="{y - 4:.1f}" width="8" height="8" fill="#fff" stroke="#000">{t}</rect>'
    if kind == "triangle":
        return (f'<polygon points="{x:.1f},{y - 5:.1f} {x - 5:.1f},{y + 4:.1f} {x + 5:.1f},{y + 4:.1f}" '
                f'fill="#000">{t}</polygon>')
    if kind == "diamond":
        return (f'<polygon points="{x:.1f},{y - 5:.1f} {x + 5:.1f},{y:.1f} {x:.1f},{y + 5:.1f} {x - 5:.1f},{y:.1f}" '
                f'fill="#888" stroke="#000">{t}</polygon>')
    return f'<circle cx="{x:.1f}" cy="{y:.1f}" r="4" fill="#000">{t}</circle>'


def lines(x_labels: Sequence[str], series: dict[str, Sequence[float | None]], label: str) -> Markup:
    """One line per series over shared x labels; each series its own marker and dash, named in a legend."""
    values = [v for vs in series.values() for v in vs if v is not None]
    if not x_labels or not values:
        return _frame(label, [f'<text x="{W / 2}" y="{H / 2}" text-anchor="middle">no data</text>'])
    ymax = max(values) * 1.1 or 1.0
    n = len(x_labels)
    step = (W - LEFT - RIGHT) / max(n, 1)
    body = _axis(ymax)

    def xy(i: int, v: float) -> tuple[float, float]:
        return LEFT + step * (i + 0.5), H - BOTTOM - (H - TOP - BOTTOM) * (v / ymax)

    for s, (name, vs) in enumerate(series.items()):
        pts = [(i, v) for i, v in enumerate(vs) if v is not None]
        if len(pts) > 1:
            path = " ".join(f"{xy(i, v)[0]:.1f},{xy(i, v)[1]:.1f}" for i, v in pts)
            dash = DASHES[s % len(DASHES)]
            body.append(f'<polyline points="{path}" fill="none" stroke="#000" stroke-width="1.5"'
                        + (f' stroke-dasharray="{dash}"' if dash else "") + "/>")
        for i, v in pts:
            x, y = xy(i, v)
            body.append(_marker(MARKERS[s % len(MARKERS)], x, y, f"{name} {x_labels[i]}: {_fmt(v)}"))
        lx = LEFT + 10 + s * 150
        body.append(_marker(MARKERS[s % len(MARKERS)], lx, H - 10, name))
        body.append(f'<text x="{lx + 9}" y="{H - 6}" font-size="11">{escape(name)}</text>')
    for i in sorted({0, n - 1}):
        x, _ = xy(i, 0)
        body.append(f'<text x="{x:.1f}" y="{H - BOTTOM + 14}" text-anchor="middle" font-size="11">'
                    f'{escape(x_labels[i])}</text>')
    return _frame(label, body)


def intervals(rows: Sequence[tuple[str, float, float, float]], label: str) -> Markup:
    """Per row (name, estimate, low, high): the 95 % interval as a bar with the estimate marked, zero drawn."""
    if not rows:
        return _frame(label, [f'<text x="{W / 2}" y="{H / 2}" text-anchor="middle">no data</text>'])
    lo = min(min(r[2] for r in rows), 0.0)
    hi = max(max(r[3] for r in rows), 0.0)
    span = (hi - lo) or 1.0
    left, right = 170, W - 20
    height = 30 * len(rows) + 30

    def x(v: float) -> float:
        return left + (right - left) * (v - lo) / span

    body = [f'<line x1="{x(0):.1f}" y1="8" x2="{x(0):.1f}" y2="{height - 18}" stroke="#555" stroke-dasharray="4 3"/>',
            f'<text x="{x(0):.1f}" y="{height - 4}" text-anchor="middle" font-size="11">0 (no difference)</text>']
    for i, (name, est, low, high) in enumerate(rows):
        y = 20 + 30 * i
        body.append(f'<text x="{left - 8}" y="{y + 4}" text-anchor="end" font-size="11">{escape(name)}</text>')
        body.append(f'<line x1="{x(low):.1f}" y1="{y}" x2="{x(high):.1f}" y2="{y}" stroke="#000" stroke-width="3"/>')
        body.append(_marker("diamond", x(est), y, f"{name}: {_fmt(est)} (95% CI {_fmt(low)} to {_fmt(high)})"))
        body.append(f'<text x="{x(high) + 4:.1f}" y="{y - 6}" font-size="10">{escape(_fmt(est))} '
                    f'[{escape(_fmt(low))}, {escape(_fmt(high))}]</text>')
    head = (f'<svg class="chart" viewBox="0 0 {W} {height}" role="img" aria-label="{escape(label)}" '
            f'xmlns="http://www.w3.org/2000/svg"><title>{escape(label)}</title>')
    return Markup(head + "".join(body) + "</svg>")
