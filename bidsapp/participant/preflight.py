"""Participant-level preflight: every check of the real run on its inputs, before anything is written.

Discovery (:mod:`bidsapp.inputs.discovery`) finds each run's files and checks
what names and headers show (BOLD readable and 4-D, mask and confounds present,
as many confounds rows as volumes, a repetition time in sidecars that parse).
The preflight then opens every selected run's other inputs far enough to prove
them usable, with the functions the real run uses, so the run and ``--dry-run``
stop on the same problems before the first output is written:

* the confounds table and its JSON sidecar, with every column the denoising
  strategy needs after the denoiser's renaming of fMRIPrep 1.0/1.1 CamelCase
  names, the non-steady-state flags, framewise displacement and DVARS when it
  scrubs, and a volume left after censoring
  (:func:`bidsapp.steps.denoise.select_confounds`);
* the brain mask on the BOLD grid (headers only: shape and affine);
* events: readable, with ``onset`` and ``duration``, none after the end of the
  run, at least one event to model. An ``events.tsv`` without ``trial_type``
  is modelled as one condition (nilearn's rule), with a warning naming the file;
* the atlas for each space and voxel size, its space against each run's, every
  ``--seeds`` sphere inside each run's brain mask, and every ``--contrast``
  against the conditions of each participant's tasks (``--contrast`` replaces the
  default contrasts: a task none of them is for is named in a warning).

A problem with a run's files (exit code 66) leaves that run out with
``--skip-bad-runs``; a problem with an option (exit code 2, or 66 for an option
naming a missing file) stops the command. All are reported together, one line
each, options first.
"""

from __future__ import annotations

import logging
from collections.abc import Sequence
from dataclasses import dataclass, field, replace
from pathlib import Path

import pandas as pd

from bidsapp.config import Analysis, Config
from bidsapp.errors import BidsAppError, NoDataError, UsageError, raise_collected
from bidsapp.inputs import atlas as atlases
from bidsapp.inputs.readers import read_confounds, read_confounds_metadata, read_mask
from bidsapp.inputs.runs import Inventory, Run, RunProblem
from bidsapp.participant.fmriprep import participant_strategy, space_entities
from bidsapp.steps import denoise, strategies
from bidsapp.steps.glm.contrasts import contrast_vector, expression_names
from bidsapp.steps.glm.events import check_events, read_events
from bidsapp.steps.seeds import sphere_voxels
from bidsapp.steps.task_models import check_user_contrasts, design_conditions, hcp_task_presets, task_contrasts

LOGGER = logging.getLogger(__name__)


@dataclass
class _Findings:
    """What the checks found: option problems (deduplicated), run problems, each task run's conditions."""

    options: dict[str, BidsAppError] = field(default_factory=dict)
    runs: list[RunProblem] = field(default_factory=list)
    conditions: dict[str, set[str]] = field(default_factory=dict)

    def option(self, error: BidsAppError) -> None:
        self.options.setdefault(str(error), error)

    def rejected(self) -> set[str]:
        return {problem.run_name for problem in self.runs}


def preflight(inventory: Inventory, config: Config) -> Inventory:
    """Check every selected run's inputs and the options that depend on them, before anything is written.

    Parameters
    ----------
    inventory : Inventory
        What discovery found; without ``--skip-bad-runs``, the runs it left out
        (``discover(..., defer_problems=True)``) are reported with the problems
        found here.
    config : Config

    Returns
    -------
    Inventory
        ``inventory``, less the runs the checks rejected when ``--skip-bad-runs``
        is given (added to its ``skipped`` runs, each logged with why).

    Raises
    ------
    BidsAppError
        Every problem found, one line each (:func:`bidsapp.errors.raise_collected`):
        options first (exit code 2, or 66 for a file an option names), then run
        files (66, without ``--skip-bad-runs``).
    NoDataError
        When ``--skip-bad-runs`` leaves no run.
    """
    analysis, skip = config.analysis, config.execution.skip_bad_runs
    found = _Findings(runs=[] if skip else list(inventory.skipped))
    bold = inventory.input_type == "fmriprep"
    strategy = participant_strategy(analysis) if bold else None
    for run in inventory.runs:
        if strategy is not None:
            _check_bold_run(run, analysis, strategy, found)
        if run.events is not None:
            _check_events(run, found)
    kept = tuple(run for run in inventory.runs if run.name not in found.rejected()) if skip else inventory.runs
    if bold and kept:
        _check_atlas(kept, analysis, found)
    if analysis.contrasts:
        unsure = set() if skip else {name.split("_")[0].removeprefix("sub-") for name in found.rejected()}
        _check_contrasts([run for run in kept if run.subject not in unsure], analysis, bold, found)
    problems = list(found.options.values()) + ([] if skip else [problem.as_error() for problem in found.runs])
    raise_collected(problems)
    if not found.runs:
        return inventory
    for problem in found.runs:
        LOGGER.warning("Leaving out %s: %s", problem.run_name, problem)
    if not kept:
        raise NoDataError(f"{config.bids_dir}: no usable runs left after the checks; fix the files listed above")
    return replace(inventory, runs=kept, skipped=inventory.skipped + tuple(found.runs))


def _check_bold_run(run: Run, analysis: Analysis, strategy: strategies.Strategy, found: _Findings) -> None:
    """The confounds the strategy needs, the mask's grid and, with ``--seeds``, each seed inside the mask."""
    assert run.confounds is not None and run.mask is not None, "discovery gives fMRIPrep runs a mask and confounds"
    try:
        denoise.select_confounds(read_confounds(run), read_confounds_metadata(run), strategy, path=run.confounds)
    except BidsAppError as error:
        found.runs.append(_run_problem(run, error))
    problem = _mask_grid_problem(run)
    if problem is not None:
        found.runs.append(problem)
        return
    if analysis.seeds:
        try:
            mask, affine = read_mask(run)
        except BidsAppError as error:
            found.runs.append(_run_problem(run, error))
            return
        for seed in analysis.seeds:
            try:
                sphere_voxels(seed, analysis.seed_radius_mm, affine, mask)
            except UsageError as error:
                found.option(error)


