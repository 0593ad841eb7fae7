"""Option vocabularies and value checks, the layer below :mod:`bidsapp.config`.

The choices each option accepts, the ``--config`` file reader, and checkers that
turn one raw option value into a typed one. A checker never raises for a bad
value: it appends a :class:`~bidsapp.errors.BidsAppError` naming the option to
``problems`` and returns a fallback, so :func:`bidsapp.config.build_config` can
report every problem at once.
"""

from __future__ import annotations

import json
import re
import tempfile
from collections.abc import Callable, Mapping
from pathlib import Path
from types import MappingProxyType
from typing import Any, Literal, get_args, overload

from bidsapp.errors import BidsAppError, MissingInputError, UsageError

AnalysisLevel = Literal["participant", "group"]
InputType = Literal["auto", "fmriprep", "hcp"]
NoiseModel = Literal["ar1", "ols"]
GroupTest = Literal["onesample", "twosample", "paired", "anova"]
ConnectivityKind = Literal["correlation", "partial correlation", "covariance"]

ANALYSIS_LEVELS: tuple[AnalysisLevel, ...] = get_args(AnalysisLevel)
INPUT_TYPES: tuple[InputType, ...] = get_args(InputType)
NOISE_MODELS: tuple[NoiseModel, ...] = get_args(NoiseModel)
GROUP_TESTS: tuple[GroupTest, ...] = get_args(GroupTest)
DEFAULT_SPACE = "MNI152NLin2009cAsym"
CONNECTIVITY_KINDS: tuple[ConnectivityKind, ...] = get_args(ConnectivityKind)
HRF_MODELS = ("glover", "spm", "glover + derivative", "spm + derivative",
              "glover + derivative + dispersion", "spm + derivative + dispersion", "fir")
CORRECTIONS = ("fpr", "fdr", "bonferroni", "fwe", "cluster", "tfce")

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

Problems = list[BidsAppError]


def read_option_file(path: Path, option: str) -> Any:
    """Parse an option file (``--config``, ``--bids-filter-file``, ``--group-model``) as JSON or YAML.

    A ``.json`` file is parsed as JSON, anything else as YAML (which reads JSON too).
    Parser messages, which span several lines, are folded into one line giving the
    file, line and column.

    Parameters
    ----------
    path : Path
        The file.
    option : str
        The option that names it, for the messages (``--config``).

    Returns
    -------
    any
        The parsed content (``None`` for an empty YAML file).

    Raises
    ------
    MissingInputError
        The file does not exist or cannot be read (exit 66).
    UsageError
        The file is not valid JSON or YAML, or not UTF-8 text (exit 2).
    """
    import yaml

    path = Path(path)
    if not path.is_file():
        raise MissingInputError(f"{option} {path}: file not found; give the path to a "
                                f"{'JSON' if path.suffix == '.json' else 'YAML or JSON'} file")
    try:
        text = path.read_text(encoding="utf-8")
    except UnicodeDecodeError as error:
        raise UsageError(f"{option} {path}: not UTF-8 text (byte {error.start}); save it as a plain-text "
                         "JSON or YAML file") from error
    except OSError as error:
        raise MissingInputError(f"{option} {path}: cannot be read ({error.strerror}); check its permissions") \
            from error
    if path.suffix.lower() == ".json":
        try:
            return json.loads(text)
        except json.JSONDecodeError as error:
            raise UsageError(f"{option} {path}: line {error.lineno}, column {error.colno}: {error.msg}; "
                             "fix the JSON syntax") from error
    try:
        return yaml.safe_load(text)
    except yaml.YAMLError as error:
        raise UsageError(f"{option} {path}: {_yaml_problem(error)}; fix the YAML syntax") from error


