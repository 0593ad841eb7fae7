"""The ``--dry-run`` plan: what was found, what would be written, and what it would cost."""

from __future__ import annotations

import time
from collections.abc import Iterable
from dataclasses import dataclass
from pathlib import Path

from bidsapp.config import Config
from bidsapp.group.level import group_outputs
from bidsapp.group.plan import GroupPlan, plan_group_level
from bidsapp.inputs.discovery import Inventory, Run
from bidsapp.outputs.writer import DerivativesWriter
from bidsapp.participant.level import n_workers, participant_jobs, planned_outputs
from bidsapp.slurm import ArrayTask, peak_memory_gb, write_slurm_scripts

#: Processing time of a run as a multiple of the time to read its data, by kind of input: measured on the
#: demo with 2 workers (reading is about two thirds of a BOLD run's processing, denoising, connectivity and
#: the GLM the rest; parcel files are read in milliseconds and the fixed costs below dominate).
_READ_MULTIPLE = {"bold": 1.5, "parcels": 20.0}
#: Fixed seconds per run (summary, design, writing the tables and maps) and per participant (the report).
_PER_RUN_SECONDS = {"bold": 0.1, "parcels": 0.1}
_PER_PARTICIPANT_SECONDS = 0.3
#: Fixed seconds per worker process: starting it and importing the numerical libraries.
_PER_WORKER_SECONDS = 1.5


@dataclass(frozen=True)
class Calibration:
    """The time estimate's measured step: reading the largest selected run's data.

    Attributes
    ----------
    run : Run
        The run read.
    seconds : float
        Seconds the read took.
    """

    run: Run
    seconds: float

    def run_seconds(self, run: Run) -> float:
        """Estimated processing time of ``run``: its read time scaled from the measured one, plus fixed costs."""
        read = self.seconds * _n_values(run) / _n_values(self.run)
        return _READ_MULTIPLE[run.kind] * read + _PER_RUN_SECONDS[run.kind]

    def describe(self) -> str:
        """What was measured, for the plan."""
        return f"measured: reading {self.run.name}'s data ({_n_values(self.run):,} values) took {self.seconds:.2f} s"


def calibrate(runs: Iterable[Run]) -> Calibration:
    """Time reading the largest run's data the way the real run reads it."""
    from bidsapp.inputs.readers import read_bold, read_mask, read_parcel_timeseries

    run = max(runs, key=_n_values)
    start = time.perf_counter()
    if run.kind == "bold":
        read_bold(run, read_mask(run)[0])
    else:
        read_parcel_timeseries(run)
    return Calibration(run, time.perf_counter() - start)


def _n_values(run: Run) -> int:
    """Values in a run's data: volumes times voxels (the whole grid) or parcels."""
    n_values = run.n_volumes
    for size in run.shape:
        n_values *= size
    return n_values


