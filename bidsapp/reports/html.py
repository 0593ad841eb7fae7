"""HTML reports: self-contained pages (no external assets) a user opens in a browser.

:func:`page` assembles titled sections; :func:`figure` embeds a matplotlib
figure as an inline PNG, :func:`png_html` an image array; :func:`table_html`
renders a DataFrame. Figures drawn without matplotlib (seconds faster per
report; :func:`png_bytes` encodes the PNG with zlib): :func:`matrix_html` (a
grouped matrix as a PNG), :func:`heat_table` and :func:`bar_table` (HTML
tables with coloured cells or bars), :func:`line_chart` (inline SVG) and
:func:`colour_scale`, all on the diverging map :data:`CMAP`
(:func:`colour_bytes`, matplotlib's ``RdBu_r`` from its ColorBrewer stops).
"""

from __future__ import annotations

import base64
import html
import io
import struct
import zlib
from collections.abc import Iterable, Sequence

import numpy as np
import pandas as pd

#: Colour map of signed values (negative blue, positive red).
CMAP = "RdBu_r"
#: Colours of :data:`CMAP`'s look-up table (matplotlib's default).
_CMAP_LEVELS = 256


def _cmap_table() -> np.ndarray:
    """:data:`CMAP`'s look-up table as RGBA bytes, interpolated as matplotlib does (the same bytes).

    The stops are ColorBrewer's RdBu, reversed (lowest value first).
    """
    stops = np.array([(5, 48, 97), (33, 102, 172), (67, 147, 195), (146, 197, 222), (209, 229, 240),
                      (247, 247, 247), (253, 219, 199), (244, 165, 130), (214, 96, 77), (178, 24, 43),
                      (103, 0, 31)]) / 255.0
    at = (1.0 - np.linspace(0.0, 1.0, len(stops))[::-1]) * (_CMAP_LEVELS - 1)
    levels = (_CMAP_LEVELS - 1) * np.linspace(0.0, 1.0, _CMAP_LEVELS)
    after = np.searchsorted(at, levels)[1:-1]
    distance = ((levels[1:-1] - at[after - 1]) / (at[after] - at[after - 1]))[:, None]
    inner = distance * (stops[after] - stops[after - 1]) + stops[after - 1]
    rgb = np.concatenate([stops[:1], inner, stops[-1:]])
    return np.c_[(rgb * 255).astype(np.uint8), np.full(_CMAP_LEVELS, 255, np.uint8)]


_CMAP_BYTES = _cmap_table()
#: Screen pixels per image pixel of a matrix (:func:`matrix_html`; browsers scale it up unsmoothed).
SCREEN_PIXELS_PER_CELL = 1.5
_LINE_COLOURS = ("#1f77b4", "#d62728")

_STYLE = """
body { font-family: system-ui, sans-serif; margin: 2em auto; max-width: 72em; color: #222; }
h1 { font-size: 1.6em; } h2 { font-size: 1.2em; margin-top: 2em; border-bottom: 1px solid #ccc; }
table { border-collapse: collapse; font-size: 0.85em; } td, th { padding: 0.2em 0.6em; border: 1px solid #ddd; }
th { background: #f3f3f3; } td.num { text-align: right; font-variant-numeric: tabular-nums; }
.warn { background: #fff1e0; } .note { color: #666; }
.panels { display: flex; flex-wrap: wrap; gap: 1.5em; align-items: flex-start; }
.matrix { display: flex; } .matrix img { image-rendering: pixelated; }
.matrix .rows { display: flex; flex-direction: column; font-size: 0.7em; text-align: right; padding-right: 0.4em; }
.matrix .rows div { display: flex; align-items: center; justify-content: flex-end; min-height: 0; }
.scale { display: flex; align-items: center; gap: 0.4em; font-size: 0.8em; margin-top: 0.4em; }
.scale .bar { display: inline-block; width: 12em; height: 0.8em; }
table.bars caption { font-size: 0.9em; text-align: left; }
td.bars { width: 9em; padding: 0.2em 0; } td.bars span { display: block; height: 0.9em; }
svg.chart { font-size: 11px; }
.columns { display: flex; align-items: flex-end; height: 15em; font-size: 0.6em; }
.columns div { flex: none; writing-mode: vertical-rl; transform: rotate(180deg); white-space: nowrap; }
"""


