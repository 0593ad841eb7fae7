"""Group level: gather the participant-level outputs, test them, and write tables, maps and a report.

For each analysis the participant level produced (voxel-wise contrasts, parcel
contrast tables, Fisher-z connectivity edges, network means; see
:mod:`bidsapp.group.inputs`), the group design of ``--group-test`` is fitted to
the participants that have it, every group contrast is tested (t or F, with z
and p), and each ``--correction`` is applied. Participants whose
participant-level outputs are missing are listed and left out, never silently.
Every check runs before anything is written (:mod:`bidsapp.group.plan`).
"""

from __future__ import annotations

import logging
from dataclasses import dataclass
from pathlib import Path

from bidsapp import __version__
from bidsapp.config import Config
from bidsapp.group.analyses import feature_analysis, voxel_analysis
from bidsapp.group.plan import PlannedAnalysis, plan_group_level
from bidsapp.group.results import AnalysisInputs, GroupResult
from bidsapp.inputs.discovery import Inventory
from bidsapp.outputs.layout import GROUP_REPORT, RUN_SUMMARY
from bidsapp.outputs.writer import DerivativesWriter
from bidsapp.progress import progress
from bidsapp.reports.group import render_group_report

LOGGER = logging.getLogger(__name__)


@dataclass(frozen=True)
class GroupOutputs:
    """The group level's fixed output files (per-analysis outputs are listed in the report)."""

    summary: Path
    report: Path


def group_outputs(writer: DerivativesWriter) -> GroupOutputs:
    """Where the group summary table and the group report go."""
    return GroupOutputs(writer.layout.group_file(RUN_SUMMARY, {}), writer.layout.group_file(GROUP_REPORT, {}))


def run_group_level(inventory: Inventory, writer: DerivativesWriter, config: Config) -> Path:
    """Write the group summary, every group analysis and the report; return the report's (or summary's) path.

    Every check runs first (:func:`bidsapp.group.plan.plan_group_level`), so a failure writes nothing.
    """
    plan = plan_group_level(inventory, writer, config)
    writer.ensure_dataset_description()
    analyses = [analyse(item, writer, config) for item in progress(
        [item for item in plan.analyses if item.design is not None], "analyses")]
    outputs = group_outputs(writer)
    table = plan.summaries
    parameters = {"bidsapp": __version__, "runs": sorted(table["run"]), "left_out": [str(p) for p in plan.missing]}
    writer.write_table(outputs.summary, table, {"Description": "One row per run: participant-level summaries "
                                                   "joined with participants.tsv."},
                       parameters=parameters, sources=[str(path) for path in plan.found])
    if config.execution.reports:
        html = render_group_report(table, inventory=inventory, missing=list(plan.missing), version=__version__,
                                   analyses=analyses, settings=config.group)
        writer.write_text(outputs.report, html, {"Description": "Group-level HTML report."},
                          parameters={**parameters, "group": {**config.group.__dict__, "model": (
                              dict(config.group.model) if config.group.model else None)}},
                          sources=[str(outputs.summary)])
    LOGGER.info("Group level done: %d analyses of %d participants", len(analyses),
                table["participant_id"].nunique())
    return outputs.report if config.execution.reports else outputs.summary


def analyse(planned: PlannedAnalysis, writer: DerivativesWriter, config: Config) -> GroupResult:
    """Fit and test one planned analysis; write its outputs; return what the report shows of it."""
    assert planned.design is not None, "skipped analyses are not run"
    group_input = planned.group_input
    if planned.left_out:
        LOGGER.warning("%s: left out, participant-level output missing for sub-%s", group_input.name,
                       ", sub-".join(planned.left_out))
    files = list(planned.files)
    context = AnalysisInputs(planned.design, tuple(str(f) for f in files), planned.left_out, config.group,
                             planned.groups)
    cells = ", ".join(f"{cell} {n}" for cell, n in planned.cells.items())
    LOGGER.info("%s: %s test over %d participants (%s)", group_input.name, planned.design.test,
                planned.n_participants, cells)
    if group_input.kind == "voxels":
        return voxel_analysis(group_input, files, writer, context)
    return feature_analysis(group_input, files, writer, context)
