"""Denoising: confound selection from fMRIPrep tables, censoring and cleaning.

A strategy (:mod:`bidsapp.steps.strategies`) names the nuisance regressors to take
from fMRIPrep's confounds table, the volumes to censor (non-steady-state
volumes, scrubbing) and the parameters of :func:`nilearn.signal.clean`. Selection follows
nilearn's :func:`~nilearn.interfaces.fmriprep.load_confounds` column for
column, for every fMRIPrep naming: 1.0/1.1 CamelCase tables are renamed to
the later snake_case first, and derivative and quadratic expansions that a
table lacks are computed as fMRIPrep computes them (backward difference with
an undefined first row; squares).

Censored volumes are left out with a sample mask, never interpolated into a
statistic. Everything here is a pure function of tables and arrays.
"""

from __future__ import annotations

import math
import re
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

from bidsapp.errors import MissingInputError
from bidsapp.steps.strategies import COMPCOR_PREFIXES, EXPANSIONS, CompCor, Strategy

MOTION = ("trans_x", "trans_y", "trans_z", "rot_x", "rot_y", "rot_z")
#: fMRIPrep 1.0/1.1 CamelCase names and their later snake_case equivalents.
CAMELCASE = {"X": "trans_x", "Y": "trans_y", "Z": "trans_z", "RotX": "rot_x", "RotY": "rot_y", "RotZ": "rot_z",
             "CSF": "csf", "WhiteMatter": "white_matter", "GlobalSignal": "global_signal", "stdDVARS": "std_dvars",
             "non-stdDVARS": "dvars", "vx-wisestdDVARS": "vx_wise_std_dvars",
             "FramewiseDisplacement": "framewise_displacement"}
_CAMELCASE_NUMBERED = ((r"aCompCor(\d+)", r"a_comp_cor_\1"), (r"tCompCor(\d+)", r"t_comp_cor_\1"),
                       (r"Cosine(\d+)", r"cosine\1"), (r"NonSteadyStateOutlier(\d+)", r"non_steady_state_outlier\1"),
                       (r"AROMAAggrComp(\d+)", r"aroma_motion_\1"))
#: Minimum uncensored duration after scrubbing, seconds (xcp_d's ``--min-time`` default; Parkes et al. 2018).
MIN_DURATION_S = 240.0


@dataclass(frozen=True)
class Denoising:
    """What a strategy selected for one run.

    Attributes
    ----------
    confounds : DataFrame
        Regressors for cleaning, one row per volume, first-row gaps filled and
        demeaned over the kept volumes (nilearn's ``load_confounds`` output).
    sample_mask : ndarray of int
        Indices of the volumes kept.
    dummy : tuple of int
        Volumes censored as non-steady-state (or ``--dummy-scans``).
    outliers : tuple of int
        Volumes censored by scrubbing.
    computed : tuple of str
        Expansion columns the table lacked and that were computed.
    """

    confounds: pd.DataFrame
    sample_mask: np.ndarray
    dummy: tuple[int, ...] = ()
    outliers: tuple[int, ...] = ()
    computed: tuple[str, ...] = ()

    @property
    def n_volumes(self) -> int:
        """Volumes in the run, censored ones included."""
        return len(self.confounds)

    @property
    def censored(self) -> list[int]:
        """Every censored volume (0-based)."""
        return sorted(set(self.dummy) | set(self.outliers))

    def glm_confounds(self) -> pd.DataFrame | None:
        """The regressors a first-level design takes: all but cosines (the design has its own drift model)."""
        columns = [c for c in self.confounds.columns if not c.startswith("cosine")]
        return self.confounds[columns] if columns else None


def fmriprep_generation(path: Path | str) -> str:
    """The fMRIPrep releases whose naming a confounds file follows, from its name."""
    name = Path(path).name
    if name.endswith("_bold_confounds.tsv"):
        return "fMRIPrep 1.0-1.1 (CamelCase columns)"
    if "desc-confounds_regressors" in name:
        return "fMRIPrep 1.2-20.1 (desc-confounds_regressors)"
    return "fMRIPrep >= 20.2 (desc-confounds_timeseries)"


