"""The group level's preflight: every check of the real run, before anything is written.

:func:`plan_group_level` reads participants.tsv and the participant-level outputs,
checks ``--group-column``, ``--covariates`` and the ``--group-model`` columns against
participants.tsv, and builds each analysis's design. Problems with the options or the
participants table stop the run, all reported together (exit 2); no participant-level
output stops it with exit 18; an analysis whose design cannot be estimated for the
participants that have it (too few, a condition missing) is skipped with its reason,
and when every analysis is skipped the run stops (exit 18). The real run
(:func:`bidsapp.group.level.run_group_level`) and ``--dry-run``
(:func:`bidsapp.dry_run.render_plan`) both start here, so they agree.
"""

from __future__ import annotations

import logging
from collections import Counter
from dataclasses import dataclass, replace
from pathlib import Path

import pandas as pd

from bidsapp.config import Config, GroupAnalysis, Selection
from bidsapp.errors import BidsAppError, NoDataError, UsageError, raise_collected
from bidsapp.group.analyses import inspect_inputs
from bidsapp.group.checks import intact, permutation_outlook, summary_entities
from bidsapp.group.conditions import plan_conditions
from bidsapp.group.inputs import (
    GroupInput,
    PlannedAnalysis,
    find_group_inputs,
    session_inputs,
    within_participant_inputs,
)
from bidsapp.inputs.discovery import Inventory, run_name
from bidsapp.outputs.layout import RUN_SUMMARY
from bidsapp.outputs.writer import DerivativesWriter
from bidsapp.stats.design import group_design
from bidsapp.stats.model_file import cell_model, model_columns, model_design

LOGGER = logging.getLogger(__name__)


@dataclass(frozen=True)
class GroupPlan:
    """Everything the group level will do, checked.

    Attributes
    ----------
    participants : pandas.DataFrame
        participants.tsv rows of the selected participants.
    summaries : pandas.DataFrame
        One row per run: participant-level summaries joined with ``participants``.
    found, missing : tuple of Path
        The runs' participant-level summary files read, and those missing (participants left out).
    analyses : tuple of PlannedAnalysis
        The analyses, those to run and those skipped.
    """

    participants: pd.DataFrame
    summaries: pd.DataFrame
    found: tuple[Path, ...]
    missing: tuple[Path, ...]
    analyses: tuple[PlannedAnalysis, ...]


def plan_group_level(inventory: Inventory, writer: DerivativesWriter, config: Config) -> GroupPlan:
    """Check the group level's inputs and options and build every design; write nothing.

    What is checked is what the group level reads: the participant-level outputs (present, and
    intact: :meth:`~bidsapp.outputs.writer.DerivativesWriter.is_complete` against the parameters
    their sidecars record), participants.tsv, the options and each analysis's design and maps.
    The BOLD inputs are not: a run whose input files have a problem but whose participant-level
    outputs are complete is analysed.

    Raises
    ------
    BidsAppError
        Every problem found, together: unknown participants.tsv columns or options no analysis
        can use (exit 2), no participant-level output or no estimable analysis (exit 18).
    """
    problems: list[BidsAppError] = []
    participants = _participants_table(inventory)
    _check_columns(config, participants, inventory.participants_tsv, problems)
    summaries, found, missing = _run_summaries(inventory, writer, participants, problems)
    analyses: list[PlannedAnalysis] = []
    if not problems:
        inputs = [_intact(item, writer) for item in find_group_inputs(writer.output_dir, inventory.participants)
                  if _selected(item, config.selection)]
        inputs = [item for item in inputs if item.files]
        settings = config.group
        within = settings.test == "paired" or (settings.test == "anova" and not settings.group_column)
        sessions = []
        for shared, conditions in session_inputs(writer.output_dir, inventory.participants):
            selected = {name: _intact(item, writer) for name, item in conditions.items()
                        if _selected(item, config.selection)}
            if _selected(shared, config.selection) and len(selected) > 1:
                sessions.append((shared, selected))
        having = set().union(*(item.files for item in inputs))
        _check_design_options(config, participants[participants["participant_id"].str.removeprefix("sub-").isin(
            having)], within, problems)
        if not inputs and not sessions:
            problems.append(NoDataError(f"{writer.output_dir}: the participant level wrote no contrast or "
                                        "connectivity outputs for the selected participants and tasks; nothing to "
                                        "analyse at group level"))
        elif problems:  # options no analysis can use: no design is built
            analyses = []
        elif settings.model is not None and "conditions" in settings.model:
            per_session = [item for _, conditions in sessions for item in conditions.values()]
            analyses = plan_conditions(
                per_session if cell_model(settings.model).sessions else inputs, participants, settings, problems)
        elif within and settings.model is None:
            sets = within_participant_inputs(inputs) + sessions
            analyses = [_plan_within(shared, conditions, participants, config, problems)
                        for shared, conditions in sets]
        else:
            analyses = [_plan_between(item, participants, config, problems) for item in inputs]
        analyses = [_inspected(item, settings, problems) for item in analyses]
        if analyses and all(item.skipped for item in analyses):
            problems += [NoDataError(f"{item.group_input.name}: {item.skipped}") for item in analyses]
    raise_collected(problems)
    for item in analyses:
        if item.skipped:
            LOGGER.warning("%s: skipped, %s", item.group_input.name, item.skipped)
    return GroupPlan(participants, summaries, tuple(found), tuple(missing), tuple(analyses))


