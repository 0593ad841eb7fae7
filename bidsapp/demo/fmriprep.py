"""A raw BIDS dataset with fMRIPrep derivatives, simulated.

:func:`write_fmriprep_dataset` simulates every run once (see
:mod:`bidsapp.demo.bold`) and writes it twice: a small raw copy under
``bids_dir`` and the analysis-ready, MNI-space copy with its mask and
confounds under ``bids_dir/derivatives/fmriprep``, named as the fMRIPrep
generation chosen with ``confounds_naming`` names them:

``"21+"`` (fMRIPrep 23.2.1)::

    sub-01_task-motor_run-1_space-MNI152NLin2009cAsym_desc-preproc_bold.nii.gz
    sub-01_task-motor_run-1_space-MNI152NLin2009cAsym_desc-preproc_bold.json
    sub-01_task-motor_run-1_space-MNI152NLin2009cAsym_desc-brain_mask.nii.gz
    sub-01_task-motor_run-1_space-MNI152NLin2009cAsym_boldref.nii.gz
    sub-01_task-motor_run-1_desc-confounds_timeseries.tsv (+ .json)

``"1.4"`` (fMRIPrep 1.4.1): as above but ``desc-confounds_regressors``.

``"1.0"`` (fMRIPrep 1.0.15), no JSON sidecars::

    sub-01_task-motor_run-1_bold_space-MNI152NLin2009cAsym_preproc.nii.gz
    sub-01_task-motor_run-1_bold_space-MNI152NLin2009cAsym_brainmask.nii.gz
    sub-01_task-motor_run-1_bold_confounds.tsv

Raw runs are ``run-01``, ``run-02``...; derivative runs are ``run-1``,
``run-2``... as several fMRIPrep versions write them.
"""

from __future__ import annotations

import os
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import Any

import numpy as np

from .. import __version__
from . import truth
from ._io import participant_labels, write_json, write_nifti, write_tsv
from .bold import simulate_run
from .confounds import NAMINGS, compute_confounds
from .events import motor_block_events
from .grid import mni_grid
from .rawbids import write_raw_anat, write_raw_bold, write_raw_dataset_files

__all__ = ["FMRIPREP_VERSIONS", "SPACE", "derivative_paths", "write_fmriprep_dataset"]

#: fMRIPrep version emulated by each ``confounds_naming``.
FMRIPREP_VERSIONS = {"21+": "23.2.1", "1.4": "1.4.1", "1.0": "1.0.15"}
#: Output space of the preprocessed runs.
SPACE = "MNI152NLin2009cAsym"
#: Preprocessed BOLD values are rounded to multiples of this (0.2 % of the
#: baseline, a fifth of the thermal-noise SD; keeps the gzipped float32 small).
_QUANTUM = 2.0


def derivative_paths(folder: Path, prefix: str, naming: str) -> dict[str, Path | None]:
    """File names of one preprocessed run for a given fMRIPrep generation.

    Parameters
    ----------
    folder : Path
        The run's ``func`` folder in the derivatives.
    prefix : str
        Entities up to the run, e.g. ``sub-01_ses-1_task-motor_run-1``.
    naming : {"21+", "1.4", "1.0"}

    Returns
    -------
    dict
        Keys ``bold``, ``bold_json``, ``mask``, ``boldref``, ``confounds``,
        ``confounds_json``; ``None`` where that generation wrote no file.
    """
    if naming == "1.0":
        return {
            "bold": folder / f"{prefix}_bold_space-{SPACE}_preproc.nii.gz",
            "bold_json": None,
            "mask": folder / f"{prefix}_bold_space-{SPACE}_brainmask.nii.gz",
            "boldref": None,
            "confounds": folder / f"{prefix}_bold_confounds.tsv",
            "confounds_json": None,
        }
    suffix = "timeseries" if naming == "21+" else "regressors"
    return {
        "bold": folder / f"{prefix}_space-{SPACE}_desc-preproc_bold.nii.gz",
        "bold_json": folder / f"{prefix}_space-{SPACE}_desc-preproc_bold.json",
        "mask": folder / f"{prefix}_space-{SPACE}_desc-brain_mask.nii.gz",
        "boldref": folder / f"{prefix}_space-{SPACE}_boldref.nii.gz",
        "confounds": folder / f"{prefix}_desc-confounds_{suffix}.tsv",
        "confounds_json": folder / f"{prefix}_desc-confounds_{suffix}.json",
    }


