"""Find the participant-level outputs the group level analyses, grouped by analysis.

An *analysis* is one kind of participant-level result that every participant
has: a voxel-wise first-level contrast (``*_contrast-<c>_stat-effect_statmap.nii.gz``),
a parcel-wise contrast table (``*_contrast-<c>_statmap.tsv``) or a Fisher-z
connectivity matrix (``*_stat-pearsoncorrelation_desc-fisherz_relmat.tsv``, and
network means ``*_desc-networks_relmat.tsv``). Files are grouped by their
entities other than the participant's; when a participant-level combination
across runs exists (no ``dir``/``run`` entity), the per-run results it combines
are not analysed separately.
"""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Literal

from bidsapp.inputs.runs import parse_entities

Kind = Literal["voxels", "parcels", "edges", "networks"]

_PATTERNS: Mapping[Kind, str] = {
    "voxels": "*_contrast-*_stat-effect_statmap.nii.gz",
    "parcels": "*_contrast-*_statmap.tsv",
    "edges": "*_stat-pearsoncorrelation_desc-fisherz_relmat.tsv",
    "networks": "*_desc-networks_relmat.tsv",
}
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

    kind: Kind
    entities: Mapping[str, str]
    files: Mapping[str, Path]

    @property
    def name(self) -> str:
        """The analysis as a file-name prefix, e.g. ``task-motor_space-MNI_contrast-lfMinusRf``."""
        return "_".join(f"{key}-{value}" for key, value in self.entities.items())


def find_group_inputs(output_dir: Path, participants: Iterable[str]) -> list[GroupInput]:
    """Every analysis with participant-level outputs for any of ``participants``."""
    wanted = set(participants)
    found: list[GroupInput] = []
    for kind, pattern in _PATTERNS.items():
        groups: dict[tuple, dict[str, Path]] = defaultdict(dict)
        for path in sorted(output_dir.glob(f"sub-*/**/func/{pattern}")):
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
    first-level contrasts of single conditions (a sidecar ``Contrast.Expression`` that
    is one of its ``Conditions``) of the same task, space and atlas.

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
    import json

    path = next(iter(item.files.values()))
    sidecar = path.with_name(path.name.split(".")[0] + ".json")
    try:
        metadata = json.loads(sidecar.read_text())
    except (OSError, ValueError):
        return False
    contrast = metadata.get("Contrast") or {}
    return str(contrast.get("Expression", "")).strip() in metadata.get("Conditions", [])
