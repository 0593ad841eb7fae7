"""Group level: gather the participant-level outputs, test them, and write tables, maps and a report.

For each analysis the participant level produced (voxel-wise contrasts, parcel
contrast tables, Fisher-z connectivity edges, network means; see
:mod:`bidsapp.group.inputs`), the group design of ``--group-test`` is fitted to
the participants that have it, every group contrast is tested (t or F, with z
and p), and each ``--correction`` is applied. Participants whose
participant-level outputs are missing are listed and left out, never silently.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass
from pathlib import Path

import pandas as pd

from bidsapp import __version__
from bidsapp.config import Config, Selection
from bidsapp.errors import NoDataError, UsageError
from bidsapp.group.analyses import feature_analysis, voxel_analysis
from bidsapp.group.inputs import GroupInput, find_group_inputs, within_participant_inputs
from bidsapp.group.results import AnalysisInputs, GroupResult
from bidsapp.inputs.discovery import Inventory
from bidsapp.outputs.layout import GROUP_REPORT, RUN_SUMMARY
from bidsapp.outputs.writer import DerivativesWriter
from bidsapp.progress import progress
from bidsapp.reports.group import render_group_report
from bidsapp.stats.design import group_design
from bidsapp.stats.model_file import model_design

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
    """Write the group summary, every group analysis and the report; return the report's (or summary's) path."""
    writer.ensure_dataset_description()
    participants = _participants_table(inventory)
    table, found, missing = _run_summaries(inventory, writer, participants)
    inputs = [item for item in find_group_inputs(writer.output_dir, inventory.participants)
              if _selected(item, config.selection)]
    within = config.group.test == "paired" or (config.group.test == "anova" and not config.group.group_column)
    if within and config.group.model is None:
        analyses = [analyse_within(shared, conditions, participants, writer, config)
                    for shared, conditions in progress(within_participant_inputs(inputs), "analyses")]
    else:
        analyses = [analyse(group_input, participants, writer, config)
                    for group_input in progress(inputs, "analyses")]
    outputs = group_outputs(writer)
    parameters = {"bidsapp": __version__, "runs": sorted(table["run"]), "left_out": [str(p) for p in missing]}
    writer.write_table(outputs.summary, table, {"Description": "One row per run: participant-level summaries "
                                                   "joined with participants.tsv."},
                       parameters=parameters, sources=[str(path) for path in found])
    if config.execution.reports:
        html = render_group_report(table, inventory=inventory, missing=missing, version=__version__,
                                   analyses=analyses, settings=config.group)
        writer.write_text(outputs.report, html, {"Description": "Group-level HTML report."},
                          parameters={**parameters, "group": {**config.group.__dict__, "model": (
                              dict(config.group.model) if config.group.model else None)}},
                          sources=[str(outputs.summary)])
    LOGGER.info("Group level done: %d analyses of %d participants", len(analyses),
                table["participant_id"].nunique())
    return outputs.report if config.execution.reports else outputs.summary


def analyse(group_input: GroupInput, participants: pd.DataFrame, writer: DerivativesWriter,
            config: Config) -> GroupResult:
    """Fit and test one analysis; write its outputs; return what the report shows of it."""
    settings = config.group
    left_out = sorted(set(participants["participant_id"].str.removeprefix("sub-")) - set(group_input.files))
    if left_out:
        LOGGER.warning("%s: left out, participant-level output missing for sub-%s", group_input.name,
                       ", sub-".join(left_out))
    rows = participants[participants["participant_id"].str.removeprefix("sub-").isin(group_input.files)]
    if settings.model is not None:
        design = model_design(rows.reset_index(drop=True), dict(settings.model))
    else:
        design = group_design(rows.reset_index(drop=True), settings.test, group_column=settings.group_column,
                              covariates=settings.covariates)
    files = [group_input.files[label.removeprefix("sub-")] for label in rows["participant_id"]]
    groups = rows[settings.group_column].astype(str).tolist() if settings.group_column else None
    context = AnalysisInputs(design, tuple(str(f) for f in files), tuple(left_out), settings,
                             None if groups is None else tuple(groups))
    LOGGER.info("%s: %s test over %d participants", group_input.name, settings.test, len(files))
    if group_input.kind == "voxels":
        return voxel_analysis(group_input, files, writer, context)
    return feature_analysis(group_input, files, writer, context)


def analyse_within(shared: GroupInput, conditions: dict[str, GroupInput], participants: pd.DataFrame,
                   writer: DerivativesWriter, config: Config) -> GroupResult:
    """Fit and test a within-participant design whose conditions are separate participant-level analyses."""
    settings = config.group
    if settings.test == "paired" and len(conditions) != 2:
        raise UsageError(f"--group-test paired needs two conditions of {shared.name}, found {len(conditions)} "
                         f"({', '.join(conditions)}); use --group-test anova, or write two single-condition "
                         "contrasts at participant level (--contrast)")
    complete = set.intersection(*(set(item.files) for item in conditions.values()))
    labels = [label for label in participants["participant_id"].str.removeprefix("sub-") if label in complete]
    left_out = sorted(set(participants["participant_id"].str.removeprefix("sub-")) - set(labels))
    if left_out:
        LOGGER.warning("%s: left out, a condition's output missing for sub-%s", shared.name, ", sub-".join(left_out))
    indexed = participants.set_index(participants["participant_id"].str.removeprefix("sub-"))
    rows = pd.concat([indexed.loc[labels].assign(condition=condition) for condition in conditions],
                     ignore_index=True)
    files = [conditions[row.condition].files[row.participant_id.removeprefix("sub-")]
             for row in rows.itertuples()]
    design = group_design(rows, settings.test, covariates=settings.covariates)
    context = AnalysisInputs(design, tuple(str(f) for f in files), tuple(left_out), settings,
                             tuple(rows["condition"].astype(str)))
    LOGGER.info("%s: %s over %d participants x %d conditions (%s)", shared.name, settings.test, len(labels),
                len(conditions), ", ".join(conditions))
    group_input = GroupInput(shared.kind, shared.entities, dict(zip(map(str, range(len(files))), files, strict=True)))
    if shared.kind == "voxels":
        return voxel_analysis(group_input, files, writer, context)
    return feature_analysis(group_input, files, writer, context)


def _selected(group_input: GroupInput, selection: Selection) -> bool:
    """Whether an analysis belongs to the selected tasks and sessions."""
    entities = group_input.entities
    return ((selection.tasks is None or entities.get("task") in selection.tasks)
            and (selection.session_labels is None or entities.get("ses", "") in selection.session_labels
                 or "ses" not in entities))


def _run_summaries(inventory: Inventory, writer: DerivativesWriter, participants: pd.DataFrame
                   ) -> tuple[pd.DataFrame, list[Path], list[Path]]:
    """Every run's participant-level summary joined with ``participants``; the files read and the missing ones."""
    summaries, found, missing = [], [], []
    for run in inventory.runs:
        path = writer.layout.participant_file(RUN_SUMMARY, run.entities)
        if not path.is_file():
            missing.append(path)
            continue
        found.append(path)
        row = pd.read_csv(path, sep="\t", na_values=["n/a"]).iloc[0].to_dict()
        summaries.append({"participant_id": f"sub-{run.subject}", "run": run.name, **row})
    if not summaries:
        raise NoDataError(f"{writer.output_dir}: no participant-level outputs for the selected runs; "
                          "run the participant level first")
    for path in missing:
        LOGGER.warning("Left out of the group level, participant-level output missing: %s", path)
    table = pd.DataFrame(summaries).merge(participants, on="participant_id", how="left")
    return table, found, missing


def _participants_table(inventory: Inventory) -> pd.DataFrame:
    """participants.tsv restricted to the selected participants (their ids alone when there is none)."""
    selected = [f"sub-{label}" for label in inventory.participants]
    if inventory.participants_tsv is None:
        return pd.DataFrame({"participant_id": selected})
    participants = pd.read_csv(inventory.participants_tsv, sep="\t", na_values=["n/a"], dtype={"participant_id": str})
    participants["participant_id"] = participants["participant_id"].map(
        lambda value: value if value.startswith("sub-") else f"sub-{value}")
    known = participants[participants["participant_id"].isin(selected)]
    absent = sorted(set(selected) - set(known["participant_id"]))
    if absent:
        LOGGER.warning("%s lists no row for %s", inventory.participants_tsv, ", ".join(absent))
    return known.reset_index(drop=True)