def _write_description(fmriprep_dir: Path, naming: str, seed: int) -> None:
    """dataset_description.json of the derivatives, per generation."""
    version = FMRIPREP_VERSIONS[naming]
    code_url = f"https://github.com/nipreps/fmriprep/archive/{version}.tar.gz"
    desc: dict[str, Any] = {
        "Name": "fMRIPrep - fMRI PREProcessing workflow",
        "BIDSVersion": {"21+": "1.4.0", "1.4": "1.1.1", "1.0": "1.0.2"}[naming],
        "DatasetType": "derivative",
        "GeneratedBy": [
            {"Name": "fMRIPrep", "Version": version, "CodeURL": code_url},
            {
                "Name": "bidsapp.demo",
                "Version": __version__,
                "Description": f"Simulated outputs emulating fMRIPrep {version} (seed {seed}).",
            },
        ],
        "HowToAcknowledge": "Simulated data; nothing to acknowledge.",
    }
    if naming != "21+":  # older releases described themselves with this key
        desc["PipelineDescription"] = {"Name": "fMRIPrep", "Version": version, "CodeURL": code_url}
    write_json(fmriprep_dir / "dataset_description.json", desc)


def _write_derivative_run(paths, sim, grid, *, task, naming) -> None:
    """Preprocessed BOLD, mask, boldref, sidecar and confounds of one run."""
    volume = sim.to_volume(grid, quantum=_QUANTUM)
    write_nifti(paths["bold"], volume, grid.affine, tr=sim.tr, xform_code=4)
    write_nifti(paths["mask"], grid.mask, grid.affine, dtype=np.uint8, xform_code=4)
    if paths["boldref"] is not None:
        ref = np.zeros(grid.shape, dtype=np.float32)
        ref[grid.mask] = sim.data[:, truth.N_NON_STEADY_STATE :].mean(1)
        write_nifti(paths["boldref"], ref, grid.affine, quantum=_QUANTUM, xform_code=4)
    if paths["bold_json"] is not None:
        write_json(
            paths["bold_json"],
            {"RepetitionTime": sim.tr, "SkullStripped": True, "TaskName": task},
        )
    table, meta = compute_confounds(sim.data, grid, sim.motion, sim.tr, naming)
    write_tsv(paths["confounds"], table, float_format="%.10g")
    if paths["confounds_json"] is not None:
        write_json(paths["confounds_json"], meta)


def _write_participant(
    *, p, sub, group, sessions, bids_dir, fmriprep_dir, grid, n_task_runs, naming, seed,
    rest_volumes, task_volumes, tr,
) -> None:
    """Simulate and write all runs of one participant (raw + derivatives)."""
    level = truth.MOTION_LEVELS[p % len(truth.MOTION_LEVELS)]
    for s, ses in enumerate(sessions):
        write_raw_anat(bids_dir, sub, ses, grid)
        ent = f"sub-{sub}" + (f"_ses-{ses}" if ses else "")
        deriv_func = fmriprep_dir / f"sub-{sub}" / (f"ses-{ses}" if ses else "") / "func"
        runs: list[tuple[str, int | None, int]] = [(truth.REST_NAME, None, rest_volumes)]
        runs += [(truth.TASK_NAME, r, task_volumes) for r in range(1, n_task_runs + 1)]
        for k, (task, run, n_frames) in enumerate(runs):
            rng = np.random.default_rng(np.random.SeedSequence(seed, spawn_key=(p, s, k)))
            events = None if run is None else motor_block_events(run, n_frames, tr)
            sim = simulate_run(
                grid, n_frames=n_frames, tr=tr, rng=rng, events=events, group=group, motion_level=level
            )
            raw_stem = f"{ent}_task-{task}" + ("" if run is None else f"_run-{run:02d}")
            der_prefix = f"{ent}_task-{task}" + ("" if run is None else f"_run-{run}")
            write_raw_bold(
                bids_dir, raw_stem, sub, ses, sim.to_volume(grid), grid, task=task, tr=tr, events=events
            )
            paths = derivative_paths(deriv_func, der_prefix, naming)
            _write_derivative_run(paths, sim, grid, task=task, naming=naming)