def _mask_grid_problem(run: Run) -> RunProblem | None:
    """A problem when the brain mask is not on the BOLD run's grid (shape and affine; headers only)."""
    import nibabel as nib
    import numpy as np

    assert run.mask is not None, "discovery gives fMRIPrep runs a mask"
    try:
        mask = nib.load(run.mask)
    except Exception as error:  # noqa: BLE001 - nibabel raises many types for unreadable files
        return RunProblem(run.name, run.mask, f"cannot be read as a NIfTI mask ({error})")
    bold = nib.load(run.data)
    if mask.shape[:3] != bold.shape[:3] or not np.allclose(mask.affine, bold.affine, atol=1e-3):
        return RunProblem(run.name, run.mask, f"grid {mask.shape[:3]} does not match the BOLD grid {bold.shape[:3]} "
                          f"of {run.data.name} (shape and affine must agree); use the mask fMRIPrep wrote with it")
    return None


def _check_events(run: Run, found: _Findings) -> None:
    """The run's events as the GLM reads them; records its conditions."""
    assert run.events is not None, "only runs with events are checked here"
    path = Path(run.events)
    try:
        events = read_events(path)
        check_events(events, run.n_volumes, run.repetition_time, path)
    except BidsAppError as error:
        found.runs.append(_run_problem(run, error))
        return
    if events.empty:
        found.runs.append(RunProblem(run.name, path, "no events to model (no rows, or every trial_type is n/a); "
                                     "a task run needs at least one event"))
        return
    if path.is_file() and "trial_type" not in pd.read_csv(path, sep="\t", nrows=0).columns:
        LOGGER.warning("%s: no trial_type column; its %d events are modelled as one condition, 'dummy' (nilearn's "
                       "rule); add a trial_type column to model conditions apart", path, len(events))
    found.conditions[run.name] = set(events["trial_type"])


def _run_problem(run: Run, error: BidsAppError) -> RunProblem:
    """A run's problem from the error a reader or a step raised (its message starts with the file)."""
    path, _, message = str(error).partition(": ")
    return RunProblem(run.name, Path(path), message or str(error))


def _check_atlas(runs: tuple[Run, ...], analysis: Analysis, found: _Findings) -> None:
    """The atlas as each participant's job loads it (space and voxel size of its first run), on every run's space."""
    import nibabel as nib

    loaded: dict[tuple[str, float], atlases.Atlas] = {}
    failed: set[tuple[str, float]] = set()
    checked: set[tuple[tuple[str, float], str]] = set()  # a space mismatch is reported once, with its first run
    first: dict[str, Run] = {}
    for run in runs:
        first.setdefault(run.subject, run)
    for run in runs:
        lead = first[run.subject]
        key = (space_entities(lead).get("space", ""), float(nib.load(lead.data).header.get_zooms()[0]))
        if key in failed:
            continue
        if key not in loaded:
            try:
                loaded[key] = atlases.load_atlas(analysis.atlas, *key)
            except BidsAppError as error:
                found.option(error)
                failed.add(key)
                continue
        space = space_entities(run).get("space", "")
        if (key, space) in checked:
            continue
        checked.add((key, space))
        try:
            atlases.check_space(loaded[key], space, run.data)
        except UsageError as error:
            found.option(error)


def _check_contrasts(runs: list[Run], analysis: Analysis, bold: bool, found: _Findings) -> None:
    """Every ``--contrast`` against the conditions of each participant's tasks, as the pipelines check them.

    fMRIPrep runs model every condition of their events; parcel runs the
    conditions the task's preset keeps, and a participant with a task run
    without events is left to the pipeline (it skips that task).
    """
    presets = {} if bold else hcp_task_presets()
    by_participant: dict[str, dict[str, set[str]]] = {}
    for run in runs:
        tasks = by_participant.setdefault(run.subject, {})
        if run.name in found.conditions:
            tasks.setdefault(run.entities["task"], set()).update(found.conditions[run.name])
        elif not bold and run.entities.get("task") != "rest":
            tasks["(incomplete)"] = set()
    failures: dict[str, list[str]] = {}
    errors: dict[str, UsageError] = {}
    uncovered: set[str] = set()
    for participant, tasks in by_participant.items():
        if "(incomplete)" in tasks:
            continue
        conditions: dict[str, Sequence[str]] = {task: design_conditions(task, names, presets)
                                                for task, names in tasks.items()}
        uncovered |= {task for task, names in conditions.items()
                      if not task_contrasts(task, names, analysis.contrasts, presets,
                                            defaults=analysis.default_contrasts)}
        for contrast in analysis.contrasts:
            try:
                check_user_contrasts([contrast], conditions)
                for names in conditions.values():
                    if set(expression_names(contrast.expression)) <= set(names):
                        contrast_vector(contrast, names)
            except UsageError as error:
                errors.setdefault(str(error), error)
                failures.setdefault(str(error), []).append(participant)
    for task in sorted(uncovered):
        LOGGER.warning("--contrast: no contrast names only conditions of task %s, so its GLM has no contrast to "
                       "write; add the word defaults to --contrast to keep the task's default contrasts", task)
    for message, participants in failures.items():
        if len(participants) == len(by_participant):
            found.option(errors[message])
        else:
            found.option(UsageError(f"{message} (in sub-{', sub-'.join(participants)})"))
