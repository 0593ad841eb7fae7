"""Find the participant-level outputs the group level analyses, grouped by analysis.

An *analysis* is one kind of participant-level result that every participant
has: a voxel-wise first-level contrast's effect map or seed's Fisher z map, a
parcel-wise contrast table, a connectivity matrix (Fisher z of the Pearson
correlations, partial correlations, covariances) or the network means; their
names and patterns are :data:`bidsapp.outputs.layout.GROUP_INPUTS`. Files are
grouped by their entities other than the participant's. By default the group
level analyses the subject-level results (runs and sessions combined, one per
participant: :func:`find_group_inputs`); the per-session results are the
conditions of a design over sessions (:func:`session_inputs`). :class:`PlannedAnalysis` is one analysis
with the design the preflight built for it (:mod:`bidsapp.group.plan`, :mod:`bidsapp.group.conditions`).
"""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from pathlib import Path

from bidsapp.inputs.runs import parse_entities
from bidsapp.outputs.layout import (
    GROUP_INPUTS,
    SESSION_LEVEL_DROPS,
    SUBJECT_LEVEL_DROPS,
    GroupKind,
    OutputLayout,
    entities_label,
)
from bidsapp.outputs.sidecars import ContrastRecord, read_sidecar
from bidsapp.stats.design import GroupDesign


@dataclass(frozen=True)
class GroupInput:
    """One analysis: the same participant-level result for several participants.

    Attributes
    ----------
    kind : {"voxels", "parcels", "edges", "networks"}
    entities : mapping
        Entities shared by the files (no ``sub``); they name the group outputs.
    files : mapping
        Participant label to file.
    """

    kind: GroupKind
    entities: Mapping[str, str]
    files: Mapping[str, Path]

    @property
    def name(self) -> str:
        """The analysis as a file-name prefix, e.g. ``task-motor_space-MNI_contrast-lfMinusRf``."""
        return entities_label(self.entities)


def find_group_inputs(output_dir: Path, participants: Iterable[str]) -> list[GroupInput]:
    """Every analysis of subject-level results (one per participant) for any of ``participants``.

    Subject-level results have no ``ses``, ``dir`` or ``run`` entity
    (:data:`~bidsapp.outputs.layout.SUBJECT_LEVEL_DROPS`): a participant's runs and
    sessions combined (:mod:`bidsapp.participant.subject`), so a participant with
    sessions and one without are in the same analysis.
    """
    return _analyses(output_dir, participants, "subject")


def session_inputs(output_dir: Path, participants: Iterable[str]) -> list[tuple[GroupInput, dict[str, GroupInput]]]:
    """Per-session analyses, as the conditions of a within-participant design over sessions.

    Per-session results (``ses``, no ``run``/``dir``) are written for participants with
    several sessions (:mod:`bidsapp.participant.subject`).

    Parameters
    ----------
    output_dir : Path
    participants : iterable of str
        Labels without ``sub-``.

    Returns
    -------
    list of (GroupInput, dict)
        The shared analysis (entities without ``ses``; no files) and its conditions,
        ``ses-<label>`` to that session's analysis, when there are at least two sessions.
        A participant without one of the sessions is absent from that session's files.
    """
    sets: dict[tuple, dict[str, GroupInput]] = defaultdict(dict)
    for item in _analyses(output_dir, participants, "session"):
        shared = tuple((k, v) for k, v in item.entities.items() if k != "ses")
        sets[(item.kind, shared)][f"ses-{item.entities['ses']}"] = item
    return [(GroupInput(kind, dict(shared), {}), dict(sorted(conditions.items())))
            for (kind, shared), conditions in sorted(sets.items()) if len(conditions) > 1]


def _analyses(output_dir: Path, participants: Iterable[str], level: str) -> list[GroupInput]:
    """The analyses of ``subject``- or ``session``-level results of ``participants``."""
    wanted = set(participants)
    found: list[GroupInput] = []
    layout = OutputLayout(output_dir)
    for kind in GROUP_INPUTS:
        groups: dict[tuple, dict[str, Path]] = defaultdict(dict)
        for path in layout.group_inputs(kind):
            entities = parse_entities(path.name)
            dropped = SUBJECT_LEVEL_DROPS if level == "subject" else SESSION_LEVEL_DROPS
            if (entities.get("sub") not in wanted or any(key in entities for key in dropped)
                    or (level == "session" and "ses" not in entities)):
                continue
            key = tuple((k, v) for k, v in entities.items() if k != "sub" and not (kind == "voxels" and k == "stat"))
            groups[key][entities["sub"]] = path
        found += [GroupInput(kind, dict(key), dict(sorted(files.items()))) for key, files in groups.items()]
    return sorted(found, key=lambda item: (item.kind, item.name))


def within_participant_inputs(inputs: Iterable[GroupInput]) -> list[tuple[GroupInput, dict[str, GroupInput]]]:
    """Sets of analyses that are conditions of one within-participant design (paired, repeated measures).

    Conditions are the first-level contrasts of single conditions
    (:attr:`ContrastRecord.single_condition` of the sidecar) of the same task, space
    and atlas; sessions as conditions are :func:`session_inputs`.

    Returns
    -------
    list of (GroupInput, dict)
        The shared analysis (entities without ``contrast``; no files) and its
        conditions: condition name to that condition's analysis.
    """
    sets: dict[tuple, dict[str, GroupInput]] = defaultdict(dict)
    for item in inputs:
        if "contrast" in item.entities and _single_condition(item):
            shared = tuple((k, v) for k, v in item.entities.items() if k != "contrast")
            sets[(item.kind, shared)][item.entities["contrast"]] = item
    return [(GroupInput(kind, dict(shared), {}), dict(sorted(conditions.items())))
            for (kind, shared), conditions in sorted(sets.items()) if len(conditions) > 1]


def _single_condition(item: GroupInput) -> bool:
    """Whether a first-level contrast is one condition against baseline (from its JSON sidecar)."""
    metadata = read_sidecar(next(iter(item.files.values())))
    record = ContrastRecord.from_sidecar(metadata) if metadata is not None else None
    return record is not None and record.single_condition


@dataclass(frozen=True)
class PlannedAnalysis:
    """One group analysis as the preflight found it.

    Attributes
    ----------
    group_input : GroupInput
        The analysis; for a within-participant design its files are the rows of the design, in order.
    files : tuple of Path
        The participant-level files, one per design row.
    left_out : tuple of str
        Participants (labels without ``sub-``) selected but without this analysis's output.
    n_participants : int
        Participants in the design.
    cells : mapping of str to int
        Design rows per cell: per group, per condition, or ``all``.
    design : GroupDesign, optional
        ``None`` when the analysis is skipped.
    groups : tuple of str, optional
        Group (between) or condition (within) label of each row, for the report.
    skipped : str, optional
        Why the design cannot be estimated.
    permutations_left_out : mapping of str to str
        Contrasts whose permutation corrections will be left out (too few distinct resamples to
        reach ``--alpha``), with why.
    """

    group_input: GroupInput
    files: tuple[Path, ...]
    left_out: tuple[str, ...]
    n_participants: int
    cells: Mapping[str, int]
    design: GroupDesign | None = None
    groups: tuple[str, ...] | None = None
    skipped: str | None = None
    permutations_left_out: Mapping[str, str] = field(default_factory=dict)
