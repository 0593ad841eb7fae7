"""Every output file name bidsapp writes, and the patterns the group level reads them back with.

In the spirit of fitlins' ``data/fitlins.json`` and xcp_d's naming, each kind of
output is one :class:`FileSpec` (fixed entities, suffix, extension); file names
and the glob patterns of :data:`GROUP_INPUTS` are both derived from these
specs, so renaming an output renames what the group level looks for too.
Entities appear in :data:`ENTITY_ORDER`, and :class:`OutputLayout` places the
names under ``OUTPUT_DIR``:

* ``sub-<l>/[ses-<s>/]func/<entities>_<suffix><extension>``: participant outputs;
* ``sub-<l>/[ses-<s>/]sub-<l>[_ses-<s>]_scans.tsv``: the participant's (session's) runs, BIDS' scans table;
* ``sub-<l>.html``: the participant's report;
* ``group/<entities>_<suffix><extension>``: group outputs.
"""

from __future__ import annotations

import numbers
import re
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Literal

ENTITY_ORDER = (
    "sub", "ses", "task", "acq", "ce", "rec", "dir", "run", "echo", "part",
    "space", "cohort", "res", "den", "seg", "atlas", "roi", "model",
    "contrast", "stat", "desc",
)
"""Order of BIDS entities in output file names (``desc`` always last)."""

Entities = Mapping[str, str | int | None]
"""Entity values by entity name; ``None`` values are left out of names."""
GroupKind = Literal["voxels", "parcels", "edges", "networks"]
"""The kinds of participant-level results the group level analyses."""

_ALNUM = re.compile(r"[A-Za-z0-9]+", re.ASCII)
_EXTENSION = re.compile(r"(\.[A-Za-z0-9]+)+", re.ASCII)
ANY = "*"
"""A :class:`FileSpec` entity value that matches any value in :meth:`FileSpec.pattern`."""


def build_filename(entities: Entities, suffix: str, extension: str) -> str:
    """Build a BIDS file name with entities in :data:`ENTITY_ORDER`.

    Parameters
    ----------
    entities : mapping of str to str, int or None
        Entity values, e.g. ``{"sub": "01", "task": "rest", "run": 1}``. ``None`` values are
        dropped; ints are rendered as is (``run=1`` gives ``run-1``).
    suffix : str
        Alphanumeric suffix, e.g. ``"timeseries"``.
    extension : str
        Extension with its leading dot, e.g. ``".tsv"`` or ``".nii.gz"``.

    Returns
    -------
    str
        E.g. ``"sub-01_task-rest_run-1_stat-mean_timeseries.tsv"``.

    Raises
    ------
    ValueError
        For an unknown entity, a non-alphanumeric value, or a bad suffix or extension.
    """
    unknown = sorted(set(entities) - set(ENTITY_ORDER))
    if unknown:
        raise ValueError(f"unknown BIDS entity {unknown[0]!r}; known entities: {', '.join(ENTITY_ORDER)}")
    parts = []
    for key in ENTITY_ORDER:
        value = entities.get(key)
        if value is None:
            continue
        if isinstance(value, numbers.Integral) and not isinstance(value, bool):
            value = str(int(value))
        if not isinstance(value, str) or not _ALNUM.fullmatch(value):
            raise ValueError(f"entity {key!r} has value {value!r}; BIDS entity values must be alphanumeric")
        parts.append(f"{key}-{value}")
    if not isinstance(suffix, str) or not _ALNUM.fullmatch(suffix):
        raise ValueError(f"suffix {suffix!r} must be alphanumeric")
    if not isinstance(extension, str) or not _EXTENSION.fullmatch(extension):
        raise ValueError(f"extension {extension!r} must look like '.tsv' or '.nii.gz'")
    return "_".join([*parts, suffix]) + extension


def entities_label(entities: Entities) -> str:
    """Entities as a name prefix in the given order, e.g. ``task-motor_space-MNI_contrast-lf`` (``None`` left out)."""
    return "_".join(f"{key}-{value}" for key, value in entities.items() if value is not None)


