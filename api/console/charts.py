"""Charts drawn on the server as inline SVG: no script, no CDN, readable without colour.

Every chart carries its numbers as text (axis labels, value labels, a
``<title>`` per mark for hover) and series differ by marker shape and dash
pattern, not only by colour; the page shows the same numbers in a table.
Output is ``markupsafe.Markup`` with every label escaped.

Each chart is drawn twice, for a wide screen and for a phone (``chart-wide`` /
``chart-narrow``, one shown by the console's CSS), so that its text keeps at
least 11 CSS px at 390 px as on a desktop: an SVG scaled down to a phone
would shrink its text with it. Count axes tick at whole numbers only; long
numbers are written compactly (3.3k) and labels that would overlap are left out
(every bar keeps its number in its ``<title>`` and in the page's table).
"""

from __future__ import annotations

import math
from collections.abc import Callable, Sequence
from dataclasses import dataclass

from markupsafe import Markup, escape

MARKERS = ("circle", "square", "triangle", "diamond")
DASHES = ("", "6 3", "2 3", "8 3 2 3")


@dataclass(frozen=True)
class Frame:
    """One drawing size: ``w`` x ``h`` user units, text ``font`` units tall, plot margins."""

    name: str
    w: int
    h: int
    font: int
    left: int
    right: int = 12
    top: int = 18
    bottom: int = 42

    def char(self) -> float:
        """The width of one character of label text, roughly (digits in a sans-serif face)."""
        return self.font * 0.62


# Wide: at most 1.08 x (260 px max height / 240) on a desktop, 0.87 x at 600 px: text 11.3 to 14 px.
# Narrow (phones, CSS below 600 px): 320 units drawn over ~316-560 px, text 12 to 21 px.
WIDE = Frame("wide", 640, 240, 13, 56)
NARROW = Frame("narrow", 320, 240, 12, 44)
FRAMES = (WIDE, NARROW)


def _fmt(v: float) -> str:
    """A value in full (hover titles): thousands separated, few decimals."""
    if abs(v) >= 1000:
        return f"{v:,.0f}"
    if abs(v) >= 10 or v == int(v):
        return f"{v:.0f}"
    return f"{v:.3g}"


def short(v: float) -> str:
    """A value written compactly for a tick or a bar label: 950, 3.3k, 12k, 1.2M, 0.25."""
    a = abs(v)
    if a >= 1e6:
        return f"{v / 1e6:.1f}".rstrip("0").rstrip(".") + "M"
    if a >= 1e4:
        return f"{v / 1e3:.0f}k"
    if a >= 1e3:
        return f"{v / 1e3:.1f}".rstrip("0").rstrip(".") + "k"
    if v == int(v):
        return f"{v:.0f}"
    return f"{v:.2g}" if a < 1 else f"{v:.3g}"


def ticks(ymax: float, integer: bool) -> list[float]:
    """About four evenly spaced ticks from 0 covering ``ymax``, at 1, 2, 2.5 or 5 x a power of ten.

    ``integer`` (a count axis): whole-number steps only, so no 0.5 tick appears on a count.
    """
    if ymax <= 0:
        ymax = 1.0
    raw = ymax / 4
    mag = 10 ** math.floor(math.log10(raw))
    step = mag * 10
    for m in (1, 2, 2.5, 5, 10):
        if m * mag >= raw and not (integer and m * mag != int(m * mag)):
            step = m * mag
            break
    if integer:
        step = max(1.0, float(round(step)))
    n = math.ceil(ymax / step - 1e-9)
    return [round(i * step, 10) for i in range(n + 1)]


def _text(f: Frame, x: float, y: float, words: str, anchor: str = "middle", size: int | None = None) -> str:
    return f'<text x="{x:.1f}" y="{y:.1f}" text-anchor="{anchor}" font-size="{size or f.font}">{escape(words)}</text>'


def _svg(f: Frame, label: str, body: list[str], height: int | None = None) -> str:
    h = height or f.h
    return (
        f'<svg class="chart chart-{f.name}" viewBox="0 0 {f.w} {h}" role="img" aria-label="{escape(label)}" '
        f'xmlns="http://www.w3.org/2000/svg" preserveAspectRatio="xMidYMid meet">'
        f"<title>{escape(label)}</title>" + "".join(body) + "</svg>"
    )


def _both(label: str, draw: Callable[[Frame], tuple[list[str], int | None]]) -> Markup:
    """The chart for a wide screen and for a phone; the console's CSS shows one of them."""
    return Markup("".join(_svg(f, label, *draw(f)) for f in FRAMES))


