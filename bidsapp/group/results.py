"""What one group analysis needs and what it returns to the group level and its report.

:class:`AnalysisInputs` is one analysis's design and data provenance;
:class:`GroupResult` is what the report shows of it: per group contrast a
:class:`VoxelContrast` (maps written, cluster tables) or a
:class:`FeatureContrast` (the parcel, edge or network table), and for feature
analyses the participants' values (:class:`FeatureValues`); :class:`SkippedAnalysis`
is an analysis that could not be estimated, with why.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
import pandas as pd

from bidsapp.config import GroupAnalysis
from bidsapp.outputs.layout import GroupKind
from bidsapp.stats.design import GroupDesign


@dataclass(frozen=True)
class AnalysisInputs:
    """One analysis's design and where its rows came from.

    Attributes
    ----------
    design : GroupDesign
        One row per participant-level map (per participant, or participant x condition).
    sources : tuple of str
        The participant-level files, in design row order.
    left_out : tuple of str
        Participant labels (without ``sub-``) left out for a missing output.
    settings : GroupAnalysis
        The group options (test, corrections, alpha, permutations).
    groups : tuple of str, optional
        Each row's group or condition, for the report's figures.
    rows : tuple of str
        Each design row's label: the participant ID, and its condition in within designs.
    cells : mapping of str to int
        Design rows per cell (group, condition, or ``all``).
    """

    design: GroupDesign
    sources: tuple[str, ...]
    left_out: tuple[str, ...]
    settings: GroupAnalysis
    groups: tuple[str, ...] | None = None
    rows: tuple[str, ...] = ()
    cells: Mapping[str, int] = field(default_factory=dict)


@dataclass(frozen=True)
class VoxelContrast:
    """One group contrast of a voxel analysis.

    Attributes
    ----------
    name : str
    stat_type : {"t", "F"}
    df : tuple of int
        Degrees of freedom (numerator, denominator for F).
    surviving : mapping of str to int
        Voxels surviving each correction at alpha.
    maps : mapping of str to Path
        Unthresholded maps by statistic (``t``/``F``, ``z``, ``p``, ``effect``, ``tfce``) and the
        surviving z map by correction name.
    clusters : mapping of str to DataFrame
        The cluster table of each correction with surviving voxels.
    """

    name: str
    stat_type: str
    df: tuple[int, ...]
    surviving: Mapping[str, int]
    maps: Mapping[str, Path]
    clusters: Mapping[str, pd.DataFrame]


@dataclass(frozen=True)
class FeatureContrast:
    """One group contrast of a parcel, edge or network analysis: its table and where it was written."""

    name: str
    stat_type: str
    df: tuple[int, ...]
    surviving: Mapping[str, int]
    table: pd.DataFrame
    path: Path


@dataclass(frozen=True)
class FeatureValues:
    """The participant-level values of a feature analysis, for the report's figures.

    Attributes
    ----------
    labels : DataFrame
        One row per feature: ``name`` (parcels) or ``node_a``, ``node_b`` (edges, networks).
    data : ndarray
        Rows x features, in design row order.
    mean : ndarray
        The mean over rows of each feature (NaN ignored).
    groups : tuple of str, optional
        Each row's group or condition.
    coordinates : ndarray, optional
        Parcel centroids in mm, when the participant-level sidecar records them.
    """

    labels: pd.DataFrame
    data: np.ndarray
    mean: np.ndarray
    groups: tuple[str, ...] | None
    coordinates: np.ndarray | None


@dataclass(frozen=True)
class GroupResult:
    """One group analysis as the report shows it.

    Attributes
    ----------
    kind : {"voxels", "parcels", "edges", "networks"}
    name : str
        The analysis's entities as a name prefix.
    n : int
        Participant-level maps analysed.
    design : GroupDesign
    left_out : tuple of str
    contrasts : tuple of VoxelContrast or FeatureContrast
    features : FeatureValues, optional
        For parcel, edge and network analyses.
    rows : tuple of str
        Each design row's label (participant ID, and condition in within designs).
    cells : mapping of str to int
        Design rows per cell.
    """

    kind: GroupKind
    name: str
    n: int
    design: GroupDesign
    left_out: tuple[str, ...]
    contrasts: tuple[VoxelContrast | FeatureContrast, ...]
    features: FeatureValues | None = None
    rows: tuple[str, ...] = ()
    cells: Mapping[str, int] = field(default_factory=dict)


@dataclass(frozen=True)
class SkippedAnalysis:
    """An analysis that could not be estimated, for the log, the report and the dry run.

    Attributes
    ----------
    name : str
        The analysis's entities as a name prefix.
    kind : {"voxels", "parcels", "edges", "networks"}
    reason : str
        Why it was skipped.
    """

    name: str
    kind: GroupKind
    reason: str
