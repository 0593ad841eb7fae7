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
from bidsapp.steps.glm.contrasts import Contrast
from bidsapp.steps.seeds import Seed

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
    reports : bool
        Write the HTML reports (``--no-reports`` turns them off).
    verbosity : int
        0 for progress and warnings, 1 for details, 2 for debugging.
    """

    work_dir: Path
    nprocs: int = 1
    mem_gb: float | None = None
    skip_bids_validation: bool = False
    skip_bad_runs: bool = False
    dry_run: bool = False
    reports: bool = True
    verbosity: int = 0


@dataclass(frozen=True)
class Analysis:
    """Participant-level analysis settings.

    Attributes
    ----------
    denoise_strategy : str, optional
        A preset name (``bidsapp/data/strategies``) or the path of a YAML/JSON
        strategy file; ``None`` for the input type's default (``simple`` for
        fMRIPrep data, ``none`` for parcellated data).
    dummy_scans : int or "auto", optional
        Volumes to drop at the start of each run; ``"auto"`` uses fMRIPrep's
        non-steady-state outlier columns; ``None`` for the strategy's default.
    high_pass_hz, low_pass_hz : float, optional
        Filter cut-offs in Hz; ``None`` for the strategy's default.
    fd_threshold_mm : float, optional
        Framewise displacement above which scrubbing strategies censor a volume,
        in mm; ``None`` for the strategy's own (0.5 mm in the presets).
    smoothing_fwhm_mm : float, optional
        Spatial smoothing for voxel-wise GLMs, in mm.
    atlas : str, optional
        Atlas name or label NIfTI path; ``None`` for the default.
    connectivity : tuple of str
        Connectivity measures (``correlation``, ``partial correlation``, ``covariance``).
    seeds : tuple of Seed
    seed_radius_mm : float
    contrasts : tuple of Contrast
        Contrasts in addition to (or, when given, instead of) the defaults.
    hrf_model : str
        nilearn HRF model name (``glover``, ``spm``, with ``+ derivative``...).
    noise_model : {"ar1", "ols"}
    """

    denoise_strategy: str | None = None
    dummy_scans: int | Literal["auto"] | None = None
    high_pass_hz: float | None = None
    low_pass_hz: float | None = None
    fd_threshold_mm: float | None = None
    smoothing_fwhm_mm: float | None = None
    atlas: str | None = None
    connectivity: tuple[str, ...] = ("correlation",)
    seeds: tuple[Seed, ...] = ()
    seed_radius_mm: float = 8.0
    contrasts: tuple[Contrast, ...] = ()
    hrf_model: str = "glover"
    noise_model: Literal["ar1", "ols"] = "ar1"


@dataclass(frozen=True)
class GroupAnalysis:
    """Group-level settings.

    Attributes
    ----------
    test : {"onesample", "twosample", "paired", "anova"}
    group_column : str, optional
        Column of participants.tsv defining the groups (two-sample, ANOVA).
    covariates : tuple of str
        Columns of participants.tsv added to the design (numeric centred,
        categorical dummy-coded).
    model : dict, optional
        A ``--group-model`` file's design columns and contrasts
        (:mod:`bidsapp.stats.model_file`); it replaces ``test``'s design.
    corrections : tuple of str
        Any of ``fdr``, ``bonferroni`` (parametric), ``fwe`` (voxel-level max-T),
        ``cluster`` (cluster-extent and cluster-mass FWE), ``tfce`` (permutation).
    alpha : float
        Family-wise or false-discovery error rate.
    height_threshold : float
        Cluster-forming threshold as an uncorrected p-value.
    cluster_extent : int
        Minimum cluster size in voxels for the cluster tables.
    n_perm : int
        Permutations for ``fwe``, ``cluster`` and ``tfce``.
    random_seed : int
        Seed of the permutations.
    """

    test: Literal["onesample", "twosample", "paired", "anova"] = "onesample"
    group_column: str | None = None
    covariates: tuple[str, ...] = ()
    model: Mapping[str, Any] | None = None
    corrections: tuple[str, ...] = ("fdr",)
    alpha: float = 0.05
    height_threshold: float = 0.001
    cluster_extent: int = 10
    n_perm: int = 5000
    random_seed: int = 0


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
    analysis: Analysis = Analysis()
    group: GroupAnalysis = GroupAnalysis()


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
        reports=not values.get("no_reports"),
        verbosity=int(values.get("verbose") or 0),
    )
    analysis = _analysis(values, problems)
    group = _group(values, problems)
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
        analysis=analysis,
        group=group,
    )


CONNECTIVITY_KINDS = ("correlation", "partial correlation", "covariance")
HRF_MODELS = ("glover", "spm", "glover + derivative", "spm + derivative",
              "glover + derivative + dispersion", "spm + derivative + dispersion", "fir")
NOISE_MODELS = ("ar1", "ols")
_SEED = re.compile(r"^(?P<name>[A-Za-z0-9]+)=(?P<coords>[^=]+)$")
_CONTRAST = re.compile(r"^(?P<name>[A-Za-z0-9]+)=(?P<expression>.+)$")


def _analysis(values: Mapping[str, Any], problems: list) -> Analysis:
    """The participant-level settings, checked for syntax and range."""
    seeds = []
    for text in _as_list(values.get("seeds")):
        match = _SEED.match(str(text))
        coords = match["coords"].split(",") if match else []
        try:
            seeds.append(Seed(match["name"], *(float(c) for c in coords)) if len(coords) == 3 else None)
        except ValueError:
            seeds.append(None)
        if seeds[-1] is None:
            seeds.pop()
            problems.append(UsageError(f"--seeds {text!r}: write NAME=X,Y,Z with MNI mm, e.g. PCC=0,-52,26"))
    contrasts = []
    for text in _as_list(values.get("contrast")):
        match = _CONTRAST.match(str(text))
        if match:
            contrasts.append(Contrast(match["name"], match["expression"].strip()))
        else:
            problems.append(UsageError(f"--contrast {text!r}: write NAME=EXPR with a letters-and-digits name, "
                                       'e.g. lfMinusRf="lf - rf"'))
    dummy = values.get("dummy_scans")
    if dummy is not None and str(dummy) != "auto":
        dummy = _whole(dummy, "--dummy-scans", problems, default=None)
    connectivity = tuple(_as_list(values.get("connectivity"))) or ("correlation",)
    for kind in connectivity:
        if kind not in CONNECTIVITY_KINDS:
            problems.append(UsageError(f"--connectivity {kind!r}: use one of {', '.join(CONNECTIVITY_KINDS)}"))
    high_pass = _positive(values.get("high_pass"), float, "--high-pass", "frequency in Hz", problems)
    low_pass = _positive(values.get("low_pass"), float, "--low-pass", "frequency in Hz", problems)
    if high_pass and low_pass and high_pass >= low_pass:
        problems.append(UsageError(f"--high-pass {high_pass} must be below --low-pass {low_pass}"))
    hrf_model = values.get("hrf_model") or "glover"
    if hrf_model not in HRF_MODELS:
        problems.append(UsageError(f"--hrf-model {hrf_model!r}: use one of {', '.join(HRF_MODELS)}"))
    noise_model = values.get("noise_model") or "ar1"
    if noise_model not in NOISE_MODELS:
        problems.append(UsageError(f"--noise-model {noise_model!r}: use ar1 or ols"))
    strategy = values.get("denoise_strategy")
    if strategy:
        _check(lambda: _load_strategy(str(strategy)), problems)
    if values.get("atlas"):
        _check(lambda: _find_atlas(str(values["atlas"]), values.get("space") or DEFAULT_SPACE), problems)
    return Analysis(
        denoise_strategy=str(strategy) if strategy else None,
        dummy_scans=dummy,
        high_pass_hz=high_pass,
        low_pass_hz=low_pass,
        fd_threshold_mm=_positive(values.get("fd_threshold"), float, "--fd-threshold", "distance in mm", problems),
        smoothing_fwhm_mm=_positive(values.get("smoothing_fwhm"), float, "--smoothing-fwhm", "FWHM in mm", problems),
        atlas=str(values["atlas"]) if values.get("atlas") else None,
        connectivity=tuple(dict.fromkeys(connectivity)),
        seeds=tuple(seeds),
        seed_radius_mm=_positive(values.get("seed_radius"), float, "--seed-radius", "radius in mm", problems) or 8.0,
        contrasts=tuple(contrasts),
        hrf_model=hrf_model,
        noise_model=noise_model,
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


def _check(check, problems: list) -> None:
    """Run ``check``, collecting the error it raises instead of stopping."""
    try:
        check()
    except BidsAppError as error:
        problems.append(error)


def _load_strategy(spec: str):
    from bidsapp.steps.strategies import load_strategy

    return load_strategy(spec)


def _find_atlas(spec: str, space: str):
    from bidsapp.inputs.atlas import find_atlas_files

    return find_atlas_files(spec, space)


def _whole(value: Any, option: str, problems: list, *, default: int | None) -> int | None:
    """``value`` as a whole number >= 0, ``default`` when not given; reports anything else."""
    if value is None:
        return default
    if not str(value).isdigit():
        problems.append(UsageError(f"{option} {value}: must be a whole number >= 0"))
        return default
    return int(value)


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


GROUP_TESTS = ("onesample", "twosample", "paired", "anova")
CORRECTIONS = ("fdr", "bonferroni", "fwe", "cluster", "tfce")


def _group(values: Mapping[str, Any], problems: list) -> GroupAnalysis:
    """The group-level settings, checked for syntax and range."""
    test = values.get("group_test") or "onesample"
    if test not in GROUP_TESTS:
        problems.append(UsageError(f"--group-test {test!r}: use one of {', '.join(GROUP_TESTS)}"))
    model = None
    if values.get("group_model"):
        try:
            from bidsapp.stats.model_file import load_group_model

            model = MappingProxyType(load_group_model(Path(values["group_model"])))
        except BidsAppError as error:
            problems.append(error)
    if test == "twosample" and not values.get("group_column") and model is None:
        problems.append(UsageError(f"--group-test {test} needs --group-column COL (a column of participants.tsv)"))
    corrections = tuple(dict.fromkeys(_as_list(values.get("correction")))) or ("fdr",)
    for correction in corrections:
        if correction not in CORRECTIONS:
            problems.append(UsageError(f"--correction {correction!r}: use any of {', '.join(CORRECTIONS)}"))
    alpha = _positive(values.get("alpha"), float, "--alpha", "error rate below 1", problems)
    height = _positive(values.get("height_threshold"), float, "--height-threshold", "p-value below 1", problems)
    for option, value in (("--alpha", alpha), ("--height-threshold", height)):
        if value is not None and value >= 1:
            problems.append(UsageError(f"{option} {value}: must be a probability below 1"))
    return GroupAnalysis(
        test=test,
        group_column=values.get("group_column"),
        covariates=tuple(_as_list(values.get("covariates"))),
        model=model,
        corrections=corrections,
        alpha=alpha or 0.05,
        height_threshold=height or 0.001,
        cluster_extent=_whole(values.get("cluster_extent"), "--cluster-extent", problems, default=10),
        n_perm=_positive(values.get("n_perm"), int, "--n-perm", "whole number of permutations", problems) or 5000,
        random_seed=_whole(values.get("random_seed"), "--random-seed", problems, default=0),
    )