@dataclass(frozen=True)
class FileSpec:
    """One kind of output file: the entities it always has, its suffix and extension.

    Attributes
    ----------
    suffix : str
        E.g. ``"relmat"``.
    extension : str
        E.g. ``".tsv"``.
    fixed : mapping of str to str
        Entities every file of this kind has, e.g. ``{"stat": "mean"}``; :data:`ANY` for an
        entity that is always present with a varying value.
    """

    suffix: str
    extension: str
    fixed: Mapping[str, str] = field(default_factory=dict)

    def name(self, entities: Entities) -> str:
        """The file name for ``entities`` plus the fixed ones (the fixed ones win)."""
        wildcards = [key for key, value in self.fixed.items() if value == ANY and entities.get(key) is None]
        if wildcards:
            raise ValueError(f"a {self.suffix} file needs the {wildcards[0]!r} entity")
        fixed = {key: value for key, value in self.fixed.items() if value != ANY}
        return build_filename({**entities, **fixed}, self.suffix, self.extension)

    def pattern(self) -> str:
        """A glob pattern matching every file name of this kind, e.g. ``*_contrast-*_statmap.tsv``."""
        parts = [f"{key}-{self.fixed[key]}" for key in ENTITY_ORDER if key in self.fixed]
        return "_".join(["*", *parts, self.suffix]) + self.extension


# The naming configuration: every kind of file bidsapp writes.
SCANS = FileSpec("scans", ".tsv")
"""A participant's (or session's) runs with their summaries: BIDS' ``scans.tsv``, outside the datatype folder."""
RUN_SUMMARY = FileSpec("qc", ".tsv", {"desc": "summary"})
"""A run's length and motion summary (participant level), and the group summary of all runs."""
PARCEL_TIMESERIES = FileSpec("timeseries", ".tsv", {"stat": "mean"})
"""Cleaned parcel mean time series."""
RELMAT = FileSpec("relmat", ".tsv", {"stat": ANY})
"""A parcel x parcel relationship matrix (``stat-<measure>``, optional ``desc-fisherz``/``desc-networks``)."""
FISHER_Z = FileSpec("relmat", ".tsv", {"stat": "pearsoncorrelation", "desc": "fisherz"})
"""Fisher z of the Pearson correlations: the group level's edges."""
NETWORK_MEANS = FileSpec("relmat", ".tsv", {"stat": "pearsoncorrelation", "desc": "networks"})
"""Within- and between-network mean Fisher z: the group level's networks."""
PARTIAL_CORRELATION = FileSpec("relmat", ".tsv", {"stat": "partialcorrelation"})
"""Partial correlations between parcels (``--connectivity "partial correlation"``): group-level edges too."""
COVARIANCE = FileSpec("relmat", ".tsv", {"stat": "covariance"})
"""Covariances between parcels (``--connectivity covariance``): group-level edges too."""
SEED_MAP = FileSpec("statmap", ".nii.gz", {"roi": ANY, "stat": ANY})
"""A seed's r or Fisher z map."""
SEED_FISHER_Z = FileSpec("statmap", ".nii.gz", {"roi": ANY, "stat": "fisherz"})
"""A seed's Fisher z map: the group level's voxels, as contrast effect maps."""
CONTRAST_MAP = FileSpec("statmap", ".nii.gz", {"contrast": ANY, "stat": ANY})
"""A first-level contrast's voxel map of one statistic (``stat-effect|variance|t|z|p``)."""
CONTRAST_EFFECT_MAP = FileSpec("statmap", ".nii.gz", {"contrast": ANY, "stat": "effect"})
"""The first-level effect maps the group level analyses."""
CONTRAST_TABLE = FileSpec("statmap", ".tsv", {"contrast": ANY})
"""A first-level contrast per parcel (a row per parcel; ``desc-selectiveaverage`` for the HCP selective average)."""
GROUP_MAP = FileSpec("statmap", ".nii.gz", {"stat": ANY})
"""A group contrast's voxel map of one statistic."""
GROUP_MASK = FileSpec("mask", ".nii.gz")
"""Voxels surviving a correction."""
GROUP_REPORT = FileSpec("report", ".html", {"desc": ANY})
"""The group HTML report of one design (``desc-<design>``: ``desc-onesample``, ``desc-twosampleGroup``, ...), so
that group commands of different designs into one OUTPUT_DIR keep each report."""
GROUP_TABLES = {"clusters": FileSpec("clusters", ".tsv"), "peaks": FileSpec("peaks", ".tsv")}
"""Atlas-labelled cluster and peak tables of a corrected group map."""
GROUP_FEATURES = {"parcels": FileSpec("statmap", ".tsv"), "edges": FileSpec("edges", ".tsv"),
                  "networks": FileSpec("networks", ".tsv")}
