"""What the group report says first: per analysis and contrast, what survives and the strongest finding.

Statistics are written as statisticians write them: ``t(6) = 4.21, p = 0.0028``
and ``F(2, 14) = 9.1, p = 0.0029`` (:func:`stat_text`). The strongest finding
of a voxel contrast is the peak of its t or F map, with its coordinates and
AAL label; of a parcel, edge or network contrast, the feature of largest
statistic. :func:`empty_note` says why a table has no row.
"""

from __future__ import annotations

import functools
import html
import re
from collections.abc import Sequence
from dataclasses import dataclass

import nibabel as nib
import numpy as np
from scipy import ndimage

from bidsapp.config import GroupAnalysis
from bidsapp.group.results import FeatureContrast, GroupResult, SkippedAnalysis, VoxelContrast
from bidsapp.inputs.label_atlases import Atlas, atlas_voxels, load_atlas, point_label, sample_atlas
from bidsapp.reports.html import table_html

#: The atlas naming the peak of each voxel contrast in the summary.
SUMMARY_ATLAS = "aal"
#: What one survivor of a feature analysis is.
UNITS = {"parcels": "parcels", "edges": "edges", "networks": "network pairs", "voxels": "voxels"}


@dataclass(frozen=True)
class Finding:
    """A contrast's strongest result.

    Attributes
    ----------
    where : str
        Peak coordinates (mm) and atlas label, or the feature's name.
    value : float
        The t or F statistic there.
    p : float
        Its uncorrected p value.
    xyz : tuple of float, optional
        The peak in mm (voxel contrasts).
    """

    where: str
    value: float
    p: float
    xyz: tuple[float, float, float] | None = None


def p_text(p: float) -> str:
    """``p = 0.012``, ``p = 3.1e-05`` (two significant digits)."""
    return "p = n/a" if not np.isfinite(p) else f"p = {p:.2g}" if p >= 1e-4 else f"p = {p:.1e}"


def stat_text(stat_type: str, df: Sequence[int], value: float | None = None, p: float | None = None) -> str:
    """``t(6)``, ``F(2, 14)``; with a value and p ``t(6) = 4.21, p = 0.0028``."""
    label = f"F({df[0]}, {df[-1]})" if stat_type == "F" else f"{stat_type}({df[-1]})"
    if value is None:
        return label
    return f"{label} = {value:.2f}" + ("" if p is None else f", {p_text(p)}")


@functools.lru_cache(maxsize=1)
def _atlas() -> Atlas:
    return load_atlas(SUMMARY_ATLAS)


def _label(xyz: np.ndarray) -> str:
    atlas = _atlas()
    return point_label(atlas, sample_atlas(atlas, atlas_voxels(atlas, xyz[None]))[0], 5)


def strongest_voxel(contrast: VoxelContrast) -> Finding | None:
    """The peak |t| (or F) of the contrast's map, its mm coordinates, atlas label and uncorrected p."""
    if contrast.stat_type not in contrast.maps:
        return None
    image = nib.load(contrast.maps[contrast.stat_type])
    stat = np.nan_to_num(np.asarray(image.dataobj, dtype=np.float64))
    if not stat.any():
        return None
    ijk = np.unravel_index(np.argmax(np.abs(stat)), stat.shape)
    p = float(np.asarray(nib.load(contrast.maps["p"]).dataobj[ijk])) if "p" in contrast.maps else np.nan
    xyz = nib.affines.apply_affine(image.affine, np.array(ijk, dtype=float))
    where = f"({xyz[0]:.0f}, {xyz[1]:.0f}, {xyz[2]:.0f}) mm, {_label(xyz)}"
    return Finding(where, float(stat[ijk]), p, (float(xyz[0]), float(xyz[1]), float(xyz[2])))


def feature_name(row, kind: str) -> str:
    """A parcel's name, an edge or network pair as ``A – B``."""
    return str(row["name"]) if kind == "parcels" else f"{row['node_a']} – {row['node_b']}"


def strongest_feature(contrast: FeatureContrast, kind: str) -> Finding | None:
    """The parcel, edge or network pair of largest |t| (or F)."""
    stat = contrast.table[contrast.stat_type].abs()
    if not stat.notna().any():
        return None
    best = contrast.table.loc[stat.idxmax()]
    return Finding(feature_name(best, kind), float(best[contrast.stat_type]), float(best["p"]))


