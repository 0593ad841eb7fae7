"""Seed-to-voxel correlation: sphere seeds and voxelwise Pearson r and Fisher z maps.

A seed is a sphere of ``radius_mm`` around MNI coordinates; its voxels are
those of :class:`nilearn.maskers.NiftiSpheresMasker` with the brain mask (the
in-mask voxels within the radius, plus the voxel nearest the centre). The seed
series is their mean; seed and voxel series are cleaned alike and correlated
(nilearn's seed-to-voxel example, seed 003, Biswal et al. 1995); Fisher's z is
``arctanh r`` (:func:`bidsapp.steps.connectivity.fisher_z`). The example
divides z-scored products by the number of volumes, which is r times
``(n - 1) / n``; bidsapp writes r itself.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import TYPE_CHECKING

from bidsapp.errors import UsageError

if TYPE_CHECKING:
    import numpy as np


@dataclass(frozen=True)
class Seed:
    """A sphere seed: ``name`` at MNI coordinates ``x, y, z`` in mm."""

    name: str
    x: float
    y: float
    z: float


def sphere_voxels(seed: Seed, radius_mm: float, affine: np.ndarray, mask: np.ndarray) -> np.ndarray:
    """Positions, among the in-mask voxels (C order), of the voxels of a sphere seed.

    Parameters
    ----------
    seed : Seed
        Name and centre (x, y, z in mm, the BOLD's world space).
    radius_mm : float
    affine : ndarray of shape (4, 4)
        Voxel-to-world affine of the BOLD grid.
    mask : ndarray of bool, shape (x, y, z)

    Returns
    -------
    ndarray of int
        Sorted indices into ``data[:, i]`` of in-mask voxel data.

    Raises
    ------
    UsageError
        If no voxel of the sphere is inside the brain mask (the seed named).
    """
    import numpy as np  # here, not at the top: the command line imports Seed before parsing

    ijk = np.argwhere(mask)
    world = ijk @ affine[:3, :3].T + affine[:3, 3]
    centre = np.array([seed.x, seed.y, seed.z], float)
    inside = np.flatnonzero(((world - centre) ** 2).sum(axis=1) <= radius_mm ** 2)
    nearest = np.round(np.linalg.solve(affine, np.r_[centre, 1.0])[:3]).astype(int)
    match = np.flatnonzero((ijk == nearest).all(axis=1))
    voxels = np.union1d(inside, match)
    if voxels.size == 0:
        raise UsageError(f"--seeds {seed.name}={seed.x:g},{seed.y:g},{seed.z:g}: the {radius_mm:g} mm sphere has no "
                         "voxel inside the brain mask; give MNI coordinates inside the brain (mm)")
    return voxels


def seed_correlation(cleaner: np.ndarray, seed_series: np.ndarray, voxels: np.ndarray,
                     block: int = 4096) -> np.ndarray:
    """Pearson correlation of a cleaned seed series with every cleaned voxel series.

    With ``C`` the cleaning operator centred (every cleaned series has zero
    mean), r is ``(C s) . (C v) / (|C s| |C v|)``: the numerator is one product
    of ``v`` with ``C^T C s``, and ``|C v|^2 = v^T G v`` with ``G = C^T C``. When
    the cleaning removes the mean and changes the data in few directions
    (censoring, detrending and confound regression without a band-pass
    filter make ``G`` a projection: eigenvalues 1 but for the removed
    directions), ``|C v|^2 = |v - mean|^2 - sum_i (1 - l_i) (w_i . (v - mean))^2``
    over those few eigenvectors ``w_i``: a product with a few dozen vectors
    instead of cleaning every voxel series (:func:`changed_directions`).

    Parameters
    ----------
    cleaner : ndarray of shape (n_kept, n_volumes)
        The cleaning operator (:func:`bidsapp.steps.denoise.cleaning_matrix`).
    seed_series : ndarray of shape (n_volumes,)
        The seed's mean raw series.
    voxels : ndarray of shape (n_volumes, n_voxels)
        Raw (or smoothed) voxel series, any float type.
    block : int
        Voxels taken at a time in float64 (bounds the working memory).

    Returns
    -------
    ndarray of shape (n_voxels,)
        r, NaN for voxels without variance after cleaning.
    """
    import numpy as np

    centred = cleaner - cleaner.mean(axis=0)  # so that every cleaned series has zero mean
    seed = centred @ np.asarray(seed_series, float)
    seed /= np.linalg.norm(seed)
    weights = centred.T @ seed
    directions = changed_directions(centred.T @ centred)
    r = np.empty(voxels.shape[1])
    for start in range(0, voxels.shape[1], block):
        chunk = np.asarray(voxels[:, start:start + block], dtype=np.float64)
        if directions is None:
            cleaned = centred @ chunk
            squares = np.einsum("ij,ij->j", cleaned, cleaned)
        else:
            vectors, shrink = directions
            chunk -= chunk.mean(axis=0)
            squares = np.einsum("ij,ij->j", chunk, chunk) - shrink @ np.square(vectors.T @ chunk)
        with np.errstate(invalid="ignore", divide="ignore"):
            r[start:start + block] = (weights @ chunk) / np.sqrt(squares)
    return r


def changed_directions(gram: np.ndarray, tol: float = 1e-10) -> tuple[np.ndarray, np.ndarray] | None:
    """The few directions a cleaning operator with Gram matrix ``gram`` changes, or None.

    Parameters
    ----------
    gram : ndarray of shape (n, n)
        ``C^T C`` of the centred cleaning operator ``C``.
    tol : float
        Eigenvalues within ``tol`` of 1 leave their direction unchanged.

    Returns
    -------
    (vectors, shrink) or None
        Eigenvectors (n x m) whose eigenvalue ``l`` differs from 1, and ``1 - l``;
        None when the cleaning keeps the mean (``G 1 != 0``) or changes more
        than half of the directions (then cleaning the series is about as fast).
    """
    import numpy as np

    n = len(gram)
    if np.abs(gram.sum(axis=1)).max() > tol * n:
        return None
    values, vectors = np.linalg.eigh(gram)
    changed = np.abs(1.0 - values) > tol
    if changed.sum() > n // 2:
        return None
    return vectors[:, changed], 1.0 - values[changed]
