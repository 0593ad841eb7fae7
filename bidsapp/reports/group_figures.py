"""Figures of the group report: voxel maps on the template, connectivity matrices and connectomes.

Voxel maps (:func:`voxel_maps`): the unthresholded z map in slices through the
first cluster's peak, and per correction the surviving z map as a glass brain
with slices through each of its largest clusters' peaks, the threshold in the
legend. Connectivity (:func:`mean_matrix`, :func:`connectome`): the group-mean
matrix ordered and labelled by network, and its strongest edges between the
parcel centroids, node size by degree. All drawn with numpy
(:mod:`bidsapp.reports.brain_images`) into inline PNGs.
"""

from __future__ import annotations

import html
from collections.abc import Sequence

import nibabel as nib
import numpy as np
import pandas as pd

from bidsapp.config import GroupAnalysis
from bidsapp.group.results import FeatureValues, GroupResult, VoxelContrast
from bidsapp.inputs.parcel_labels import glasser_table
from bidsapp.reports.brain_images import connectome_views, projections, signed_colours, slices_at, survivor_colours
from bidsapp.reports.group_summary import Finding, empty_note
from bidsapp.reports.html import (
    colour_bytes,
    colour_scale,
    matrix_html,
    png_html,
    sequential_colours,
    sequential_scale,
    table_html,
    threshold_scale,
)
from bidsapp.reports.parcels import _order_by_network

#: Clusters drawn in slices through their peaks, per correction.
CLUSTERS_DRAWN = 3
#: Clusters listed per correction.
CLUSTERS_LISTED = 10
#: Edges drawn in the connectome.
EDGES_DRAWN = 40
#: Screen pixels per mm of the brain images.
SCREEN_PIXELS_PER_MM = 1.4
#: Nodes named one by one beside a matrix whose networks are unknown (more get the atlas order only).
_NAMED_NODES = 40
#: Pixels of a connectivity matrix's side, at least.
_MATRIX_PIXELS = 240


def _png(image: np.ndarray, alt: str) -> str:
    """A brain image (1 pixel per mm) shown at :data:`SCREEN_PIXELS_PER_MM`."""
    return png_html(image, alt, f"width:{SCREEN_PIXELS_PER_MM * image.shape[1]:.0f}px")


def _volume(path) -> tuple[np.ndarray, np.ndarray]:
    image = nib.load(path)
    return np.nan_to_num(np.asarray(image.dataobj, dtype=np.float64)), image.affine


def _peak(clusters: pd.DataFrame, index: int) -> tuple[float, float, float]:
    row = clusters.iloc[index]
    return float(row["peak_x"]), float(row["peak_y"]), float(row["peak_z"])


def _first_peak(contrast: VoxelContrast, strongest: Finding | None) -> tuple[tuple[float, float, float] | None, str]:
    """Where to cut the unthresholded map: the first cluster's peak of the first correction with clusters."""
    for name, clusters in contrast.clusters.items():
        if len(clusters):
            return _peak(clusters, 0), f"the peak of the largest {name} cluster"
    if strongest is not None and strongest.xyz is not None:
        return strongest.xyz, "the strongest voxel (no cluster survived)"
    return None, ""


def voxel_maps(contrast: VoxelContrast, strongest: Finding | None, settings: GroupAnalysis | None) -> str:
    """The unthresholded z map, then each correction's survivors (glass brain, cluster slices, table) or a note."""
    parts = []
    point, where = _first_peak(contrast, strongest)
    if "z" in contrast.maps and point is not None:
        z, affine = _volume(contrast.maps["z"])
        limit = float(np.abs(z).max()) or 1.0
        image = slices_at(z, affine, point, lambda values: signed_colours(values, limit))
        parts.append(f"<figure><figcaption>Unthresholded z, slices through {html.escape(where)} "
                     f"({point[0]:.0f}, {point[1]:.0f}, {point[2]:.0f}) mm, on the MNI152 template</figcaption>"
                     f"{_png(image, f'{contrast.name}: unthresholded z')}{colour_scale(limit, 'z')}</figure>")
    for name in contrast.surviving:
        clusters = contrast.clusters.get(name)
        if clusters is None or not len(clusters):
            parts.append(f"<p class='note'>{html.escape(empty_note(contrast, 'voxels', name, settings))}</p>")
            continue
        parts.append(_survivors(contrast, name, clusters))
    return "".join(parts)