def _yaml_problem(error: Exception) -> str:
    """A PyYAML error as one line: ``line L, column C: problem (context at line L', column C')``."""
    import yaml

    if not isinstance(error, yaml.MarkedYAMLError) or error.problem_mark is None:
        return " ".join(str(error).split())
    mark = error.problem_mark
    text = f"line {mark.line + 1}, column {mark.column + 1}: {error.problem}"
    if error.context:
        context = error.context
        if error.context_mark is not None and error.context_mark.line != mark.line:
            context += f" at line {error.context_mark.line + 1}, column {error.context_mark.column + 1}"
        text += f" ({context})"
    return text


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

    Raises
    ------
    BidsAppError
        Missing or unreadable (exit 66), malformed or not a mapping (exit 2).
    """
    values = read_option_file(path, "--config")
    if values is None:
        return {}
    if not isinstance(values, dict):
        raise UsageError(f"--config {path}: expected a mapping of option names to values, e.g. 'nprocs: 2'")
    return {str(key).lstrip("-").replace("-", "_"): value for key, value in values.items()}


def check_output_dir(path: Path, problems: Problems) -> None:
    """Check that OUTPUT_DIR is, or can be made, a directory bidsapp can write (reported if not).

    The nearest existing folder on the way to ``path`` must be a directory in which a
    file can be created; the probe is an unnamed temporary file, so nothing is left
    behind (a dry run writes nothing). Permission bits alone do not tell (root ignores
    them; a read-only file system does not), hence the probe.
    """
    existing = path
    while not existing.exists() and existing != existing.parent:
        existing = existing.parent
    if not existing.is_dir():
        what = "is a file" if existing == path else f"cannot be made: {existing} is a file"
        problems.append(UsageError(f"OUTPUT_DIR {path} {what}; give a directory (new or bidsapp's own)"))
        return
    try:
        with tempfile.TemporaryFile(dir=existing):
            pass
    except OSError as error:
        where = "is not writable" if existing == path else f"cannot be made in {existing}"
        problems.append(UsageError(f"OUTPUT_DIR {path} {where} ({error.strerror}); give a directory you can write"))


def slurm_script(values: Mapping[str, Any], datasets: tuple[Path, Path], problems: Problems) -> Path | None:
    """Check ``--slurm-script FILE``: only with ``--dry-run`` at participant level, outside BIDS_DIR and OUTPUT_DIR.

    Parameters
    ----------
    values : mapping
        Parsed option values (``slurm_script``, ``dry_run``, ``analysis_level``).
    datasets : tuple of Path
        BIDS_DIR and OUTPUT_DIR, absolute.
    problems : list of BidsAppError
        Where a misuse is reported (exit 2).

    Returns
    -------
    Path or None
        The absolute path of the script, ``None`` when the option was not given.
    """
    if not values.get("slurm_script"):
        return None
    path = Path(values["slurm_script"]).expanduser().absolute()
    where = f"--slurm-script {path}"
    if not values.get("dry_run") or values.get("analysis_level") != "participant":
        problems.append(UsageError(f"{where}: the job script is written by the participant level's dry run; "
                                   "add --dry-run and run the participant level"))
    for name, folder in zip(("BIDS_DIR", "OUTPUT_DIR"), datasets, strict=True):
        if path.resolve().is_relative_to(folder.resolve()):
            problems.append(UsageError(f"{where} is inside {name} {folder}; write it elsewhere, e.g. the folder "
                                       "you submit jobs from"))
    if path.is_dir() or not path.parent.is_dir():
        problems.append(UsageError(f"{where}: {'is a directory' if path.is_dir() else 'its folder does not exist'}; "
                                   "give a file name in an existing folder"))
    return path


def as_list(value: Any) -> list[Any]:
    """An option value as a list: ``[]`` for ``None``, a list or tuple as a list, anything else as one item."""
    if value is None:
        return []
    if isinstance(value, (list, tuple)):
        return list(value)
    return [value]


def positive(value: Any, kind: type[int] | type[float], option: str, what: str, problems: Problems) -> Any:
    """Check that an option value is a positive number.

    Parameters
    ----------
    value : any
        The value given, or ``None`` when the option was not given.
    kind : {int, float}
        The number type; an ``int`` option refuses fractions.
    option : str
        The option's name, for the message (``--nprocs``).
    what : str
        What the number is, for the message (``a whole number of processes``).
    problems : list of BidsAppError
        Where a bad value is reported.

    Returns
    -------
    int or float or None
        ``value`` as ``kind``; ``None`` when not given or not valid (then reported).
    """
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


@overload
def whole(value: Any, option: str, problems: Problems, *, default: int) -> int: ...


@overload
def whole(value: Any, option: str, problems: Problems, *, default: None) -> int | None: ...


def whole(value: Any, option: str, problems: Problems, *, default: int | None) -> int | None:
    """``value`` as a whole number >= 0, ``default`` when not given; reports anything else."""
    if value is None:
        return default
    if not str(value).isdigit():
        problems.append(UsageError(f"{option} {value}: must be a whole number >= 0"))
        return default
    return int(value)


def labels(value: Any, prefix: str, option: str, problems: Problems) -> tuple[str, ...] | None:
    """Normalise labels (drop a ``prefix-``), reporting any that are not alphanumeric; ``None`` when none given."""
    found = [str(v).removeprefix(f"{prefix}-") for v in as_list(value)]
    for label in found:
        if not _LABEL.match(label):
            problems.append(UsageError(f"{option} {label!r}: labels are letters and digits only, e.g. 01 or sub-01"))
    return tuple(dict.fromkeys(found)) or None


def run_filters(path: Any, problems: Problems) -> Mapping[str, tuple[str, ...]]:
    """Read the ``bold`` entity filters of a ``--bids-filter-file``.

    Parameters
    ----------
    path : str or Path, optional
        The JSON file, ``{"bold": {"<entity>": value or [values]}}``; nothing filters when not given.
    problems : list of BidsAppError
        Where an unreadable file or an unknown entity is reported.

    Returns
    -------
    mapping
        Short BIDS keys (:data:`FILTER_ENTITIES`) to the allowed labels, without their ``key-`` prefix.
    """
    if not path:
        return MappingProxyType({})
    path = Path(path)
    try:
        content = read_option_file(path, "--bids-filter-file")
    except BidsAppError as error:
        problems.append(error)
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
        filters[key] = tuple(str(v).removeprefix(f"{key}-") for v in as_list(allowed))
    return MappingProxyType(filters)


def dummy_scans(value: Any, problems: Problems) -> int | Literal["auto"] | None:
    """``--dummy-scans``: a whole number of volumes, ``"auto"``, or ``None`` for the strategy's default."""
    if value is None or str(value) == "auto":
        return value
    return whole(value, "--dummy-scans", problems, default=None)