def _check_design_options(config: Config, participants: pd.DataFrame, within: bool,
                          problems: list[BidsAppError]) -> None:
    """The design options against every participant with outputs: a usage error here is wrong for every analysis.

    An analysis whose own participants make the design inestimable (one group level among them, a
    covariate constant over them, too few) is skipped instead (:func:`_plan_between`).
    """
    settings = config.group
    if participants.empty or (settings.model is not None and "conditions" in settings.model):
        return
    try:
        if settings.model is not None:
            model_design(participants.reset_index(drop=True), dict(settings.model))
        elif within:  # two stand-in conditions: the covariates against the per-participant columns
            rows = pd.concat([participants.assign(condition=condition) for condition in ("a", "b")],
                             ignore_index=True)
            group_design(rows, settings.test, covariates=settings.covariates)
        else:
            group_design(participants.reset_index(drop=True), settings.test, group_column=settings.group_column,
                         covariates=settings.covariates)
    except UsageError as error:
        problems.append(error)
    except NoDataError:  # too few participants overall: every analysis is skipped, with its reason
        pass


def _inspected(item: PlannedAnalysis, settings: GroupAnalysis, problems: list[BidsAppError]) -> PlannedAnalysis:
    """The analysis, skipped if its maps cannot go together, with the permutation corrections it will leave out."""
    if item.design is None:
        return item
    reason = inspect_inputs(item.group_input.kind, item.files)
    if reason is not None:
        return replace(item, design=None, skipped=reason)
    try:
        outlook = permutation_outlook(item.design, settings, spatial=item.group_input.kind == "voxels")
    except UsageError as error:  # --n-perm too small for --alpha: wrong for every analysis
        if str(error) not in map(str, problems):
            problems.append(error)
        return item
    return replace(item, permutations_left_out=outlook)


def _intact(group_input: GroupInput, writer: DerivativesWriter) -> GroupInput:
    """The analysis without the participants whose output does not match its sidecar (listed in the log)."""
    files = {}
    for label, path in group_input.files.items():
        if intact(writer, path):
            files[label] = path
        else:
            LOGGER.warning("%s: sub-%s left out, %s is incomplete (no sidecar, or its size or checksum differ "
                           "from its sidecar's); re-run the participant level for it", group_input.name, label, path)
    return replace(group_input, files=files)


def _plan_between(group_input: GroupInput, participants: pd.DataFrame, config: Config,
                  problems: list[BidsAppError]) -> PlannedAnalysis:
    """One map per participant: the ``--group-test`` design or the ``--group-model`` one."""
    settings = config.group
    labels = participants["participant_id"].str.removeprefix("sub-")
    left_out = tuple(sorted(set(labels) - set(group_input.files)))
    rows = participants[labels.isin(group_input.files)].reset_index(drop=True)
    files = tuple(group_input.files[label.removeprefix("sub-")] for label in rows["participant_id"])
    groups = tuple(rows[settings.group_column].astype(str)) if settings.group_column else None
    n = len(files)
    cells = dict(sorted(Counter(groups).items())) if groups else {"all": n}
    try:
        if settings.model is not None:
            design = model_design(rows, dict(settings.model))
        else:
            design = group_design(rows, settings.test, group_column=settings.group_column,
                                  covariates=settings.covariates)
    except (NoDataError, UsageError) as error:  # options no analysis can use stopped the run before
        return PlannedAnalysis(group_input, files, left_out, n, cells, skipped=str(error))
    return PlannedAnalysis(group_input, files, left_out, n, cells, design, groups)


