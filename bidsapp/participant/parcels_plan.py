"""What the parcel pipeline computes for a participant, and where it writes it.

Runs are grouped by task (and session): the resting runs of a group give
per-run and combined connectivity matrices; the runs of a task are modelled
together. Planning reads only the events (small text files), so the dry run
and the skip checks are cheap, and it reports bad or missing inputs before any
time series is read:

* events starting after the end of their run stop the participant
  (:func:`bidsapp.steps.glm.events.check_events`, exit code 66);
* a task with one of its two phase-encoding runs (LR, RL) missing on disk, or
  a run without events, is skipped with a warning naming the missing file;
* a condition missing from one run's EVs is estimated from the other runs,
  with a warning naming the missing file.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any

import pandas as pd

from bidsapp import __version__
from bidsapp.inputs.discovery import Run
from bidsapp.inputs.hcp import BOLD_NAMES
from bidsapp.outputs.layout import CONTRAST_TABLE, RELMAT
from bidsapp.outputs.writer import DerivativesWriter
from bidsapp.steps.connectivity import STAT_LABELS
from bidsapp.steps.glm.contrasts import Contrast, expression_names
from bidsapp.steps.glm.design import DEFAULT_HIGH_PASS_HZ
from bidsapp.steps.glm.events import check_events, read_events
from bidsapp.steps.task_models import check_user_contrasts, design_conditions, hcp_task_presets, task_contrasts

if TYPE_CHECKING:  # the job type's module runs the pipeline that imports this plan
    from bidsapp.participant.level import ParticipantJob

LOGGER = logging.getLogger(__name__)
#: Entities every parcel output carries (HCP data: fsLR surface, Glasser parcels).
ATLAS_ENTITIES = {"space": "fsLR", "seg": "Glasser"}
#: The two phase-encoding directions of every HCP run.
HCP_DIRECTIONS = ("LR", "RL")
_COURSE_TIMESERIES = "bold{k}_Atlas_MSMAll_Glasser360Cortical.npy"


@dataclass(frozen=True)
class Output:
    """A file to write and the parameters that decide whether it is complete."""

    path: Path
    parameters: dict[str, Any]


@dataclass(frozen=True)
class RestPlan:
    """Connectivity of one group of resting runs.

    ``outputs`` is keyed by ``(scope, stat, desc)``: scope is a run name or
    ``"combined"``, stat a BIDS ``stat-`` label, desc ``None``, ``fisherz`` or
    ``networks``.
    """

    entities: dict[str, str]
    runs: tuple[Run, ...]
    outputs: dict[tuple[str, str, str | None], Output]


@dataclass(frozen=True)
class TaskPlan:
    """The first-level model of one task: runs, their events, conditions and contrasts."""

    entities: dict[str, str]
    runs: tuple[Run, ...]
    events: tuple[pd.DataFrame, ...]
    conditions: tuple[str, ...]
    contrasts: tuple[Contrast, ...]
    statmaps: dict[str, Output]
    averages: dict[str, Output]


def dummy_volumes(dummy_scans: int | str | None) -> int:
    """Leading volumes to drop: ``--dummy-scans N``; ``auto`` and the default are 0 (HCP data have none)."""
    return dummy_scans if isinstance(dummy_scans, int) else 0


def _group_entities(run: Run) -> dict[str, str]:
    return {key: value for key, value in run.entities.items() if key not in ("dir", "run")}


def _groups(runs: tuple[Run, ...]) -> dict[tuple, list[Run]]:
    groups: dict[tuple, list[Run]] = {}
    for run in sorted(runs, key=lambda r: r.name):
        groups.setdefault(tuple(_group_entities(run).items()), []).append(run)
    return groups


def _bold_name(run: Run, direction: str) -> str:
    return f"tfMRI_{run.entities['task'].upper()}_{direction}"


def _run_file(run: Run, direction: str) -> Path:
    """Where the run of the same task in another phase-encoding direction would be."""
    if run.data.suffix == ".npy" and _bold_name(run, direction) in BOLD_NAMES:
        k = BOLD_NAMES.index(_bold_name(run, direction)) + 1
        return run.data.with_name(_COURSE_TIMESERIES.format(k=k))
    return run.data.with_name(run.data.name.replace(f"_dir-{run.entities['dir']}_", f"_dir-{direction}_"))


def _events_file(run: Run) -> Path:
    """Where a run's events would be: its HCP EV directory, or its ``*_events.tsv``."""
    if run.data.suffix == ".npy":
        return run.data.parents[1] / "EVs" / _bold_name(run, run.entities.get("dir", "LR"))
    stem = run.data.name.split("_space-")[0].split("_seg-")[0].split("_stat-")[0]
    return run.data.with_name(f"{stem}_events.tsv")


