"""Brain images of the group report, drawn with numpy into RGBA arrays (no matplotlib axes).

Maps are shown on the MNI152 template nilearn ships in its package data
(:func:`nilearn.datasets.load_mni152_template` reads the packaged file, no
download), sampled at 1 mm: orthogonal slices through a point
(:func:`slices_at`) and maximum-intensity projections (:func:`projections`,
the "glass brain"). Outside the template's brain every pixel is transparent
(alpha 0), and so is every voxel of a map that is zero (masked out or not
surviving), so a map with no survivor shows the bare anatomy, never a
coloured rectangle. :func:`connectome_views` draws the strongest edges
between parcel centroids on the projections of the brain, node size by degree.
"""

from __future__ import annotations

import functools
from collections.abc import Sequence
from dataclasses import dataclass

import nibabel as nib
import numpy as np
from scipy import ndimage

from bidsapp.reports.html import colour_bytes

#: Template voxels at or below this (of 1) are outside the brain.
_BRAIN = 0.02
#: Transparent pixels between panels.
_GAP = 8
#: The plane of each view: (horizontal axis, vertical axis) of (x, y, z), and the axis looked along.
VIEWS = {"sagittal": ((1, 2), 0), "coronal": ((0, 2), 1), "axial": ((0, 1), 2)}


@dataclass(frozen=True)
class Template:
    """The 1 mm MNI152 template cropped to its brain.

    Attributes
    ----------
    data : ndarray
        Intensities from 0 to 1, axes along x, y, z (RAS).
    affine : ndarray
        Voxel to mm.
    low, high : ndarray
        The brain's bounding box in mm (x, y, z).
    """

    data: np.ndarray
    affine: np.ndarray
    low: np.ndarray
    high: np.ndarray


@functools.lru_cache(maxsize=1)
def template() -> Template:
    """nilearn's packaged MNI152 template (1 mm), read once per process."""
    from nilearn.datasets import load_mni152_template

    image = nib.as_closest_canonical(load_mni152_template(resolution=1))
    data = np.asarray(image.get_fdata(dtype=np.float32))
    ijk = np.argwhere(data > _BRAIN)
    corners = nib.affines.apply_affine(image.affine, np.array([ijk.min(axis=0), ijk.max(axis=0)]))
    return Template(data, image.affine, corners.min(axis=0) - 2, corners.max(axis=0) + 2)


def _plane(view: str, depth: float) -> tuple[np.ndarray, tuple[int, int]]:
    """The mm coordinates (rows x columns, 3) of a view's pixels at ``depth`` mm; up and (for axial) front at top."""
    box = template()
    (across, up), along = VIEWS[view]
    columns = np.arange(np.floor(box.low[across]), np.ceil(box.high[across]) + 1)
    rows = np.arange(np.ceil(box.high[up]), np.floor(box.low[up]) - 1, -1)
    grid = np.zeros((len(rows), len(columns), 3))
    grid[..., across] = columns[None, :]
    grid[..., up] = rows[:, None]
    grid[..., along] = depth
    return grid, (len(rows), len(columns))


def _sample(volume: np.ndarray, affine: np.ndarray, points: np.ndarray, order: int) -> np.ndarray:
    """``volume`` at mm ``points`` (..., 3): linear (order 1) or nearest (order 0); 0 outside."""
    ijk = nib.affines.apply_affine(np.linalg.inv(affine), points.reshape(-1, 3))
    if order == 0:
        ijk = np.round(ijk)
    values = ndimage.map_coordinates(volume, ijk.T, order=order, mode="constant", cval=0.0)
    return values.reshape(points.shape[:-1])


def _anatomy(intensity: np.ndarray) -> np.ndarray:
    """Grey RGBA of template intensities, transparent outside the brain."""
    grey = (40 + 200 * np.clip(intensity, 0, 1)).astype(np.uint8)
    rgba = np.stack([grey, grey, grey, np.where(intensity > _BRAIN, 255, 0).astype(np.uint8)], axis=-1)
    return rgba


