"""The participant report of the parcel pipeline, built from the outputs it wrote.

Sections follow the HCP course notebooks: the runs analysed and any input
problems; the combined resting connectivity matrix ordered by network with the
network means, and the connectivity profile of a seed parcel (R_FEF) split by
hemisphere; the network x hemisphere mean effect of every contrast as bars, the
parcels ranked by |effect|, and, when the dataset has ``atlas.npz``, each
task's first contrast on the fsaverage5 surface (nilearn ships the mesh).

No matplotlib axes are laid out (that took seconds per participant): the
connectivity matrix is a PNG with one pixel per parcel pair (colour-mapped
directly, a grey line between networks), the surface maps PNGs rasterised from
the mesh (:func:`lateral_view`), the profile an inline SVG line chart, and the
means HTML tables with coloured cells or bars, drawn by the browser.
"""

from __future__ import annotations

import functools
import html
from collections.abc import Sequence
from pathlib import Path

import numpy as np
import pandas as pd

from bidsapp import __version__
from bidsapp.hcp_summaries import HEMISPHERES, network_hemisphere_means, rank_parcels
from bidsapp.parcel_labels import dataset_root
from bidsapp.relmat import read_relmat
from bidsapp.report import page, png_html, table_html

#: The seed parcel of the HCP course's connectivity profile.
SEED_PARCEL = "R_FEF"
#: Parcels listed per contrast, by decreasing |effect|.
TOP_PARCELS = 10
#: Colour map of signed values (negative blue, positive red).
CMAP = "RdBu_r"
#: Screen pixels per parcel in the connectivity matrix.
PIXELS_PER_PARCEL = 1.5
#: Pixels per mm of the inflated fsaverage5 surface in the surface maps.
SURFACE_PIXELS_PER_MM = 1.6
_LINE_COLOURS = ("#1f77b4", "#d62728")


def _order_by_network(parcels: pd.DataFrame) -> np.ndarray:
    return np.lexsort((np.arange(len(parcels)), parcels["network"].to_numpy()))


def colour_bytes(values: np.ndarray, limit: float) -> np.ndarray:
    """RGBA bytes of ``values`` on :data:`CMAP` from ``-limit`` to ``limit`` (NaN white)."""
    from matplotlib import colormaps

    colours = colormaps[CMAP]((np.asarray(values, dtype=float) / limit + 1) / 2, bytes=True)
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
    size = rgba.shape[0] * PIXELS_PER_PARCEL
    starts = np.r_[0, edges]
    counts = np.diff(np.r_[starts, len(labels)]) * cell + 1
    names = "".join(f"<div style='flex:{count}'>{html.escape(str(labels[start]))}</div>"
                    for start, count in zip(starts, counts))
    return (f"<div class=matrix><div class=rows style='height:{size:.0f}px'>{names}</div>"
            f"{png_html(rgba, alt, f'width:{size:.0f}px')}</div>")


def heat_table(table: pd.DataFrame, limit: float) -> str:
    """A DataFrame of numbers as an HTML table, each cell coloured by its value on :data:`CMAP`."""
    values = table.to_numpy()
    colours = colour_bytes(values, limit)
    text = np.where(np.abs(values) > 0.6 * limit, "#fff", "#000")  # legible on the darkest colours
    header = "".join(f"<th>{html.escape(str(column))}</th>" for column in [table.index.name or "", *table.columns])
    rows = []
    for name, row, row_colours, row_text in zip(table.index, values.tolist(), colours.tolist(), text.tolist()):
        cells = "".join(f"<td class=num style='background:{_hex(colour)};color:{ink}'>{_number(value)}</td>"
                        for value, colour, ink in zip(row, row_colours, row_text))
        rows.append(f"<tr><th>{html.escape(str(name))}</th>{cells}</tr>")
    return f"<table class=heat><thead><tr>{header}</tr></thead><tbody>{''.join(rows)}</tbody></table>"


