"""The participant report of the parcel pipeline, built from the outputs it wrote.

Sections follow the HCP course notebooks: the runs analysed and any input
problems; the combined resting connectivity matrix ordered by network with the
network means, and the connectivity profile of a seed parcel (R_FEF) split by
hemisphere; the network x hemisphere mean effect of every contrast as bars, the
parcels ranked by |effect|, and, when the dataset has ``atlas.npz``, each
task's first contrast on the fsaverage5 surface (nilearn ships the mesh). A
section or table with nothing to show says why in a note.

No matplotlib axes are laid out (that took seconds per participant): the
connectivity matrix is a PNG with one pixel per parcel pair, the profile an
inline SVG line chart and the means HTML tables with coloured cells or bars
(the drawing functions of :mod:`bidsapp.reports.html`), and the surface maps PNGs
rasterised from the mesh here (:func:`lateral_view`).
"""

from __future__ import annotations

import functools
import html
from collections.abc import Sequence
from pathlib import Path
from typing import TYPE_CHECKING

import numpy as np
import pandas as pd

from bidsapp import __version__
from bidsapp.inputs.parcel_labels import dataset_root
from bidsapp.outputs.relmat import read_relmat
from bidsapp.reports.html import (
    bar_table,
    colour_bytes,
    colour_scale,
    heat_table,
    line_chart,
    matrix_html,
    note_html,
    page,
    png_html,
    table_html,
)
from bidsapp.steps.hcp_summaries import HEMISPHERES, network_hemisphere_means, rank_parcels

if TYPE_CHECKING:  # reports are drawn for the participant level, not imported by it
    from bidsapp.participant.level import ParticipantJob

#: The seed parcel of the HCP course's connectivity profile.
SEED_PARCEL = "R_FEF"
#: Parcels listed per contrast, by decreasing |effect|.
TOP_PARCELS = 10
#: Pixels per mm of the inflated fsaverage5 surface in the surface maps.
SURFACE_PIXELS_PER_MM = 1.6


def _order_by_network(parcels: pd.DataFrame) -> np.ndarray:
    return np.lexsort((np.arange(len(parcels)), parcels["network"].to_numpy()))


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
        body = (table_html(ranked) if len(ranked) else
                note_html("No parcel to rank: every parcel's effect is n/a (flat or missing in every run)."))
        parts.append(f"<h3>{html.escape(title)}: parcels by |effect|</h3>{body}")
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


def surface_labels(atlas_path: Path) -> dict[str, np.ndarray] | None:
    """Each fsaverage5 vertex's parcel by hemisphere, from ``atlas.npz`` (``labels_L``, ``labels_R``); None without."""
    if not atlas_path.is_file():
        return None
    with np.load(atlas_path) as atlas:
        if not {"labels_L", "labels_R"} <= set(atlas.files):
            return None
        return {"left": atlas["labels_L"], "right": atlas["labels_R"]}


def surface_section(values: np.ndarray, labels: dict[str, np.ndarray], title: str) -> str:
    """Parcel values on the lateral fsaverage5 surfaces; ``labels`` (:func:`surface_labels`) give each vertex's parcel.

    The two hemispheres are drawn with :func:`lateral_view` (faces coloured by
    the mean of their vertices' values, shaded) into one image.
    """
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


def render_participant_report(job: ParticipantJob, parcels: pd.DataFrame, rest: Sequence, tasks: Sequence,
                              warnings: Sequence[str], written: dict[Path, pd.DataFrame] | None = None) -> str:
    """The participant's HTML report of the outputs the plans name: as ``written`` this run, else read back."""
    written = written or {}
    runs = pd.DataFrame([{"run": run.name, "volumes": run.n_volumes, "TR (s)": run.repetition_time,
                          "file": run.data.name} for run in job.runs])
    sections = [("Runs", table_html(runs))]
    if warnings:
        sections.append(("Input problems", "<ul>" + "".join(f"<li>{html.escape(w)}</li>" for w in warnings)
                         + "</ul>"))
    if not rest:
        sections.append(("Resting connectivity", note_html("No resting runs: no connectivity to show.")))
    for plan in rest:
        correlation = plan.outputs.get(("combined", "pearsoncorrelation", None))
        matrix = None if correlation is None else _output(correlation.path, written, read_relmat)
        if matrix is None:
            sections.append(("Resting connectivity", note_html(
                "No correlation matrix: pearsoncorrelation is not among --connectivity." if correlation is None
                else f"No correlation matrix: {correlation.path.name} was not written.")))
            continue
        networks = plan.outputs.get(("combined", "pearsoncorrelation", "networks"))
        means = None if networks is None else _output(networks.path, written, read_relmat)
        body = connectivity_section(matrix, means, parcels)
        sections.append((f"Resting connectivity: {correlation.path.name}",
                         body + seed_profile_section(matrix, parcels)))
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
        labels = surface_labels(dataset_root(job.runs[0].data, job.participant) / "atlas.npz")
        if labels is not None:
            body += "".join(surface_section(statmaps[title]["effect"].to_numpy(), labels, f"{title}: effect")
                            for title in _first_per_task(statmaps))
        sections.append(("Task contrasts", body))
    else:
        reason = "no task runs with events and contrasts" if not tasks else "their tables were not written"
        sections.append(("Task contrasts", note_html(f"No task contrasts: {reason}.")))
    return page(f"bidsapp: sub-{job.participant}", f"bidsapp {__version__} · HCP-style parcellated data · "
                f"{len(job.runs)} runs", sections)
