"""Denoising strategies: presets as data (``bidsapp/data/strategies/*.yml``) and user files.

A strategy names the nuisance regressors to take from fMRIPrep's confounds
table (nilearn's ``load_confounds`` components and their expansions), the
volumes to censor (non-steady-state volumes, scrubbing) and the parameters of
:func:`nilearn.signal.clean`; each preset carries its citation and a methods
paragraph. A user YAML/JSON file has the same keys and may start from a
preset with ``extends: <name>``.
"""

from __future__ import annotations

from collections.abc import Collection
from dataclasses import asdict, dataclass, replace
from importlib import resources
from pathlib import Path
from typing import Any, Literal

from bidsapp.errors import MissingInputError, UsageError

Expansion = Literal["basic", "derivatives", "power2", "full"]
CompCor = Literal["anat_combined", "anat_separated", "temporal", "temporal_anat_combined", "temporal_anat_separated"]
EXPANSIONS = {"basic": (), "derivatives": ("derivative1",), "power2": ("power2",),
              "full": ("derivative1", "power2", "derivative1_power2")}
COMPCOR_PREFIXES = {"anat_combined": "a", "anat_separated": "awc", "temporal": "t",
                    "temporal_anat_combined": "ta", "temporal_anat_separated": "tawc"}


@dataclass(frozen=True)
class Scrubbing:
    """Censoring of high-motion volumes (Power et al. 2014), as nilearn's ``scrub`` component.

    Attributes
    ----------
    fd_threshold_mm : float
        Framewise displacement above which a volume is censored, mm.
    std_dvars_threshold : float
        Standardised DVARS above which a volume is censored.
    min_segment : int
        Uncensored segments shorter than this many volumes are censored too.
    """

    fd_threshold_mm: float = 0.5
    std_dvars_threshold: float = 1.5
    min_segment: int = 5


@dataclass(frozen=True)
class Strategy:
    """A denoising strategy (one file of ``bidsapp/data/strategies``).

    Attributes
    ----------
    name, description, citation, methods : str
        Its name, a one-line summary, the papers it follows and a methods paragraph.
    motion, wm_csf, global_signal : {"basic", "derivatives", "power2", "full"} or None
        Head motion (6 parameters), white-matter and CSF means, global signal, with
        their ``_derivative1``/``_power2`` expansions as in nilearn's ``load_confounds``.
    compcor : str, optional
        CompCor components (nilearn's ``compcor`` values), ``n_compcor`` of each mask.
    n_compcor : int or "all"
    cosine : bool
        fMRIPrep's discrete cosine high-pass regressors (nilearn's ``high_pass`` component).
    scrub : Scrubbing, optional
    detrend : bool
    standardize : {"zscore_sample", "psc"} or None
        Scaling of the cleaned time series.
    high_pass_hz, low_pass_hz : float, optional
        Butterworth filter cut-offs, Hz (filter and regressors are kept orthogonal;
        Lindquist et al. 2019).
    dummy_scans : int or "auto"
        Volumes censored at the start; ``"auto"``: fMRIPrep's non-steady-state outliers.
    """

    name: str
    description: str = ""
    citation: str = ""
    methods: str = ""
    motion: Expansion | None = None
    wm_csf: Expansion | None = None
    global_signal: Expansion | None = None
    compcor: CompCor | None = None
    n_compcor: int | Literal["all"] = "all"
    cosine: bool = False
    scrub: Scrubbing | None = None
    detrend: bool = True
    standardize: Literal["zscore_sample", "psc"] | None = "zscore_sample"
    high_pass_hz: float | None = None
    low_pass_hz: float | None = None
    dummy_scans: int | Literal["auto"] = "auto"

    def parameters(self) -> dict[str, Any]:
        """Every setting, for sidecars and the re-run check (texts left out)."""
        values = asdict(self)
        for key in ("description", "citation", "methods"):
            values.pop(key)
        return values


def preset_names() -> tuple[str, ...]:
    """Names of the strategies shipped in ``bidsapp/data/strategies``."""
    folder = resources.files("bidsapp") / "data" / "strategies"
    return tuple(sorted(p.name.removesuffix(".yml") for p in folder.iterdir() if p.name.endswith(".yml")))


