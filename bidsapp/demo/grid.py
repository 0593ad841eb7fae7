"""The MNI152NLin2009cAsym-like voxel grid of the demo dataset.

The grid has the field of view of TemplateFlow's MNI152NLin2009cAsym
template (origin -96, -132, -78 mm; 193 x 229 x 193 mm) at any isotropic
resolution.  Tissue maps come from the MNI152 brain mask, grey- and
white-matter templates shipped inside nilearn (read offline, never
fetched), smoothed and resampled to the grid.
"""

from __future__ import annotations

import functools
from dataclasses import dataclass

import numpy as np
from scipy import ndimage

__all__ = [
    "Grid",
    "mni_grid",
    "gaussian_blob",
    "sphere_mask",
    "downsample_mean",
]

#: Corner (voxel 0,0,0) and extent in mm of the MNI152NLin2009cAsym template.
_ORIGIN_MM = np.array([-96.0, -132.0, -78.0])
_EXTENT_MM = np.array([193.0, 229.0, 193.0])


@dataclass(frozen=True, eq=False)
class Grid:
    """A voxel grid with tissue maps.

    Attributes
    ----------
    affine : ndarray of shape (4, 4)
        Voxel-to-MNI-mm affine (RAS, isotropic).
    shape : tuple of int
        Spatial shape.
    mask : ndarray of bool
        Brain mask.
    gm, wm, csf : ndarray of float
        Tissue probabilities in [0, 1] (zero outside the mask).
    t1 : ndarray of float
        T1-weighted template intensity in [0, 1].
    """

    affine: np.ndarray
    shape: tuple[int, int, int]
    mask: np.ndarray
    gm: np.ndarray
    wm: np.ndarray
    csf: np.ndarray
    t1: np.ndarray

    @property
    def resolution(self) -> float:
        """Voxel size in mm."""
        return float(self.affine[0, 0])

    def coords_mm(self) -> np.ndarray:
        """MNI coordinates of every voxel.

        Returns
        -------
        ndarray of shape (*shape, 3)
        """
        ijk = np.indices(self.shape, dtype=float).reshape(3, -1)
        xyz = self.affine[:3, :3] @ ijk + self.affine[:3, 3:4]
        return xyz.T.reshape(*self.shape, 3)

    def world_to_voxel(self, xyz) -> tuple[int, int, int]:
        """Nearest voxel index of an MNI coordinate.

        Parameters
        ----------
        xyz : sequence of float
            Coordinate in mm.

        Returns
        -------
        tuple of int
        """
        i, j, k = (int(v) for v in np.rint(np.linalg.solve(self.affine, np.r_[np.asarray(xyz, float), 1.0])[:3]))
        return i, j, k


def _load_packaged(name: str) -> tuple[np.ndarray, np.ndarray]:
    """Load one of nilearn's packaged 1-mm MNI152 images (no download)."""
    from nilearn import datasets

    loader = {
        "mask": datasets.load_mni152_brain_mask,
        "gm": datasets.load_mni152_gm_template,
        "wm": datasets.load_mni152_wm_template,
        "t1": datasets.load_mni152_template,
    }[name]
    img = loader(resolution=1)
    data = np.asarray(img.dataobj, dtype=np.float32)
    data /= max(float(data.max()), 1e-6)
    return data, np.asarray(img.affine, dtype=float)


def _resample(data: np.ndarray, src_affine: np.ndarray, affine, shape) -> np.ndarray:
    """Smooth a 1-mm image to the target resolution and sample it."""
    res = float(affine[0, 0])
    sigma = max(res / 2.355, 0.01)  # FWHM of one target voxel, in 1-mm voxels
    smooth = ndimage.gaussian_filter(data, sigma=sigma)
    ijk = np.indices(shape, dtype=float).reshape(3, -1)
    xyz = affine[:3, :3] @ ijk + affine[:3, 3:4]
    src = np.linalg.solve(src_affine, np.vstack([xyz, np.ones(xyz.shape[1])]))[:3]
    out = ndimage.map_coordinates(smooth, src, order=1, mode="constant", cval=0.0)
    return out.reshape(shape)