def render_plan(config: Config, inventory: Inventory, writer: DerivativesWriter) -> str:
    """Describe the run without doing it: inputs per participant, outputs, memory and time.

    The group level runs the real run's checks (:func:`bidsapp.group.plan.plan_group_level`) and
    describes each analysis's design instead (:func:`render_group_plan`).
    """
    if config.analysis_level == "group":
        return render_group_plan(config, plan_group_level(inventory, writer, config), writer)
    lines = [f"bidsapp dry run: {config.analysis_level} level (nothing is written)",
             f"Input: {inventory.form} at {config.bids_dir}",
             f"Output: {config.output_dir}",
             f"Participants ({len(inventory.participants)}): {' '.join(inventory.participants)}"]
    for problem in inventory.skipped:
        lines.append(f"  skipped: {problem}")
    outputs: list[Path] = []
    tasks: list[ArrayTask] = []
    calibration = calibrate(inventory.runs)
    for job in participant_jobs(inventory, config):
        participant, runs = job.participant, job.runs
        memory = max(run.estimated_memory_gb() for run in runs)
        seconds = _PER_PARTICIPANT_SECONDS + sum(calibration.run_seconds(run) for run in runs)
        lines.append(f"sub-{participant}: {len(runs)} runs, peak memory ~{memory:.1f} GB, time ~{seconds:.0f} s")
        tasks.append(ArrayTask(participant, seconds, peak_memory_gb(runs)))
        for run in runs:
            grid = "x".join(map(str, run.shape))
            lines.append(f"  {run.name}: {run.n_volumes} volumes x {grid}, TR {run.repetition_time:g} s, "
                         f"~{run.estimated_memory_gb():.2f} GB")
            lines += [f"    {role}: {path}" for role, path in
                      (("data", run.data), ("mask", run.mask), ("confounds", run.confounds),
                       ("events", run.events)) if path is not None]
        if config.analysis_level == "participant":
            outputs += planned_outputs(job, writer)
    lines.append(f"Outputs to write ({len(outputs)}, each with a JSON sidecar):")
    lines += [f"  {path}" for path in outputs]
    if config.analysis_level == "participant":
        workers = n_workers(config.execution, inventory.runs, len(inventory.participants))
        peak = workers * max(run.estimated_memory_gb() for run in inventory.runs)
        total = _PER_WORKER_SECONDS + (len(inventory.participants) * _PER_PARTICIPANT_SECONDS
                                       + sum(calibration.run_seconds(run) for run in inventory.runs)) / workers
        lines.append(f"Estimate: {workers} participants at a time, peak memory ~{peak:.1f} GB, time ~{total:.0f} s "
                     "(rough: set --mem-gb per participant job from the peak-memory figures above)")
        kind = calibration.run.kind
        lines.append(f"  time scaled from a {calibration.describe()}; each run's time is "
                     f"{_READ_MULTIPLE[kind]:g} x its read time + {_PER_RUN_SECONDS[kind]:g} s, "
                     f"plus {_PER_PARTICIPANT_SECONDS:g} s per participant and {_PER_WORKER_SECONDS:g} s to start the "
                     "workers")
    if config.execution.slurm_script is not None:
        lines += write_slurm_scripts(config, tasks)
    return "\n".join(lines)


def render_group_plan(config: Config, plan: GroupPlan, writer: DerivativesWriter) -> str:
    """Describe the group level: participants, each analysis's N, design, contrasts and inference; the skipped."""
    settings = config.group
    participants = sorted(plan.summaries["participant_id"].unique())
    lines = ["bidsapp dry run: group level (nothing is written)",
             f"Input: participant-level outputs in {config.output_dir}",
             f"Participants with outputs ({len(participants)}): {' '.join(participants)}"]
    lines += [f"  left out, participant-level output missing: {path}" for path in plan.missing]
    permutations = sorted(set(settings.corrections) & {"fwe", "cluster", "tfce"})
    inference = f"corrections {', '.join(settings.corrections)} at alpha {settings.alpha:g}; " + (
        f"{settings.n_perm} permutations (seed {settings.random_seed}) for {', '.join(permutations)}"
        if permutations else "no permutations")
    to_run = [item for item in plan.analyses if item.design is not None]
    lines.append(f"Analyses to run ({len(to_run)}): {inference}")
    for item in to_run:
        assert item.design is not None
        cells = ", ".join(f"{cell} {n}" for cell, n in item.cells.items())
        contrasts = ", ".join(f"{name} ({'F' if vector.ndim == 2 else 't'})"
                              for name, vector in item.design.contrasts.items())
        lines += [f"  {item.group_input.name} ({item.group_input.kind}): {item.design.test}, "
                  f"N = {item.n_participants} ({cells})",
                  f"    design columns: {_columns(item.design.matrix.columns)}",
                  f"    contrasts: {contrasts}"]
        if item.left_out:
            lines.append(f"    left out, no output: sub-{', sub-'.join(item.left_out)}")
        lines += [f"    contrast {name}: {reason}" for name, reason in item.permutations_left_out.items()]
    skipped = [item for item in plan.analyses if item.design is None]
    if skipped:
        lines.append(f"Analyses skipped ({len(skipped)}):")
        lines += [f"  {item.group_input.name} ({item.group_input.kind}): {item.skipped}" for item in skipped]
    fixed = group_outputs(writer)
    lines += [f"Outputs: per analysis and contrast under {fixed.summary.parent}, and",
              f"  {fixed.summary}"]
    if config.execution.reports:
        lines.append(f"  {fixed.report}")
    return "\n".join(lines)


def _columns(columns: Iterable[object]) -> str:
    """Design column names, the per-participant columns of within designs counted rather than listed."""
    names = [str(column) for column in columns]
    per_participant = [name for name in names if name.startswith("participant[")]
    shown = [name for name in names if not name.startswith("participant[")]
    if per_participant:
        shown.append(f"{len(per_participant)} participant columns")
    return ", ".join(shown)
