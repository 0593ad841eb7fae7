"""The ``--dry-run`` plan: what was found, what would be written, and what it would cost.

The participant level's time and memory estimates are scaled from a measured step: reading the
largest selected run's data the way the real run reads it, timed, with its allocations traced,
after importing the libraries a worker imports (their resident memory is part of each worker's
peak). :class:`ParticipantPlan` holds the figures (``peak_memory_mb`` sizes a job's memory).
"""

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
from bidsapp.participant.level import ParticipantJob, n_workers, participant_jobs, planned_outputs
from bidsapp.slurm import ArrayTask, write_slurm_scripts

#: Processing time of a run as a multiple of the time to read its data, by kind of input: measured on the
#: demo with 2 workers (reading is about two thirds of a BOLD run's processing, denoising, connectivity and
#: the GLM the rest; parcel files are read in milliseconds and the fixed costs below dominate).
_READ_MULTIPLE = {"bold": 1.5, "parcels": 20.0}
#: Fixed seconds per run (summary, design, writing the tables and maps) and per participant (the report).
_PER_RUN_SECONDS = {"bold": 0.1, "parcels": 0.1}
_PER_PARTICIPANT_SECONDS = 0.3
#: Fixed seconds per worker process: starting it and importing the numerical libraries.
_PER_WORKER_SECONDS = 1.5
#: A read faster than this is timed again and the faster time taken: the first read of a small file is
#: mostly one-time set-up, which the real run pays once, not per run.
_REREAD_BELOW_SECONDS = 0.5
#: Memory a run's processing holds at its peak beyond the libraries: a multiple of the most its read allocates
#: at once (tracemalloc), plus MB for the rest (design, figures of the report, the heap's growth), by kind of
#: input. Fitted on the peak RSS of real runs with one worker: fMRIPrep demo (4 mm, 120 volumes: 373 MB,
#: estimated 372), a 2.5 mm x 200 volumes run (466 MB, estimated 469), HCP demo (335 and 295 MB, estimated 318).
_HELD_MULTIPLE = {"bold": 0.8, "parcels": 3.0}
_PER_RUN_MB = {"bold": 85.0, "parcels": 80.0}
#: The libraries a worker imports to process a run (and to draw its report), beyond what the checks import:
#: their resident memory is part of every worker's peak, measured by importing them here.
_WORKER_IMPORTS = {"bold": ("bidsapp.participant.fmriprep", "nilearn.glm.first_level", "nilearn.image",
                            "nilearn.signal", "nilearn.glm.contrasts"),
                   "parcels": ("bidsapp.participant.parcels", "nilearn.glm.first_level", "nilearn.signal")}
_REPORT_IMPORTS = ("matplotlib.pyplot", "bidsapp.reports.html")


@dataclass(frozen=True)
class Calibration:
    """The estimate's measured step: reading the largest selected run's data, timed and its memory traced.

    Attributes
    ----------
    run : Run
        The run read.
    seconds : float
        Seconds the read took.
    read_mb : float
        The most memory the read allocated at once, MB (:mod:`tracemalloc`: numpy's and Python's allocations).
    worker_base_mb : float
        Resident memory of this process once it holds what a worker holds before it reads a run (the
        libraries it imports), MB.
    main_mb : float
        Resident memory of this process before those imports: what the main process holds while its
        workers run, MB.
    """

    run: Run
    seconds: float
    read_mb: float
    worker_base_mb: float
    main_mb: float

    def run_seconds(self, run: Run) -> float:
        """Estimated processing time of ``run``: its read time scaled from the measured one, plus fixed costs."""
        read = self.seconds * _n_values(run) / _n_values(self.run)
        return _READ_MULTIPLE[run.kind] * read + _PER_RUN_SECONDS[run.kind]

    def run_memory_mb(self, run: Run) -> float:
        """Estimated peak resident memory of the process that processes ``run``, MB."""
        read = self.read_mb * _n_values(run) / _n_values(self.run)
        return self.worker_base_mb + _HELD_MULTIPLE[run.kind] * read + _PER_RUN_MB[run.kind]

    def describe(self) -> str:
        """What was measured, for the plan."""
        return (f"measured: reading {self.run.name}'s data ({_n_values(self.run):,} values) took "
                f"{self.seconds:.2f} s and at most {self.read_mb:.0f} MB; a worker's libraries "
                f"{self.worker_base_mb:.0f} MB resident")