def page(title: str, subtitle: str, sections: Sequence[tuple[str, str]]) -> str:
    """A complete HTML page: ``sections`` are (heading, HTML body) pairs."""
    body = "".join(f"<h2>{html.escape(heading)}</h2>{content}" for heading, content in sections)
    return (f"<!DOCTYPE html><html lang='en'><head><meta charset='utf-8'><title>{html.escape(title)}</title>"
            f"<style>{_STYLE}</style></head><body><h1>{html.escape(title)}</h1>"
            f"<p class='note'>{html.escape(subtitle)}</p>{body}</body></html>\n")


def figure(fig, alt: str) -> str:
    """Embed a matplotlib figure as an inline PNG (and close it)."""
    import matplotlib.pyplot as plt

    buffer = io.BytesIO()
    fig.savefig(buffer, format="png", dpi=90, bbox_inches="tight")
    plt.close(fig)
    return f"<figure>{_img(buffer.getvalue(), alt)}</figure>"


def png_bytes(rgba: np.ndarray) -> bytes:
    """An (rows, columns, 4) array of RGBA bytes as a PNG file (8-bit RGBA, no filter, zlib level 1)."""
    rgba = np.ascontiguousarray(rgba, dtype=np.uint8)
    rows, columns = rgba.shape[:2]
    scanlines = np.concatenate([np.zeros((rows, 1), np.uint8), rgba.reshape(rows, 4 * columns)], axis=1)

    def chunk(kind: bytes, data: bytes) -> bytes:
        return struct.pack(">I", len(data)) + kind + data + struct.pack(">I", zlib.crc32(kind + data))

    header = struct.pack(">IIBBBBB", columns, rows, 8, 6, 0, 0, 0)
    return (b"\x89PNG\r\n\x1a\n" + chunk(b"IHDR", header) + chunk(b"IDAT", zlib.compress(scanlines.tobytes(), 1))
            + chunk(b"IEND", b""))


def png_html(rgba: np.ndarray, alt: str, style: str = "") -> str:
    """Embed an image given as an (rows, columns, 4) array of RGBA bytes as an inline PNG."""
    return _img(png_bytes(rgba), alt, style)


def _img(png: bytes, alt: str, style: str = "") -> str:
    styled = f" style='{html.escape(style)}'" if style else ""
    return f"<img alt='{html.escape(alt)}'{styled} src='data:image/png;base64,{base64.b64encode(png).decode()}'>"


def note_html(text: str) -> str:
    """A note in grey: why a figure or table is missing or empty."""
    return f"<p class='note'>{html.escape(text)}</p>"


def list_html(items: Iterable[str]) -> str:
    """Strings (file names, commands) as an HTML bullet list, each in ``<code>``."""
    return "<ul>" + "".join(f"<li><code>{html.escape(item)}</code></li>" for item in items) + "</ul>"


def table_html(table: pd.DataFrame) -> str:
    """A DataFrame as an HTML table; rows with high-motion or flat-parcel counts above zero are highlighted."""
    header = "".join(f"<th>{html.escape(str(column))}</th>" for column in table.columns)
    rows = []
    for _, row in table.iterrows():
        flagged = any(row.get(column, 0) > 0 for column in ("n_high_motion", "n_flat_parcels")
                      if pd.notna(row.get(column)))
        cells = "".join(_cell(value) for value in row)
        rows.append(f"<tr{' class=warn' if flagged else ''}>{cells}</tr>")
    return f"<table><thead><tr>{header}</tr></thead><tbody>{''.join(rows)}</tbody></table>"


