"""The run configuration: frozen dataclasses built and validated once.

``build_config`` turns parsed arguments into a :class:`Config`, collecting every
problem it finds and reporting them together, so no later layer re-checks the
options.
"""

from __future__ import annotations

import json
import os
import re
import tempfile
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from types import MappingProxyType
from typing import Any, Literal

from bidsapp.errors import (
    BidsAppError,
    MissingInputError,
    UnknownLevelError,
    UsageError,
    raise_collected,
)

AnalysisLevel = Literal["participant", "group"]
InputType = Literal["auto", "fmriprep", "hcp"]
ANALYSIS_LEVELS = ("participant", "group")
INPUT_TYPES = ("auto", "fmriprep", "hcp")
DEFAULT_SPACE = "MNI152NLin2009cAsym"

#: Entities a ``--bids-filter-file`` may name under its ``bold`` key, with the
#: short BIDS key each maps to.
FILTER_ENTITIES = {
    "subject": "sub",
    "session": "ses",
    "task": "task",
    "acquisition": "acq",
    "run": "run",
    "direction": "dir",
    "echo": "echo",
    "space": "space",
    "reconstruction": "rec",
}
_LABEL = re.compile(r"^[A-Za-z0-9]+$")


@dataclass(frozen=True)
class Selection:
    """Which data to analyse.

    Attributes
    ----------
    participant_labels : tuple of str, optional
        Labels without the ``sub-`` prefix; ``None`` means every participant.
    session_labels : tuple of str, optional
        Labels without the ``ses-`` prefix; ``None`` means every session.
    tasks : tuple of str, optional
        Task labels; ``None`` means every task.
    space : str
        Template space of the fMRIPrep outputs to read.
    run_filters : mapping
        Extra entity filters on the runs (short BIDS keys to allowed values),
        from ``--bids-filter-file``.
    """

    participant_labels: tuple[str, ...] | None = None
    session_labels: tuple[str, ...] | None = None
    tasks: tuple[str, ...] | None = None
    space: str = DEFAULT_SPACE
    run_filters: Mapping[str, tuple[str, ...]] = field(
        default_factory=lambda: MappingProxyType({})
    )


@dataclass(frozen=True)
class Execution:
    """How to run.

    Attributes
    ----------
    work_dir : Path
        Scratch space (the cached dataset index lives here).
    nprocs : int
        Processes to run at once.
    mem_gb : float, optional
        Memory budget in GB; limits how many processes run at once.
    skip_bids_validation : bool
        Do not run the BIDS validator on the input.
    skip_bad_runs : bool
        Leave out runs with missing or inconsistent files (with a warning)
        instead of stopping.
    dry_run : bool
        Print the plan and write nothing.
    verbosity : int
        0 for progress and warnings, 1 for details, 2 for debugging.
    """

    work_dir: Path
    nprocs: int = 1
    mem_gb: float | None = None
    skip_bids_validation: bool = False
    skip_bad_runs: bool = False
    dry_run: bool = False
    verbosity: int = 0


@dataclass(frozen=True)
class Config:
    """Everything one ``bidsapp`` invocation needs, validated."""

    bids_dir: Path
    output_dir: Path
    analysis_level: AnalysisLevel
    input_type: InputType
    derivatives: tuple[Path, ...]
    selection: Selection
    execution: Execution
    command: tuple[str, ...]


def load_config_file(path: Path) -> dict[str, Any]:
    """Read a ``--config`` YAML or JSON file into a dict of option values.

    Parameters
    ----------
    path : Path
        The file; keys are long option names, with dashes or underscores.

    Returns
    -------
    dict
        Option destinations (underscored) to values.
    """
    import yaml

    if not path.is_file():
        raise MissingInputError(f"--config {path}: file not found; give the path to a YAML or JSON file")
    try:
        values = yaml.safe_load(path.read_text())
    except (OSError, yaml.YAMLError) as error:
        raise MissingInputError(f"--config {path}: cannot be read as YAML or JSON ({error})") from error
    if values is None:
        return {}
    if not isinstance(values, dict):
        raise UsageError(f"--config {path}: expected a mapping of option names to values")
    return {str(key).lstrip("-").replace("-", "_"): value for key, value in values.items()}


