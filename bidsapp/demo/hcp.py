"""HCP-style parcellated demo data in two layouts.

:func:`write_hcp_course_dataset` writes the layout of the HCP course
(Neuromatch) notebooks::

    regions.npy                                   (360, 3): name, network, myelin
    atlas.npz                                     labels_R, labels_L (fsaverage5 vertices), coords (360, 3)
    subjects/100307/timeseries/bold5_Atlas_MSMAll_Glasser360Cortical.npy   (360, T)
    subjects/100307/EVs/tfMRI_MOTOR_RL/lf.txt     onset  duration  amplitude

``bold<k>`` is the 1-based position in
:data:`~bidsapp.demo.truth.HCP_BOLD_NAMES` (rest k=1..4, MOTOR 5-6,
EMOTION 9-10, GAMBLING 11-12); runs of tasks not simulated are absent.

:func:`write_hcp_bids_dataset` writes the same simulated arrays in a
BIDS-Derivatives-like form::

    sub-100307/func/sub-100307_task-motor_dir-RL_space-fsLR_seg-Glasser_stat-mean_timeseries.tsv
    sub-100307/func/sub-100307_task-motor_dir-RL_space-fsLR_seg-Glasser_stat-mean_timeseries.json
    sub-100307/func/sub-100307_task-motor_dir-RL_events.tsv
    sub-100307/func/sub-100307_task-rest_dir-LR_run-1_space-fsLR_seg-Glasser_stat-mean_timeseries.tsv

Both writers simulate deterministically from ``seed``, so calling them with
the same arguments gives the same numbers.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pandas as pd

from bidsapp.inputs.parcel_labels import glasser_table

from .. import __version__
from . import truth
from ._io import write_json, write_text, write_tsv
from .hcp_sim import hcp_subject_ids, simulate_hcp_subject

__all__ = [
    "write_hcp_course_dataset",
    "write_hcp_bids_dataset",
    "write_hcp_datasets",
    "hcp_bids_stem",
]

_TASKS = ("MOTOR", "EMOTION", "GAMBLING")


def _subjects(subjects) -> list[str]:
    """Subject ids from a count or a sequence."""
    if isinstance(subjects, (int, np.integer)):
        return hcp_subject_ids(int(subjects))
    ids = [str(s).removeprefix("sub-") for s in subjects]
    if not ids or any(not s.isalnum() for s in ids):
        raise ValueError(f"invalid subject ids: {subjects!r}")
    return ids


def _groups(n: int) -> list[str]:
    """Alternating control/patient groups."""
    return [truth.GROUP_LEVELS[i % 2] for i in range(n)]


def _format_ev(rows: np.ndarray) -> str:
    """FSL 3-column text (tab-separated, like the HCP EV files)."""
    return "".join(f"{o:g}\t{d:g}\t{a:g}\n" for o, d, a in rows)


def write_hcp_course_dataset(
    hcp_dir,
    *,
    subjects=8,
    seed: int = 0,
    rest_frames: int = truth.HCP_REST_FRAMES,
    tasks=_TASKS,
) -> Path:
    """Write the HCP course layout (``regions.npy``, ``subjects/<id>/...``).

    Parameters
    ----------
    hcp_dir : str or Path
        Output directory (created).
    subjects : int or sequence of str, default=8
        Number of subjects (ids from :data:`~bidsapp.demo.truth.HCP_SUBJECT_IDS`)
        or explicit ids.
    seed : int, default=0
    rest_frames : int, default=300
        Frames of each resting run (real HCP runs have 1200).
    tasks : sequence of {"MOTOR", "EMOTION", "GAMBLING"}
        Tasks to simulate.

    Returns
    -------
    Path
        ``hcp_dir``.
    """
    write_hcp_datasets(hcp_dir, None, subjects=subjects, seed=seed, rest_frames=rest_frames, tasks=tasks)
    return Path(hcp_dir)


def _write_regions(hcp_dir: Path, table: pd.DataFrame) -> None:
    """``regions.npy``: (360, 3) strings name, network, myelin."""
    hcp_dir.mkdir(parents=True, exist_ok=True)
    regions = np.array(
        [[n, w, f"{m:g}"] for n, w, m in zip(table["name"], table["network"], table["myelin"], strict=True)]
    )
    np.save(hcp_dir / "regions.npy", regions)


def _write_atlas(hcp_dir: Path, table: pd.DataFrame) -> None:
    """``atlas.npz`` as the HCP course has it: each fsaverage5 vertex's parcel and each parcel's centroid.

    ``labels_R`` and ``labels_L`` give the 0-based parcel (row of ``regions.npy``) of each vertex of the right
    and left hemisphere, ``coords`` each parcel's centroid in mm. The places are synthetic: the parcels of
    a hemisphere are k-means clusters of its pial vertices (deterministic), not the Glasser areas.
    """
    from nilearn.datasets import load_fsaverage
    from scipy.cluster.vq import kmeans2

    pial = load_fsaverage("fsaverage5")["pial"]
    labels, coords = {}, np.full((len(table), 3), np.nan)
    for hemisphere in ("right", "left"):
        parcels = np.flatnonzero(table["hemisphere"].to_numpy() == hemisphere)
        vertices = np.asarray(pial.parts[hemisphere].coordinates, dtype=float)
        centres, cluster = kmeans2(vertices, len(parcels), seed=0, minit="++")
        labels[hemisphere] = parcels[cluster]
        coords[parcels] = centres
    np.savez(hcp_dir / "atlas.npz", labels_R=labels["right"], labels_L=labels["left"], coords=coords.round(2))


def _write_course_subject(hcp_dir: Path, sid: str, runs) -> None:
    """Time series ``.npy`` files and EV files of one subject."""
    ts_dir = hcp_dir / "subjects" / sid / "timeseries"
    ts_dir.mkdir(parents=True, exist_ok=True)
    for run in runs:
        np.save(ts_dir / f"bold{run.index}_Atlas_MSMAll_Glasser360Cortical.npy", run.data.astype(np.float32))
        for cond, rows in run.evs.items():
            write_text(hcp_dir / "subjects" / sid / "EVs" / run.name / f"{cond}.txt", _format_ev(rows))


def hcp_bids_stem(sid: str, run_name: str) -> str:
    """BIDS stem of an HCP run, e.g. ``sub-100307_task-rest_dir-LR_run-1``.

    Parameters
    ----------
    sid : str
        Subject id.
    run_name : str
        Entry of :data:`~bidsapp.demo.truth.HCP_BOLD_NAMES`.

    Returns
    -------
    str
    """
    _, task, direction = run_name.split("_")
    if task.startswith("REST"):
        return f"sub-{sid}_task-rest_dir-{direction}_run-{task[4:]}"
    return f"sub-{sid}_task-{task.lower()}_dir-{direction}"


def _events_table(evs: dict, task: str) -> pd.DataFrame:
    """BIDS events of one HCP task run (the conditions of HCP_CONDITIONS)."""
    rows = [
        (o, d, cond, a)
        for cond in truth.HCP_CONDITIONS[task]
        for o, d, a in evs.get(cond, np.empty((0, 3)))
    ]
    table = pd.DataFrame(rows, columns=["onset", "duration", "trial_type", "amplitude"])
    return table.sort_values(["onset", "trial_type"], kind="stable").reset_index(drop=True)


def _write_bids_top(root: Path, ids: list[str], seed: int) -> None:
    """dataset_description.json, README and participants files."""
    write_json(
        root / "dataset_description.json",
        {
            "Name": "bidsapp demo: simulated HCP-style Glasser-360 parcel time series",
            "BIDSVersion": "1.10.0",
            "DatasetType": "derivative",
            "GeneratedBy": [
                {
                    "Name": "bidsapp.demo",
                    "Version": __version__,
                    "Description": f"Simulated HCP-like parcellated data (seed {seed}); no human was scanned.",
                }
            ],
        },
    )
    write_text(
        root / "README.md",
        "# bidsapp demo: HCP-style parcellated data (simulated)\n\n"
        "Glasser-360 parcel time series (TR 0.72 s) of resting, MOTOR, EMOTION and\n"
        "GAMBLING runs, one column per parcel (right hemisphere first). Planted\n"
        "effects are listed in `bidsapp/demo/truth.py`.\n",
    )
    rng = np.random.default_rng(np.random.SeedSequence(seed, spawn_key=(2000,)))
    participants = pd.DataFrame(
        {
            "participant_id": [f"sub-{s}" for s in ids],
            truth.GROUP_COLUMN: _groups(len(ids)),
            "age": rng.integers(22, 36, size=len(ids)),
            "sex": [("M", "F")[(i // 2) % 2] for i in range(len(ids))],
        }
    )
    write_tsv(root / "participants.tsv", participants)
    write_json(
        root / "participants.json",
        {
            "participant_id": {"Description": "HCP-like subject identifier."},
            truth.GROUP_COLUMN: {
                "Description": "Simulated group.",
                "Levels": {"control": "control", "patient": "weaker Default-network coupling"},
            },
            "age": {"Description": "Age.", "Units": "year"},
            "sex": {"Description": "Sex.", "Levels": {"F": "female", "M": "male"}},
        },
    )


def write_hcp_bids_dataset(
    hcp_bids_dir,
    *,
    subjects=8,
    seed: int = 0,
    rest_frames: int = truth.HCP_REST_FRAMES,
    tasks=_TASKS,
) -> Path:
    """Write the BIDS-style parcellated form of the HCP simulation.

    Same arguments (and, for equal arguments, the same numbers) as
    :func:`write_hcp_course_dataset`.

    Parameters
    ----------
    hcp_bids_dir : str or Path
        Output directory (created).
    subjects : int or sequence of str, default=8
    seed : int, default=0
    rest_frames : int, default=300
    tasks : sequence of {"MOTOR", "EMOTION", "GAMBLING"}

    Returns
    -------
    Path
        ``hcp_bids_dir``.
    """
    write_hcp_datasets(None, hcp_bids_dir, subjects=subjects, seed=seed, rest_frames=rest_frames, tasks=tasks)
    return Path(hcp_bids_dir)


def _write_bids_subject(root: Path, sid: str, runs, names: list[str]) -> None:
    """Parcel time-series TSV/JSON and events of one subject."""
    func = root / f"sub-{sid}" / "func"
    func.mkdir(parents=True, exist_ok=True)
    for run in runs:
        stem = hcp_bids_stem(sid, run.name)
        _, task, direction = run.name.split("_")
        task_label = "rest" if task.startswith("REST") else task.lower()
        ts = f"{stem}_space-fsLR_seg-Glasser_stat-mean_timeseries"
        (func / f"{ts}.tsv").write_text(_fast_tsv(names, run.data.T))
        write_json(
            func / f"{ts}.json",
            {
                "RepetitionTime": truth.HCP_TR,
                "TaskName": task_label,
                "PhaseEncodingDirection": {"LR": "i", "RL": "i-"}[direction],
                "Atlas": "Glasser",
                "Space": "fsLR",
                "Description": f"Mean of each Glasser-360 parcel; HCP run {run.name}.",
            },
        )
        if run.evs:
            write_tsv(func / f"{stem}_events.tsv", _events_table(run.evs, task))


def write_hcp_datasets(
    hcp_dir,
    hcp_bids_dir,
    *,
    subjects=8,
    seed: int = 0,
    rest_frames: int = truth.HCP_REST_FRAMES,
    tasks=_TASKS,
) -> tuple[Path | None, Path | None]:
    """Simulate once and write the course layout and/or the BIDS form.

    Parameters
    ----------
    hcp_dir : str or Path or None
        Course-layout directory, or ``None`` to skip it.
    hcp_bids_dir : str or Path or None
        BIDS-form directory, or ``None`` to skip it.
    subjects : int or sequence of str, default=8
    seed : int, default=0
    rest_frames : int, default=300
    tasks : sequence of {"MOTOR", "EMOTION", "GAMBLING"}

    Returns
    -------
    (Path or None, Path or None)
    """
    table = glasser_table()
    ids = _subjects(subjects)
    course = Path(hcp_dir) if hcp_dir is not None else None
    bids = Path(hcp_bids_dir) if hcp_bids_dir is not None else None
    if course is not None:
        _write_regions(course, table)
        _write_atlas(course, table)
    if bids is not None:
        _write_bids_top(bids, ids, seed)
        write_tsv(
            bids / "atlases" / "atlas-Glasser" / "atlas-Glasser_dseg.tsv",
            table[["index", "name", "hemisphere", "network"]],
        )
    names = table["name"].tolist()
    for i, (sid, group) in enumerate(zip(ids, _groups(len(ids)), strict=True)):
        runs = simulate_hcp_subject(table, i, seed=seed, rest_frames=rest_frames, tasks=tasks, group=group)
        if course is not None:
            _write_course_subject(course, sid, runs)
        if bids is not None:
            _write_bids_subject(bids, sid, runs, names)
    return course, bids


def _fast_tsv(header: list[str], data: np.ndarray) -> str:
    """Tab-separated text of a float matrix rounded to integers (0.01 % of baseline)."""
    rows = np.rint(data).astype(np.int64).tolist()
    body = "\n".join("\t".join(map(str, row)) for row in rows)
    return "\t".join(header) + "\n" + body + "\n"