def normalise_confounds(table: pd.DataFrame) -> tuple[pd.DataFrame, tuple[str, ...]]:
    """Rename fMRIPrep 1.0/1.1 CamelCase columns to snake_case and add missing expansions.

    Returns
    -------
    table : DataFrame
        Snake_case columns; for every motion, tissue and global signal column,
        ``_derivative1`` (backward difference, first row undefined),
        ``_power2`` and ``_derivative1_power2`` when the table lacked them.
    computed : tuple of str
        The columns added.
    """
    def rename(column: str) -> str:
        if column in CAMELCASE:
            return CAMELCASE[column]
        for pattern, replacement in _CAMELCASE_NUMBERED:
            if re.fullmatch(pattern, column):
                return re.sub(pattern, replacement, column)
        return column

    table = table.rename(columns=rename)
    added = {}
    for base in (*MOTION, "csf", "white_matter", "global_signal"):
        if base not in table:
            continue
        x = table[base].to_numpy(float)
        derivative = np.r_[np.nan, np.diff(x)]
        for name, values in ((f"{base}_derivative1", derivative), (f"{base}_power2", x ** 2),
                             (f"{base}_derivative1_power2", derivative ** 2)):
            if name not in table:
                added[name] = values
    if added:
        table = pd.concat([table, pd.DataFrame(added, index=table.index)], axis=1)
    return table, tuple(added)


def select_confounds(table: pd.DataFrame, metadata: dict | None, strategy: Strategy, *, path: Path | str) -> Denoising:
    """Select a run's regressors and censored volumes as ``strategy`` says.

    Parameters
    ----------
    table : DataFrame
        The fMRIPrep confounds table (any naming), one row per volume.
    metadata : dict, optional
        Its JSON sidecar (needed for anatomical CompCor from fMRIPrep 1.4 on).
    strategy : Strategy
    path : Path
        The confounds file, for messages.

    Raises
    ------
    MissingInputError
        Naming the file, the missing column and the fMRIPrep naming it expected;
        or when every volume is censored.
    """
    raw, computed = normalise_confounds(table)
    generation = fmriprep_generation(path)

    def need(columns: list[str], component: str) -> pd.DataFrame:
        missing = [c for c in columns if c not in raw]
        if missing:
            camel = {v: k for k, v in CAMELCASE.items()}.get(missing[0].split("_derivative1")[0].split("_power2")[0])
            hint = f" (fMRIPrep 1.0/1.1 name: {camel})" if camel else ""
            raise MissingInputError(
                f"{path}: no column {missing[0]!r}{hint}, which the {strategy.name!r} strategy needs for {component}; "
                f"this table follows {generation}: choose another --denoise-strategy or re-run fMRIPrep")
        return raw[columns]

    parts = []
    for component, bases in (("motion", MOTION), ("wm_csf", ("csf", "white_matter")),
                             ("global_signal", ("global_signal",))):
        expansion = getattr(strategy, component)
        if expansion is not None:
            parts.append(need(list(bases) + [f"{b}_{s}" for s in EXPANSIONS[expansion] for b in bases], component))
    if strategy.compcor is not None:
        parts.append(need(_compcor_columns(raw, metadata, strategy, strategy.compcor, path, generation), "compcor"))
    if strategy.cosine:
        cosines = [c for c in raw if c.startswith("cosine")]
        if not cosines:
            raise MissingInputError(f"{path}: no cosine (high-pass) columns, which the {strategy.name!r} strategy "
                                    f"needs; fMRIPrep writes cosineXX (1.0: CosineXX); or pass --high-pass HZ")
        parts.append(raw[cosines])
    confounds = pd.concat(parts, axis=1) if parts else pd.DataFrame(index=raw.index)

    n = len(raw)
    if strategy.dummy_scans == "auto":
        flags = [c for c in raw if c.startswith("non_steady_state_outlier")]
        dummy = np.flatnonzero(raw[flags].fillna(0).to_numpy().any(axis=1)) if flags else np.array([], int)
    else:
        dummy = np.arange(min(strategy.dummy_scans, n))
    outliers = np.array([], int)
    if strategy.scrub is not None:
        scrub = strategy.scrub
        motion = need(["framewise_displacement", "std_dvars"], "scrubbing").to_numpy(float)
        with np.errstate(invalid="ignore"):
            bad = np.flatnonzero((motion[:, 0] > scrub.fd_threshold_mm) | (motion[:, 1] > scrub.std_dvars_threshold))
        outliers = scrub_segments(bad, n, scrub.min_segment)
    sample_mask = np.setdiff1d(np.arange(n), np.union1d(dummy, outliers))
    if sample_mask.size == 0:
        raise MissingInputError(f"{path}: all {n} volumes are censored ({len(dummy)} non-steady-state, "
                                f"{len(outliers)} high-motion); raise --fd-threshold or choose another "
                                "--denoise-strategy")
    if confounds.shape[1]:
        values = confounds.to_numpy(float, copy=True)
        first = np.isnan(values[0])
        values[0, first] = values[min(1, n - 1), first]  # nilearn: derivatives' undefined first row
        gaps = np.isnan(values).any(axis=0)
        if gaps.any():
            raise MissingInputError(f"{path}: column {confounds.columns[np.argmax(gaps)]!r} has n/a values after the "
                                    "first row; fix the confounds file")
        values -= values[sample_mask].mean(axis=0)
        confounds = pd.DataFrame(values, columns=confounds.columns)
    return Denoising(confounds=confounds.reset_index(drop=True), sample_mask=sample_mask,
                     dummy=tuple(int(i) for i in dummy), outliers=tuple(int(i) for i in np.setdiff1d(outliers, dummy)),
                     computed=tuple(c for c in computed if c in confounds))


