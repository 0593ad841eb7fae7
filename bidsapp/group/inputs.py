"""Find the participant-level outputs the group level analyses, grouped by analysis.

An *analysis* is one kind of participant-level result that every participant
has: a voxel-wise first-level contrast's effect map, a parcel-wise contrast table,
or a Fisher-z connectivity matrix and its network means; their names and patterns
are :data:`bidsapp.outputs.layout.GROUP_INPUTS`. Files are grouped by their
entities other than the participant's; when a participant-level combination
across runs exists (no ``dir``/``run`` entity), the per-run results it combines
are not analysed separately.
"""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from pathlib import Path

from bidsapp.inputs.runs import parse_entities
from bidsapp.outputs.layout import GROUP_INPUTS, GroupKind, OutputLayout, entities_label
from bidsapp.outputs.sidecars import ContrastRecord, read_sidecar

_PER_RUN = ("dir", "run", "acq", "echo")


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
    """Every analysis with participant-level outputs for any of ``participants``."""
    wanted = set(participants)
    found: list[GroupInput] = []
    layout = OutputLayout(output_dir)
    for kind in GROUP_INPUTS:
        groups: dict[tuple, dict[str, Path]] = defaultdict(dict)
        for path in layout.group_inputs(kind):
            entities = parse_entities(path.name)
            if entities.get("sub") not in wanted:
                continue
            key = tuple((k, v) for k, v in entities.items() if k != "sub" and not (kind == "voxels" and k == "stat"))
            groups[key][entities["sub"]] = path
        keys = set(groups)
        for key, files in groups.items():
            combined = tuple((k, v) for k, v in key if k not in _PER_RUN)
            if combined != key and combined in keys:
                continue
            found.append(GroupInput(kind, dict(key), dict(sorted(files.items()))))
    return sorted(found, key=lambda item: (item.kind, item.name))


def within_participant_inputs(inputs: Iterable[GroupInput]) -> list[tuple[GroupInput, dict[str, GroupInput]]]:
    """Sets of analyses that are conditions of one within-participant design (paired, repeated measures).

    Conditions are sessions when the analyses differ only in ``ses``; otherwise the
    first-level contrasts of single conditions (:attr:`ContrastRecord.single_condition`
    of the sidecar) of the same task, space and atlas.

    Returns
    -------
    list of (GroupInput, dict)
        The shared analysis (entities without ``ses``/``contrast``; no files) and its
        conditions: condition name to that condition's analysis.
    """
    sets: dict[tuple, dict[str, GroupInput]] = defaultdict(dict)
    for item in inputs:
        if "ses" in item.entities:
            condition, varying = item.entities["ses"], "ses"
        elif "contrast" in item.entities and _single_condition(item):
            condition, varying = item.entities["contrast"], "contrast"
        else:
            continue
        shared = tuple((k, v) for k, v in item.entities.items() if k != varying)
        sets[(item.kind, varying, shared)][condition] = item
    return [(GroupInput(kind, dict(shared), {}), dict(sorted(conditions.items())))
            for (kind, _, shared), conditions in sorted(sets.items()) if len(conditions) > 1]


def _single_condition(item: GroupInput) -> bool:
    """Whether a first-level contrast is one condition against baseline (from its JSON sidecar)."""
    metadata = read_sidecar(next(iter(item.files.values())))
    record = ContrastRecord.from_sidecar(metadata) if metadata is not None else None
    return record is not None and record.single_condition
