"""Participant level: each selected run is summarised and its outputs written.

For every run, bidsapp records what it analysed: the run's length and
repetition time and, for fMRIPrep data, head motion (mean and maximum
framewise displacement, volumes above 0.5 mm, non-steady-state volumes); for
parcellated data, parcels with no signal and non-finite values. Runs are
processed in parallel processes (``--nprocs``), no more at once than
``--mem-gb`` allows, and runs whose outputs are complete with unchanged
parameters are skipped.
"""

from __future__ import annotations

import logging
from concurrent.futures import ProcessPoolExecutor
from pathlib import Path

import pandas as pd

from bidsapp import __version__
from bidsapp.config import Execution
from bidsapp.discovery import Inventory, Run
from bidsapp.inputs import read_confounds, read_parcel_timeseries
from bidsapp.progress import progress
from bidsapp.qc import FD_THRESHOLD_MM, motion_summary, parcel_summary
from bidsapp.writer import DerivativesWriter

LOGGER = logging.getLogger(__name__)


def summary_path(writer: DerivativesWriter, run: Run) -> Path:
    """Where a run's summary table goes: ``sub-X/func/<run>_desc-summary_qc.tsv``."""
    return writer.participant_path({**run.entities, "desc": "summary"}, "qc", ".tsv")


def planned_outputs(writer: DerivativesWriter, run: Run) -> list[Path]:
    """Every file the participant level writes for ``run`` (data files; each has a JSON sidecar)."""
    return [summary_path(writer, run)]


def run_participant_level(inventory: Inventory, writer: DerivativesWriter, execution: Execution) -> None:
    """Process every run of the inventory, in parallel within the memory budget."""
    writer.ensure_dataset_description()
    workers = n_workers(execution, inventory.runs)
    LOGGER.info("Participant level: %d runs of %d participants, %d at a time",
                len(inventory.runs), len(inventory.participants), workers)
    if workers == 1:
        results = [process_run(run, writer) for run in progress(inventory.runs, "runs")]
    else:
        with ProcessPoolExecutor(max_workers=workers) as pool:
            results = list(progress(pool.map(process_run, inventory.runs, [writer] * len(inventory.runs)),
                                    "runs", total=len(inventory.runs)))
    written = sum(results)
    LOGGER.info("Participant level done: %d runs processed, %d already complete and skipped",
                written, len(results) - written)


def n_workers(execution: Execution, runs: tuple[Run, ...]) -> int:
    """Processes to run at once: ``--nprocs``, fewer when ``--mem-gb`` cannot hold them."""
    workers = max(1, min(execution.nprocs, len(runs)))
    if execution.mem_gb is not None and runs:
        per_run = max(run.estimated_memory_gb() for run in runs)
        workers = max(1, min(workers, int(execution.mem_gb // per_run)))
        if per_run > execution.mem_gb:
            LOGGER.warning("One run may need %.1f GB, more than --mem-gb %.1f; running one at a time",
                           per_run, execution.mem_gb)
    return workers


def process_run(run: Run, writer: DerivativesWriter) -> bool:
    """Summarise one run and write its outputs; False when they were already complete."""
    path = summary_path(writer, run)
    parameters = {"bidsapp": __version__, "step": "summary", "fd_threshold_mm": FD_THRESHOLD_MM,
                  "inputs": [str(p) for p in run.files]}
    if writer.is_complete(path, parameters):
        LOGGER.info("%s: outputs complete, skipped", run.name)
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