def calibrate(runs: Iterable[Run], reports: bool = True) -> Calibration:
    """Time reading the largest run's data the way the real run reads it, and trace its memory.

    The resident memory a worker holds before reading is measured too, by importing here the
    libraries a worker imports.
    """
    import importlib
    import tracemalloc

    from bidsapp.inputs.readers import read_bold, read_mask, read_parcel_timeseries

    run = max(runs, key=_n_values)
    main_mb = _resident_mb()
    for module in _WORKER_IMPORTS[run.kind] + (_REPORT_IMPORTS if reports else ()):
        importlib.import_module(module)
    worker_base_mb = _resident_mb()
    def read() -> float:
        start = time.perf_counter()
        if run.kind == "bold":
            read_bold(run, read_mask(run)[0])
        else:
            read_parcel_timeseries(run)
        return time.perf_counter() - start

    tracemalloc.start()
    try:
        seconds = read()
        read_mb = tracemalloc.get_traced_memory()[1] / 2**20
    finally:
        tracemalloc.stop()
    if seconds < _REREAD_BELOW_SECONDS:  # a small first read is mostly one-time set-up (parsers, caches)
        seconds = min(seconds, read())
    return Calibration(run, seconds, read_mb, worker_base_mb, main_mb)


def _resident_mb() -> float:
    """The resident memory of this process now, MB (``/proc``; its peak so far where there is no ``/proc``)."""
    import resource
    import sys

    try:
        status = Path("/proc/self/status").read_text()
    except OSError:
        peak = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss  # bytes on macOS, KB elsewhere
        return peak / 2**20 if sys.platform == "darwin" else peak / 2**10
    kb = next(line.split()[1] for line in status.splitlines() if line.startswith("VmRSS:"))
    return int(kb) / 2**10


def _n_values(run: Run) -> int:
    """Values in a run's data: volumes times voxels (the whole grid) or parcels."""
    n_values = run.n_volumes
    for size in run.shape:
        n_values *= size
    return n_values


@dataclass(frozen=True)
class ParticipantPlan:
    """What the participant level would do and cost (``--dry-run``; a job script sizes its memory from it).

    Attributes
    ----------
    jobs : tuple of ParticipantJob
        One per participant, with its runs.
    outputs : tuple of Path
        Every data file the run writes (most with a JSON sidecar).
    workers : int
        Participants processed at once.
    seconds : float
        Estimated wall time of the whole level.
    worker_memory_mb : float
        Estimated peak resident memory of one worker process (the largest run's), MB.
    peak_memory_mb : float
        Estimated peak resident memory of the whole level, MB: one worker's when ``workers`` is 1 (the
        main process does the work), else the main process's plus ``workers`` workers'.
    calibration : Calibration
        The measured step both estimates are scaled from.
    """

    jobs: tuple[ParticipantJob, ...]
    outputs: tuple[Path, ...]
    workers: int
    seconds: float
    worker_memory_mb: float
    peak_memory_mb: float
    calibration: Calibration

    def job_seconds(self, job: ParticipantJob) -> float:
        """Estimated processing time of one participant's job."""
        return _PER_PARTICIPANT_SECONDS + sum(self.calibration.run_seconds(run) for run in job.runs)

    def job_memory_mb(self, job: ParticipantJob) -> float:
        """Estimated peak resident memory of the process that runs one participant's job, MB."""
        return max(self.calibration.run_memory_mb(run) for run in job.runs)