def survivor_colours(values: np.ndarray, threshold: float, limit: float) -> np.ndarray:
    """RGBA of thresholded values: red to yellow above ``threshold``, blue to cyan below ``-threshold``, 0 clear.

    The colour runs from the threshold (red, blue) to ``limit`` (yellow, cyan); values whose magnitude is
    under the threshold (zero: not surviving) are transparent.
    """
    magnitude = np.abs(values)
    level = np.clip((magnitude - threshold) / max(limit - threshold, 1e-12), 0, 1)
    rgba = np.zeros((*values.shape, 4), np.uint8)
    positive, negative = values >= threshold, values <= -threshold
    rgba[positive] = np.stack([np.full(level[positive].shape, 255), 255 * level[positive],
                               np.zeros(level[positive].shape), np.full(level[positive].shape, 255)], axis=-1)
    rgba[negative] = np.stack([np.zeros(level[negative].shape), 255 * level[negative],
                               np.full(level[negative].shape, 255), np.full(level[negative].shape, 255)], axis=-1)
    return rgba


def signed_colours(values: np.ndarray, limit: float) -> np.ndarray:
    """RGBA of an unthresholded map on the report's diverging map, zero (outside the analysis mask) clear.

    Opacity grows with |value| (a third at zero, full from half the limit), so the anatomy shows
    through where the map is near zero.
    """
    rgba = colour_bytes(values, limit)
    opacity = np.clip(1 / 3 + 4 / 3 * np.abs(np.nan_to_num(values)) / limit, 0, 1)
    rgba[..., 3] = np.where((values == 0) | ~np.isfinite(values), 0, 255 * opacity).astype(np.uint8)
    return rgba


def _over(base: np.ndarray, top: np.ndarray) -> np.ndarray:
    """``top`` composited over ``base`` by its alpha (the result opaque wherever either is)."""
    alpha = top[..., 3:].astype(np.float32) / 255
    out = base.astype(np.float32)
    out[..., :3] = np.where(base[..., 3:] > 0, out[..., :3] * (1 - alpha) + top[..., :3] * alpha, top[..., :3])
    out[..., 3] = np.maximum(base[..., 3], top[..., 3])
    return np.round(out).astype(np.uint8)


def row(panels: Sequence[np.ndarray]) -> np.ndarray:
    """RGBA panels side by side, top-aligned, on a transparent background."""
    height = max(panel.shape[0] for panel in panels)
    padded = [np.pad(panel, ((0, height - panel.shape[0]), (0, _GAP), (0, 0))) for panel in panels]
    return np.concatenate(padded, axis=1)[:, :-_GAP]


def slices_at(volume: np.ndarray, affine: np.ndarray, point: Sequence[float], colours) -> np.ndarray:
    """Sagittal, coronal and axial slices through ``point`` (mm): the map (nearest voxel) over the template.

    ``colours`` turns the map's values into RGBA (:func:`survivor_colours`, :func:`signed_colours`).
    """
    box = template()
    panels = []
    for view, (_, along) in VIEWS.items():
        grid, _ = _plane(view, float(point[along]))
        anatomy = _anatomy(_sample(box.data, box.affine, grid, 1))
        panels.append(_over(anatomy, colours(_sample(volume, affine, grid, 0))))
    return row(panels)


def projections(volume: np.ndarray, affine: np.ndarray, colours) -> np.ndarray:
    """Maximum-|value| projections along x, y and z over the template's silhouette (a glass brain).

    Each pixel shows the signed value of largest magnitude along the line of sight (the map on its
    closest canonical grid); ``colours`` turns values into RGBA.
    """
    image = nib.as_closest_canonical(nib.Nifti1Image(np.asarray(volume, dtype=np.float32), affine))
    data = np.nan_to_num(np.asarray(image.dataobj, dtype=np.float64))
    panels = []
    for (view, ((across, up), along)), base in zip(VIEWS.items(), brain_base(), strict=True):
        index = np.expand_dims(np.argmax(np.abs(data), axis=along), along)
        flat = np.take_along_axis(data, index, axis=along).squeeze(along)
        values = _flat_sample(flat, image.affine, view, (across, up))
        panels.append(_over(base, colours(values)))
    return row(panels)