def _missing_task_input(runs: list[Run]) -> Path | None:
    """The file whose absence makes a task unusable: a phase-encoding run or a run's events."""
    directions = {run.entities.get("dir") for run in runs}
    if directions & set(HCP_DIRECTIONS):
        for direction in HCP_DIRECTIONS:
            expected = _run_file(runs[0], direction)
            if direction not in directions and not expected.is_file():
                return expected
    return next((_events_file(run) for run in runs if run.events is None), None)


def _path(writer: DerivativesWriter, entities: dict[str, str], **more: str | None) -> Path:
    """A parcel output: a contrast table when ``contrast`` is given, else a relationship matrix."""
    spec = CONTRAST_TABLE if "contrast" in more else RELMAT
    return writer.layout.participant_file(spec, {**entities, **ATLAS_ENTITIES, **more})


def plan_rest(runs: list[Run], job: ParticipantJob, writer: DerivativesWriter) -> RestPlan:
    """The connectivity outputs of one group of resting runs."""
    analysis = job.analysis
    base = {"bidsapp": __version__, "pipeline": "parcels", "step": "connectivity", "denoise_strategy": "none",
            "detrend": True, "standardize": "zscore_sample", "high_pass_hz": analysis.high_pass_hz,
            "low_pass_hz": analysis.low_pass_hz, "dummy_scans": dummy_volumes(analysis.dummy_scans)}
    stats: list[tuple[str, str | None]] = [(STAT_LABELS[kind], None) for kind in analysis.connectivity]
    if "correlation" in analysis.connectivity:
        stats.append(("pearsoncorrelation", "fisherz"))
    outputs: dict[tuple[str, str, str | None], Output] = {}
    for run in runs:
        for stat, desc in stats:
            outputs[(run.name, stat, desc)] = Output(
                _path(writer, dict(run.entities), stat=stat, desc=desc),
                {**base, "stat": stat, "desc": desc, "inputs": [str(run.data)]})
    if "correlation" in analysis.connectivity:
        stats.append(("pearsoncorrelation", "networks"))
    entities = _group_entities(runs[0])
    for stat, desc in stats:
        outputs[("combined", stat, desc)] = Output(
            _path(writer, entities, stat=stat, desc=desc),
            {**base, "stat": stat, "desc": desc, "combination": "concatenated after per-run cleaning",
             "inputs": [str(run.data) for run in runs]})
    return RestPlan(entities, tuple(runs), outputs)


def _modelled_events(runs: list[Run], presets: dict) -> tuple[list[pd.DataFrame], list[str], list[str]]:
    """Each run's events of the modelled conditions, those conditions, and warnings on missing ones."""
    task = runs[0].entities["task"]
    files: list[Path] = []
    events = []
    for run in runs:
        assert run.events is not None, "plan_participant plans a task only when every run has its events"
        files.append(run.events)
        table = read_events(run.events)
        check_events(table, run.n_volumes, run.repetition_time, run.events)
        events.append(table)
    conditions = design_conditions(task, set().union(*(set(e["trial_type"]) for e in events)), presets)
    events = [e[e["trial_type"].isin(conditions)].reset_index(drop=True) for e in events]
    warnings = []
    for path, table in zip(files, events, strict=True):
        for condition in sorted(set(conditions) - set(table["trial_type"])):
            ev_file = path / f"{condition}.txt" if path.is_dir() else path
            if path.is_dir() and ev_file.is_file():
                LOGGER.info("%s: no events; condition %s is estimated from the other runs", ev_file, condition)
                continue
            what = "missing" if path.is_dir() else f"has no {condition!r} events"
            warnings.append(f"{ev_file}: {what}; condition {condition} of task {task} is estimated from the "
                            "other runs only")
    return events, conditions, warnings


