"""Experimental timing of the simulated tasks.

* :func:`motor_block_events` - the block design of the voxel-wise dataset
  (``task-motor``: ``lf`` and ``rf`` blocks).
* :func:`hcp_task_events` - HCP-like timing of MOTOR, EMOTION and GAMBLING
  runs (TR 0.72 s), returned as one table per condition.
"""

from __future__ import annotations

import numpy as np
import pandas as pd

from . import truth

__all__ = ["motor_block_events", "hcp_task_events"]


def motor_block_events(run: int, n_frames: int, tr: float) -> pd.DataFrame:
    """Block design of the voxel-wise motor task.

    Parameters
    ----------
    run : int
        1-based run number; odd runs start with ``lf``, even runs with ``rf``.
    n_frames : int
        Number of volumes of the run.
    tr : float
        Repetition time in seconds.

    Returns
    -------
    DataFrame
        Columns ``onset``, ``duration``, ``trial_type``: blocks of
        :data:`~bidsapp.demo.truth.TASK_BLOCK_DURATION_S` every
        :data:`~bidsapp.demo.truth.TASK_BLOCK_PERIOD_S` from
        :data:`~bidsapp.demo.truth.TASK_FIRST_ONSET_S`, that end before the
        run does.
    """
    conds = list(truth.TASK_CONDITIONS)
    if run % 2 == 0:
        conds = conds[::-1]
    rows = []
    onset = truth.TASK_FIRST_ONSET_S
    end = n_frames * tr
    i = 0
    while onset + truth.TASK_BLOCK_DURATION_S <= end - 5.0:
        rows.append((onset, truth.TASK_BLOCK_DURATION_S, conds[i % len(conds)]))
        onset += truth.TASK_BLOCK_PERIOD_S
        i += 1
    return pd.DataFrame(rows, columns=["onset", "duration", "trial_type"])


def _motor(rng: np.random.Generator, run: int) -> dict[str, list]:
    """HCP MOTOR: 10 movement blocks of 12 s, each after a 3-s cue."""
    order = ["rf", "t", "lh", "rh", "lf", "t", "rf", "lh", "lf", "rh"]
    if run == 1:
        order = ["lh", "rf", "t", "lf", "rh", "t", "lh", "rf", "rh", "lf"]
    out: dict[str, list] = {c: [] for c in truth.HCP_CONDITIONS["MOTOR"]}
    t = 8.0 + rng.uniform(-0.2, 0.2)
    for i, cond in enumerate(order):
        out["cue"].append((round(t, 3), 3.0))
        out[cond].append((round(t + 3.0, 3), 12.0))
        t += 15.0
        if i in (2, 6):  # two 15-s fixation blocks
            t += 15.0
    return out


def _emotion(rng: np.random.Generator, run: int) -> dict[str, list]:
    """HCP EMOTION: 18-s shape (neut) and face (fear) blocks after 3-s cues.

    As in the real HCP data, the run stops before the last block ends.
    """
    first, second = ("neut", "fear") if run == 0 else ("fear", "neut")
    out: dict[str, list] = {"fear": [], "neut": []}
    t = 12.0 + rng.uniform(-0.3, 0.3)
    for i in range(6):
        cond = first if i % 2 == 0 else second
        out[cond].append((round(t + 3.0, 3), 18.0))
        t += 21.0
    return out


def _gambling(rng: np.random.Generator, run: int) -> dict[str, list]:
    """HCP GAMBLING: 4 blocks of 8 trials of 3.5 s (2 reward, 2 loss).

    Block files ``win``/``loss`` hold the 28-s blocks; ``neut`` and the
    ``*_event`` files hold single trials (3.5 s) by outcome.
    """
    blocks = ["win", "loss", "loss", "win"] if run == 0 else ["loss", "win", "win", "loss"]
    out: dict[str, list] = {k: [] for k in ("win", "loss", "neut", "win_event", "loss_event", "neut_event")}
    t = 8.0 + rng.uniform(-0.2, 0.2)
    for kind in blocks:
        out[kind].append((round(t, 3), 28.0))
        outcomes = [kind] * 6 + ["neut", "loss" if kind == "win" else "win"]
        for j, outcome in enumerate(rng.permutation(outcomes)):
            onset = round(t + 3.5 * j, 3)
            out[f"{outcome}_event"].append((onset, 3.5))
            if outcome == "neut":
                out["neut"].append((onset, 3.5))
        t += 28.0 + 15.0
    return out


def hcp_task_events(task: str, run: int, rng: np.random.Generator) -> dict[str, np.ndarray]:
    """HCP-like EV timing of one task run.

    Parameters
    ----------
    task : {"MOTOR", "EMOTION", "GAMBLING"}
    run : int
        0 for the RL run (first in BOLD_NAMES), 1 for LR.
    rng : numpy.random.Generator
        Jitters the start of the run by a few hundred ms.

    Returns
    -------
    dict of str to ndarray of shape (n_events, 3)
        Per condition, FSL 3-column rows (onset, duration, amplitude=1).
    """
    maker = {"MOTOR": _motor, "EMOTION": _emotion, "GAMBLING": _gambling}[task]
    timing = maker(rng, run)
    return {
        cond: np.array([(o, d, 1.0) for o, d in rows], dtype=float).reshape(-1, 3)
        for cond, rows in timing.items()
    }
