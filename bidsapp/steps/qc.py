"""Per-run quality summaries: head motion from fMRIPrep confounds, sanity of parcel data.

Pure functions on DataFrames and arrays; reading and writing happen elsewhere.
"""

from __future__ import annotations

import warnings

import numpy as np
import pandas as pd

#: Framewise displacement above which a volume counts as high motion, in mm
#: (Power et al. 2012, NeuroImage 59:2142).
FD_THRESHOLD_MM = 0.5

_FD_COLUMNS = ("framewise_displacement", "FramewiseDisplacement")
_NON_STEADY_PREFIXES = ("non_steady_state_outlier", "NonSteadyStateOutlier")


def motion_summary(confounds: pd.DataFrame, repetition_time: float) -> dict[str, float | int]:
    """Summarise head motion and non-steady-state volumes of one run.

    Parameters
    ----------
    confounds : DataFrame
        fMRIPrep confounds, one row per volume, in any fMRIPrep naming
        (``framewise_displacement`` from 1.2, ``FramewiseDisplacement`` in 1.0/1.1).
    repetition_time : float
        Seconds per volume.

    Returns
    -------
    dict
        ``n_volumes``, ``repetition_time_s``, ``duration_s``, ``n_non_steady_state``
        (volumes flagged by fMRIPrep's non-steady-state outlier columns), ``mean_fd_mm``
        and ``max_fd_mm`` (the first volume's FD is undefined and left out) and
        ``n_high_motion`` (volumes with FD above :data:`FD_THRESHOLD_MM`).
    """
    fd_column = next((c for c in _FD_COLUMNS if c in confounds.columns), None)
    fd = confounds[fd_column].to_numpy(float)[1:] if fd_column else np.array([np.nan])
    flags = [c for c in confounds.columns if c.startswith(_NON_STEADY_PREFIXES)]
    non_steady = int(confounds[flags].fillna(0).to_numpy().any(axis=1).sum()) if flags else 0
    return {
        "n_volumes": len(confounds),
        "repetition_time_s": float(repetition_time),
        "duration_s": float(len(confounds) * repetition_time),
        "n_non_steady_state": non_steady,
        "mean_fd_mm": float(np.nanmean(fd)) if np.isfinite(fd).any() else np.nan,
        "max_fd_mm": float(np.nanmax(fd)) if np.isfinite(fd).any() else np.nan,
        "n_high_motion": int(np.sum(fd > FD_THRESHOLD_MM)),
    }


def parcel_summary(timeseries: np.ndarray, repetition_time: float) -> dict[str, float | int]:
    """Summarise one run of parcel time series.

    Parameters
    ----------
    timeseries : ndarray, shape (n_volumes, n_parcels)
    repetition_time : float
        Seconds per volume.

    Returns
    -------
    dict
        ``n_volumes``, ``repetition_time_s``, ``duration_s``, ``n_parcels``,
        ``n_flat_parcels`` (one value throughout, i.e. zero variance: empty or missing parcels) and
        ``n_nonfinite_values`` (NaN or infinite entries).
    """
    finite = np.isfinite(timeseries)
    values = timeseries if finite.all() else np.where(finite, timeseries, np.nan)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", RuntimeWarning)  # all-NaN parcels: not flat, counted as non-finite
        flat = np.nanmax(values, axis=0) == np.nanmin(values, axis=0)
    return {
        "n_volumes": int(timeseries.shape[0]),
        "repetition_time_s": float(repetition_time),
        "duration_s": float(timeseries.shape[0] * repetition_time),
        "n_parcels": int(timeseries.shape[1]),
        "n_flat_parcels": int(flat.sum()),
        "n_nonfinite_values": int((~finite).sum()),
    }
