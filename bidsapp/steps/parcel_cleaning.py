"""Cleaning of parcel time series (HCP-style parcellated data).

Parcellated HCP data come without fMRIPrep confounds, so the only strategy is
``none``: each parcel's series is linearly detrended and standardised (z-scored
with the sample standard deviation), optionally band-passed with a Butterworth
filter (``--high-pass``, ``--low-pass``), all by :func:`nilearn.signal.clean`.
The per-parcel mean removal of the HCP course notebooks is the special case
``detrend=False, standardize=False`` with the mean subtracted
(:func:`remove_mean`).

Task GLMs do not use the cleaned series: filtering the data but not the design
reintroduces the removed frequencies into the fit (Lindquist et al. 2019,
Hum. Brain Mapp. 40:2358). They model drifts in the design (cosine basis, see
:mod:`bidsapp.steps.glm`) and fit the data in percent signal change
(:func:`bidsapp.steps.glm.fit.percent_signal_change`), as nilearn's
``FirstLevelModel`` does.
"""

from __future__ import annotations

import numpy as np

from bidsapp.errors import UsageError

#: The denoising strategies parcellated data support.
PARCEL_STRATEGIES = ("none",)


def parcel_strategy(name: str | None) -> str:
    """The denoising strategy for parcellated data: ``none`` unless a usable one is named.

    Parameters
    ----------
    name : str, optional
        ``--denoise-strategy``; ``None`` for the default.

    Returns
    -------
    str
        ``"none"``.

    Raises
    ------
    UsageError
        For any confound-based strategy (preset name or file): parcellated data have no confounds.
    """
    if name is None or name in PARCEL_STRATEGIES:
        return "none"
    raise UsageError(f"--denoise-strategy {name}: regresses fMRIPrep confounds, which HCP-style parcellated inputs "
                     "do not have; omit the option or use --denoise-strategy none (detrend and standardise)")


def clean_parcels(data: np.ndarray, tr: float, *, detrend: bool = True, standardize: bool = True,
                  high_pass_hz: float | None = None, low_pass_hz: float | None = None,
                  confounds: np.ndarray | None = None) -> np.ndarray:
    """Clean one run of parcel time series.

    Parameters
    ----------
    data : ndarray of shape (n_volumes, n_parcels)
    tr : float
        Repetition time, seconds.
    detrend : bool, default=True
        Remove each parcel's linear trend (and mean).
    standardize : bool, default=True
        Divide by each parcel's sample standard deviation (``zscore_sample``).
    high_pass_hz, low_pass_hz : float, optional
        Butterworth filter cut-offs in Hz; none by default.
    confounds : ndarray of shape (n_volumes, n_confounds), optional
        Regressed out orthogonally to the filter (Lindquist et al. 2019).

    Returns
    -------
    ndarray of shape (n_volumes, n_parcels)
        float64.
    """
    from nilearn.signal import clean

    return clean(np.asarray(data, dtype=float), detrend=detrend, standardize="zscore_sample" if standardize else False,
                 confounds=confounds, filter="butterworth", high_pass=high_pass_hz, low_pass=low_pass_hz, t_r=tr)


def remove_mean(data: np.ndarray) -> np.ndarray:
    """Subtract each parcel's temporal mean, as the HCP course's ``load_single_timeseries(remove_mean=True)``."""
    return data - data.mean(axis=0, keepdims=True)