def write_fmriprep_dataset(
    bids_dir,
    *,
    participants=8,
    sessions=None,
    n_task_runs: int = 2,
    confounds_naming: str = "21+",
    resolution_mm: float = 4.0,
    seed: int = 0,
    rest_volumes: int = truth.REST_VOLUMES,
    task_volumes: int = truth.TASK_VOLUMES,
    tr: float = truth.FMRIPREP_TR,
    n_jobs: int | None = None,
) -> Path:
    """Simulate a raw BIDS dataset and its fMRIPrep derivatives.

    Parameters
    ----------
    bids_dir : str or Path
        Root of the raw dataset (created); derivatives go to
        ``bids_dir/derivatives/fmriprep``.
    participants : int or sequence of str, default=8
        Number of participants (labels 01, 02, ...) or their labels.
        Groups alternate control, patient (see :mod:`bidsapp.demo.truth`).
    sessions : sequence of str, optional
        Session labels; ``None`` writes no session level.
    n_task_runs : int, default=2
        Motor task runs per participant and session.
    confounds_naming : {"21+", "1.4", "1.0"}, default="21+"
        fMRIPrep generation to emulate (file names and confound columns).
    resolution_mm : float, default=4.0
        Voxel size of the MNI-space derivatives (raw runs: three times that).
    seed : int, default=0
        Seed; the same arguments always give the same files.
    rest_volumes, task_volumes : int
        Volumes of the rest run and of each task run.
    tr : float, default=2.0
        Repetition time in seconds.
    n_jobs : int, optional
        Participants simulated in parallel threads (default: up to 4, by
        CPU count); the output does not depend on it.

    Returns
    -------
    Path
        The fMRIPrep derivatives directory.
    """
    if confounds_naming not in NAMINGS:
        raise ValueError(f"confounds_naming must be one of {NAMINGS}, not {confounds_naming!r}")
    bids_dir = Path(bids_dir)
    fmriprep_dir = bids_dir / "derivatives" / "fmriprep"
    labels = participant_labels(participants)
    session_list = [None] if not sessions else [str(s).removeprefix("ses-") for s in sessions]
    grid = mni_grid(float(resolution_mm))
    table = write_raw_dataset_files(bids_dir, labels, n_task_runs=n_task_runs, seed=seed)
    _write_description(fmriprep_dir, confounds_naming, seed)

    jobs = [
        dict(p=p, sub=sub, group=table[truth.GROUP_COLUMN].iloc[p], sessions=session_list)
        for p, sub in enumerate(labels)
    ]
    common = dict(
        bids_dir=bids_dir,
        fmriprep_dir=fmriprep_dir,
        grid=grid,
        n_task_runs=n_task_runs,
        naming=confounds_naming,
        seed=seed,
        rest_volumes=rest_volumes,
        task_volumes=task_volumes,
        tr=tr,
    )
    n_jobs = n_jobs or min(4, os.cpu_count() or 1)
    if n_jobs == 1:
        for job in jobs:
            _write_participant(**job, **common)
    else:  # numpy and zlib release the GIL; results do not depend on order
        with ThreadPoolExecutor(max_workers=n_jobs) as pool:
            list(pool.map(lambda job: _write_participant(**job, **common), jobs))
    return fmriprep_dir