def _survivors(contrast: VoxelContrast, name: str, clusters: pd.DataFrame) -> str:
    """One correction's surviving z: glass brain and slices through the largest clusters' peaks, then the table."""
    z, affine = _volume(contrast.maps[name])
    surviving = np.abs(z[z != 0])
    threshold, limit = float(surviving.min()), float(surviving.max())
    limit = limit if limit > threshold else threshold + 1e-3

    def colours(values: np.ndarray) -> np.ndarray:
        return survivor_colours(values, threshold, limit)

    legend = threshold_scale(threshold, limit, f"z surviving {name} (|z| ≥ {threshold:.2f})")
    parts = [f"<h4>Surviving {html.escape(name)}</h4><figure><figcaption>Glass brain (largest |z| along each line "
             f"of sight)</figcaption>{_png(projections(z, affine, colours), f'z surviving {name}')}"
             f"{legend}</figure>"]
    for index in range(min(CLUSTERS_DRAWN, len(clusters))):
        x, y, zz = _peak(clusters, index)
        label = str(clusters.iloc[index].get("aal", ""))
        parts.append(f"<figure><figcaption>Cluster {index + 1}: {clusters.iloc[index]['volume_mm']:.0f} mm³, "
                     f"peak ({x:.0f}, {y:.0f}, {zz:.0f}) mm, {html.escape(label)}</figcaption>"
                     f"{_png(slices_at(z, affine, (x, y, zz), colours), f'cluster {index + 1} of {name}')}"
                     "</figure>")
    shown = "all" if len(clusters) <= CLUSTERS_LISTED else f"the largest {CLUSTERS_LISTED} of"
    parts.append(f"<p>Clusters surviving {html.escape(name)}, {shown} {len(clusters)}:</p>"
                 + table_html(clusters.head(CLUSTERS_LISTED)))
    return "".join(parts)


def square(features: FeatureValues) -> tuple[list[str], np.ndarray]:
    """The group-mean values as a symmetric node x node matrix (node order of first appearance)."""
    first, second = features.labels["node_a"].to_numpy(), features.labels["node_b"].to_numpy()
    nodes = list(dict.fromkeys(np.concatenate([first, second]).tolist()))
    index = pd.Index(nodes)
    rows, columns = index.get_indexer(first), index.get_indexer(second)
    matrix = np.full((len(nodes), len(nodes)), np.nan)
    matrix[rows, columns] = matrix[columns, rows] = features.mean
    return nodes, matrix


def node_networks(nodes: Sequence[str], analyses: Sequence[GroupResult]) -> pd.DataFrame | None:
    """Each node's network: from a parcel analysis of the same run, else the Glasser table; None when unknown."""
    known: dict[str, str] = {}
    for analysis in analyses:
        labels = analysis.features.labels if analysis.features is not None else None
        if analysis.kind == "parcels" and labels is not None and {"name", "network"} <= set(labels.columns):
            known.update(zip(labels["name"].astype(str), labels["network"].astype(str), strict=True))
    if not set(nodes) <= set(known):
        glasser = glasser_table()
        known = dict(zip(glasser["name"].astype(str), glasser["network"].astype(str), strict=True))
    if not set(nodes) <= set(known):
        return None
    return pd.DataFrame({"name": list(nodes), "network": [known[node] for node in nodes]})


def mean_matrix(features: FeatureValues, networks: pd.DataFrame | None) -> str:
    """The group-mean matrix as an image, ordered by network and labelled by network (or by node when few)."""
    nodes, matrix = square(features)
    limit = float(np.nanmax(np.abs(matrix), initial=0.0)) or 1.0
    if networks is not None:
        order = _order_by_network(networks)
        labels = networks["network"].to_numpy()[order]
        title = "parcels ordered by network"
    else:
        order, labels = np.arange(len(nodes)), np.asarray(nodes)
        title = "by node" if len(nodes) <= _NAMED_NODES else "in atlas order (networks unknown)"
    cell = max(1, _MATRIX_PIXELS // len(nodes))
    if networks is None and len(nodes) > _NAMED_NODES:
        labels = np.full(len(nodes), "")
    image = matrix_html(matrix[np.ix_(order, order)] / limit, labels, "group mean connectivity", cell)
    return (f"<figure><figcaption>Group-mean connectivity (Fisher z), {title}</figcaption>{image}"
            f"{colour_scale(limit, 'group mean Fisher z')}</figure>")


def connectome(features: FeatureValues) -> str:
    """The strongest group-mean edges (at most :data:`EDGES_DRAWN`) between parcel centroids, node size by degree."""
    nodes, matrix = square(features)
    coordinates = features.coordinates
    if coordinates is None or len(coordinates) != len(nodes):
        return ""
    upper = np.column_stack(np.triu_indices(len(nodes), k=1))
    values = matrix[upper[:, 0], upper[:, 1]]
    finite = np.isfinite(values) & np.isfinite(coordinates[upper]).all(axis=(1, 2))
    upper, values = upper[finite], values[finite]
    kept = np.argsort(-np.abs(values), kind="stable")[:EDGES_DRAWN]
    degree = np.bincount(upper[kept].ravel(), minlength=len(nodes))
    shown = values[kept]
    if not len(shown):
        return ""
    if (shown >= 0).all() or (shown <= 0).all():  # one sign: pale to dark over the range drawn
        low, high = float(np.abs(shown).min()), float(np.abs(shown).max())
        colours = sequential_colours(np.abs(shown), low, high, "YlOrRd" if (shown >= 0).all() else "PuBu")
        sign = "" if (shown >= 0).all() else "-"
        legend = sequential_scale(low, high, f"{sign}group mean Fisher z", "YlOrRd" if not sign else "PuBu")
    else:
        limit = float(np.abs(shown).max())
        colours, legend = colour_bytes(shown, limit), colour_scale(limit, "group mean Fisher z")
    image = connectome_views(coordinates, upper[kept], shown, colours, degree)
    return (f"<figure><figcaption>The {len(kept)} strongest of {len(values)} group-mean edges (sagittal, coronal, "
            f"axial projections); node size by degree among them</figcaption>"
            f"{_png(image, 'connectome of the strongest edges')}{legend}</figure>")