def _plan_within(shared: GroupInput, conditions: dict[str, GroupInput], participants: pd.DataFrame,
                 config: Config, problems: list[BidsAppError]) -> PlannedAnalysis:
    """A within-participant design whose conditions are separate participant-level analyses."""
    settings = config.group
    complete = set.intersection(*(set(item.files) for item in conditions.values()))
    all_labels = participants["participant_id"].str.removeprefix("sub-")
    labels = [label for label in all_labels if label in complete]
    left_out = tuple(sorted(set(all_labels) - set(labels)))
    indexed = participants.set_index(all_labels)
    rows = pd.concat([indexed.loc[labels].assign(condition=condition) for condition in conditions],
                     ignore_index=True)
    files = tuple(conditions[row.condition].files[row.participant_id.removeprefix("sub-")]
                  for row in rows.itertuples())
    group_input = GroupInput(shared.kind, shared.entities, dict(zip(map(str, range(len(files))), files, strict=True)))
    n = len(labels)
    cells = {condition: n for condition in conditions}
    if settings.test == "paired" and len(conditions) != 2:
        problems.append(UsageError(
            f"--group-test paired needs two conditions of {shared.name}, found {len(conditions)} "
            f"({', '.join(conditions)}); use --group-test anova, or write two single-condition "
            "contrasts at participant level (--contrast)"))
        return PlannedAnalysis(group_input, files, left_out, n, cells, skipped="not two conditions")
    try:
        design = group_design(rows, settings.test, covariates=settings.covariates)
    except (NoDataError, UsageError) as error:  # options no analysis can use stopped the run before
        return PlannedAnalysis(group_input, files, left_out, n, cells, skipped=str(error))
    return PlannedAnalysis(group_input, files, left_out, n, cells, design, tuple(rows["condition"].astype(str)))


def _check_columns(config: Config, participants: pd.DataFrame, participants_tsv: Path | None,
                   problems: list[BidsAppError]) -> None:
    """Every participants.tsv column an option names exists (all reported, with the columns there are)."""
    settings = config.group
    named = [("--group-column", settings.group_column)] if settings.group_column else []
    named += [("--covariates", column) for column in settings.covariates]
    if settings.model is not None:
        named += [(f"--group-model {settings.model['path']}", source) for source in model_columns(settings.model)]
    available = [str(column) for column in participants.columns if column != "participant_id"]
    for option, column in named:
        if column in participants.columns:
            continue
        if participants_tsv is None:
            problems.append(UsageError(f"{option}: no participants.tsv for column {column!r}; add one to BIDS_DIR "
                                       f"with a participant_id and a {column} column"))
        else:
            problems.append(UsageError(f"{option}: {participants_tsv} has no column {column!r} "
                                       f"(its columns: {', '.join(available) or 'none besides participant_id'})"))


def _selected(group_input: GroupInput, selection: Selection) -> bool:
    """Whether an analysis belongs to the selected tasks and sessions."""
    entities = group_input.entities
    return ((selection.tasks is None or entities.get("task") in selection.tasks)
            and (selection.session_labels is None or entities.get("ses", "") in selection.session_labels
                 or "ses" not in entities))


def _run_summaries(inventory: Inventory, writer: DerivativesWriter, participants: pd.DataFrame,
                   problems: list[BidsAppError]) -> tuple[pd.DataFrame, list[Path], list[Path]]:
    """Every run's participant-level summary joined with ``participants``; the files read and those left out.

    The runs are those selected, including runs whose BOLD inputs have a problem (the group
    level reads their participant-level outputs, not their inputs); a summary that is missing or
    does not match its sidecar is left out, and listed.
    """
    summaries, found, missing = [], [], []
    for entities in summary_entities(inventory):
        path = writer.layout.participant_file(RUN_SUMMARY, entities)
        if not intact(writer, path):
            missing.append(path)
            continue
        found.append(path)
        row = pd.read_csv(path, sep="\t", na_values=["n/a"]).iloc[0].to_dict()
        summaries.append({"participant_id": f"sub-{entities['sub']}", "run": run_name(entities), **row})
    if not summaries:
        problems.append(NoDataError(f"{writer.output_dir}: no participant-level outputs for the selected runs; "
                                    "run the participant level first"))
        return pd.DataFrame(), found, missing
    for path in missing:
        LOGGER.warning("Left out of the group level, participant-level output missing or incomplete: %s", path)
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