def bar_table(means: pd.DataFrame, title: str) -> str:
    """Signed values as horizontal bars about zero, one row per index entry and one bar column per column."""
    limit = float(np.nanmax(np.abs(means.to_numpy()), initial=0.0)) or 1.0
    header = "".join(f"<th>{html.escape(str(column))}</th>" for column in means.columns)
    rows = []
    for network, values in zip(means.index, means.to_numpy()):
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
               width: int = 720, height: int = 250, *, shaded: Sequence[int] = (), level: float | None = None) -> str:
    """Lines as an inline SVG chart: one polyline per series, y ticks at the extremes and at zero.

    ``shaded`` x positions are marked by red bands, ``level`` by a dashed red line.
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
                     "stroke='#d62728' stroke-dasharray='4 3'/>")
    for k, (label, line) in enumerate(series.items()):
        line = np.asarray(line, dtype=float)
        keep = np.isfinite(line)
        points = " ".join(f"{a:.1f},{b:.1f}" for a, b in zip(left + x_scale * np.flatnonzero(keep), y(line[keep])))
        colour = _LINE_COLOURS[k % len(_LINE_COLOURS)]
        parts.append(f"<polyline fill='none' stroke='{colour}' stroke-width='1.2' points='{points}'/>"
                     f"<text x='{width - right - 150}' y='{top + 15 + 15 * k}' fill='{colour}'>"
                     f"{html.escape(label)}</text>")
    parts.append(f"<text x='{(left + width - right) / 2}' y='{height - 8}' text-anchor='middle'>"
                 f"{html.escape(xlabel)}</text><text transform='translate(14,{(top + height - bottom) / 2}) "
                 f"rotate(-90)' text-anchor='middle'>{html.escape(ylabel)}</text></svg>")
    return "".join(parts)


def connectivity_section(matrix: pd.DataFrame, networks: pd.DataFrame | None, parcels: pd.DataFrame) -> str:
    """The connectivity matrix ordered by network, with the within/between-network means beside it."""
    order = _order_by_network(parcels)
    labels = parcels["network"].to_numpy()[order]
    image = matrix_html(matrix.to_numpy()[np.ix_(order, order)], labels, "connectivity matrix ordered by network")
    title = "<p>Pearson correlation, parcels ordered by network</p>"
    body = [f"<div class=panel>{title}{image}{colour_scale(1.0, 'r')}</div>"]
    if networks is not None:
        limit = float(np.nanmax(np.abs(networks.to_numpy()), initial=0.0)) or 1.0
        body.append(f"<div class=panel><p>Within/between-network mean Fisher z</p>{heat_table(networks, limit)}</div>")
    return f"<div class=panels>{''.join(body)}</div>"


def seed_profile_section(matrix: pd.DataFrame, parcels: pd.DataFrame, seed: str = SEED_PARCEL) -> str:
    """The seed parcel's correlation with every parcel, one line per hemisphere (the course's R_FEF plot)."""
    if seed not in matrix.index:
        return ""
    profile = matrix.loc[seed].to_numpy()
    series = {f"{hemisphere} hemisphere": profile[(parcels["hemisphere"] == hemisphere).to_numpy()]
              for hemisphere in HEMISPHERES}
    return line_chart(series, f"connectivity profile of {seed}", "target parcel", "correlation")


def contrasts_section(statmaps: dict[str, pd.DataFrame], parcels: pd.DataFrame) -> str:
    """Bars of each contrast's network x hemisphere mean effect, and the top parcels by |effect|.

    ``statmaps`` maps a title (``task: contrast``) to the contrast's statistics table.
    """
    bars = "".join(bar_table(network_hemisphere_means(table["effect"].to_numpy(), parcels), title)
                   for title, table in statmaps.items())
    parts = [f"<div class=panels>{bars}</div>"]
    for title, table in statmaps.items():
        ranked = rank_parcels(table["effect"].to_numpy(), parcels, TOP_PARCELS).rename(columns={"value": "effect"})
        ranked["z"] = table.set_index("name").loc[ranked["name"], "z"].to_numpy()
        parts.append(f"<h3>{html.escape(title)}: parcels by |effect|</h3>{table_html(ranked)}")
    return "".join(parts)


def _cross(u: np.ndarray, v: np.ndarray) -> np.ndarray:
    """The z component of the cross product of 2-D vectors (last axis)."""
    return u[..., 0] * v[..., 1] - u[..., 1] * v[..., 0]


@functools.lru_cache(maxsize=2)
def lateral_view(hemisphere: str) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Which face of fsaverage5's inflated hemisphere each pixel of its lateral view shows.

    The mesh is projected orthographically (anterior to the left for the left
    hemisphere, to the right for the right one) at :data:`SURFACE_PIXELS_PER_MM`;
    each pixel centre inside a face turned to the viewer takes the nearest such
    face (a z-buffer).

    Returns
    -------
    pixels : ndarray of int, shape (rows, columns)
        The face index shown, -1 for background.
    faces : ndarray of int, shape (n_faces, 3)
        Vertex indices of each face.
    shading : ndarray of shape (n_faces,)
        Lambertian brightness of each face, from 0 (edge-on) to 1 (facing the viewer).
    """
    from nilearn.datasets import load_fsaverage

    part = load_fsaverage("fsaverage5")["inflated"].parts[hemisphere]
    xyz, faces = np.asarray(part.coordinates, dtype=float), np.asarray(part.faces)
    toward = -1.0 if hemisphere == "left" else 1.0
    screen = np.c_[toward * xyz[:, 1], -xyz[:, 2]]
    screen = (screen - screen.min(axis=0)) * SURFACE_PIXELS_PER_MM
    corners = xyz[faces]
    normals = np.cross(corners[:, 1] - corners[:, 0], corners[:, 2] - corners[:, 0])
    shading = np.clip(toward * normals[:, 0] / np.linalg.norm(normals, axis=1), 0.0, 1.0)
    front = np.flatnonzero(shading > 0)
    a, b, c = (screen[faces[front, k]] for k in range(3))
    low = np.floor(np.minimum(np.minimum(a, b), c) - 0.5).astype(int)
    span = int((np.ceil(np.maximum(np.maximum(a, b), c) - 0.5) - low).max()) + 1
    offsets = np.stack(np.meshgrid(np.arange(span), np.arange(span)), axis=-1).reshape(-1, 2)
    pixel = low[:, None, :] + offsets[None, :, :]  # candidate pixels of each face, (face, candidate, xy)
    centre = pixel + 0.5
    area = _cross(b - a, c - a)[:, None]
    inside = np.ones(pixel.shape[:2], dtype=bool)
    for start, end in ((b, c), (c, a), (a, b)):  # the centre is on the inner side of every edge
        inside &= _cross((end - start)[:, None, :], centre - start[:, None, :]) * area >= 0
    which, candidate = np.nonzero(inside)
    depth = toward * corners[front[which], :, 0].mean(axis=1)
    order = np.argsort(-depth, kind="stable")  # nearest first
    shape = tuple(np.ceil(screen.max(axis=0)).astype(int)[::-1] + 1)
    flat = np.ravel_multi_index((pixel[which, candidate, 1], pixel[which, candidate, 0]), shape, mode="clip")
    first, index = np.unique(flat[order], return_index=True)
    pixels = np.full(shape, -1)
    pixels.flat[first] = front[which[order[index]]]
    return pixels, faces, shading