def _cell(value) -> str:
    if isinstance(value, float):
        return f"<td class=num>{'n/a' if pd.isna(value) else f'{value:.3g}'}</td>"
    if isinstance(value, int):
        return f"<td class=num>{value}</td>"
    return f"<td>{html.escape('n/a' if pd.isna(value) else str(value))}</td>"


def colour_bytes(values: np.ndarray, limit: float) -> np.ndarray:
    """RGBA bytes of ``values`` on :data:`CMAP` from ``-limit`` to ``limit`` (NaN white).

    As matplotlib's colour maps: the value picks one of :data:`_CMAP_LEVELS`
    colours, values beyond the limits the end colours.
    """
    values = np.asarray(values, dtype=float)
    with np.errstate(invalid="ignore"):
        index = np.clip(np.nan_to_num((values / limit + 1) / 2 * _CMAP_LEVELS), 0, _CMAP_LEVELS - 1).astype(int)
    colours = _CMAP_BYTES[index]
    colours[np.isnan(values)] = 255
    return colours


def _hex(rgba: Sequence[int]) -> str:
    red, green, blue = rgba[:3]
    return f"#{red:02x}{green:02x}{blue:02x}"


def _number(value: float) -> str:
    return "n/a" if np.isnan(value) else f"{value:.2g}"


def colour_scale(limit: float, label: str) -> str:
    """A horizontal colour bar from ``-limit`` to ``limit`` (CSS gradient)."""
    stops = ", ".join(_hex(c) for c in colour_bytes(np.linspace(-limit, limit, 11), limit).tolist())
    return (f"<div class=scale><span>{-limit:.3g}</span><span class=bar style='background:linear-gradient("
            f"to right, {stops})'></span><span>{limit:.3g}</span> {html.escape(label)}</div>")


def matrix_html(matrix: np.ndarray, labels: np.ndarray, alt: str, cell: int = 1) -> str:
    """A square matrix ordered by group (``labels``) as an image, the group names beside their rows.

    ``cell`` pixels per cell (one by default), a grey line of one pixel between
    groups, values from -1 to 1 on :data:`CMAP` (NaN white); the browser scales
    the image up without smoothing.
    """
    edges = np.flatnonzero(labels[1:] != labels[:-1]) + 1
    rgba = np.repeat(np.repeat(colour_bytes(matrix, 1.0), cell, axis=0), cell, axis=1)
    rgba = np.insert(np.insert(rgba, edges * cell, 160, axis=0), edges * cell, 160, axis=1)
    size = rgba.shape[0] * SCREEN_PIXELS_PER_CELL
    starts = np.r_[0, edges]
    counts = np.diff(np.r_[starts, len(labels)]) * cell + 1
    names = "".join(f"<div style='flex:{count}'>{html.escape(str(labels[start]))}</div>"
                    for start, count in zip(starts, counts, strict=True))
    return (f"<div class=matrix><div class=rows style='height:{size:.0f}px'>{names}</div>"
            f"{png_html(rgba, alt, f'width:{size:.0f}px')}</div>")


def heat_table(table: pd.DataFrame, limit: float) -> str:
    """A DataFrame of numbers as an HTML table, each cell coloured by its value on :data:`CMAP`."""
    values = table.to_numpy()
    colours = colour_bytes(values, limit)
    text = np.where(np.abs(values) > 0.6 * limit, "#fff", "#000")  # legible on the darkest colours
    header = "".join(f"<th>{html.escape(str(column))}</th>" for column in [table.index.name or "", *table.columns])
    rows = []
    for name, row, row_colours, row_text in zip(table.index, values.tolist(), colours.tolist(), text.tolist(),
                                                strict=True):
        cells = "".join(f"<td class=num style='background:{_hex(colour)};color:{ink}'>{_number(value)}</td>"
                        for value, colour, ink in zip(row, row_colours, row_text, strict=True))
        rows.append(f"<tr><th>{html.escape(str(name))}</th>{cells}</tr>")
    return f"<table class=heat><thead><tr>{header}</tr></thead><tbody>{''.join(rows)}</tbody></table>"


