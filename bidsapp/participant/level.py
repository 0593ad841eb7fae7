"""Participant level: each participant's runs are summarised, then analysed.

For every run, bidsapp first records what it analysed: the run's length and
repetition time and, for fMRIPrep data, head motion (mean and maximum
framewise displacement, volumes above 0.5 mm, non-steady-state volumes); for
parcellated data, parcels with no signal and non-finite values. Then the
input type's pipeline (:mod:`bidsapp.participant`) analyses the participant's
runs, and the subject level (:mod:`bidsapp.participant.subject`) combines its
runs and sessions into one result per participant. Participants are processed
in parallel processes (``--nprocs``), no more at once than ``--mem-gb``
allows, and outputs that are complete with unchanged parameters are skipped.

On SIGTERM or SIGINT (:mod:`bidsapp.interruption`) the worker processes are
stopped, each unwinding its job so that no temporary file remains, completed
outputs are kept, and the interruption says how many participants finished.
A worker killed on its own (SIGKILL, as the kernel's out-of-memory killer does)
breaks the pool: the pool stops the others the same way, the dead worker's
temporary files are removed, and :class:`~bidsapp.errors.WorkerKilledError`
names the run it was processing (each worker reports the run it is on).
"""

from __future__ import annotations

import logging
import multiprocessing
import multiprocessing.queues
import os
import signal
from concurrent.futures import Future, ProcessPoolExecutor
from concurrent.futures.process import BrokenProcessPool
from dataclasses import dataclass
from pathlib import Path
from typing import Protocol

import pandas as pd

from bidsapp import __version__
from bidsapp.config import Analysis, Config, Execution
from bidsapp.errors import WorkerKilledError
from bidsapp.inputs.discovery import Inventory, Run
from bidsapp.inputs.readers import read_confounds, read_parcel_timeseries
from bidsapp.interruption import (
    Interrupted,
    RunReporter,
    RunTracker,
    descendants,
    raise_on_signals,
    start_worker,
    stop_processes,
)
from bidsapp.outputs.atomic import remove_stale_temporaries
from bidsapp.outputs.layout import RUN_SUMMARY
from bidsapp.outputs.writer import DerivativesWriter
from bidsapp.participant import subject
from bidsapp.participant.scans import scans_tables, write_scans
from bidsapp.progress import progress
from bidsapp.steps.qc import FD_THRESHOLD_MM, motion_summary, parcel_summary

LOGGER = logging.getLogger(__name__)


@dataclass(frozen=True)
class ParticipantJob:
    """One participant's work: its runs and the analysis settings.

    Attributes
    ----------
    participant : str
        Label without ``sub-``.
    runs : tuple of Run
        The participant's selected runs (all of one input kind).
    analysis : Analysis
    parcel_names : tuple of str, optional
        Parcel names of parcellated inputs, in column order.
    reports : bool
        Write the participant's HTML report.
    """

    participant: str
    runs: tuple[Run, ...]
    analysis: Analysis
    parcel_names: tuple[str, ...] | None = None
    reports: bool = True


def participant_jobs(inventory: Inventory, config: Config) -> list[ParticipantJob]:
    """One job per selected participant."""
    return [ParticipantJob(participant, inventory.runs_of(participant), config.analysis, inventory.parcel_names,
                           config.execution.reports) for participant in inventory.participants]


def planned_outputs(job: ParticipantJob, writer: DerivativesWriter) -> list[Path]:
    """Every file the participant level writes for ``job`` (data files; most have a JSON sidecar)."""
    summaries = [writer.layout.participant_file(RUN_SUMMARY, run.entities) for run in job.runs]
    pipeline = _pipeline(job).planned_outputs(job, writer)
    combined = [path for item in subject.plan_combinations(writer.layout, pipeline) for path in item.outputs]
    return summaries + pipeline + combined + list(scans_tables(writer.layout, job.runs))


