"""The scans table of each participant (per session): the runs processed, one row each with the run's summary.

BIDS defines ``sub-<label>[/ses-<label>]/sub-<label>[_ses-<label>]_scans.tsv`` for the properties of each
run of a session; here each row names the run's summary file (``filename``) and repeats its columns. It is
the participant level's one output the current BIDS schema defines, so the BIDS validator counts the
participant.
"""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path

import pandas as pd

from bidsapp import __version__
from bidsapp.inputs.runs import Run
from bidsapp.outputs.layout import RUN_SUMMARY, OutputLayout
from bidsapp.outputs.writer import DerivativesWriter
from bidsapp.steps.qc import FD_THRESHOLD_MM

DESCRIPTION = ("The runs bidsapp processed for this participant (and session), one row each: the run's summary "
               "file and its columns.")
COLUMNS = {
    "n_volumes": {"Description": "Volumes in the run"},
    "repetition_time_s": {"Description": "Repetition time", "Units": "s"},
    "duration_s": {"Description": "Run length", "Units": "s"},
    "n_non_steady_state": {"Description": "Volumes fMRIPrep flagged as non-steady-state"},
    "mean_fd_mm": {"Description": "Mean framewise displacement (Power et al. 2012), first volume left out",
                   "Units": "mm"},
    "max_fd_mm": {"Description": "Largest framewise displacement", "Units": "mm"},
    "n_high_motion": {"Description": f"Volumes with framewise displacement above {FD_THRESHOLD_MM} mm"},
    "n_parcels": {"Description": "Parcels in the run's time series"},
    "n_flat_parcels": {"Description": "Parcels with one value throughout (zero variance)"},
    "n_nonfinite_values": {"Description": "NaN or infinite values in the parcel time series"},
}
"""The run summary's columns (:mod:`bidsapp.steps.qc`) as BIDS column descriptions of the scans table."""


def scans_tables(layout: OutputLayout, runs: Sequence[Run]) -> dict[Path, list[Path]]:
    """Each scans table of the runs (one per participant and session) and the run summaries it lists."""
    tables: dict[Path, list[Path]] = {}
    for run in runs:
        tables.setdefault(layout.scans_file(run.entities), []).append(
            layout.participant_file(RUN_SUMMARY, run.entities))
    return tables


def write_scans(writer: DerivativesWriter, runs: Sequence[Run], *, rewrite: bool) -> None:
    """Write the scans tables of ``runs`` from their run summaries (again when ``rewrite``, or incomplete)."""
    for path, summaries in scans_tables(writer.layout, runs).items():
        parameters = {"bidsapp": __version__, "step": "scans", "runs": [summary.name for summary in summaries]}
        if not rewrite and writer.is_complete(path, parameters):
            continue
        table = pd.concat([pd.read_csv(summary, sep="\t", na_values="n/a") for summary in summaries],
                          ignore_index=True)
        table.insert(0, "filename", [summary.relative_to(path.parent).as_posix() for summary in summaries])
        columns = {column: COLUMNS[column] for column in table.columns if column in COLUMNS}
        writer.write_table(path, table, {"Description": DESCRIPTION, **columns}, parameters=parameters,
                           sources=summaries)
