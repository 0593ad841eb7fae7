"""Sidecar keys one stage writes and another reads, each through one typed record.

The participant level writes a first-level contrast's definition (``Contrast``
with ``Name``, ``Expression`` and ``Weights``, and the task's ``Conditions``)
and the atlas (``Atlas``) into its sidecars, for the voxel (fMRIPrep) and the
parcel (HCP) pipelines alike; the group level reads them back with
:meth:`ContrastRecord.from_sidecar` and :meth:`AtlasRecord.from_sidecar` to
find within-participant designs and parcel coordinates.
"""

from __future__ import annotations

import json
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from bidsapp.outputs.writer import sidecar_path


@dataclass(frozen=True)
class ContrastRecord:
    """A first-level contrast as its sidecar records it.

    Attributes
    ----------
    name : str
        The contrast's name (the ``contrast-`` entity).
    expression : str
        Its expression over condition names, e.g. ``"lf - rf"``.
    conditions : tuple of str, optional
        The conditions modelled in the task's design (sidecar ``Conditions``); ``None`` when
        not recorded (then the contrast is never taken for a single condition).
    weights : mapping of str to float, optional
        The contrast's non-zero weight on each condition (``Contrast.Weights``).
    """

    name: str
    expression: str
    conditions: tuple[str, ...] | None = None
    weights: Mapping[str, float] | None = None

    @property
    def single_condition(self) -> bool:
        """Whether the contrast is one modelled condition against baseline (``lf=lf``)."""
        return self.conditions is not None and self.expression.strip() in self.conditions

    def to_sidecar(self) -> dict[str, Any]:
        """The sidecar keys: ``Contrast`` (Name, Expression[, Weights]) and ``Conditions`` when known."""
        contrast: dict[str, Any] = {"Name": self.name, "Expression": self.expression}
        if self.weights is not None:
            contrast["Weights"] = dict(self.weights)
        content: dict[str, Any] = {"Contrast": contrast}
        if self.conditions is not None:
            content["Conditions"] = list(self.conditions)
        return content

    @classmethod
    def from_sidecar(cls, metadata: Mapping[str, Any]) -> ContrastRecord | None:
        """Read the record back from sidecar content; ``None`` when it records no contrast."""
        contrast = metadata.get("Contrast")
        if not isinstance(contrast, Mapping) or "Name" not in contrast:
            return None
        conditions = metadata.get("Conditions")
        weights = contrast.get("Weights")
        return cls(str(contrast["Name"]), str(contrast.get("Expression", "")),
                   tuple(str(c) for c in conditions) if isinstance(conditions, list) else None,
                   {str(k): float(v) for k, v in weights.items()} if isinstance(weights, Mapping) else None)


@dataclass(frozen=True)
class AtlasRecord:
    """The atlas of a parcel output as its sidecar records it (key ``Atlas``).

    Attributes
    ----------
    name : str
        The atlas label, e.g. ``"Glasser"`` or ``"AICHA"``.
    space : str, optional
        Its template space.
    node_coordinates : sequence of sequence of float, optional
        Each parcel's centroid in mm, in table order (NaN, written ``null``, for absent parcels).
    files, description, citation, number_of_parcels
        Recorded when known (the atlas image and table, what it is, where it comes from).
    """

    name: str
    space: str | None = None
    node_coordinates: Sequence[Sequence[float | None]] | None = None
    files: tuple[str, ...] | None = None
    description: str | None = None
    citation: str | None = None
    number_of_parcels: int | None = None

    def to_sidecar(self) -> dict[str, Any]:
        """The ``Atlas`` value: Name and Space, then whatever else is known."""
        content: dict[str, Any] = {"Name": self.name, "Space": self.space}
        for key, value in (("Files", None if self.files is None else list(self.files)),
                           ("Description", self.description), ("Citation", self.citation),
                           ("NumberOfParcels", self.number_of_parcels),
                           ("NodeCoordinates", self.node_coordinates)):
            if value is not None:
                content[key] = value
        return content

    @classmethod
    def from_sidecar(cls, metadata: Mapping[str, Any]) -> AtlasRecord | None:
        """Read the record back from sidecar content (the whole sidecar); ``None`` when it has no atlas."""
        atlas = metadata.get("Atlas")
        if not isinstance(atlas, Mapping) or "Name" not in atlas:
            return None
        files = atlas.get("Files")
        return cls(str(atlas["Name"]), atlas.get("Space"), atlas.get("NodeCoordinates") or None,
                   tuple(files) if isinstance(files, list) else None, atlas.get("Description"),
                   atlas.get("Citation"), atlas.get("NumberOfParcels"))


def read_sidecar(path: Path) -> dict[str, Any] | None:
    """The JSON sidecar of a data file, or ``None`` when it is missing, unreadable or not an object."""
    try:
        content = json.loads(sidecar_path(path).read_text(encoding="utf-8"))
    except (OSError, ValueError):
        return None
    return content if isinstance(content, dict) else None
