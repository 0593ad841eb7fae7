"""A model file's ``conditions:`` as design rows: one row per participant and condition.

Conditions are participant-level contrast names (the ``contrast`` entity of first-level maps and parcel
tables) or sessions (``ses-<label>``: the per-session results). The analyses that differ only in that
entity form one design, e.g. the nine single-condition maps of seed 004 for one task and space. Participants
missing a condition are listed and left out; an analysis set that no participant completes is skipped with
its reason, so a run where none can be estimated stops with exit 18 (:mod:`bidsapp.group.plan`).
"""

from __future__ import annotations

from collections import Counter, defaultdict
from collections.abc import Iterable

import pandas as pd

from bidsapp.config import GroupAnalysis
from bidsapp.errors import BidsAppError, NoDataError, UsageError
from bidsapp.group.inputs import GroupInput, PlannedAnalysis
from bidsapp.outputs.layout import GroupKind
from bidsapp.stats.model_file import CellModel, cell_model, conditions_design


def plan_conditions(inputs: Iterable[GroupInput], participants: pd.DataFrame, settings: GroupAnalysis,
                    problems: list[BidsAppError]) -> list[PlannedAnalysis]:
    """Every within-participant analysis of ``settings.model``'s conditions, with its design.

    Parameters
    ----------
    inputs : iterable of GroupInput
        The selected participant-level analyses (:func:`bidsapp.group.inputs.find_group_inputs`).
    participants : pandas.DataFrame
        participants.tsv rows of the selected participants (``participant_id`` with ``sub-``).
    settings : GroupAnalysis
        ``settings.model`` has ``conditions``.
    problems : list
        Model-file errors are appended (exit 2): a condition no participant-level output has (the known ones
        listed), a groups column with one level, an unknown cell or a contrast that is not estimable.
    """
    assert settings.model is not None, "called for a model file with conditions"
    model = cell_model(settings.model)
    entity = "ses" if model.sessions else "contrast"
    wanted = {condition.removeprefix("ses-") if model.sessions else condition: condition
              for condition in model.conditions}
    sets: dict[tuple, dict[str, GroupInput]] = defaultdict(dict)
    known: set[str] = set()
    for item in inputs:
        value = item.entities.get(entity)
        if value is None:
            continue
        known.add(f"ses-{value}" if model.sessions else value)
        if value in wanted:
            shared = tuple((k, v) for k, v in item.entities.items() if k != entity)
            sets[(item.kind, shared)][wanted[value]] = item
    unknown = [condition for condition in model.conditions if condition not in known]
    if unknown:
        kind = "session" if model.sessions else "contrast"
        problems.append(UsageError(
            f"{model.where}: condition {', '.join(map(repr, unknown))} is not a participant-level {kind} of the "
            f"selected participants (known: {', '.join(sorted(known)) or 'none'}); check the name, or write it at "
            "participant level" + ("" if model.sessions else " with --contrast NAME=EXPR")))
        return []
    if model.groups and participants[model.groups].dropna().nunique() < 2:
        levels = ", ".join(map(str, participants[model.groups].dropna().unique())) or "none"
        problems.append(UsageError(f"{model.where}: groups column {model.groups!r} has one level ({levels}) among "
                                   "the selected participants; cells need at least two groups (drop 'groups')"))
        return []
    return [_plan_set(kind, dict(shared), conditions, participants, model, problems)
            for (kind, shared), conditions in sorted(sets.items(), key=lambda entry: str(entry[0]))]


def _plan_set(kind: GroupKind, shared: dict[str, str], conditions: dict[str, GroupInput], participants: pd.DataFrame,
              model: CellModel, problems: list[BidsAppError]) -> PlannedAnalysis:
    """Rows (participant x condition, each participant's rows together) and the design of one analysis set."""
    labels = participants["participant_id"].str.removeprefix("sub-")
    absent = [condition for condition in model.conditions if condition not in conditions]
    having = [set(conditions[c].files) for c in model.conditions if c in conditions]
    complete = set.intersection(*having) if having and not absent else set()
    kept = [label for label in labels if label in complete]
    left_out = tuple(sorted(set(labels) - set(kept)))
    table = participants.set_index(labels)
    rows = pd.DataFrame([{**table.loc[label].to_dict(), "condition": condition}
                         for label in kept for condition in model.conditions],
                        columns=[*participants.columns, "condition"])
    files = tuple(conditions[row.condition].files[str(row.participant_id).removeprefix("sub-")]
                  for row in rows.itertuples())
    group_input = GroupInput(kind, shared, {str(index): path for index, path in enumerate(files)})
    cell = rows["condition"].astype(str)
    if model.groups and len(rows):
        cell = rows[model.groups].astype(str) + "." + cell
    cells = dict(Counter(cell))
    if absent or not kept:
        missing = f"condition {', '.join(absent)}" if absent else f"every condition ({', '.join(model.conditions)})"
        return PlannedAnalysis(group_input, files, left_out, 0, cells,
                                 skipped=f"no participant has {missing}")
    try:
        design = conditions_design(rows, model)
    except NoDataError as error:
        return PlannedAnalysis(group_input, files, left_out, len(kept), cells, skipped=str(error))
    except UsageError as error:  # the same model error for every analysis set: reported once
        if str(error) not in map(str, problems):
            problems.append(error)
        return PlannedAnalysis(group_input, files, left_out, len(kept), cells, skipped=str(error))
    return PlannedAnalysis(group_input, files, left_out, len(kept), cells, design, tuple(cell))