def has_surface_labels(atlas_path: Path) -> bool:
    """Whether ``atlas.npz`` exists and maps fsaverage5 vertices to parcels (``labels_L`` and ``labels_R``)."""
    if not atlas_path.is_file():
        return False
    with np.load(atlas_path) as atlas:
        return {"labels_L", "labels_R"} <= set(atlas.files)


def surface_section(values: np.ndarray, atlas_path, title: str) -> str:
    """Parcel values on the lateral fsaverage5 surfaces; ``atlas.npz`` maps each vertex to a parcel (``labels_L/R``).

    The two hemispheres are drawn with :func:`lateral_view` (faces coloured by
    the mean of their vertices' values, shaded) into one image.
    """
    with np.load(atlas_path) as atlas:
        labels = {"left": atlas["labels_L"], "right": atlas["labels_R"]}
    limit = float(np.nanmax(np.abs(values), initial=0.0)) or 1.0
    images = []
    for hemisphere in ("left", "right"):
        pixels, faces, shading = lateral_view(hemisphere)
        colours = colour_bytes(values[labels[hemisphere]][faces].mean(axis=1), limit)
        colours[:, :3] = (colours[:, :3] * (0.35 + 0.65 * shading[:, None])).astype(np.uint8)
        image = np.where(pixels[..., None] >= 0, colours[pixels], 255).astype(np.uint8)
        images.append(image)
    height = max(image.shape[0] for image in images)
    image = np.concatenate([np.pad(image, ((0, height - image.shape[0]), (0, 20), (0, 0)), constant_values=255)
                            for image in images], axis=1)
    return (f"<figure><figcaption>{html.escape(title)} (left and right hemispheres, lateral)</figcaption>"
            f"{png_html(image, title)}{colour_scale(limit, 'effect')}</figure>")