class Pipeline(Protocol):
    """What a pipeline module provides (:mod:`~bidsapp.participant.fmriprep`, :mod:`~bidsapp.participant.parcels`)."""

    def planned_outputs(self, job: ParticipantJob, writer: DerivativesWriter) -> list[Path]:
        """Every file the pipeline writes for ``job``."""

    def process_participant(self, job: ParticipantJob, writer: DerivativesWriter) -> list[Path]:
        """Analyse one participant's runs, write the outputs that are not complete yet; return every one planned."""


def _pipeline(job: ParticipantJob) -> Pipeline:
    """The pipeline module for the job's kind of input."""
    if job.runs[0].kind == "bold":
        from bidsapp.participant import fmriprep

        return fmriprep
    from bidsapp.participant import parcels

    return parcels


def run_participant_level(inventory: Inventory, writer: DerivativesWriter, config: Config) -> None:
    """Process every participant of the inventory, in parallel within the memory budget.

    Raises
    ------
    Interrupted
        On SIGTERM or SIGINT (or KeyboardInterrupt), once every worker process has stopped and
        no temporary file remains; it says how many participants finished.
    """
    writer.ensure_dataset_description()
    jobs = participant_jobs(inventory, config)
    workers = n_workers(config.execution, inventory.runs, len(jobs))
    LOGGER.info("Participant level: %d runs of %d participants, %d participants at a time",
                len(inventory.runs), len(jobs), workers)
    finished: list[str] = []
    try:
        if workers == 1:
            for job in progress(jobs, "participants"):
                process_participant(job, writer)
                finished.append(job.participant)
        else:
            _process_in_parallel(jobs, writer, workers, finished)
    except KeyboardInterrupt as interruption:
        signum = interruption.signum if isinstance(interruption, Interrupted) else signal.SIGINT
        remove_stale_temporaries(writer.output_dir, gone={os.getpid()})
        LOGGER.debug("Interrupted; finished: %s", ", ".join(finished) or "none")
        raise Interrupted(signum, f"{len(finished)} of {len(jobs)} participants finished") from interruption
    LOGGER.info("Participant level done")