def finding(contrast: VoxelContrast | FeatureContrast, kind: str) -> Finding | None:
    """The strongest result of a contrast of either kind."""
    return strongest_voxel(contrast) if isinstance(contrast, VoxelContrast) else strongest_feature(contrast, kind)


def largest_cluster(path) -> int:
    """Voxels in the largest face-connected cluster of one sign of a surviving map (0 when empty)."""
    data = np.nan_to_num(np.asarray(nib.load(path).dataobj, dtype=np.float64))
    largest = 0
    for mask in (data > 0, data < 0):
        labels, n = ndimage.label(mask)
        if n:
            largest = max(largest, int(np.bincount(labels.ravel())[1:].max()))
    return largest


def survivors(contrast: VoxelContrast | FeatureContrast, kind: str) -> dict[str, str]:
    """What survives each correction: ``12 voxels in 1 cluster``, ``3 edges``."""
    counts = {}
    for name, count in contrast.surviving.items():
        text = f"{count} {UNITS[kind] if count != 1 else _singular(kind)}"
        if isinstance(contrast, VoxelContrast) and count:
            clusters = len(contrast.clusters.get(name, ()))
            text += f" in {clusters} cluster{'' if clusters == 1 else 's'}" if clusters else ", no cluster kept"
        counts[name] = text
    return counts


def _singular(kind: str) -> str:
    return UNITS[kind][:-1]


def _voxels(count: int) -> str:
    return f"{count} voxel{'' if count == 1 else 's'}"


def empty_note(contrast: VoxelContrast | FeatureContrast, kind: str, correction: str,
               settings: GroupAnalysis | None) -> str:
    """Why a correction's table has no row: nothing survived, or no cluster was large enough."""
    alpha = f" at alpha {settings.alpha}" if settings is not None else ""
    if not contrast.surviving.get(correction):
        return f"No {_singular(kind)} survived {correction}{alpha}."
    if isinstance(contrast, VoxelContrast) and correction in contrast.maps:
        extent = settings.cluster_extent if settings is not None else 0
        count, largest = contrast.surviving[correction], largest_cluster(contrast.maps[correction])
        return (f"No cluster of more than {extent} voxels survived {correction}{alpha}: {_voxels(count)} survived, "
                f"the largest cluster had {_voxels(largest)} (--cluster-extent {extent}).")
    return ""


def anchor(name: str) -> str:
    """An HTML id for an analysis's section."""
    return "analysis-" + re.sub(r"[^0-9A-Za-z_-]", "-", name)


def summary_section(analyses: Sequence[GroupResult], skipped: Sequence[SkippedAnalysis],
                    corrections: Sequence[str], findings: dict[tuple[str, str], Finding | None]) -> str:
    """One row per analysis and contrast: N, survivors per correction, the strongest finding, a link to it.

    ``findings`` holds each (analysis, contrast)'s strongest result (:func:`finding`).
    """
    import pandas as pd

    rows = []
    for analysis in analyses:
        for contrast in analysis.contrasts:
            found = findings.get((analysis.name, contrast.name))
            strongest = "none" if found is None else (
                f"{found.where}: {stat_text(contrast.stat_type, contrast.df, found.value, found.p)}")
            rows.append({"analysis": analysis.name, "contrast": contrast.name, "N": analysis.n,
                         **{name: survivors(contrast, analysis.kind).get(name, "") for name in corrections},
                         "strongest (uncorrected p)": strongest})
    table = table_html(pd.DataFrame(rows))
    for analysis in analyses:  # each analysis's name links to its section
        cell = f"<td>{html.escape(analysis.name)}</td>"
        table = table.replace(cell, f"<td><a href='#{anchor(analysis.name)}'>{html.escape(analysis.name)}</a></td>")
    parts = [table]
    if skipped:
        parts.append("<p class='warn'>Skipped: " + "; ".join(
            f"{html.escape(item.name)} ({html.escape(item.reason)})" for item in skipped) + "</p>")
    return "".join(parts)
