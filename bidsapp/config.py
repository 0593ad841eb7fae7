"""The run configuration: frozen dataclasses built and validated once.

``build_config`` turns parsed arguments into a :class:`Config`, collecting every
problem it finds and reporting them together, so no later layer re-checks the
options.
"""

from __future__ import annotations

import os
import re
import tempfile
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from types import MappingProxyType
from typing import Any, Literal

from bidsapp import options
from bidsapp.errors import BidsAppError, MissingInputError, UnknownLevelError, UsageError, raise_collected
from bidsapp.options import (
    DEFAULT_SPACE,
    AnalysisLevel,
    ConnectivityKind,
    GroupTest,
    InputType,
    NoiseModel,
    Problems,
)
from bidsapp.steps.glm.contrasts import Contrast
from bidsapp.steps.seeds import Seed

_SEED = re.compile(r"^(?P<name>[A-Za-z0-9]+)=(?P<coords>[^=]+)$")
_CONTRAST = re.compile(r"^(?P<name>[A-Za-z0-9]+)=(?P<expression>.+)$")


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
    slurm_script : Path, optional
        With ``dry_run`` at participant level: where to write the SLURM job-array script (:mod:`bidsapp.slurm`).
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
    slurm_script: Path | None = None
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
        ``--contrast`` definitions; they replace the default contrasts.
    default_contrasts : bool, optional
        Keep the default contrasts too (the word ``defaults`` among the ``--contrast``
        values); ``None``: only when no contrast is given.
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
    connectivity: tuple[ConnectivityKind, ...] = ("correlation",)
    seeds: tuple[Seed, ...] = ()
    seed_radius_mm: float = 8.0
    contrasts: tuple[Contrast, ...] = ()
    default_contrasts: bool | None = None
    hrf_model: str = "glover"
    noise_model: NoiseModel = "ar1"


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
    model_name : str, optional
        The ``--group-model`` file's name without its extension.
    """

    test: GroupTest = "onesample"
    group_column: str | None = None
    covariates: tuple[str, ...] = ()
    model: Mapping[str, Any] | None = None
    corrections: tuple[str, ...] = ("fdr",)
    alpha: float = 0.05
    height_threshold: float = 0.001
    cluster_extent: int = 10
    n_perm: int = 5000
    random_seed: int = 0
    model_name: str | None = None


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
    problems: Problems = []

    bids_dir = Path(values["bids_dir"]).expanduser().absolute()
    if not bids_dir.is_dir():
        problems.append(MissingInputError(f"BIDS_DIR {bids_dir}: no such directory; give the dataset's path"))
    output_dir = Path(values["output_dir"]).expanduser().absolute()
    if output_dir == bids_dir:
        problems.append(UsageError(f"OUTPUT_DIR {output_dir} is BIDS_DIR: write outputs to another directory, "
                                   "e.g. BIDS_DIR/derivatives/bidsapp"))
    else:
        options.check_output_dir(output_dir, problems)
    level = values["analysis_level"]
    if level not in options.ANALYSIS_LEVELS:
        problems.append(UnknownLevelError(f"analysis level {level!r} is unknown: use 'participant' or 'group'"))

    derivatives = tuple(Path(p).expanduser().absolute() for p in options.as_list(values.get("derivatives")))
    problems += [MissingInputError(f"--derivatives {p}: no such directory") for p in derivatives if not p.is_dir()]

    selection = Selection(
        participant_labels=options.labels(values.get("participant_label"), "sub", "--participant-label", problems),
        session_labels=options.labels(values.get("session_label"), "ses", "--session-label", problems),
        tasks=options.labels(values.get("task"), "task", "--task", problems),
        space=values.get("space") or DEFAULT_SPACE,
        run_filters=options.run_filters(values.get("bids_filter_file"), problems),
    )

    nprocs = options.positive(values.get("nprocs"), int, "--nprocs", "a whole number of processes", problems)
    mem_gb = options.positive(values.get("mem_gb"), float, "--mem-gb", "a number of gigabytes", problems)
    work_dir = values.get("work_dir")
    execution = Execution(
        work_dir=Path(work_dir).expanduser().absolute() if work_dir else Path(tempfile.gettempdir()) / "bidsapp_work",
        nprocs=nprocs or os.cpu_count() or 1,
        mem_gb=mem_gb,
        skip_bids_validation=bool(values.get("skip_bids_validation")),
        skip_bad_runs=bool(values.get("skip_bad_runs")),
        dry_run=bool(values.get("dry_run")),
        slurm_script=options.slurm_script(values, (bids_dir, output_dir), problems),
        reports=not values.get("no_reports"),
        verbosity=int(values.get("verbose") or 0),
    )
    analysis = _analysis(values, problems)
    group = _group(values, problems)
    raise_collected(problems)
    input_type: InputType = values.get("input_type") or "auto"
    return Config(
        bids_dir=bids_dir,
        output_dir=output_dir,
        analysis_level=level,
        input_type=input_type,
        derivatives=derivatives,
        selection=selection,
        execution=execution,
        command=tuple(command),
        analysis=analysis,
        group=group,
    )


def _analysis(values: Mapping[str, Any], problems: Problems) -> Analysis:
    """The participant-level settings, checked for syntax and range."""
    seeds = []
    for text in options.as_list(values.get("seeds")):
        seed = _seed(str(text))
        if seed is None:
            problems.append(UsageError(f"--seeds {text!r}: write NAME=X,Y,Z with MNI mm, e.g. PCC=0,-52,26"))
        else:
            seeds.append(seed)
    contrasts = []
    given = options.as_list(values.get("contrast"))
    for text in given:
        if str(text) == "defaults":
            continue
        match = _CONTRAST.match(str(text))
        if match:
            contrasts.append(Contrast(match["name"], match["expression"].strip()))
        else:
            problems.append(UsageError(f"--contrast {text!r}: write NAME=EXPR with a letters-and-digits name, "
                                       'e.g. lfMinusRf="lf - rf"'))
    dummy = options.dummy_scans(values.get("dummy_scans"), problems)
    connectivity = options.connectivity_kinds(values.get("connectivity"), problems)
    high_pass, low_pass = options.filter_band(values.get("high_pass"), values.get("low_pass"), problems)
    hrf_model = options.hrf_model(values.get("hrf_model"), problems)
    noise_model = options.noise_model(values.get("noise_model"), problems)
    strategy = values.get("denoise_strategy")
    if strategy:  # a preset, or a strategy file that parses (strategies reads it with options.read_option_file)
        from bidsapp.steps.strategies import load_strategy

        try:
            load_strategy(str(strategy))
        except BidsAppError as error:
            problems.append(error)
    if values.get("atlas"):
        options.check_atlas(str(values["atlas"]), values.get("space") or DEFAULT_SPACE, problems)
    fd_threshold = options.positive(values.get("fd_threshold"), float, "--fd-threshold", "distance in mm", problems)
    fwhm = options.positive(values.get("smoothing_fwhm"), float, "--smoothing-fwhm", "FWHM in mm", problems)
    radius = options.positive(values.get("seed_radius"), float, "--seed-radius", "radius in mm", problems)
    return Analysis(
        denoise_strategy=str(strategy) if strategy else None,
        dummy_scans=dummy,
        high_pass_hz=high_pass,
        low_pass_hz=low_pass,
        fd_threshold_mm=fd_threshold,
        smoothing_fwhm_mm=fwhm,
        atlas=str(values["atlas"]) if values.get("atlas") else None,
        connectivity=connectivity,
        seeds=tuple(seeds),
        seed_radius_mm=radius or 8.0,
        contrasts=tuple(contrasts),
        default_contrasts=True if "defaults" in map(str, given) else None,
        hrf_model=hrf_model,
        noise_model=noise_model,
    )


def _seed(text: str) -> Seed | None:
    """A ``NAME=X,Y,Z`` seed, or None when ``text`` is not one."""
    match = _SEED.match(text)
    coords = match["coords"].split(",") if match else []
    if match is None or len(coords) != 3:
        return None
    try:
        x, y, z = (float(c) for c in coords)
    except ValueError:
        return None
    return Seed(match["name"], x, y, z)


def _group(values: Mapping[str, Any], problems: Problems) -> GroupAnalysis:
    """The group-level settings, checked for syntax and range."""
    test = options.group_test(values.get("group_test"), problems)
    model = None
    if values.get("group_model"):
        try:
            from bidsapp.stats.model_file import load_group_model

            model = MappingProxyType(load_group_model(Path(values["group_model"])))
        except BidsAppError as error:
            problems.append(error)
    if test == "twosample" and not values.get("group_column") and model is None:
        problems.append(UsageError(f"--group-test {test} needs --group-column COL (a column of participants.tsv)"))
    corrections = options.corrections(values.get("correction"), problems)
    alpha = options.positive(values.get("alpha"), float, "--alpha", "error rate below 1", problems)
    height = options.positive(values.get("height_threshold"), float, "--height-threshold", "p-value below 1", problems)
    for option, value in (("--alpha", alpha), ("--height-threshold", height)):
        if value is not None and value >= 1:
            problems.append(UsageError(f"{option} {value}: must be a probability below 1"))
    extent = options.whole(values.get("cluster_extent"), "--cluster-extent", problems, default=10)
    n_perm = options.positive(values.get("n_perm"), int, "--n-perm", "whole number of permutations", problems)
    random_seed = options.whole(values.get("random_seed"), "--random-seed", problems, default=0)
    return GroupAnalysis(
        test=test,
        group_column=values.get("group_column"),
        covariates=tuple(options.as_list(values.get("covariates"))),
        model=model,
        corrections=corrections,
        alpha=alpha or 0.05,
        height_threshold=height or 0.001,
        cluster_extent=extent,
        n_perm=n_perm or 5000,
        random_seed=random_seed,
        model_name=Path(values["group_model"]).stem if values.get("group_model") else None,
    )