def connectivity_kinds(value: Any, problems: Problems) -> tuple[ConnectivityKind, ...]:
    """``--connectivity``: the measures given (each once, in order), ``("correlation",)`` by default."""
    kinds = tuple(as_list(value)) or ("correlation",)
    for kind in kinds:
        if kind not in CONNECTIVITY_KINDS:
            problems.append(UsageError(f"--connectivity {kind!r}: use one of {', '.join(CONNECTIVITY_KINDS)}"))
    return tuple(dict.fromkeys(kinds))


def filter_band(high_pass: Any, low_pass: Any, problems: Problems) -> tuple[float | None, float | None]:
    """``--high-pass`` and ``--low-pass`` in Hz, each positive and the first below the second; ``None`` if not given."""
    high = positive(high_pass, float, "--high-pass", "frequency in Hz", problems)
    low = positive(low_pass, float, "--low-pass", "frequency in Hz", problems)
    if high and low and high >= low:
        problems.append(UsageError(f"--high-pass {high} must be below --low-pass {low}"))
    return high, low


def hrf_model(value: Any, problems: Problems) -> str:
    """``--hrf-model``: one of :data:`HRF_MODELS`, ``"glover"`` by default."""
    model = value or "glover"
    if model not in HRF_MODELS:
        problems.append(UsageError(f"--hrf-model {model!r}: use one of {', '.join(HRF_MODELS)}"))
    return model


def noise_model(value: Any, problems: Problems) -> NoiseModel:
    """``--noise-model``: ``"ar1"`` (the default) or ``"ols"``."""
    model: NoiseModel = value or "ar1"
    if model not in NOISE_MODELS:
        problems.append(UsageError(f"--noise-model {model!r}: use ar1 or ols"))
    return model


def group_test(value: Any, problems: Problems) -> GroupTest:
    """``--group-test``: one of :data:`GROUP_TESTS`, ``"onesample"`` by default."""
    test: GroupTest = value or "onesample"
    if test not in GROUP_TESTS:
        problems.append(UsageError(f"--group-test {test!r}: use one of {', '.join(GROUP_TESTS)}"))
    return test


def corrections(value: Any, problems: Problems) -> tuple[str, ...]:
    """``--correction``: the corrections given (each once, in order), ``("fdr",)`` by default."""
    given = tuple(dict.fromkeys(as_list(value))) or ("fdr",)
    for correction in given:
        if correction not in CORRECTIONS:
            problems.append(UsageError(f"--correction {correction!r}: use any of {', '.join(CORRECTIONS)}"))
    return given


def check_atlas(spec: str, space: str, problems: Problems) -> None:
    """Check that ``--atlas`` names an atlas whose files exist for ``space`` (reported if not)."""
    from bidsapp.inputs.atlas import find_atlas_files

    _collect(lambda: find_atlas_files(spec, space), problems)


def _collect(check: Callable[[], object], problems: Problems) -> None:
    """Run ``check``, collecting the error it raises instead of stopping."""
    try:
        check()
    except BidsAppError as error:
        problems.append(error)
