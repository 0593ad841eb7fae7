"""Raw BIDS part of the voxel-wise demo dataset.

Writes the dataset-level files (``dataset_description.json``, ``README``,
``participants.tsv``/``.json``, ``task-motor_events.json``) and, per run,
a small raw BOLD image (the simulated run block-averaged to three times the
voxel size, stored as int16 like scanner data), its JSON sidecar and, for
the task, its ``_events.tsv``.  The result passes ``bids-validator``.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pandas as pd

from .. import __version__
from . import truth
from ._io import write_json, write_nifti, write_text, write_tsv
from .grid import Grid, downsample_mean

__all__ = [
    "write_raw_dataset_files",
    "participants_table",
    "write_raw_anat",
    "write_raw_bold",
]

_README = """\
# bidsapp demo dataset (simulated)

Every image and table in this dataset was synthesised by `bidsapp.demo`
(seeded, deterministic); no human was scanned.  It mimics a small study:
a resting-state run and {n_task_runs} block-design motor run(s)
(`lf` = left foot, `rf` = right foot) per participant, two groups
(`control`, `patient`), and fMRIPrep-style derivatives under
`derivatives/fmriprep`.

Planted effects (see `bidsapp/demo/truth.py` for the exact values):

- `lf` activates right motor cortex around MNI (38, -22, 56), `rf` left
  motor cortex around (-38, -22, 56); both activate visual cortex around
  (0, -88, 4).
- Default-mode, somatomotor and visual network nodes share a latent
  0.01-0.1 Hz signal; patients have weaker default-mode coupling.
- Head motion with a few sudden movements per run, two non-steady-state
  volumes at the start of every run, drifts and physiological noise.

The raw BOLD images are low-resolution copies of the simulated data; the
analysis-ready data are the derivatives.
"""


def participants_table(labels: list[str], seed: int = 0) -> pd.DataFrame:
    """Participants with alternating groups, ages and sexes.

    Parameters
    ----------
    labels : list of str
        Participant labels without ``sub-``.
    seed : int, default=0

    Returns
    -------
    DataFrame
        Columns participant_id, group, age, sex.
    """
    rng = np.random.default_rng(np.random.SeedSequence(seed, spawn_key=(99,)))
    n = len(labels)
    return pd.DataFrame(
        {
            "participant_id": [f"sub-{lab}" for lab in labels],
            truth.GROUP_COLUMN: [truth.GROUP_LEVELS[i % 2] for i in range(n)],
            "age": rng.integers(20, 61, size=n),
            "sex": [("F", "M")[(i // 2) % 2] for i in range(n)],
        }
    )


def write_raw_dataset_files(bids_dir: Path, labels: list[str], *, n_task_runs: int, seed: int) -> pd.DataFrame:
    """Write the dataset-level files of the raw BIDS dataset.

    Parameters
    ----------
    bids_dir : Path
    labels : list of str
    n_task_runs : int
    seed : int

    Returns
    -------
    DataFrame
        The participants table that was written.
    """
    write_json(
        bids_dir / "dataset_description.json",
        {
            "Name": "bidsapp demo: simulated motor task and resting state",
            "BIDSVersion": "1.10.0",
            "DatasetType": "raw",
            "License": "CC0",
            "Authors": ["bidsapp developers"],
            "Acknowledgements": "Synthetic data made by bidsapp.demo; no participant was scanned.",
            "HowToAcknowledge": "Cite bidsapp if this demo helped you.",
            "GeneratedBy": [
                {
                    "Name": "bidsapp.demo",
                    "Version": __version__,
                    "Description": f"Simulated with seed {seed}.",
                }
            ],
        },
    )
    write_text(bids_dir / "README.md", _README.format(n_task_runs=n_task_runs))
    table = participants_table(labels, seed)
    write_tsv(bids_dir / "participants.tsv", table)
    write_json(
        bids_dir / "participants.json",
        {
            "participant_id": {"Description": "Unique participant identifier."},
            truth.GROUP_COLUMN: {
                "Description": "Diagnostic group.",
                "Levels": {
                    "control": "Healthy control.",
                    "patient": "Patient (simulated: weaker default-mode coupling).",
                },
            },
            "age": {"Description": "Age at scan.", "Units": "year"},
            "sex": {
                "Description": "Sex of the participant.",
                "Levels": {"F": "female", "M": "male"},
            },
        },
    )
    write_json(
        bids_dir / f"task-{truth.TASK_NAME}_events.json",
        {
            "onset": {"Description": "Block onset from the first volume.", "Units": "s"},
            "duration": {"Description": "Block duration.", "Units": "s"},
            "trial_type": {
                "Description": "Movement performed during the block.",
                "Levels": {"lf": "left foot movement", "rf": "right foot movement"},
            },
        },
    )
    return table


def write_raw_anat(bids_dir: Path, sub: str, ses: str | None, grid: Grid) -> Path:
    """Write a small T1w image (the MNI152 template on the grid).

    Parameters
    ----------
    bids_dir : Path
    sub : str
    ses : str or None
    grid : Grid

    Returns
    -------
    Path
    """
    stem = f"sub-{sub}" + (f"_ses-{ses}" if ses else "")
    folder = bids_dir / f"sub-{sub}" / (f"ses-{ses}" if ses else "") / "anat"
    return write_nifti(folder / f"{stem}_T1w.nii.gz", grid.t1 * 1000.0, grid.affine, dtype=np.int16)


def write_raw_bold(
    bids_dir: Path,
    stem: str,
    sub: str,
    ses: str | None,
    volume: np.ndarray,
    grid: Grid,
    *,
    task: str,
    tr: float,
    events: pd.DataFrame | None = None,
) -> Path:
    """Write one raw BOLD run (low resolution), its sidecar and events.

    Parameters
    ----------
    bids_dir : Path
    stem : str
        File stem, e.g. ``sub-01_task-motor_run-01``.
    sub, ses : str
        Participant and (optional) session labels.
    volume : ndarray
        4D simulated run on ``grid``.
    grid : Grid
    task : str
    tr : float
    events : DataFrame, optional

    Returns
    -------
    Path
        The BOLD image path.
    """
    folder = bids_dir / f"sub-{sub}" / (f"ses-{ses}" if ses else "") / "func"
    factor = 3
    small = downsample_mean(volume, factor)
    affine = grid.affine.copy()
    affine[:3, :3] *= factor
    affine[:3, 3] += (factor - 1) / 2.0 * grid.resolution
    path = write_nifti(folder / f"{stem}_bold.nii.gz", small, affine, tr=tr, dtype=np.int16)
    n_slices = small.shape[2]
    write_json(
        folder / f"{stem}_bold.json",
        {
            "TaskName": task,
            "RepetitionTime": tr,
            "EchoTime": 0.03,
            "FlipAngle": 77,
            "MagneticFieldStrength": 3,
            "Manufacturer": "Simulated",
            "PhaseEncodingDirection": "j-",
            "SliceEncodingDirection": "k",
            "SliceTiming": [round(k * tr / n_slices, 4) for k in range(n_slices)],
            "TaskDescription": (
                "Rest with eyes open." if events is None else "Alternating blocks of left and right foot movement."
            ),
        },
    )
    if events is not None:
        write_tsv(folder / f"{stem}_events.tsv", events)
    return path