def _compcor_columns(raw: pd.DataFrame, metadata: dict | None, strategy: Strategy, kind: CompCor, path: Path | str,
                     generation: str) -> list[str]:
    """The ``kind`` CompCor columns as nilearn's ``find_compcor`` picks them (masks from the JSON sidecar)."""
    n = strategy.n_compcor
    separated = kind.endswith("separated")
    columns: list[str] = []
    for prefix in COMPCOR_PREFIXES[kind]:
        names = [c for c in (metadata or raw.columns) if re.fullmatch(rf"{prefix}_comp_cor_\d+", c)]
        names = sorted(names, key=lambda c: int(c.rsplit("_", 1)[1]))
        if prefix == "a" and metadata is None and separated:
            raise MissingInputError(f"{path}: anatomical CompCor per tissue needs the confounds JSON sidecar "
                                    f"(fMRIPrep >= 1.4); this table follows {generation}")
        if prefix == "a" and metadata is not None:
            masks = ("WM", "CSF") if separated else ("combined",)
            groups = [[c for c in names if metadata[c].get("Mask") == mask] for mask in masks]
        else:
            groups = [names]
        columns += [c for group in groups for c in (group if n == "all" else group[:n])]
    if not columns:
        raise MissingInputError(f"{path}: no {kind} CompCor components for the {strategy.name!r} strategy; "
                                f"fMRIPrep >= 1.4 lists them in the confounds JSON; this table follows {generation}")
    return columns


def scrub_segments(outliers: np.ndarray, n_volumes: int, min_segment: int) -> np.ndarray:
    """Add to the censored volumes every uncensored segment shorter than ``min_segment``.

    The segments before the first and after the last censored volume count too
    (nilearn's ``optimize_scrub``; Power et al. 2014).
    """
    if len(outliers) == 0 or min_segment <= 0:
        return np.asarray(outliers, int)
    censored = np.zeros(n_volumes, bool)
    censored[outliers] = True
    kept = np.flatnonzero(~censored)
    starts = np.flatnonzero(np.diff(np.r_[-2, kept]) > 1)
    for segment in np.split(kept, starts[1:]):
        if 0 < len(segment) < min_segment:
            censored[segment] = True
    return np.flatnonzero(censored)


