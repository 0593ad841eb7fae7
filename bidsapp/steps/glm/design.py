"""The first-level design matrix of a run, as nilearn's ``FirstLevelModel`` builds it."""

from __future__ import annotations

import functools

import numpy as np
import pandas as pd

#: nilearn's default cut-off of the cosine drift model, Hz.
DEFAULT_HIGH_PASS_HZ = 0.01
#: HRF models whose condition regressors :func:`condition_regressors` computes (others: nilearn's own code).
CONVOLVED_HRF_MODELS = ("glover", "spm")
#: nilearn's defaults for the design matrix: samples per frame for the convolution, earliest onset modelled (s).
OVERSAMPLING = 50
MIN_ONSET = -24.0


def frame_times(n_volumes: int, tr: float) -> np.ndarray:
    """Acquisition times of the volumes in seconds, as ``FirstLevelModel`` with ``slice_time_ref=0``."""
    return np.linspace(0.0, (n_volumes - 1) * tr, n_volumes)


def design_matrix(events: pd.DataFrame, n_volumes: int, tr: float, *, hrf_model: str = "glover",
                  high_pass_hz: float | None = None, confounds: pd.DataFrame | None = None,
                  drift_model: str | None = "cosine") -> pd.DataFrame:
    """The first-level design matrix of one run.

    Built by :func:`nilearn.glm.first_level.make_first_level_design_matrix`
    with the frame times, FIR delays and minimum onset that
    ``FirstLevelModel`` uses by default, so the columns (conditions under their
    own names, then confounds, drifts and ``constant``) are the ones nilearn's
    model would fit.

    Parameters
    ----------
    events : DataFrame
        Columns onset, duration (seconds), trial_type, modulation.
    n_volumes : int
    tr : float
        Repetition time, seconds.
    hrf_model : str, default="glover"
        nilearn HRF model (Glover 1999; SPM; with derivatives; ``fir``).
    high_pass_hz : float, optional
        Cut-off of the cosine drift model in Hz; default 0.01 Hz (nilearn's).
    confounds : DataFrame, optional
        Nuisance regressors, one row per volume.
    drift_model : {"cosine", "polynomial", None}, default="cosine"

    Returns
    -------
    DataFrame
        One row per volume (index: frame times in seconds), one column per regressor.
    """
    from nilearn.glm.first_level import make_first_level_design_matrix

    if confounds is not None and len(confounds) != n_volumes:
        raise ValueError(f"confounds have {len(confounds)} rows for a run of {n_volumes} volumes")
    if "modulation" in events and (events["modulation"] == 1).all():
        events = events.drop(columns="modulation")  # nilearn's default; saves its log line per run
    times = frame_times(n_volumes, tr)
    extra, extra_names = [], []
    if len(events) and hrf_model in CONVOLVED_HRF_MODELS:
        conditions, names = condition_regressors(events, times, hrf_model)
        extra.append(conditions)
        extra_names += names
        events = events.iloc[:0]
    if confounds is not None:
        extra.append(confounds.to_numpy(float))
        extra_names += [str(c) for c in confounds.columns]
    return make_first_level_design_matrix(
        times,
        events if len(events) else None,
        hrf_model=hrf_model,
        drift_model=drift_model,
        high_pass=DEFAULT_HIGH_PASS_HZ if high_pass_hz is None else high_pass_hz,
        fir_delays=[0],
        add_regs=np.hstack(extra) if extra else None,
        add_reg_names=extra_names or None,
    )


@functools.lru_cache(maxsize=32)
def _hrf_kernel(hrf_model: str, tr: float) -> np.ndarray:
    """nilearn's HRF sampled :data:`OVERSAMPLING` times per ``tr`` (cached: a few models and TRs per dataset)."""
    from nilearn.glm.first_level import glover_hrf, spm_hrf

    return (glover_hrf if hrf_model == "glover" else spm_hrf)(tr, OVERSAMPLING)


def condition_regressors(events: pd.DataFrame, times: np.ndarray, hrf_model: str) -> tuple[np.ndarray, list[str]]:
    """Each condition's HRF-convolved regressor, as nilearn's ``compute_regressor`` computes it, faster.

    Events of a condition with the same onset and duration are one event with
    their modulations summed (nilearn's handling of duplicates). The boxcars are
    sampled on nilearn's grid (:data:`OVERSAMPLING` times the frame rate, from
    :data:`MIN_ONSET` seconds before the first frame), convolved with the HRF
    by FFT (nilearn convolves directly, 10 times slower at this length; the
    results agree to rounding) and interpolated linearly at the frame times.

    Parameters
    ----------
    events : DataFrame
        Columns onset, duration, trial_type and optionally modulation (default 1).
    times : ndarray of shape (n_volumes,)
        Frame times in seconds (:func:`frame_times`).
    hrf_model : {"glover", "spm"}

    Returns
    -------
    regressors : ndarray of shape (n_volumes, n_conditions)
    conditions : list of str
        The condition names, sorted (nilearn's column order).
    """
    from scipy.signal import fftconvolve

    n, first, last = times.size, times.min(), times.max()
    end = last * (1 + 1.0 / (n - 1))
    n_high = int(np.rint((n - 1) * 1.0 / (last - first) * ((end - first - MIN_ONSET) * OVERSAMPLING) + 1))
    grid = np.linspace(first + MIN_ONSET, end, n_high)
    kernel = _hrf_kernel(hrf_model, float(np.min(np.diff(times))))
    trial_types = events["trial_type"].to_numpy()
    timing = events[["onset", "duration"]].to_numpy(float)
    modulation = events["modulation"].to_numpy(float) if "modulation" in events else np.ones(len(events))
    conditions = sorted(set(trial_types))
    boxcars = np.zeros((len(conditions), n_high))
    for boxcar, condition in zip(boxcars, conditions, strict=True):
        rows = trial_types == condition
        pairs, which = np.unique(timing[rows], axis=0, return_inverse=True)
        values = np.bincount(which.ravel(), weights=modulation[rows])
        start = np.minimum(np.searchsorted(grid, pairs[:, 0]), n_high - 1)
        stop = np.minimum(np.searchsorted(grid, pairs[:, 0] + pairs[:, 1]), n_high - 1)
        stop[(stop < n_high - 1) & (stop == start)] += 1  # zero durations last one sample
        np.add.at(boxcar, start, values)
        np.add.at(boxcar, stop, -values)
    convolved = fftconvolve(np.cumsum(boxcars, axis=1), kernel[None, :], axes=1)[:, :n_high]
    columns = [np.interp(times, grid, row) for row in convolved]
    return np.column_stack(columns), conditions