def _process_in_parallel(jobs: list[ParticipantJob], writer: DerivativesWriter, workers: int,
                         finished: list[str]) -> None:
    """Process the jobs in ``workers`` processes; on an interruption stop them all and list the finished jobs.

    Raises
    ------
    WorkerKilledError
        A worker process was killed from outside (SIGKILL), as the out-of-memory killer does.
    """
    threads = max(1, (os.cpu_count() or 1) // workers)
    context = multiprocessing.get_context()
    tracker = RunTracker(context.Queue())
    with ProcessPoolExecutor(max_workers=workers, mp_context=context, initializer=start_participant_worker,
                             initargs=(threads, tracker.reports)) as pool:
        futures: dict[Future[None], str] = {pool.submit(_participant_job, job, writer): job.participant
                                             for job in jobs}
        try:
            for future in progress(futures, "participants"):
                future.result()
        except KeyboardInterrupt:
            pool.shutdown(wait=False, cancel_futures=True)
            killed = stop_processes(descendants())
            if killed:
                LOGGER.warning("Killed %d worker processes that did not stop within seconds", len(killed))
            finished.extend(_succeeded(futures))
            raise
        except BrokenProcessPool as error:
            pool.shutdown(wait=True, cancel_futures=True)  # the pool has stopped the other workers (SIGTERM)
            finished.extend(_succeeded(futures))
            remove_stale_temporaries(writer.output_dir)  # the killed worker's
            raise WorkerKilledError(
                f"{tracker.lost()}: a worker process was killed (SIGKILL), most likely by the system for lack of "
                f"memory; {len(finished)} of {len(jobs)} participants finished and their outputs are kept; run "
                f"again with fewer --nprocs (this run used {workers}) or more memory (a larger --mem-gb or job "
                "memory; --dry-run estimates the peak) to do the rest") from error
        finally:
            tracker.stop()


def _succeeded(futures: dict[Future[None], str]) -> list[str]:
    """The participants whose job ended without an error."""
    return [participant for future, participant in futures.items()
            if future.done() and not future.cancelled() and future.exception() is None]


_REPORTER: RunReporter | None = None
"""The worker process's reporter of the run it is on (set by :func:`start_participant_worker`)."""


def start_participant_worker(threads: int, reports: multiprocessing.queues.Queue | None = None) -> None:
    """Set up a worker process: its signals (:func:`~bidsapp.interruption.start_worker`), threads and reports.

    A worker's BLAS and OpenMP use ``threads`` threads, its share of the cores: without a
    limit each of the ``--nprocs`` workers starts a thread per core, and on small (parcel)
    matrices the oversubscribed threads mostly wait on each other. ``reports`` receives the
    run the worker is on (:class:`~bidsapp.interruption.RunReporter`).
    """
    global _REPORTER
    start_worker()
    from threadpoolctl import threadpool_limits

    threadpool_limits(threads)
    if reports is not None:
        _REPORTER = RunReporter(reports)
        logging.getLogger("bidsapp").addHandler(_REPORTER)


def _participant_job(job: ParticipantJob, writer: DerivativesWriter) -> None:
    """Run one job in a worker; on SIGTERM unwind it (its temporaries are removed) and end the worker."""
    restore = raise_on_signals((signal.SIGTERM,))
    if _REPORTER is not None:
        _REPORTER.start([run.name for run in job.runs])
    try:
        process_participant(job, writer)
    except Interrupted as interruption:
        if _REPORTER is not None:
            _REPORTER.end(flush=True)
        os._exit(interruption.exit_code)
    finally:
        restore()
    if _REPORTER is not None:
        _REPORTER.end()


def process_participant(job: ParticipantJob, writer: DerivativesWriter) -> None:
    """Summarise each run of one participant, run its pipeline and the subject level, then its scans tables."""
    summarised = [process_run(run, writer) for run in job.runs]
    subject.combine_participant(writer.layout, writer, _pipeline(job).process_participant(job, writer))
    write_scans(writer, job.runs, rewrite=any(summarised))


def n_workers(execution: Execution, runs: tuple[Run, ...], n_jobs: int) -> int:
    """Processes to run at once: ``--nprocs``, fewer when ``--mem-gb`` cannot hold them."""
    workers = max(1, min(execution.nprocs, n_jobs))
    if execution.mem_gb is not None and runs:
        per_run = max(run.estimated_memory_gb() for run in runs)
        workers = max(1, min(workers, int(execution.mem_gb // per_run)))
        if per_run > execution.mem_gb:
            LOGGER.warning("One run may need %.1f GB, more than --mem-gb %.1f; running one at a time",
                           per_run, execution.mem_gb)
    return workers


def process_run(run: Run, writer: DerivativesWriter) -> bool:
    """Summarise one run and write its outputs; False when they were already complete."""
    path = writer.layout.participant_file(RUN_SUMMARY, run.entities)
    parameters = {"bidsapp": __version__, "step": "summary", "fd_threshold_mm": FD_THRESHOLD_MM,
                  "inputs": [str(p) for p in run.files]}
    if writer.is_complete(path, parameters):
        LOGGER.info("%s: summary complete, skipped", run.name)
        return False
    if run.kind == "bold":
        summary = motion_summary(read_confounds(run), run.repetition_time)
        description = (f"Run length and head motion from the fMRIPrep confounds; high-motion volumes have "
                       f"framewise displacement above {FD_THRESHOLD_MM} mm (Power et al. 2012).")
    else:
        summary = parcel_summary(read_parcel_timeseries(run), run.repetition_time)
        description = "Run length and parcels with no signal or non-finite values."
    writer.write_table(path, pd.DataFrame([summary]), {"Description": description}, parameters=parameters,
                       sources=[str(p) for p in run.files])
    LOGGER.info("%s: wrote %s", run.name, path.name)
    return True