def plan_task(runs: list[Run], job: ParticipantJob, writer: DerivativesWriter, presets: dict,
              user: tuple[Contrast, ...]) -> tuple[TaskPlan, list[str]]:
    """The statistics maps of one task, and warnings about its inputs."""
    analysis = job.analysis
    events, conditions, warnings = _modelled_events(runs, presets)
    task = runs[0].entities["task"]
    contrasts = []
    for contrast in task_contrasts(task, conditions, user, presets, defaults=analysis.default_contrasts):
        needed = set(expression_names(contrast.expression))
        if any(needed <= set(table["trial_type"]) for table in events):
            contrasts.append(contrast)
    inputs = [str(path) for run in runs for path in (run.data, run.events)]
    base = {"bidsapp": __version__, "pipeline": "parcels", "conditions": conditions, "inputs": inputs,
            "dummy_scans": dummy_volumes(analysis.dummy_scans)}
    glm = {**base, "step": "glm", "hrf_model": analysis.hrf_model, "noise_model": analysis.noise_model,
           "high_pass_hz": analysis.high_pass_hz or DEFAULT_HIGH_PASS_HZ, "drift_model": "cosine",
           "scaling": "percent signal change", "combination": "fixed effects"}
    average = {**base, "step": "selective-average", "skip_frames": 0, "preprocessing": "parcel mean removed"}
    entities = _group_entities(runs[0])
    statmaps, averages = {}, {}
    for contrast in contrasts:
        definition = [contrast.name, contrast.expression]
        statmaps[contrast.name] = Output(_path(writer, entities, contrast=contrast.name),
                                         {**glm, "contrast": definition})
        averages[contrast.name] = Output(_path(writer, entities, contrast=contrast.name, desc="selectiveaverage"),
                                         {**average, "contrast": definition})
    plan = TaskPlan(entities, tuple(runs), tuple(events), tuple(conditions), tuple(contrasts), statmaps, averages)
    return plan, warnings


def plan_participant(job: ParticipantJob,
                     writer: DerivativesWriter) -> tuple[list[RestPlan], list[TaskPlan], list[str]]:
    """Plan every output of a participant.

    Parameters
    ----------
    job : bidsapp.participant.level.ParticipantJob
    writer : DerivativesWriter

    Returns
    -------
    rest : list of RestPlan
    tasks : list of TaskPlan
    warnings : list of str
        One line per input problem that leaves something out (also logged).

    Raises
    ------
    MissingInputError
        Events beyond the end of their run.
    UsageError
        A ``--contrast`` naming conditions of none of the participant's tasks.
    """
    presets = hcp_task_presets()
    rest, tasks, warnings, skipped = [], [], [], []
    for runs in _groups(job.runs).values():
        task = runs[0].entities["task"]
        if task == "rest":
            rest.append(plan_rest(runs, job, writer))
            continue
        missing = _missing_task_input(runs)
        if missing is not None:
            warnings.append(f"{missing}: missing, so task {task} of sub-{job.participant} is skipped "
                            "(the GLM needs every run of the task and its events)")
            skipped.append(task)
            continue
        plan, found = plan_task(runs, job, writer, presets, job.analysis.contrasts)
        tasks.append(plan)
        warnings += found
    if job.analysis.contrasts and not skipped:  # a skipped task may be the one a --contrast is for
        check_user_contrasts(job.analysis.contrasts, {plan.entities["task"]: plan.conditions for plan in tasks})
    for warning in warnings:
        LOGGER.warning("%s", warning)
    return rest, tasks, warnings