def load_strategy(spec: str) -> Strategy:
    """Load a preset by name, or a user strategy file (YAML or JSON).

    A user file has the keys of the presets; ``extends: <preset>`` starts from a
    preset and changes only the keys given.

    Raises
    ------
    UsageError
        For an unknown preset name, a file that is not valid YAML or JSON (one line with
        its line and column, :func:`bidsapp.options.read_option_file`), or an invalid key
        or value (the file and key named).
    MissingInputError
        If the file cannot be read.
    """
    import yaml

    from bidsapp.options import read_option_file

    if spec in preset_names():
        path = resources.files("bidsapp") / "data" / "strategies" / f"{spec}.yml"
        return _strategy_from_mapping(yaml.safe_load(path.read_text()), f"preset {spec}")
    path = Path(spec)
    if not path.is_file():
        if any(sep in spec for sep in "/\\."):
            raise MissingInputError(f"--denoise-strategy {spec}: file not found; give a preset name or a "
                                    "YAML/JSON file")
        raise UsageError(f"--denoise-strategy {spec!r}: unknown strategy; use one of {', '.join(preset_names())} "
                         "or the path of a YAML/JSON strategy file")
    values = read_option_file(path, "--denoise-strategy")
    if not isinstance(values, dict):
        raise UsageError(f"--denoise-strategy {path}: expected a mapping of strategy keys")
    base = values.pop("extends", None)
    if base is not None:
        if base not in preset_names():
            raise UsageError(f"--denoise-strategy {path}: extends {base!r}, not a preset ({', '.join(preset_names())})")
        preset = yaml.safe_load((resources.files("bidsapp") / "data" / "strategies" / f"{base}.yml").read_text())
        for key in ("confounds", "clean"):
            values[key] = {**preset.get(key, {}), **(values.get(key) or {})}
        values = {**preset, "name": path.stem, **values}
    return _strategy_from_mapping({"name": path.stem, **values}, str(path))


def _strategy_from_mapping(values: dict, where: str) -> Strategy:
    """Build and check a Strategy from a preset's mapping (sections ``confounds``, ``scrub``, ``clean``)."""
    sections = {"confounds": {"motion", "wm_csf", "global_signal", "compcor", "n_compcor", "cosine"},
                "clean": {"detrend", "standardize", "high_pass_hz", "low_pass_hz"},
                "scrub": set(Scrubbing.__dataclass_fields__)}
    known = {"name", "description", "citation", "methods", "dummy_scans", *sections}
    confounds, clean, scrub = (values.get(k) or {} for k in sections)
    unknown = sorted(set(values) - known) + [key for section, allowed in sections.items()
                                             for key in (values.get(section) or {}) if key not in allowed]
    if unknown:
        raise UsageError(f"--denoise-strategy {where}: unknown key {unknown[0]!r}")
    flat = {**confounds, **clean, **{k: v for k, v in values.items() if k in known - set(sections)}}
    checks: dict[str, Collection[str]] = {key: EXPANSIONS for key in ("motion", "wm_csf", "global_signal")}
    checks["compcor"] = COMPCOR_PREFIXES
    for key, allowed in checks.items():
        if flat.get(key) is not None and flat[key] not in allowed:
            raise UsageError(f"--denoise-strategy {where}: {key}: {flat[key]!r} is not one of {', '.join(allowed)}")
    if flat.get("standardize") not in (None, "zscore_sample", "psc"):
        raise UsageError(f"--denoise-strategy {where}: standardize must be zscore_sample, psc or null")
    dummy = flat.get("dummy_scans", "auto")
    n_compcor = flat.get("n_compcor", "all")
    if not (dummy == "auto" or (isinstance(dummy, int) and dummy >= 0)) or \
            not (n_compcor == "all" or (isinstance(n_compcor, int) and n_compcor > 0)):
        raise UsageError(f"--denoise-strategy {where}: dummy_scans must be auto or a whole number, "
                         "n_compcor all or a positive whole number")
    flat["scrub"] = Scrubbing(**scrub) if values.get("scrub") else None
    flat["name"] = str(flat.get("name") or where)
    return Strategy(**flat)


def with_options(strategy: Strategy, *, dummy_scans=None, high_pass_hz=None, low_pass_hz=None,
                 fd_threshold_mm=None) -> Strategy:
    """The strategy with command-line overrides applied.

    ``high_pass_hz`` replaces the strategy's high-pass (cosine regressors or
    filter cut-off) by a Butterworth high-pass; ``fd_threshold_mm`` changes the
    scrubbing threshold of scrubbing strategies; ``None`` keeps a setting.
    """
    changes: dict[str, Any] = {}
    if dummy_scans is not None:
        changes["dummy_scans"] = dummy_scans
    if high_pass_hz is not None:
        changes.update(high_pass_hz=high_pass_hz, cosine=False)
    if low_pass_hz is not None:
        changes["low_pass_hz"] = low_pass_hz
    if fd_threshold_mm is not None and strategy.scrub is not None:
        changes["scrub"] = replace(strategy.scrub, fd_threshold_mm=fd_threshold_mm)
    return replace(strategy, **changes)
