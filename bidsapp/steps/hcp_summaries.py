"""Summaries of parcel results as the HCP course notebooks make them.

* :func:`condition_frames` and :func:`selective_average`: the notebooks'
  subtraction analysis, the mean of the frames of a condition's blocks
  (``floor(onset / TR)`` to ``floor(onset / TR) + ceil(duration / TR)``,
  optionally skipping the first frames for the hemodynamic lag), frames pooled
  over runs.
* :func:`network_hemisphere_means`: a parcel map averaged within each network,
  per hemisphere (the notebooks' network bar charts; networks of Ji et al.
  2019, NeuroImage 185:35).
* :func:`rank_parcels`: parcels ordered by the absolute value of a map (the
  notebooks' fear vs neutral ranking).
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np
import pandas as pd

#: Hemisphere columns, in the order of the HCP course (right hemisphere first).
HEMISPHERES = ("right", "left")


def condition_frames(onsets: np.ndarray, durations: np.ndarray, tr: float, skip: int = 0) -> np.ndarray:
    """Frame indices of a condition's events in one run (the HCP course's ``condition_frames``).

    Parameters
    ----------
    onsets, durations : ndarray
        Event onsets and durations in seconds.
    tr : float
        Repetition time, seconds.
    skip : int, default=0
        Frames to leave out at the start of each event (hemodynamic lag).

    Returns
    -------
    ndarray of int
        ``floor(onset / tr) + arange(skip, ceil(duration / tr))`` for each
        event, concatenated (frames may lie beyond the run; see
        :func:`selective_average`).
    """
    starts = np.floor(np.asarray(onsets, dtype=float) / tr).astype(int)
    lengths = np.ceil(np.asarray(durations, dtype=float) / tr).astype(int)
    frames = [start + np.arange(skip, length) for start, length in zip(starts, lengths, strict=True)]
    return np.concatenate(frames) if frames else np.empty(0, dtype=int)


def selective_average(runs: Sequence[np.ndarray], events: Sequence[pd.DataFrame], tr: float,
                      skip: int = 0) -> np.ndarray:
    """Mean of a condition's frames, pooled over runs (the HCP course's ``selective_average``).

    Parameters
    ----------
    runs : sequence of ndarray of shape (n_volumes, n_parcels)
        Each run's time series (the course removes each parcel's mean first).
    events : sequence of DataFrame
        Each run's events of the condition (columns ``onset`` and ``duration``, seconds).
    tr : float
        Repetition time, seconds.
    skip : int, default=0
        Frames to leave out at the start of each event.

    Returns
    -------
    ndarray of shape (n_parcels,)
        NaN when the condition has no frame inside any run.
    """
    if len(runs) != len(events):
        raise ValueError("give the events of every run")
    selected = []
    for data, run_events in zip(runs, events, strict=True):
        frames = condition_frames(run_events["onset"], run_events["duration"], tr, skip)
        selected.append(data[frames[frames < data.shape[0]]])
    pooled = np.concatenate(selected, axis=0)
    if not len(pooled):
        return np.full(runs[0].shape[1], np.nan)
    return pooled.mean(axis=0)


def network_hemisphere_means(values: np.ndarray, parcels: pd.DataFrame) -> pd.DataFrame:
    """Mean of a parcel map per network and hemisphere.

    Parameters
    ----------
    values : ndarray of shape (n_parcels,)
    parcels : DataFrame
        Columns ``network`` and ``hemisphere`` (``right``/``left``), one row per parcel.

    Returns
    -------
    DataFrame
        Index: networks (sorted); columns: ``right``, ``left``; NaN where a
        hemisphere has no parcel of the network (NaN values are left out).
    """
    networks, which = np.unique(parcels["network"].to_numpy(dtype=str), return_inverse=True)
    values = np.asarray(values, dtype=float)
    hemispheres = parcels["hemisphere"].to_numpy()
    means = {}
    for hemisphere in HEMISPHERES:
        keep = (hemispheres == hemisphere) & ~np.isnan(values)
        sums = np.bincount(which[keep], weights=values[keep], minlength=len(networks))
        counts = np.bincount(which[keep], minlength=len(networks))
        means[hemisphere] = np.divide(sums, counts, out=np.full(len(networks), np.nan), where=counts > 0)
    return pd.DataFrame(means, index=pd.Index(networks, name="network"))


def rank_parcels(values: np.ndarray, parcels: pd.DataFrame, top: int | None = None) -> pd.DataFrame:
    """Parcels ordered by decreasing absolute value of a map.

    Parameters
    ----------
    values : ndarray of shape (n_parcels,)
    parcels : DataFrame
        Columns ``name``, ``hemisphere``, ``network``.
    top : int, optional
        Keep this many rows.

    Returns
    -------
    DataFrame
        Columns name, hemisphere, network, value; ties keep parcel order, NaN last.
    """
    table = parcels[["name", "hemisphere", "network"]].reset_index(drop=True).assign(value=values)
    magnitude = np.abs(np.asarray(values, dtype=float))
    order = np.argsort(-np.where(np.isnan(magnitude), -1.0, magnitude), kind="stable")
    ranked = table.iloc[order].reset_index(drop=True)
    return ranked if top is None else ranked.head(top)