def _first_per_task(statmaps: dict[str, pd.DataFrame]) -> list[str]:
    """The first ``task: contrast`` title of each task."""
    firsts: dict[str, str] = {}
    for title in statmaps:
        firsts.setdefault(title.split(":")[0], title)
    return list(firsts.values())


def _output(path: Path, written: dict[Path, pd.DataFrame], read) -> pd.DataFrame | None:
    """An output's table as just written, else ``read`` from its file; None when there is none."""
    if path in written:
        return written[path]
    return read(path) if path.is_file() else None


def _read_statmap(path: Path) -> pd.DataFrame:
    return pd.read_csv(path, sep="\t", na_values=["n/a"], keep_default_na=False)


def render_participant_report(job, parcels: pd.DataFrame, rest: Sequence, tasks: Sequence, warnings: Sequence[str],
                              written: dict[Path, pd.DataFrame] | None = None) -> str:
    """The participant's HTML report of the outputs the plans name: as ``written`` this run, else read back."""
    written = written or {}
    runs = pd.DataFrame([{"run": run.name, "volumes": run.n_volumes, "TR (s)": run.repetition_time,
                          "file": run.data.name} for run in job.runs])
    sections = [("Runs", table_html(runs))]
    if warnings:
        sections.append(("Input problems", "<ul>" + "".join(f"<li>{html.escape(w)}</li>" for w in warnings)
                         + "</ul>"))
    for plan in rest:
        correlation = plan.outputs.get(("combined", "pearsoncorrelation", None))
        matrix = None if correlation is None else _output(correlation.path, written, read_relmat)
        if matrix is None:
            continue
        networks = plan.outputs.get(("combined", "pearsoncorrelation", "networks"))
        means = None if networks is None else _output(networks.path, written, read_relmat)
        body = connectivity_section(matrix, means, parcels)
        sections.append((f"Resting connectivity: {correlation.path.name}",
                         body + seed_profile_section(matrix, parcels)))
    atlas = dataset_root(job.runs[0].data, job.participant) / "atlas.npz"
    statmaps = {}
    for plan in tasks:
        for name, out in plan.statmaps.items():
            table = _output(out.path, written, _read_statmap)
            if table is not None:
                statmaps[f"{plan.entities['task']}: {name}"] = table
    if statmaps:
        body = ("<p>Mean effect (GLM contrast estimate) of each network's parcels, per hemisphere: bars to the "
                "right are positive (red), to the left negative (blue); hover for the value.</p>"
                + contrasts_section(statmaps, parcels))
        if has_surface_labels(atlas):
            body += "".join(surface_section(statmaps[title]["effect"].to_numpy(), atlas, f"{title}: effect")
                            for title in _first_per_task(statmaps))
        sections.append(("Task contrasts", body))
    return page(f"bidsapp: sub-{job.participant}", f"bidsapp {__version__} · HCP-style parcellated data · "
                f"{len(job.runs)} runs", sections)