"""One table per group contrast of a parcel, edge or network analysis."""


def ignore_patterns(*specs: FileSpec) -> tuple[str, ...]:
    """``.bidsignore`` patterns for every file of the given kinds and their JSON sidecars, e.g. ``*_relmat.tsv``."""
    extensions = {(spec.suffix, extension) for spec in specs for extension in (spec.extension, ".json")}
    return tuple(f"*_{suffix}{extension}" for suffix, extension in sorted(extensions))


@dataclass(frozen=True)
class IgnoredKinds:
    """Outputs ``.bidsignore`` hides from the BIDS validator, and why the schema has no rule for them yet.

    Attributes
    ----------
    reason : str
        The comment above the patterns: the BIDS extension proposal (BEP) that covers these
        file kinds, or why no rule can apply.
    patterns : tuple of str
        Suffix patterns (``*_<suffix><extension>``); a path only where the place, not the kind, is outside BIDS.
    """

    reason: str
    patterns: tuple[str, ...]


IGNORED = (
    IgnoredKinds("BEP012 (functional preprocessing derivatives) defines parcel time series",
                 ignore_patterns(PARCEL_TIMESERIES)),
    IgnoredKinds("BEP017 (relationship and connectivity matrices) defines connectivity matrices",
                 ignore_patterns(RELMAT)),
    IgnoredKinds("BEP041 (statistical model derivatives) defines statistical maps and tables (contrasts, seed maps, "
                 "group results per parcel, edge and network), cluster and peak tables",
                 ignore_patterns(CONTRAST_MAP, CONTRAST_TABLE, *GROUP_TABLES.values(), *GROUP_FEATURES.values())),
    IgnoredKinds("no BEP yet: per-run quality summaries (QC in BIDS is open: bids-specification issue #353)",
                 ignore_patterns(RUN_SUMMARY)),
    IgnoredKinds("no BEP yet: HTML reports (the participant's is sub-<label>.html, as fMRIPrep names it)",
                 (*ignore_patterns(GROUP_REPORT), "/sub-*.html")),
    IgnoredKinds("no BEP yet: group/ holds results across participants, a folder BIDS does not define (the validator "
                 "flags the folder itself); its files are of the kinds above, and survivor masks: the schema's mask "
                 "rule applies only in sub-<label>/<datatype>/ and knows no contrast or roi entity (BEP041's)",
                 ("/group",)),
)
"""What ``.bidsignore`` hides, kind by kind; ``logs/`` needs no line (the validator skips it)."""
BIDSIGNORE = "".join(f"# {kinds.reason}\n" + "".join(f"{pattern}\n" for pattern in kinds.patterns)
                     for kinds in IGNORED)
"""``OUTPUT_DIR/.bidsignore``, written with ``dataset_description.json``."""


GROUP_INPUTS: Mapping[GroupKind, tuple[FileSpec, ...]] = {
    "voxels": (CONTRAST_EFFECT_MAP, SEED_FISHER_Z),
    "parcels": (CONTRAST_TABLE,),
    "edges": (FISHER_Z, PARTIAL_CORRELATION, COVARIANCE),
    "networks": (NETWORK_MEANS,),
}
"""What the group level reads from the participant level, by kind of analysis."""
SESSION_LEVEL_DROPS = ("dir", "run")
"""Entities a participant's per-session result has not: its runs are combined."""
SUBJECT_LEVEL_DROPS = ("ses", "dir", "run")
"""Entities a participant's subject-level result has not: its runs and sessions are combined.

The group level analyses these by default; a participant without sessions and with one
unnamed run has its run's result under this name already."""


