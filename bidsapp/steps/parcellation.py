"""Parcellation: an atlas on a BOLD grid, and the mean time series of each parcel.

The atlas (:mod:`bidsapp.inputs.atlas`) is resampled to the BOLD grid with
nearest-neighbour interpolation. A parcel with less than half of its voxels
inside the brain mask keeps its column as NaN, so every participant has the
same parcels; coverage is reported.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import TYPE_CHECKING

import numpy as np

from bidsapp.errors import UsageError
from bidsapp.inputs.atlas import Atlas

if TYPE_CHECKING:
    from scipy import sparse

#: Fraction of a parcel's voxels (on the BOLD grid) that must lie in the brain mask.
MIN_COVERAGE = 0.5


@dataclass(frozen=True)
class ParcelMap:
    """An atlas on one BOLD grid and brain mask.

    Attributes
    ----------
    names : tuple of str
    networks : tuple of str, optional
    voxel_parcel : ndarray of int, shape (n_voxels,)
        Parcel position (into ``names``) of each in-mask voxel, -1 for none.
    n_grid : ndarray of int
        Voxels of each parcel on the BOLD grid.
    n_mask : ndarray of int
        Of those, voxels inside the brain mask.
    """

    names: tuple[str, ...]
    networks: tuple[str, ...] | None
    voxel_parcel: np.ndarray
    n_grid: np.ndarray
    n_mask: np.ndarray

    @property
    def coverage(self) -> np.ndarray:
        """Fraction of each parcel inside the brain mask (0 for parcels not on the grid)."""
        return np.divide(self.n_mask, self.n_grid, out=np.zeros(len(self.names)), where=self.n_grid > 0)

    @property
    def valid(self) -> np.ndarray:
        """Parcels with at least :data:`MIN_COVERAGE` of their voxels in the mask."""
        return (self.n_mask > 0) & (self.coverage >= MIN_COVERAGE)

    def averaging_matrix(self) -> sparse.csr_matrix:
        """Sparse (n_voxels, n_parcels) weights: the mean over each valid parcel's in-mask voxels."""
        from scipy import sparse

        rows = np.flatnonzero(self.voxel_parcel >= 0)
        columns = self.voxel_parcel[rows]
        keep = self.valid[columns]
        rows, columns = rows[keep], columns[keep]
        weights = 1.0 / self.n_mask[columns]
        return sparse.csr_matrix((weights, (rows, columns)), shape=(len(self.voxel_parcel), len(self.names)))

    def coverage_record(self) -> list[dict]:
        """Per parcel: name, voxels on the grid and in the mask, coverage, and whether it has data."""
        return [{"name": name, "voxels": int(n), "voxels_in_mask": int(m), "coverage": round(float(c), 4),
                 "used": bool(v)} for name, n, m, c, v in
                zip(self.names, self.n_grid, self.n_mask, self.coverage, self.valid, strict=True)]


def resample_labels(atlas: Atlas, affine: np.ndarray, shape: tuple[int, int, int]) -> np.ndarray:
    """The atlas labels on a BOLD grid (nearest-neighbour resampling, as ``NiftiLabelsMasker``).

    Parameters
    ----------
    atlas : Atlas
    affine : ndarray of shape (4, 4)
        Voxel-to-world affine of the BOLD run.
    shape : tuple of int
        Spatial shape of the BOLD run.

    Returns
    -------
    ndarray of int, shape ``shape``
    """
    from nilearn.image import resample_img

    image = atlas.image
    if image.shape != tuple(shape) or not np.allclose(image.affine, affine):
        image = resample_img(image, target_affine=affine, target_shape=shape, interpolation="nearest",
                             force_resample=True, copy_header=True)
    return np.asarray(image.dataobj).astype(np.int64)


def parcel_map(atlas: Atlas, labels: np.ndarray, mask: np.ndarray) -> ParcelMap:
    """Relate the atlas on a BOLD grid to the brain mask.

    Parameters
    ----------
    atlas : Atlas
    labels : ndarray of int, shape (x, y, z)
        The atlas on the BOLD grid (:func:`resample_labels`).
    mask : ndarray of bool, shape (x, y, z)
        Brain mask on the BOLD grid.

    Raises
    ------
    UsageError
        If no parcel overlaps the brain mask (the atlas is likely in another space).
    """
    positions = np.full(max(max(atlas.indices), int(labels.max()), 0) + 1, -1)
    for position, label in enumerate(atlas.indices):
        if label >= 0:
            positions[label] = position
    on_grid = positions[np.clip(labels, 0, None)]
    n_grid = np.bincount(on_grid[on_grid >= 0], minlength=len(atlas.names))
    voxel_parcel = on_grid[mask]
    n_mask = np.bincount(voxel_parcel[voxel_parcel >= 0], minlength=len(atlas.names))
    if not n_mask.any():
        raise UsageError(f"--atlas {atlas.files[0]}: no parcel overlaps the brain mask; the atlas is probably in "
                         "another space than the BOLD runs")
    return ParcelMap(atlas.names, atlas.networks, voxel_parcel, n_grid, n_mask)


def parcel_means(data: np.ndarray, parcels: ParcelMap, block: int = 32) -> np.ndarray:
    """Mean time series of each parcel, accumulated in float64.

    Parameters
    ----------
    data : ndarray of shape (n_volumes, n_voxels)
        In-mask voxel time series (any float type).
    parcels : ParcelMap
    block : int
        Volumes converted to float64 at a time (bounds the working memory).

    Returns
    -------
    ndarray of shape (n_volumes, n_parcels)
        NaN columns for parcels that are not :attr:`ParcelMap.valid`.
    """
    weights = parcels.averaging_matrix().T.tocsr()
    means = np.empty((data.shape[0], len(parcels.names)))
    for start in range(0, data.shape[0], block):
        chunk = np.asarray(data[start:start + block], dtype=np.float64)
        means[start:start + block] = (weights @ chunk.T).T
    means[:, ~parcels.valid] = np.nan
    return means