def bar_table(means: pd.DataFrame, title: str) -> str:
    """Signed values as horizontal bars about zero, one row per index entry and one bar column per column."""
    limit = float(np.nanmax(np.abs(means.to_numpy()), initial=0.0)) or 1.0
    header = "".join(f"<th>{html.escape(str(column))}</th>" for column in means.columns)
    rows = []
    for network, values in zip(means.index, means.to_numpy(), strict=True):
        cells = []
        for value in values:
            width = 0.0 if np.isnan(value) else 50 * abs(value) / limit
            start, colour = (50, "#c0392b") if value >= 0 else (50 - width, "#2e6da4")
            cells.append(f"<td class=bars title='{_number(value)}'><span style='margin-left:{start:.1f}%;"
                         f"width:{width:.1f}%;background:{colour}'></span></td>")
        rows.append(f"<tr><th>{html.escape(str(network))}</th>{''.join(cells)}</tr>")
    return (f"<table class=bars><caption>{html.escape(title)} (|bar| max {limit:.3g})</caption>"
            f"<thead><tr><th></th>{header}</tr></thead><tbody>{''.join(rows)}</tbody></table>")


def line_chart(series: dict[str, np.ndarray], title: str, xlabel: str, ylabel: str,
               width: int = 720, height: int = 250, *, shaded: Sequence[int] = (), level: float | None = None,
               level_label: str = "") -> str:
    """Lines as an inline SVG chart: one polyline per series, y ticks at the extremes and at zero.

    ``shaded`` x positions are marked by red bands, ``level`` by a dashed red
    line with ``level_label`` written above its left end.
    """
    left, right, top, bottom = 55, 10, 30, 40
    values = np.concatenate([np.asarray(v, dtype=float) for v in series.values()] + [[] if level is None else [level]])
    low, high = float(np.nanmin(values)), float(np.nanmax(values))
    high = high if high > low else low + 1.0
    n = max(len(v) for v in series.values())
    x_scale = (width - left - right) / max(n - 1, 1)

    def y(v):
        return top + (height - top - bottom) * (high - v) / (high - low)

    parts = [(f"<svg class=chart xmlns='http://www.w3.org/2000/svg' width='{width}' height='{height}' role='img'>"
              f"<title>{html.escape(title)}</title>"),
             f"<text x='{width / 2}' y='16' text-anchor='middle'>{html.escape(title)}</text>",
             (f"<rect x='{left}' y='{top}' width='{width - left - right}' height='{height - top - bottom}' "
              "fill='none' stroke='#888'/>")]
    for tick in sorted({low, high} | ({0.0} if low < 0 < high else set())):
        parts.append(f"<line x1='{left - 4}' x2='{width - right}' y1='{y(tick):.1f}' y2='{y(tick):.1f}' "
                     f"stroke='#ddd'/><text x='{left - 6}' y='{y(tick) + 4:.1f}' text-anchor='end'>{tick:.2g}</text>")
    parts += [f"<rect x='{left + x_scale * (x - 0.5):.1f}' y='{top}' width='{x_scale:.1f}' "
              f"height='{height - top - bottom}' fill='#d62728' fill-opacity='0.3'/>" for x in shaded]
    if level is not None:
        parts.append(f"<line x1='{left}' x2='{width - right}' y1='{y(level):.1f}' y2='{y(level):.1f}' "
                     "stroke='#d62728' stroke-dasharray='4 3'/>"
                     f"<text x='{left + 4}' y='{y(level) - 4:.1f}' fill='#d62728'>{html.escape(level_label)}</text>")
    for k, (label, line) in enumerate(series.items()):
        line = np.asarray(line, dtype=float)
        keep = np.isfinite(line)
        xs, ys = left + x_scale * np.flatnonzero(keep), y(line[keep])
        points = " ".join(f"{a:.1f},{b:.1f}" for a, b in zip(xs, ys, strict=True))
        colour = _LINE_COLOURS[k % len(_LINE_COLOURS)]
        parts.append(f"<polyline fill='none' stroke='{colour}' stroke-width='1.2' points='{points}'/>"
                     f"<text x='{width - right - 150}' y='{top + 15 + 15 * k}' fill='{colour}'>"
                     f"{html.escape(label)}</text>")
    parts.append(f"<text x='{(left + width - right) / 2}' y='{height - 8}' text-anchor='middle'>"
                 f"{html.escape(xlabel)}</text><text transform='translate(14,{(top + height - bottom) / 2}) "
                 f"rotate(-90)' text-anchor='middle'>{html.escape(ylabel)}</text></svg>")
    return "".join(parts)