def split_filename(name: str) -> tuple[dict[str, str], str, str]:
    """The entities (in file-name order), suffix and extension of a name :func:`build_filename` built."""
    stem, _, extension = name.partition(".")
    *parts, suffix = stem.split("_")
    return dict(part.split("-", 1) for part in parts), suffix, f".{extension}"


def group_desc(input_desc: str | None, contrast: str, correction: str = "") -> str:
    """A group output's ``desc``: the input's own ``desc`` (if any), the group contrast, the correction.

    E.g. ``group_desc("networks", "controlMinusPatient")`` is ``networksControlMinusPatient``
    and ``group_desc(None, "mean", "fdr")`` is ``meanFdr``.
    """
    name = f"{input_desc}{contrast[0].upper()}{contrast[1:]}" if input_desc else contrast
    return f"{name}{correction.capitalize()}"


@dataclass(frozen=True)
class OutputLayout:
    """Where each output goes under one OUTPUT_DIR.

    Parameters
    ----------
    output_dir : Path
        The derivatives dataset bidsapp owns.
    """

    output_dir: Path

    def participant_path(self, entities: Entities, suffix: str, extension: str, *, datatype: str = "func") -> Path:
        """Return ``OUTPUT_DIR/sub-<sub>[/ses-<ses>]/<datatype>/<filename>``; ``sub`` is required."""
        return self._participant_dir(entities, datatype) / build_filename(entities, suffix, extension)

    def group_path(self, entities: Entities, suffix: str, extension: str) -> Path:
        """Return ``OUTPUT_DIR/group/<filename>``."""
        return self.output_dir / "group" / build_filename(entities, suffix, extension)

    def participant_file(self, spec: FileSpec, entities: Entities, *, datatype: str = "func") -> Path:
        """A participant-level file of kind ``spec``."""
        return self._participant_dir(entities, datatype) / spec.name(entities)

    def group_file(self, spec: FileSpec, entities: Entities) -> Path:
        """A group-level file of kind ``spec``."""
        return self.output_dir / "group" / spec.name(entities)

    def scans_file(self, entities: Entities) -> Path:
        """The scans table of the participant (and session) of ``entities``: ``sub-<l>[/ses-<s>]/..._scans.tsv``."""
        kept = {"sub": entities.get("sub"), "ses": entities.get("ses")}
        return self._subject_dir(kept) / SCANS.name(kept)

    def participant_report(self, participant: str) -> Path:
        """The participant's HTML report: ``OUTPUT_DIR/sub-<label>.html``."""
        return self.output_dir / f"sub-{participant}.html"

    def group_inputs(self, kind: GroupKind) -> list[Path]:
        """Every participant-level file of one kind the group level analyses (sorted; every level)."""
        return sorted(path for spec in GROUP_INPUTS[kind]
                      for path in self.output_dir.glob(f"sub-*/**/func/{spec.pattern()}"))

    def combined_file(self, path: Path, drops: tuple[str, ...]) -> Path:
        """Where the combination of ``path`` with its siblings over ``drops`` goes (same kind, fewer entities).

        E.g. with :data:`SUBJECT_LEVEL_DROPS`, ``sub-01/ses-1/func/sub-01_ses-1_task-rest_run-1_..._relmat.tsv``
        gives ``sub-01/func/sub-01_task-rest_..._relmat.tsv``.
        """
        entities, suffix, extension = split_filename(path.name)
        kept = {key: value for key, value in entities.items() if key not in drops}
        return self.participant_path(kept, suffix, extension, datatype=path.parent.name)

    def _participant_dir(self, entities: Entities, datatype: str) -> Path:
        if not _ALNUM.fullmatch(datatype):
            raise ValueError(f"datatype {datatype!r} must be alphanumeric")
        return self._subject_dir(entities) / datatype

    def _subject_dir(self, entities: Entities) -> Path:
        """``OUTPUT_DIR/sub-<sub>[/ses-<ses>]``."""
        if entities.get("sub") is None:
            raise ValueError("participant outputs need the 'sub' entity")
        directory = self.output_dir / f"sub-{entities['sub']}"
        if entities.get("ses") is not None:
            directory /= f"ses-{entities['ses']}"
        return directory