def build_config(values: Mapping[str, Any], command: Iterable[str]) -> Config:
    """Validate parsed option values and build the configuration.

    Parameters
    ----------
    values : mapping
        Option destinations to values, as argparse (plus ``--config``) gives them.
    command : iterable of str
        The command line, recorded in the outputs' provenance.

    Returns
    -------
    Config

    Raises
    ------
    BidsAppError
        One error, or a ``ProblemsError`` listing every problem found.
    """
    problems: list[BidsAppError] = []

    bids_dir = Path(values["bids_dir"]).expanduser().absolute()
    if not bids_dir.is_dir():
        problems.append(MissingInputError(f"BIDS_DIR {bids_dir}: no such directory; give the dataset's path"))
    output_dir = Path(values["output_dir"]).expanduser().absolute()
    if output_dir == bids_dir:
        problems.append(UsageError(f"OUTPUT_DIR {output_dir} is BIDS_DIR: write outputs to another directory, e.g. BIDS_DIR/derivatives/bidsapp"))
    level = values["analysis_level"]
    if level not in ANALYSIS_LEVELS:
        problems.append(UnknownLevelError(f"analysis level {level!r} is unknown: use 'participant' or 'group'"))

    derivatives = tuple(Path(p).expanduser().absolute() for p in _as_list(values.get("derivatives")))
    problems += [MissingInputError(f"--derivatives {p}: no such directory") for p in derivatives if not p.is_dir()]

    selection = Selection(
        participant_labels=_labels(values.get("participant_label"), "sub", "--participant-label", problems),
        session_labels=_labels(values.get("session_label"), "ses", "--session-label", problems),
        tasks=_labels(values.get("task"), "task", "--task", problems),
        space=values.get("space") or DEFAULT_SPACE,
        run_filters=_run_filters(values.get("bids_filter_file"), problems),
    )

    nprocs = _positive(values.get("nprocs"), int, "--nprocs", "a whole number of processes", problems)
    mem_gb = _positive(values.get("mem_gb"), float, "--mem-gb", "a number of gigabytes", problems)
    work_dir = values.get("work_dir")
    execution = Execution(
        work_dir=Path(work_dir).expanduser().absolute() if work_dir else Path(tempfile.gettempdir()) / "bidsapp_work",
        nprocs=nprocs or os.cpu_count() or 1,
        mem_gb=mem_gb,
        skip_bids_validation=bool(values.get("skip_bids_validation")),
        skip_bad_runs=bool(values.get("skip_bad_runs")),
        dry_run=bool(values.get("dry_run")),
        verbosity=int(values.get("verbose") or 0),
    )
    raise_collected(problems)
    return Config(
        bids_dir=bids_dir,
        output_dir=output_dir,
        analysis_level=level,
        input_type=values.get("input_type") or "auto",
        derivatives=derivatives,
        selection=selection,
        execution=execution,
        command=tuple(command),
    )


def _as_list(value: Any) -> list:
    if value is None:
        return []
    if isinstance(value, (list, tuple)):
        return list(value)
    return [value]


def _positive(value: Any, kind: type, option: str, what: str, problems: list) -> Any:
    """``value`` as a positive ``kind``; ``None`` when not given or not valid (reported)."""
    if value is None:
        return None
    try:
        number = kind(value)
    except (TypeError, ValueError):
        number = None
    if number is None or number <= 0 or (kind is int and number != float(value)):
        problems.append(UsageError(f"{option} {value}: must be a positive {what}"))
        return None
    return number


def _labels(value: Any, prefix: str, option: str, problems: list) -> tuple[str, ...] | None:
    """Normalise labels (drop a ``prefix-``), reporting any that are not alphanumeric."""
    labels = [str(v).removeprefix(f"{prefix}-") for v in _as_list(value)]
    for label in labels:
        if not _LABEL.match(label):
            problems.append(UsageError(f"{option} {label!r}: labels are letters and digits only, e.g. 01 or sub-01"))
    return tuple(dict.fromkeys(labels)) or None


def _run_filters(path: Any, problems: list) -> Mapping[str, tuple[str, ...]]:
    """Read the ``bold`` entity filters of a ``--bids-filter-file``."""
    if not path:
        return MappingProxyType({})
    path = Path(path)
    try:
        content = json.loads(path.read_text())
    except FileNotFoundError:
        problems.append(MissingInputError(f"--bids-filter-file {path}: file not found"))
        return MappingProxyType({})
    except (OSError, ValueError) as error:
        problems.append(MissingInputError(f"--bids-filter-file {path}: not readable JSON ({error})"))
        return MappingProxyType({})
    bold = content.get("bold") if isinstance(content, dict) else None
    if not isinstance(bold, dict):
        problems.append(UsageError(f'--bids-filter-file {path}: expected {{"bold": {{"entity": value, ...}}}}'))
        return MappingProxyType({})
    filters = {}
    for entity, allowed in bold.items():
        key = FILTER_ENTITIES.get(entity)
        if key is None:
            problems.append(UsageError(
                f"--bids-filter-file {path}: unknown entity {entity!r} under 'bold'; "
                f"use one of {', '.join(FILTER_ENTITIES)}"))
            continue
        filters[key] = tuple(str(v).removeprefix(f"{key}-") for v in _as_list(allowed))
    return MappingProxyType(filters)
