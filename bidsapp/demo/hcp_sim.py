"""Simulation of HCP-style parcellated time series (Glasser 360, TR 0.72 s).

Each parcel's signal is::

    baseline * (1 + (network + task + global + drift) / 100) + noise

* ``network``: one band-limited (0.01-0.1 Hz) latent per Cole-Anticevic
  network (the ``network`` column of the Glasser table); a parcel mixes its
  network's latent and its own signal so that two parcels of one network
  correlate at :data:`~bidsapp.demo.truth.HCP_WITHIN_NETWORK_CORRELATION`
  (noise-free); latents are orthogonal, so different networks do not.
* ``task``: condition boxcars convolved with the Glover HRF times the
  parcel amplitudes of :func:`task_amplitudes`.
* ``global``, ``drift`` and white noise are small nuisance terms.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import pandas as pd

from . import truth
from .events import hcp_task_events
from .signals import band_limited, event_regressor, orthonormal_band_limited

__all__ = [
    "HcpRun",
    "hcp_subject_ids",
    "run_names",
    "task_amplitudes",
    "simulate_hcp_subject",
]


@dataclass(frozen=True, eq=False)
class HcpRun:
    """One simulated HCP run.

    Attributes
    ----------
    name : str
        Entry of :data:`~bidsapp.demo.truth.HCP_BOLD_NAMES`.
    index : int
        Its 1-based position in that list (the ``bold<k>`` file number).
    data : ndarray of shape (360, n_frames)
        Parcel time series.
    evs : dict of str to ndarray
        Per condition, FSL 3-column EV rows (task runs only).
    """

    name: str
    index: int
    data: np.ndarray
    evs: dict


def hcp_subject_ids(n: int) -> list[str]:
    """``n`` real-looking 6-digit HCP subject ids.

    Parameters
    ----------
    n : int

    Returns
    -------
    list of str
    """
    ids = list(truth.HCP_SUBJECT_IDS[:n])
    ids += [str(200000 + k) for k in range(n - len(ids))]
    return ids


def run_names(tasks, n_rest: int = 4) -> list[tuple[str, int]]:
    """Runs to simulate with their 1-based ``bold<k>`` numbers.

    Parameters
    ----------
    tasks : sequence of str
        HCP task names (e.g. ``"MOTOR"``).
    n_rest : int, default=4

    Returns
    -------
    list of (str, int)
    """
    wanted = {t.upper() for t in tasks}
    out = []
    for k, name in enumerate(truth.HCP_BOLD_NAMES, 1):
        task = name.split("_")[1]
        if (name.startswith("rfMRI") and k <= n_rest) or task in wanted:
            out.append((name, k))
    return out


def task_amplitudes(table: pd.DataFrame, task: str) -> dict[str, np.ndarray]:
    """Planted percent signal change of each condition in each parcel.

    Parameters
    ----------
    table : DataFrame
        The Glasser table.
    task : {"MOTOR", "EMOTION", "GAMBLING"}

    Returns
    -------
    dict of str to ndarray of shape (360,)
    """
    names = table["name"].to_numpy()
    visual = table["network"].isin(truth.HCP_VISUAL_NETWORKS).to_numpy()
    right = np.isin(names, truth.HCP_RIGHT_SOMATOMOTOR)
    left = np.isin(names, truth.HCP_LEFT_SOMATOMOTOR)
    zero = np.zeros(len(names))
    if task == "MOTOR":
        return {
            "cue": truth.HCP_CUE_PSC * visual,
            "lf": truth.HCP_MOTOR_PSC * right,
            "lh": truth.HCP_MOTOR_PSC * right,
            "rf": truth.HCP_MOTOR_PSC * left,
            "rh": truth.HCP_MOTOR_PSC * left,
            "t": truth.HCP_TONGUE_PSC * (right | left),
        }
    if task == "EMOTION":
        stim = truth.HCP_STIMULUS_VISUAL_PSC * visual
        fear = stim + truth.HCP_FEAR_EXTRA_PSC * np.isin(names, truth.HCP_EMOTION_PARCELS)
        return {"fear": fear, "neut": stim + zero}
    if task == "GAMBLING":
        stim = truth.HCP_STIMULUS_VISUAL_PSC * visual
        win = stim + truth.HCP_WIN_EXTRA_PSC * np.isin(names, truth.HCP_GAMBLING_PARCELS)
        return {"win": win, "loss": stim + zero}
    raise ValueError(f"unknown HCP task {task!r}")


def _simulate_run(rng, table, n_frames, amplitudes, evs, baseline, corr_default):
    """Parcel time series of one run (360 x n_frames)."""
    tr = truth.HCP_TR
    nets = table["network"].to_numpy()
    unique = sorted(set(nets))
    latent = orthonormal_band_limited(rng, n_frames, tr, len(unique), truth.NETWORK_BAND_HZ)
    own = band_limited(rng, n_frames, tr, len(nets), truth.NETWORK_BAND_HZ)
    r = np.where(nets == "Default", corr_default, truth.HCP_WITHIN_NETWORK_CORRELATION)
    idx = np.array([unique.index(n) for n in nets])
    percent = truth.HCP_NETWORK_SIGNAL_PERCENT * (
        np.sqrt(r)[:, None] * latent[:, idx].T + np.sqrt(1.0 - r)[:, None] * own.T
    )
    gsig = band_limited(rng, n_frames, tr, 1, (0.0, 0.1))[:, 0]
    percent += 0.2 * gsig[None, :]
    t = np.linspace(-1.0, 1.0, n_frames)
    percent += rng.normal(0.0, 0.3, size=(len(nets), 1)) * t[None, :]
    for cond, amp in amplitudes.items():
        if cond in evs and len(evs[cond]):
            reg = event_regressor(evs[cond][:, 0], evs[cond][:, 1], n_frames, tr)
            percent += amp[:, None] * reg[None, :]
    data = baseline[:, None] * (1.0 + percent / 100.0)
    data += rng.normal(size=data.shape) * (0.004 * baseline[:, None])
    return data


def simulate_hcp_subject(
    table: pd.DataFrame,
    subject_index: int,
    *,
    seed: int = 0,
    rest_frames: int = truth.HCP_REST_FRAMES,
    tasks=("MOTOR", "EMOTION", "GAMBLING"),
    group: str = "control",
) -> list[HcpRun]:
    """Simulate all runs of one HCP subject.

    Parameters
    ----------
    table : DataFrame
        The Glasser table.
    subject_index : int
        0-based position of the subject (selects its random stream).
    seed : int, default=0
    rest_frames : int, default=300
        Frames of each of the four resting runs.
    tasks : sequence of str
        Tasks to simulate (others are absent).
    group : {"control", "patient"}, default="control"
        Patients have weaker ``Default``-network coupling.

    Returns
    -------
    list of HcpRun
        In ``bold<k>`` order.
    """
    sub_rng = np.random.default_rng(np.random.SeedSequence(seed, spawn_key=(1000, subject_index)))
    baseline = truth.HCP_BASELINE * (1.0 + 0.2 * np.clip(sub_rng.normal(size=len(table)), -2.5, 2.5) / 2.5)
    corr_default = (
        truth.HCP_PATIENT_DEFAULT_CORRELATION if group == "patient" else truth.HCP_WITHIN_NETWORK_CORRELATION
    )
    runs = []
    for name, k in run_names(tasks):
        rng = np.random.default_rng(np.random.SeedSequence(seed, spawn_key=(1000, subject_index, k)))
        if name.startswith("rfMRI"):
            n_frames, evs, amps = rest_frames, {}, {}
        else:
            task = name.split("_")[1]
            n_frames = truth.HCP_TASK_FRAMES[task]
            evs = hcp_task_events(task, 0 if name.endswith("RL") else 1, rng)
            amps = task_amplitudes(table, task)
        data = _simulate_run(rng, table, n_frames, amps, evs, baseline, corr_default)
        runs.append(HcpRun(name=name, index=k, data=data, evs=evs))
    return runs