def clean_parameters(strategy: Strategy, denoising: Denoising, tr: float) -> dict[str, Any]:
    """Keyword arguments of :func:`nilearn.signal.clean` for this run (signals left out)."""
    band = strategy.high_pass_hz is not None or strategy.low_pass_hz is not None
    confounds = denoising.confounds.to_numpy(float) if denoising.confounds.shape[1] else None
    sample_mask = None if len(denoising.sample_mask) == denoising.n_volumes else denoising.sample_mask.copy()
    return {"detrend": strategy.detrend, "confounds": confounds, "sample_mask": sample_mask,
            "filter": "butterworth" if band else False, "high_pass": strategy.high_pass_hz,
            "low_pass": strategy.low_pass_hz, "t_r": tr}


def clean(signals: np.ndarray, strategy: Strategy, denoising: Denoising, tr: float) -> np.ndarray:
    """Denoise time series of shape (n_volumes, n_signals) with :func:`nilearn.signal.clean`.

    Returns the kept volumes only, scaled as the strategy says.
    """
    from nilearn.signal import clean as nilearn_clean

    return nilearn_clean(np.asarray(signals, float), standardize=strategy.standardize,
                         **clean_parameters(strategy, denoising, tr))


def cleaning_matrix(strategy: Strategy, denoising: Denoising, tr: float) -> np.ndarray:
    """The linear operator of :func:`clean` without scaling, shape (n_kept, n_volumes).

    Detrending, filtering (with nilearn's interpolation of censored volumes),
    censoring and confound projection are linear in the signals, so cleaning
    many voxels is one matrix product: ``cleaning_matrix(...) @ X`` equals
    ``nilearn.signal.clean(X, standardize=None, ...)``.
    """
    from nilearn.signal import clean as nilearn_clean

    return nilearn_clean(np.eye(denoising.n_volumes), standardize=None, **clean_parameters(strategy, denoising, tr))


def degrees_of_freedom(strategy: Strategy, denoising: Denoising, tr: float) -> int:
    """Temporal degrees of freedom left after denoising.

    Kept volumes, minus the regressors, minus 2 for detrending (constant and
    linear trend; 1 for the mean when only z-scoring), minus the Fourier
    components of the kept series a Butterworth filter removes.
    """
    n = len(denoising.sample_mask)
    dof = n - denoising.confounds.shape[1] - (2 if strategy.detrend else int(strategy.standardize is not None))
    frequencies = np.arange(1, n // 2 + 1) / (n * tr)
    weights = np.where(2 * np.arange(1, n // 2 + 1) == n, 1, 2)
    outside = np.zeros(len(frequencies), bool)
    if strategy.high_pass_hz is not None:
        outside |= frequencies < strategy.high_pass_hz
    if strategy.low_pass_hz is not None:
        outside |= frequencies > strategy.low_pass_hz
    return int(dof - weights[outside].sum())


def denoising_record(strategy: Strategy, denoising: Denoising, tr: float) -> dict[str, Any]:
    """What a sidecar records about denoising, with a warning when too little data remain."""
    kept = len(denoising.sample_mask)
    minimum = math.ceil(MIN_DURATION_S / tr)
    record = {
        "DenoiseStrategy": {"Name": strategy.name, "Description": strategy.description,
                            "Citation": strategy.citation, "Methods": strategy.methods},
        "ConfoundRegressors": list(denoising.confounds.columns),
        "ComputedConfoundColumns": list(denoising.computed),
        "NonSteadyStateVolumes": list(denoising.dummy),
        "CensoredVolumes": denoising.censored,
        "NumberOfVolumes": denoising.n_volumes,
        "NumberOfVolumesKept": kept,
        "DegreesOfFreedomLeft": degrees_of_freedom(strategy, denoising, tr),
    }
    if strategy.scrub is not None:  # the minimum is a scrubbing strategy's: recorded only where one ran
        record["MinimumVolumesAfterScrubbing"] = minimum
        if kept < minimum:
            record["Warning"] = (f"only {kept} volumes ({kept * tr:g} s) remain after censoring, fewer than "
                                 f"{minimum} ({MIN_DURATION_S:g} s; Parkes et al. 2018): interpret with care")
    return record