def plan_participant_level(config: Config, inventory: Inventory, writer: DerivativesWriter) -> ParticipantPlan:
    """The participant level's jobs, outputs, and time and memory estimates, from a measured read."""
    jobs = tuple(participant_jobs(inventory, config))
    calibration = calibrate(inventory.runs, config.execution.reports)
    workers = n_workers(config.execution, inventory.runs, len(jobs))
    seconds = _PER_WORKER_SECONDS + (len(jobs) * _PER_PARTICIPANT_SECONDS
                                     + sum(calibration.run_seconds(run) for run in inventory.runs)) / workers
    worker_mb = max(calibration.run_memory_mb(run) for run in inventory.runs)
    peak_mb = worker_mb if workers == 1 else calibration.main_mb + workers * worker_mb
    outputs = tuple(path for job in jobs for path in planned_outputs(job, writer))
    return ParticipantPlan(jobs, outputs, workers, seconds, worker_mb, peak_mb, calibration)


def render_plan(config: Config, inventory: Inventory, writer: DerivativesWriter) -> str:
    """Describe the run without doing it: inputs per participant, outputs, memory and time.

    The group level runs the real run's checks (:func:`bidsapp.group.plan.plan_group_level`) and
    describes each analysis's design instead (:func:`render_group_plan`).
    """
    if config.analysis_level == "group":
        return render_group_plan(config, plan_group_level(inventory, writer, config), writer)
    plan = plan_participant_level(config, inventory, writer)
    calibration = plan.calibration
    lines = [f"bidsapp dry run: {config.analysis_level} level (nothing is written, not even the dataset index "
             "cache of the work directory)",
             f"Input: {inventory.form} at {config.bids_dir}",
             f"Output: {config.output_dir}",
             f"Participants ({len(inventory.participants)}): {' '.join(inventory.participants)}"]
    for problem in inventory.skipped:
        lines.append(f"  skipped: {problem}")
    for job in plan.jobs:
        memory_gb = plan.job_memory_mb(job) / 1024
        lines.append(f"sub-{job.participant}: {len(job.runs)} runs, peak memory ~{memory_gb:.2f} GB, "
                     f"time ~{plan.job_seconds(job):.0f} s")
        for run in job.runs:
            grid = "x".join(map(str, run.shape))
            lines.append(f"  {run.name}: {run.n_volumes} volumes x {grid}, TR {run.repetition_time:g} s, "
                         f"~{calibration.run_memory_mb(run) / 1024:.2f} GB")
            lines += [f"    {role}: {path}" for role, path in
                      (("data", run.data), ("mask", run.mask), ("confounds", run.confounds),
                       ("events", run.events)) if path is not None]
    lines.append(f"Outputs to write ({len(plan.outputs)}, each with a JSON sidecar):")
    lines += [f"  {path}" for path in plan.outputs]
    kind = calibration.run.kind
    lines += [f"Estimate: {plan.workers} participants at a time, peak memory ~{plan.peak_memory_mb / 1024:.2f} GB "
              f"({plan.worker_memory_mb / 1024:.2f} GB per worker), time ~{plan.seconds:.0f} s (rough: give a "
              "scheduler job the peak memory, or --mem-gb the per-worker figure times the participants to run at once)",
              f"  scaled from a {calibration.describe()}; each run's time is {_READ_MULTIPLE[kind]:g} x its read "
              f"time + {_PER_RUN_SECONDS[kind]:g} s, plus {_PER_PARTICIPANT_SECONDS:g} s per participant and "
              f"{_PER_WORKER_SECONDS:g} s to start the workers; its memory the libraries' plus "
              f"{_HELD_MULTIPLE[kind]:g} x the most its read allocates + {_PER_RUN_MB[kind]:g} MB"
              + ("" if plan.workers == 1 else f"; the main process holds {calibration.main_mb:.0f} MB")]
    if config.execution.slurm_script is not None:
        lines += write_slurm_scripts(config, [ArrayTask(job.participant, plan.job_seconds(job),
                                                        plan.job_memory_mb(job) / 1024) for job in plan.jobs])
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
    fixed = group_outputs(writer, config.group)
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