def _empty(label: str) -> Markup:
    return _both(label, lambda f: ([_text(f, f.w / 2, f.h / 2, "no data")], None))


def _axis(f: Frame, top: float, marks: list[float], fmt: Callable[[float], str] = short) -> list[str]:
    base = f.h - f.bottom
    out = [
        f'<line x1="{f.left}" y1="{base}" x2="{f.w - f.right}" y2="{base}" stroke="#555"/>',
        f'<line x1="{f.left}" y1="{f.top}" x2="{f.left}" y2="{base}" stroke="#555"/>',
    ]
    for v in marks:
        y = base - (base - f.top) * (v / top)
        out.append(_text(f, f.left - 4, y + f.font * 0.35, fmt(v), "end"))
        if v:
            out.append(
                f'<line x1="{f.left}" y1="{y:.1f}" x2="{f.w - f.right}" y2="{y:.1f}" stroke="#ccc" '
                'stroke-dasharray="2 3"/>'
            )
    return out


def _spaced(centres: Sequence[float], widths: Sequence[float], order: Sequence[int], gap: float) -> list[int]:
    """Indices from ``order`` (most wanted first) whose labels, centred on ``centres``, do not overlap."""
    kept: list[tuple[float, float]] = []
    out = []
    for i in order:
        lo, hi = centres[i] - widths[i] / 2 - gap / 2, centres[i] + widths[i] / 2 + gap / 2
        if all(hi <= a or lo >= b for a, b in kept):
            kept.append((lo, hi))
            out.append(i)
    return sorted(out)


def _x_labels(f: Frame, names: Sequence[str], centres: Sequence[float]) -> list[str]:
    """As many x labels as fit without touching: first and last first, then evenly between."""
    n = len(names)
    widths = [len(s) * f.char() for s in names]
    wanted = [0, n - 1] + [round(n * k / 8) for k in range(1, 8)] + list(range(n))
    order = list(dict.fromkeys(i for i in wanted if 0 <= i < n))
    keep = _spaced(centres, widths, order, f.font)
    out = []
    for i in keep:
        x = min(max(centres[i], widths[i] / 2), f.w - widths[i] / 2)  # inside the drawing
        out.append(_text(f, x, f.h - f.bottom + f.font + 4, names[i]))
    return out


def bars(points: Sequence[tuple[str, float]], label: str, integer: bool = True) -> Markup:
    """A bar per point (label, value); the highest, last and first bars are labelled where their labels fit.

    ``integer``: the values are counts (whole-number ticks).
    """
    if not points:
        return _empty(label)
    top_value = max(v for _, v in points)
    marks = ticks(top_value, integer)

    def draw(f: Frame) -> tuple[list[str], None]:
        top = marks[-1] or 1.0
        base = f.h - f.bottom
        step = (f.w - f.left - f.right) / len(points)
        body = _axis(f, top, marks)
        centres, tops = [], []
        for i, (name, v) in enumerate(points):
            h = (base - f.top) * (v / top)
            x = f.left + i * step + step * 0.1
            centres.append(x + step * 0.4)
            tops.append(base - h)
            body.append(
                f'<rect x="{x:.1f}" y="{base - h:.1f}" width="{step * 0.8:.1f}" height="{h:.1f}" '
                f'fill="#3b6ea5"><title>{escape(name)}: {escape(_fmt(v))}</title></rect>'
            )
        n = len(points)
        highest = max(range(n), key=lambda i: points[i][1])
        texts = [short(v) for _, v in points]
        widths = [len(t) * f.char() for t in texts]
        for i in _spaced(centres, widths, list(dict.fromkeys([highest, n - 1, 0])), f.font * 0.5):
            if points[i][1] or i == highest:
                body.append(_text(f, centres[i], max(tops[i] - 4, f.font), texts[i]))
        body += _x_labels(f, [p[0] for p in points], centres)
        return body, None

    return _both(label, draw)


def _marker(kind: str, x: float, y: float, tip: str) -> str:
    t = f"<title>{escape(tip)}</title>"
    if kind == "square":
        return f'<rect x="{x - 4:.1f}" y="{y - 4:.1f}" width="8" height="8" fill="#fff" stroke="#000">{t}</rect>'
    if kind == "triangle":
        return (
            f'<polygon points="{x:.1f},{y - 5:.1f} {x - 5:.1f},{y + 4:.1f} {x + 5:.1f},{y + 4:.1f}" '
            f'fill="#000">{t}</polygon>'
        )
    if kind == "diamond":
        return (
            f'<polygon points="{x:.1f},{y - 5:.1f} {x + 5:.1f},{y:.1f} {x:.1f},{y + 5:.1f} {x - 5:.1f},{y:.1f}" '
            f'fill="#888" stroke="#000">{t}</polygon>'
        )
    return f'<circle cx="{x:.1f}" cy="{y:.1f}" r="4" fill="#000">{t}</circle>'