def _flat_sample(flat: np.ndarray, affine: np.ndarray, view: str, axes: tuple[int, int]) -> np.ndarray:
    """A projected (2-D) array at a view's pixels, by nearest voxel of its canonical ``affine``; 0 outside."""
    grid, shape = _plane(view, 0.0)
    scale, offset = np.diag(affine)[list(axes)], affine[list(axes), 3]
    ij = np.round((grid[..., list(axes)] - offset) / scale).astype(int)
    inside = ((ij >= 0) & (ij < flat.shape)).all(axis=-1)
    values = np.zeros(shape, dtype=flat.dtype)
    values[inside] = flat[ij[inside, 0], ij[inside, 1]]
    return values


@functools.lru_cache(maxsize=1)
def brain_base() -> tuple[np.ndarray, ...]:
    """The template's silhouette in the three projections, light grey on a transparent background."""
    box = template()
    panels = []
    for view, ((across, up), along) in VIEWS.items():
        brain = _flat_sample((box.data > _BRAIN).max(axis=along), box.affine, view, (across, up))
        base = np.zeros((*brain.shape, 4), np.uint8)
        base[brain] = (225, 225, 225, 255)
        panels.append(base)
    return tuple(panels)


def _pixel(view: str, xyz: np.ndarray) -> np.ndarray:
    """(row, column) of mm points in a view's image."""
    box = template()
    (across, up), _ = VIEWS[view]
    return np.column_stack([np.ceil(box.high[up]) - xyz[:, up], xyz[:, across] - np.floor(box.low[across])])


def connectome_views(coordinates: np.ndarray, edges: np.ndarray, values: np.ndarray, colours: np.ndarray,
                     degree: np.ndarray) -> np.ndarray:
    """Edges between node centroids (mm) in the three projections; weaker edges first, nodes sized by degree.

    Parameters
    ----------
    coordinates : ndarray, shape (n_nodes, 3)
    edges : ndarray of int, shape (n_edges, 2)
        Node indices of each edge drawn.
    values : ndarray, shape (n_edges,)
        The stronger (larger |value|) are drawn last, on top.
    colours : ndarray of uint8, shape (n_edges, 4)
        Each edge's RGBA.
    degree : ndarray of int, shape (n_nodes,)
        Edges drawn at each node; nodes without any are small grey dots.
    """
    order = np.argsort(np.abs(values))
    panels = []
    for view, base in zip(VIEWS, brain_base(), strict=True):
        image = base.copy()
        points = _pixel(view, coordinates)
        for edge in order[np.isfinite(points[edges]).all(axis=(1, 2))[order]]:
            start, end = points[edges[edge, 0]], points[edges[edge, 1]]
            steps = int(np.ceil(np.abs(end - start).max())) + 1
            line = np.round(start + np.linspace(0, 1, steps)[:, None] * (end - start)).astype(int)
            for shift in ((0, 0), (1, 0), (0, 1)):  # two pixels wide
                _paint(image, line + shift, colours[edge])
        for node in [node for node in np.argsort(degree) if np.isfinite(points[node]).all()]:
            radius = 1.5 + 1.3 * np.sqrt(degree[node])
            colour = (40, 40, 40, 255) if degree[node] else (150, 150, 150, 255)
            _paint(image, _disc(points[node], radius if degree[node] else 1.0), np.array(colour, np.uint8))
        panels.append(image)
    return row(panels)


def _disc(centre: np.ndarray, radius: float) -> np.ndarray:
    """Integer pixels within ``radius`` of ``centre``."""
    span = np.arange(-int(np.ceil(radius)), int(np.ceil(radius)) + 1)
    offsets = np.stack(np.meshgrid(span, span), axis=-1).reshape(-1, 2)
    offsets = offsets[np.hypot(offsets[:, 0], offsets[:, 1]) <= radius]
    return np.round(centre).astype(int) + offsets


def _paint(image: np.ndarray, pixels: np.ndarray, colour: np.ndarray) -> None:
    """Set the pixels inside ``image`` to ``colour`` (RGBA)."""
    inside = ((pixels >= 0) & (pixels < image.shape[:2])).all(axis=1)
    image[pixels[inside, 0], pixels[inside, 1]] = colour
