"""Task GLMs on parcel time series: one design per run, runs combined by fixed effects.

Each run is scaled to percent signal change of each parcel's mean
(:func:`bidsapp.steps.glm.fit.percent_signal_change`; centred data are only
centred, :func:`bidsapp.steps.glm.fit.effect_units`), modelled with all the
task's conditions convolved with the HRF, a cosine drift basis and a constant
(:func:`bidsapp.steps.glm.design.design_matrix`), and fitted per parcel with
AR(1) prewhitening or OLS (:func:`bidsapp.steps.glm.fit.fit_run`). A contrast
is estimated in each run whose design has all its conditions, and those runs
are combined by fixed effects (:func:`bidsapp.steps.glm.fixed_effects.combine_runs`):
the same engine as the voxel pipeline's.

The selective average of the HCP course notebooks is computed alongside: the
contrast's weights applied to each condition's mean over its frames
(:func:`bidsapp.steps.hcp_summaries.selective_average`), frames pooled over runs, on
each run with the parcel means removed.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np
import pandas as pd

from bidsapp.steps.glm.contrasts import STATISTICS, Contrast, condition_weights, estimable
from bidsapp.steps.glm.design import design_matrix
from bidsapp.steps.glm.fit import EffectUnits, effect_units, fit_run, percent_signal_change
from bidsapp.steps.glm.fixed_effects import CombinedContrast, ContrastMaps, combine_runs
from bidsapp.steps.hcp_summaries import selective_average
from bidsapp.steps.parcel_cleaning import remove_mean


@dataclass(frozen=True)
class TaskRun:
    """One run of a task, ready to model.

    Attributes
    ----------
    name : str
        The run's entities, e.g. ``sub-1_task-motor_dir-RL``.
    data : ndarray of shape (n_volumes, n_parcels)
        Parcel time series as read.
    events : DataFrame
        The modelled conditions' events (onset, duration, trial_type, modulation).
    tr : float
        Repetition time, seconds.
    dummy_scans : int
        Leading volumes left out of the fit.
    """

    name: str
    data: np.ndarray
    events: pd.DataFrame
    tr: float
    dummy_scans: int = 0


@dataclass(frozen=True)
class TaskFit:
    """A task's contrasts, combined over runs.

    Attributes
    ----------
    contrasts : dict of str to CombinedContrast
        Per contrast name, the fixed-effects statistics and the runs they combine.
    units : str
        Units of ``effect``: ``"percent signal change"`` or ``"data units"``.
    """

    contrasts: dict[str, CombinedContrast]
    units: EffectUnits


def fit_task(runs: Sequence[TaskRun], contrasts: Sequence[Contrast], *, hrf_model: str = "glover",
             noise_model: str = "ar1", high_pass_hz: float | None = None) -> TaskFit:
    """Fit each run's GLM and combine each contrast over the runs that can estimate it.

    Parameters
    ----------
    runs : sequence of TaskRun
    contrasts : sequence of Contrast
    hrf_model : str, default="glover"
    noise_model : {"ar1", "ols"}, default="ar1"
    high_pass_hz : float, optional
        Cosine drift cut-off, Hz (default 0.01 Hz).

    Returns
    -------
    TaskFit
        Contrasts no run can estimate are absent.
    """
    fits = []
    units = set()
    for run in runs:
        n_volumes = run.data.shape[0]
        design = design_matrix(run.events, n_volumes, run.tr, hrf_model=hrf_model, high_pass_hz=high_pass_hz)
        if not estimable(contrasts, design.columns):
            continue
        keep = slice(run.dummy_scans, n_volumes)
        data = run.data[keep]
        unit = effect_units(data)
        units.add(unit)
        scaled = percent_signal_change(data) if unit == "percent signal change" else remove_mean(data)
        fits.append(fit_run(run.name, scaled, design.iloc[keep], contrasts, noise_model=noise_model))
    return TaskFit(combine_runs(fits, contrasts),
                   "percent signal change" if units == {"percent signal change"} else "data units")


def selective_average_contrasts(runs: Sequence[TaskRun], contrasts: Sequence[Contrast],
                                conditions: Sequence[str], skip: int = 0) -> dict[str, np.ndarray | float]:
    """Each contrast's weights applied to the conditions' selective averages.

    Parameters
    ----------
    runs : sequence of TaskRun
        Each run's parcel means are removed first (the HCP course's ``remove_mean=True``).
    contrasts : sequence of Contrast
    conditions : sequence of str
        The task's modelled conditions.
    skip : int, default=0
        Frames left out at the start of each event (hemodynamic lag).

    Returns
    -------
    dict of str to ndarray of shape (n_parcels,) or float
        By contrast name; the scalar 0 for a contrast without a non-zero
        condition weight (such as ``A - A``).
    """
    centred = [remove_mean(run.data) for run in runs]
    weights = {c.name: condition_weights(c, conditions) for c in contrasts}
    averages = {}
    for condition in dict.fromkeys(name for contrast in weights.values() for name in contrast):
        events = [run.events[run.events["trial_type"] == condition] for run in runs]
        averages[condition] = selective_average(centred, events, runs[0].tr, skip)
    return {name: sum(w * averages[condition] for condition, w in contrast.items())
            for name, contrast in weights.items()}


def statmap_table(maps: ContrastMaps, parcels: pd.DataFrame) -> pd.DataFrame:
    """A contrast's statistics per parcel: name, hemisphere, network, effect, variance, t, z, p."""
    table = parcels[["name", "hemisphere", "network"]].reset_index(drop=True).copy()
    for statistic in STATISTICS:
        table[statistic.name] = getattr(maps, statistic.name)
    return table