def column_heat_table(table: pd.DataFrame) -> str:
    """A DataFrame as an HTML table, each numeric column's cells coloured by the column's own largest |value|.

    Text columns (participant IDs, contrast names) stay plain cells; a design matrix's dummy codes and
    centred covariates each span the whole colour map.
    """
    header = "".join(f"<th>{html.escape(str(column))}</th>" for column in table.columns)
    columns = []
    for _, values in table.items():
        if pd.api.types.is_numeric_dtype(values) and not pd.api.types.is_bool_dtype(values):
            numbers = values.to_numpy(float)
            limit = float(np.nanmax(np.abs(numbers), initial=0.0)) or 1.0
            ink = np.where(np.abs(numbers) > 0.6 * limit, "#fff", "#000")
            columns.append([f"<td class=num style='background:{_hex(colour)};color:{text}'>{_number(value)}</td>"
                            for value, colour, text in zip(numbers, colour_bytes(numbers, limit).tolist(), ink,
                                                           strict=True)])
        else:
            columns.append([f"<td>{html.escape(str(value))}</td>" for value in values])
    rows = "".join(f"<tr>{''.join(cells)}</tr>" for cells in zip(*columns, strict=True))
    return f"<table class=heat><thead><tr>{header}</tr></thead><tbody>{rows}</tbody></table>"


def threshold_scale(threshold: float, limit: float, label: str) -> str:
    """The legend of a thresholded map: blue to cyan from ``-threshold`` to ``-limit``, red to yellow above."""
    return (f"<div class=scale><span>{-limit:.3g}</span><span class=bar style='background:linear-gradient("
            f"to right, #00ffff, #0000ff)'></span><span>{-threshold:.3g}</span> | <span>{threshold:.3g}</span>"
            f"<span class=bar style='background:linear-gradient(to right, #ff0000, #ffff00)'></span>"
            f"<span>{limit:.3g}</span> {html.escape(label)}</div>")


def sequential_colours(values: np.ndarray, low: float, high: float, cmap: str = "YlOrRd") -> np.ndarray:
    """RGBA bytes of ``values`` on a sequential map from ``low`` (pale) to ``high`` (dark); its first quarter unused.

    The palest quarter of the map is left out so that the lowest values still show on white or grey.
    """
    from matplotlib import colormaps

    level = np.clip((np.asarray(values, dtype=float) - low) / ((high - low) or 1.0), 0, 1)
    return colormaps[cmap](0.25 + 0.75 * level, bytes=True)


def sequential_scale(low: float, high: float, label: str, cmap: str = "YlOrRd") -> str:
    """A horizontal colour bar of :func:`sequential_colours` from ``low`` to ``high`` (CSS gradient)."""
    stops = ", ".join(_hex(c) for c in sequential_colours(np.linspace(low, high, 11), low, high, cmap).tolist())
    return (f"<div class=scale><span>{low:.3g}</span><span class=bar style='background:linear-gradient("
            f"to right, {stops})'></span><span>{high:.3g}</span> {html.escape(label)}</div>")