@functools.lru_cache(maxsize=4)
def mni_grid(resolution_mm: float = 4.0) -> Grid:
    """Build (once per resolution) the MNI grid and its tissue maps.

    Parameters
    ----------
    resolution_mm : float, default=4.0
        Isotropic voxel size.

    Returns
    -------
    Grid
    """
    res = float(resolution_mm)
    nx, ny, nz = (int(np.ceil(e / res)) for e in _EXTENT_MM)
    shape = (nx, ny, nz)
    affine = np.diag([res, res, res, 1.0])
    affine[:3, 3] = _ORIGIN_MM
    maps = {}
    for name in ("mask", "gm", "wm", "t1"):
        data, src_affine = _load_packaged(name)
        maps[name] = np.clip(_resample(data, src_affine, affine, shape), 0, 1)
    mask = maps["mask"] > 0.5
    # keep the largest connected component and fill holes
    labels, n = ndimage.label(mask)
    if n > 1:
        sizes = ndimage.sum(mask, labels, range(1, n + 1))
        mask = labels == (1 + int(np.argmax(sizes)))
    mask = ndimage.binary_fill_holes(mask)
    gm = np.where(mask, maps["gm"], 0.0)
    wm = np.where(mask, maps["wm"], 0.0)
    total = gm + wm
    scale = np.where(total > 1, total, 1.0)
    gm, wm = gm / scale, wm / scale
    csf = np.where(mask, np.clip(1.0 - gm - wm, 0.0, 1.0), 0.0)
    for arr in (mask, gm, wm, csf):
        arr.setflags(write=False)
    t1 = maps["t1"]
    t1.setflags(write=False)
    return Grid(affine=affine, shape=shape, mask=mask, gm=gm, wm=wm, csf=csf, t1=t1)


def gaussian_blob(grid: Grid, center_mm, fwhm_mm: float) -> np.ndarray:
    """Isotropic Gaussian profile (peak 1) on the grid.

    Parameters
    ----------
    grid : Grid
    center_mm : sequence of float
    fwhm_mm : float

    Returns
    -------
    ndarray of shape ``grid.shape``
    """
    sigma = fwhm_mm / (2.0 * np.sqrt(2.0 * np.log(2.0)))
    d2 = ((grid.coords_mm() - np.asarray(center_mm, float)) ** 2).sum(-1)
    return np.exp(-0.5 * d2 / sigma**2)


def sphere_mask(grid: Grid, center_mm, radius_mm: float) -> np.ndarray:
    """Voxels within ``radius_mm`` of a centre, restricted to the brain mask.

    Parameters
    ----------
    grid : Grid
    center_mm : sequence of float
    radius_mm : float

    Returns
    -------
    ndarray of bool, shape ``grid.shape``
    """
    d2 = ((grid.coords_mm() - np.asarray(center_mm, float)) ** 2).sum(-1)
    return (d2 <= radius_mm**2) & grid.mask


def downsample_mean(data: np.ndarray, factor: int) -> np.ndarray:
    """Block-average the three spatial axes of a 3D or 4D array.

    Parameters
    ----------
    data : ndarray
        Array of shape (x, y, z[, t]).
    factor : int
        Block size along each spatial axis; trailing voxels that do not fill
        a block are dropped (the grid's margins lie outside the brain).

    Returns
    -------
    ndarray
    """
    nx, ny, nz = (s // factor for s in data.shape[:3])
    rest = data.shape[3:]
    cropped = data[: nx * factor, : ny * factor, : nz * factor]
    blocks = cropped.reshape(nx, factor, ny, factor, nz, factor, *rest)
    return blocks.mean(axis=(1, 3, 5), dtype=np.float32)