def lines(x_labels: Sequence[str], series: dict[str, Sequence[float | None]], label: str) -> Markup:
    """One line per series over shared x labels; each series its own marker and dash, named in a legend."""
    values = [v for vs in series.values() for v in vs if v is not None]
    if not x_labels or not values:
        return _empty(label)
    marks = ticks(max(values) * 1.1, integer=False)
    n = len(x_labels)

    def draw(f: Frame) -> tuple[list[str], None]:
        top = marks[-1] or 1.0
        base = f.h - f.bottom - f.font - 6  # room for the legend under the x labels
        g = Frame(f.name, f.w, f.h, f.font, f.left, f.right, f.top, f.h - base)
        step = (f.w - f.left - f.right) / max(n, 1)
        body = _axis(g, top, marks)

        def xy(i: int, v: float) -> tuple[float, float]:
            return f.left + step * (i + 0.5), base - (base - f.top) * (v / top)

        for s, (name, vs) in enumerate(series.items()):
            pts = [(i, v) for i, v in enumerate(vs) if v is not None]
            if len(pts) > 1:
                path = " ".join(f"{xy(i, v)[0]:.1f},{xy(i, v)[1]:.1f}" for i, v in pts)
                dash = DASHES[s % len(DASHES)]
                body.append(
                    f'<polyline points="{path}" fill="none" stroke="#000" stroke-width="1.5"'
                    + (f' stroke-dasharray="{dash}"' if dash else "")
                    + "/>"
                )
            for i, v in pts:
                x, y = xy(i, v)
                body.append(_marker(MARKERS[s % len(MARKERS)], x, y, f"{name} {x_labels[i]}: {_fmt(v)}"))
            lx = f.left + 10 + s * (f.w - f.left) / max(len(series), 1)
            body.append(_marker(MARKERS[s % len(MARKERS)], lx, f.h - f.font * 0.4 - 4, name))
            body.append(_text(f, lx + 9, f.h - 4, name, "start"))
        body += _x_labels(g, list(x_labels), [xy(i, 0)[0] for i in range(n)])
        return body, None

    return _both(label, draw)


def intervals(
    rows: Sequence[tuple[str, float, float, float]], label: str, fmt: Callable[[float], str] = _fmt
) -> Markup:
    """Per row (name, estimate, low, high): the 95 % interval as a bar with the estimate marked, zero drawn.

    Each row's name and numbers sit on a line above its bar, so long names fit a phone.
    """
    if not rows:
        return _empty(label)
    lo = min(min(r[2] for r in rows), 0.0)
    hi = max(max(r[3] for r in rows), 0.0)
    span = (hi - lo) or 1.0

    def draw(f: Frame) -> tuple[list[str], int]:
        left, right = 12, f.w - 12
        row_h = 2 * f.font + 22
        height = row_h * len(rows) + f.font + 14

        def x(v: float) -> float:
            return left + (right - left) * (v - lo) / span

        body = [
            f'<line x1="{x(0):.1f}" y1="4" x2="{x(0):.1f}" y2="{height - f.font - 8}" stroke="#555" '
            'stroke-dasharray="4 3"/>'
        ]
        zero = "0 (no difference)"
        zx = min(max(x(0), len(zero) * f.char() / 2 + 2), f.w - len(zero) * f.char() / 2 - 2)
        body.append(_text(f, zx, height - 4, zero))
        for i, (name, est, low, high) in enumerate(rows):
            y = row_h * i + f.font + 4
            numbers = f"{fmt(est)} [{fmt(low)}, {fmt(high)}]"
            body.append(_text(f, left, y, name, "start"))
            body.append(_text(f, right, y, numbers, "end"))
            bar = y + f.font
            body.append(
                f'<line x1="{x(low):.1f}" y1="{bar}" x2="{x(high):.1f}" y2="{bar}" stroke="#000" stroke-width="3"/>'
            )
            body.append(_marker("diamond", x(est), bar, f"{name}: {numbers} (95% interval)"))
        return body, height

    return _both(label, draw)
