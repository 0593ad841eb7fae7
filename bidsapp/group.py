"""Group level: gather the participant-level outputs into group tables and a report.

Participants whose participant-level outputs are missing are listed and left
out, never silently.
"""

from __future__ import annotations

import logging
from pathlib import Path

import pandas as pd

from bidsapp import __version__
from bidsapp.discovery import Inventory
from bidsapp.errors import NoDataError
from bidsapp.participant import summary_path
from bidsapp.report import render_group_report
from bidsapp.writer import DerivativesWriter

LOGGER = logging.getLogger(__name__)


def group_outputs(writer: DerivativesWriter) -> dict[str, Path]:
    """The group level's output files by role."""
    return {"summary": writer.group_path({"desc": "summary"}, "qc", ".tsv"),
            "report": writer.group_path({"desc": "summary"}, "report", ".html")}


def run_group_level(inventory: Inventory, writer: DerivativesWriter) -> Path:
    """Write the group summary table and report; return the report's path."""
    writer.ensure_dataset_description()
    summaries, missing = [], []
    for run in inventory.runs:
        path = summary_path(writer, run)
        if not path.is_file():
            missing.append(path)
            continue
        row = pd.read_csv(path, sep="\t", na_values=["n/a"]).iloc[0].to_dict()
        summaries.append({"participant_id": f"sub-{run.subject}", "run": run.name, **row})
    if not summaries:
        raise NoDataError(f"{writer.output_dir}: no participant-level outputs for the selected runs; "
                          "run the participant level first")
    for path in missing:
        LOGGER.warning("Left out of the group level, participant-level output missing: %s", path)
    table = pd.DataFrame(summaries)
    if inventory.participants_tsv is not None:
        participants = pd.read_csv(inventory.participants_tsv, sep="\t", na_values=["n/a"], dtype={"participant_id": str})
        table = table.merge(participants, on="participant_id", how="left")
    outputs = group_outputs(writer)
    parameters = {"bidsapp": __version__, "runs": sorted(table["run"]), "left_out": [str(p) for p in missing]}
    sources = [str(summary_path(writer, run)) for run in inventory.runs if summary_path(writer, run).is_file()]
    writer.write_table(outputs["summary"], table, {"Description": "One row per run: participant-level summaries "
                                                   "joined with participants.tsv."},
                       parameters=parameters, sources=sources)
    html = render_group_report(table, inventory=inventory, missing=missing, version=__version__)
    writer.write_text(outputs["report"], html, {"Description": "Group-level HTML report."},
                      parameters=parameters, sources=[str(outputs["summary"])])
    LOGGER.info("Group level done: %d runs of %d participants", len(table), table["participant_id"].nunique())
    return outputs["report"]
