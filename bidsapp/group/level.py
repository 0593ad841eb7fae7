"""Group level: gather the participant-level outputs, test them, and write tables, maps and a report.

For each analysis the participant level produced (voxel-wise contrasts, parcel
contrast tables, Fisher-z connectivity edges, network means; see
:mod:`bidsapp.group.inputs`), the group design of ``--group-test`` is fitted to
the participants that have it, every group contrast is tested (t or F, with z
and p), and each ``--correction`` is applied. Participants whose
participant-level outputs are missing or incomplete are listed and left out,
never silently. Every check runs before anything is written
(:mod:`bidsapp.group.plan`); an analysis that cannot be estimated is skipped,
with its reason in the log and the report, and the others run.
"""

from __future__ import annotations

import logging
import re
import signal
from dataclasses import dataclass
from pathlib import Path

from bidsapp import __version__
from bidsapp.config import Config, GroupAnalysis
from bidsapp.errors import NoDataError, raise_collected
from bidsapp.group.analyses import AnalysisData, Inestimable, feature_analysis, load_analysis, voxel_analysis
from bidsapp.group.inputs import PlannedAnalysis
from bidsapp.group.plan import plan_group_level
from bidsapp.group.results import AnalysisInputs, GroupResult, SkippedAnalysis
from bidsapp.inputs.discovery import Inventory
from bidsapp.inputs.runs import parse_entities
from bidsapp.interruption import Interrupted
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


def design_label(settings: GroupAnalysis) -> str:
    """The design's name in the group report's file name (letters and digits, as BIDS labels are).

    ``onesample``, ``twosampleGroup`` (test and group column), ``paired`` or ``modelSeed004`` (the model file).
    """
    words = ([settings.test, settings.group_column or ""] if settings.model is None
             else ["model", settings.model_name or ""])
    parts = [re.sub(r"[^A-Za-z0-9]", "", word) for word in words]
    return parts[0] + parts[1][:1].upper() + parts[1][1:]


def group_outputs(writer: DerivativesWriter, settings: GroupAnalysis) -> GroupOutputs:
    """Where the group summary table and the report of this design (:func:`design_label`) go."""
    return GroupOutputs(writer.layout.group_file(RUN_SUMMARY, {}),
                        writer.layout.group_file(GROUP_REPORT, {"desc": design_label(settings)}))


def run_group_level(inventory: Inventory, writer: DerivativesWriter, config: Config) -> Path:
    """Write the group summary, every group analysis and the report; return the report's (or summary's) path.

    Every check runs first (:func:`bidsapp.group.plan.plan_group_level`), so a failure writes nothing.
    An analysis that cannot be estimated (in the plan, or when its maps are loaded) is skipped with a
    warning and listed in the report; the others run.

    Raises
    ------
    NoDataError
        No analysis could run (exit 18); nothing is written.
    Interrupted
        SIGTERM or SIGINT: completed analyses are kept, and it says how many finished.
    """
    plan = plan_group_level(inventory, writer, config)
    to_run = [item for item in plan.analyses if item.design is not None]
    skipped = [SkippedAnalysis(item.group_input.name, item.group_input.kind, item.skipped or "")
               for item in plan.analyses if item.design is None]
    analyses: list[GroupResult] = []
    try:
        for item in progress(to_run, "analyses"):
            try:
                loaded = load_analysis(item.group_input.kind, item.files)
            except Inestimable as error:
                LOGGER.warning("%s: skipped, %s", item.group_input.name, error)
                skipped.append(SkippedAnalysis(item.group_input.name, item.group_input.kind, str(error)))
                continue
            writer.ensure_dataset_description()
            analyses.append(analyse(item, loaded, writer, config))
    except KeyboardInterrupt as interruption:  # Interrupted (SIGTERM, SIGINT) or a plain Ctrl-C
        signum = interruption.signum if isinstance(interruption, Interrupted) else signal.SIGINT
        raise Interrupted(signum, f"{len(analyses)} of {len(to_run)} group analyses finished") from interruption
    if not analyses:
        raise_collected([NoDataError(f"{item.name}: {item.reason}") for item in skipped])
    outputs = group_outputs(writer, config.group)
    table = plan.summaries
    parameters = {"bidsapp": __version__, "runs": sorted(table["run"]), "left_out": [str(p) for p in plan.missing],
                  "skipped": {item.name: item.reason for item in skipped}}
    writer.write_table(outputs.summary, table, {"Description": "One row per run: participant-level summaries "
                                                   "joined with participants.tsv."},
                       parameters=parameters, sources=[str(path) for path in plan.found])
    if config.execution.reports:
        html = render_group_report(table, inventory=inventory, missing=list(plan.missing), version=__version__,
                                   analyses=analyses, settings=config.group, skipped=skipped)
        writer.write_text(outputs.report, html, {"Description": "Group-level HTML report."},
                          parameters={**parameters, "group": {**config.group.__dict__, "model": (
                              dict(config.group.model) if config.group.model else None)}},
                          sources=[str(outputs.summary)])
    LOGGER.info("Group level done: %d analyses of %d participants, %d skipped", len(analyses),
                table["participant_id"].nunique(), len(skipped))
    return outputs.report if config.execution.reports else outputs.summary


def analyse(planned: PlannedAnalysis, loaded: AnalysisData, writer: DerivativesWriter, config: Config) -> GroupResult:
    """Fit and test one planned analysis on its loaded maps; write its outputs; return what the report shows of it."""
    assert planned.design is not None, "skipped analyses are not run"
    group_input = planned.group_input
    if planned.left_out:
        LOGGER.warning("%s: left out, participant-level output missing for sub-%s", group_input.name,
                       ", sub-".join(planned.left_out))
    for contrast, reason in planned.permutations_left_out.items():
        LOGGER.info("%s, contrast %s: %s", group_input.name, contrast, reason)
    context = AnalysisInputs(planned.design, tuple(str(f) for f in planned.files), planned.left_out, config.group,
                             planned.groups, row_labels(planned), planned.cells)
    cells = ", ".join(f"{cell} {n}" for cell, n in planned.cells.items())
    LOGGER.info("%s: %s test over %d participants (%s)", group_input.name, planned.design.test,
                planned.n_participants, cells)
    if group_input.kind == "voxels":
        return voxel_analysis(group_input, loaded, writer, context)
    return feature_analysis(group_input, loaded, writer, context)


def row_labels(planned: PlannedAnalysis) -> tuple[str, ...]:
    """Each design row's participant ID, with its condition in within-participant designs."""
    ids = [f"sub-{parse_entities(path.name)['sub']}" for path in planned.files]
    if planned.design is not None and planned.design.within_participant and planned.groups:
        return tuple(f"{participant} {condition}" for participant, condition in zip(ids, planned.groups, strict=True))
    return tuple(ids)
