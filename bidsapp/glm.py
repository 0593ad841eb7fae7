"""First-level GLM on arrays, shared by voxel and parcel data.

The steps are nilearn's, called on plain arrays so any data that fits a
``(time, units)`` matrix can use them: events are read from a BIDS
``events.tsv`` or an HCP EV directory (:func:`read_events`), turned into a
design matrix with the same frame times as
:class:`nilearn.glm.first_level.FirstLevelModel` (:func:`design_matrix`),
fitted with :func:`nilearn.glm.first_level.run_glm` (AR(1) prewhitening or
OLS; Worsley et al. 2002) and contrasted with
:func:`nilearn.glm.contrasts.compute_contrast` (:func:`fit_contrasts`). Runs
are combined by fixed effects exactly as ``FirstLevelModel`` combines several
runs (:func:`fixed_effects`).

Statistics follow nilearn's conventions: ``t = effect / sqrt(variance)``; ``p``
is the one-sided upper-tail p-value of ``t`` (``Contrast.p_value``), and ``z``
the standard normal quantile with the same upper-tail probability
(``Contrast.z_score``). A two-sided p-value is ``2 * min(p, 1 - p)``.

The data are fitted as given: scale them first if effects should be in percent
signal change (``FirstLevelModel``'s default ``signal_scaling=0``, i.e.
:func:`nilearn.glm.first_level.mean_scaling`); ``t``, ``z`` and ``p`` do not
depend on that scaling.
"""

from __future__ import annotations

import keyword
import re
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import pandas as pd

from bidsapp.config import Contrast
from bidsapp.errors import MissingInputError, UsageError

#: Columns of the events table :func:`read_events` returns.
EVENT_COLUMNS = ("onset", "duration", "trial_type", "modulation")
#: Files of an HCP EV directory that are not conditions (HCP's scanner sync time).
NON_CONDITION_EV_FILES = ("Sync.txt",)
#: nilearn's default cut-off of the cosine drift model, Hz.
DEFAULT_HIGH_PASS_HZ = 0.01
_NAME = re.compile(r"`([^`]*)`|(?<![\w.])([A-Za-z_]\w*)")


@dataclass(frozen=True)
class ContrastMaps:
    """A t contrast's statistics, one value per unit (voxel or parcel).

    Attributes
    ----------
    effect : ndarray of shape (n_units,)
        Contrast estimate (``c @ beta``), in data units.
    variance : ndarray of shape (n_units,)
        Its variance.
    t : ndarray of shape (n_units,)
        ``effect / sqrt(variance)``.
    z : ndarray of shape (n_units,)
        Standard normal quantile with the same upper-tail probability as ``t``.
    p : ndarray of shape (n_units,)
        One-sided (upper-tail) p-value of ``t``, as nilearn's ``Contrast.p_value``.
    dof : float
        Residual degrees of freedom (summed over runs for fixed effects).
    """

    effect: np.ndarray
    variance: np.ndarray
    t: np.ndarray
    z: np.ndarray
    p: np.ndarray
    dof: float


def read_events(path: Path) -> pd.DataFrame:
    """Read a run's events from a BIDS ``events.tsv`` or an HCP EV directory.

    Parameters
    ----------
    path : Path
        An ``events.tsv`` (columns ``onset``, ``duration`` in seconds, optional
        ``trial_type`` and ``modulation`` or ``amplitude``; ``n/a`` allowed), or
        a directory of FSL 3-column EV files ``<condition>.txt`` (onset and
        duration in seconds, amplitude), one per condition; empty EV files are
        conditions without events in this run. ``Sync.txt`` is not a condition.

    Returns
    -------
    DataFrame
        Columns onset, duration, trial_type, modulation, sorted by onset. Events
        of a ``events.tsv`` without ``trial_type`` are all ``dummy`` (nilearn's
        name); rows whose ``trial_type`` is ``n/a`` are left out.

    Raises
    ------
    MissingInputError
        If a file is missing or cannot be read as events (the file is named).
    """
    path = Path(path)
    tables = _read_ev_directory(path) if path.is_dir() else [_read_events_tsv(path)]
    events = pd.concat(tables, ignore_index=True) if tables else pd.DataFrame(columns=list(EVENT_COLUMNS))
    events = events.astype({"onset": float, "duration": float, "modulation": float, "trial_type": str})
    return events.sort_values(["onset", "trial_type"], kind="stable").reset_index(drop=True)


def _read_events_tsv(path: Path) -> pd.DataFrame:
    try:
        table = pd.read_csv(path, sep="\t", na_values=["n/a"], keep_default_na=False)
    except (OSError, ValueError) as error:
        raise MissingInputError(f"{path}: cannot be read as a BIDS events TSV ({error})") from error
    missing = [column for column in ("onset", "duration") if column not in table]
    if missing:
        raise MissingInputError(f"{path}: no {' or '.join(missing)} column; BIDS events need onset and duration "
                                "in seconds")
    trial_type = table["trial_type"] if "trial_type" in table else pd.Series("dummy", index=table.index)
    modulation = next((table[c] for c in ("modulation", "amplitude") if c in table), 1.0)
    events = pd.DataFrame({"onset": table["onset"], "duration": table["duration"],
                           "trial_type": trial_type, "modulation": modulation})
    events = events[events["trial_type"].notna()]
    try:
        events = events.astype({"onset": float, "duration": float, "modulation": float})
    except ValueError as error:
        raise MissingInputError(f"{path}: onset, duration and modulation must be numbers ({error})") from error
    if events[["onset", "duration", "modulation"]].isna().any(axis=None):
        raise MissingInputError(f"{path}: an event has n/a onset, duration or modulation; give numbers")
    return events.astype({"trial_type": str})


def _read_ev_directory(path: Path) -> list[pd.DataFrame]:
    tables = []
    for ev_file in sorted(path.glob("*.txt")):
        if ev_file.name in NON_CONDITION_EV_FILES:
            continue
        try:
            text = ev_file.read_text()
            rows = np.array([line.split() for line in text.splitlines() if line.strip()], dtype=float)
        except (OSError, ValueError) as error:
            raise MissingInputError(f"{ev_file}: cannot be read as an FSL 3-column EV file ({error})") from error
        if rows.size and (rows.ndim != 2 or rows.shape[1] != 3):
            raise MissingInputError(f"{ev_file}: expected 3 columns (onset, duration, amplitude) per line")
        rows = rows.reshape(-1, 3)
        tables.append(pd.DataFrame({"onset": rows[:, 0], "duration": rows[:, 1], "trial_type": ev_file.stem,
                                    "modulation": rows[:, 2]}))
    return tables


def ev_conditions(path: Path) -> tuple[str, ...]:
    """Conditions a run's events define, including HCP EV files without events (sorted)."""
    path = Path(path)
    if path.is_dir():
        return tuple(sorted(p.stem for p in path.glob("*.txt") if p.name not in NON_CONDITION_EV_FILES))
    return tuple(sorted(set(read_events(path)["trial_type"])))


def check_events(events: pd.DataFrame, n_volumes: int, tr: float, path: Path) -> None:
    """Refuse events that start after the run ends.

    Parameters
    ----------
    events : DataFrame
        As :func:`read_events` returns.
    n_volumes : int
        Volumes in the run.
    tr : float
        Repetition time, seconds; the run lasts ``n_volumes * tr`` seconds.
    path : Path
        The events file or EV directory, for the message.

    Raises
    ------
    MissingInputError
        Naming the file (the EV file of the condition for an HCP EV directory)
        and the first onset beyond the run.
    """
    end = n_volumes * tr
    late = events[events["onset"] >= end]
    if late.empty:
        return
    first = late.iloc[0]
    where = Path(path) / f"{first['trial_type']}.txt" if Path(path).is_dir() else Path(path)
    raise MissingInputError(
        f"{where}: event {first['trial_type']!r} at onset {first['onset']:g} s starts after the run ends "
        f"({n_volumes} volumes x {tr:g} s = {end:g} s); check that the events belong to this run")


def frame_times(n_volumes: int, tr: float) -> np.ndarray:
    """Acquisition times of the volumes in seconds, as ``FirstLevelModel`` with ``slice_time_ref=0``."""
    return np.linspace(0.0, (n_volumes - 1) * tr, n_volumes)


def design_matrix(events: pd.DataFrame, n_volumes: int, tr: float, *, hrf_model: str = "glover",
                  high_pass_hz: float | None = None, confounds: pd.DataFrame | None = None,
                  drift_model: str | None = "cosine") -> pd.DataFrame:
    """The first-level design matrix of one run.

    Built by :func:`nilearn.glm.first_level.make_first_level_design_matrix`
    with the frame times, FIR delays and minimum onset that
    ``FirstLevelModel`` uses by default, so the columns (conditions under their
    own names, then confounds, drifts and ``constant``) are the ones nilearn's
    model would fit.

    Parameters
    ----------
    events : DataFrame
        Columns onset, duration (seconds), trial_type, modulation.
    n_volumes : int
    tr : float
        Repetition time, seconds.
    hrf_model : str, default="glover"
        nilearn HRF model (Glover 1999; SPM; with derivatives; ``fir``).
    high_pass_hz : float, optional
        Cut-off of the cosine drift model in Hz; default 0.01 Hz (nilearn's).
    confounds : DataFrame, optional
        Nuisance regressors, one row per volume.
    drift_model : {"cosine", "polynomial", None}, default="cosine"

    Returns
    -------
    DataFrame
        One row per volume (index: frame times in seconds), one column per regressor.
    """
    from nilearn.glm.first_level import make_first_level_design_matrix

    if confounds is not None and len(confounds) != n_volumes:
        raise ValueError(f"confounds have {len(confounds)} rows for a run of {n_volumes} volumes")
    if "modulation" in events and (events["modulation"] == 1).all():
        events = events.drop(columns="modulation")  # nilearn's default; saves its log line per run
    return make_first_level_design_matrix(
        frame_times(n_volumes, tr),
        events if len(events) else None,
        hrf_model=hrf_model,
        drift_model=drift_model,
        high_pass=DEFAULT_HIGH_PASS_HZ if high_pass_hz is None else high_pass_hz,
        fir_delays=[0],
        add_regs=None if confounds is None else confounds.to_numpy(float),
        add_reg_names=None if confounds is None else [str(c) for c in confounds.columns],
    )


def contrast_name(condition: str) -> str:
    """A condition's name as a contrast name: its letters and digits (``win_event`` -> ``winevent``)."""
    return re.sub(r"[^A-Za-z0-9]", "", condition)


def default_contrasts(conditions: Sequence[str]) -> list[Contrast]:
    """Each condition against baseline, then every ordered pair difference.

    Parameters
    ----------
    conditions : sequence of str
        Condition names (``trial_type`` values, EV file stems). Names that are
        not Python identifiers (e.g. ``0bk_body``) cannot appear in an
        expression unquoted and are skipped, as are names that would repeat.

    Returns
    -------
    list of Contrast
        ``lf`` (expression ``lf``) for each condition, and ``lfMinusRf``
        (``lf - rf``) for each ordered pair.
    """
    usable: dict[str, str] = {}
    for condition in dict.fromkeys(conditions):
        name = contrast_name(condition)
        if condition.isidentifier() and not keyword.iskeyword(condition) and name and name not in usable:
            usable[name] = condition
    contrasts = [Contrast(name, condition) for name, condition in usable.items()]
    for name_a, a in usable.items():
        for name_b, b in usable.items():
            if a != b:
                contrasts.append(Contrast(f"{name_a}Minus{name_b[0].upper()}{name_b[1:]}", f"{a} - {b}"))
    return contrasts


def expression_names(expression: str) -> list[str]:
    """The condition names a contrast expression uses, in order, without repeats (backquotes removed)."""
    return list(dict.fromkeys(quoted or bare for quoted, bare in _NAME.findall(expression)))


def contrast_vector(contrast: Contrast, columns: Sequence[str]) -> np.ndarray:
    """The weights of ``contrast`` on the design ``columns``.

    Parameters
    ----------
    contrast : Contrast
        Its expression names design columns (backquoted when not identifiers,
        e.g. ```2bk_body` - `0bk_body```), combined with ``+ - * /`` and numbers.
    columns : sequence of str
        Design matrix columns.

    Returns
    -------
    ndarray of shape (n_columns,)
        From :func:`nilearn.glm.expression_to_contrast_vector`.

    Raises
    ------
    UsageError
        If the expression names something not in the design or does not parse;
        the message names ``--contrast NAME`` and the conditions available.
    """
    from nilearn.glm import expression_to_contrast_vector

    columns = [str(c) for c in columns]
    conditions = [c for c in columns if not c.startswith("drift_") and c != "constant"]

    def problem(what: str) -> UsageError:
        return UsageError(f"--contrast {contrast.name}={contrast.expression}: {what}; conditions available: "
                          f"{', '.join(conditions) or 'none'}")

    unknown = [name for name in expression_names(contrast.expression) if name not in columns]
    if unknown:
        raise problem(f"{', '.join(unknown)} not in this run's design")
    try:
        vector = expression_to_contrast_vector(contrast.expression, columns)
    except ValueError as error:
        raise problem("the expression does not parse (write e.g. \"lf - rf\" or \"t - 0.25*(lf + rf + lh + rh)\")"
                      ) from error
    return np.asarray(vector, dtype=float)


def fit_contrasts(data: np.ndarray, design: pd.DataFrame, contrasts: Sequence[Contrast], *,
                  noise_model: str = "ar1", sample_mask: np.ndarray | None = None) -> dict:
    """Fit one run's GLM and compute t contrasts.

    Parameters
    ----------
    data : ndarray of shape (n_volumes, n_units)
        Voxel or parcel time series; float32 is used as is.
    design : DataFrame
        One row per volume, e.g. from :func:`design_matrix`.
    contrasts : sequence of Contrast
    noise_model : {"ar1", "ols"}, default="ar1"
        AR(1) prewhitening with coefficients binned to 0.01 (:func:`fit_ar1`,
        nilearn's estimator vectorised), or OLS (nilearn's
        :func:`~nilearn.glm.first_level.run_glm`).
    sample_mask : ndarray, optional
        Volumes to keep: indices, or a boolean mask of length ``n_volumes``.
        Censored volumes (rows not kept) never enter the fit, as with
        ``FirstLevelModel.fit(sample_masks=...)``.

    Returns
    -------
    dict of str to nilearn.glm.contrasts.Contrast
        Keyed by contrast name, in the order given.
    """
    from nilearn.glm.contrasts import compute_contrast
    from nilearn.glm.first_level import run_glm

    if data.shape[0] != len(design):
        raise ValueError(f"data have {data.shape[0]} volumes but the design has {len(design)} rows")
    vectors = {c.name: contrast_vector(c, design.columns) for c in contrasts}
    regressors = design.to_numpy(float)
    if sample_mask is not None:
        keep = np.arange(len(design))[np.asarray(sample_mask)]
        data, regressors = data[keep], regressors[keep]
    if noise_model == "ar1":
        labels, results = fit_ar1(data, regressors)
    else:
        labels, results = run_glm(data, regressors, noise_model=noise_model, n_jobs=1)
    return {name: compute_contrast(labels, results, vector, stat_type="t") for name, vector in vectors.items()}


def fit_ar1(data: np.ndarray, regressors: np.ndarray) -> tuple[np.ndarray, dict]:
    """AR(1) GLM exactly as nilearn's ``run_glm(noise_model="ar1")``, with the AR estimate vectorised.

    The lag-1 autocorrelation of the OLS residuals is nilearn's Yule-Walker
    estimate (residuals centred on their overall mean, biased autocovariances),
    truncated to steps of 0.01; units sharing a value are prewhitened and fitted
    together with nilearn's ``ARModel``. nilearn solves a 1x1 Toeplitz system per
    unit, which dominates its run time on voxel data.

    Returns
    -------
    labels : ndarray of shape (n_units,)
        Each unit's binned AR(1) coefficient.
    results : dict
        Coefficient to the nilearn regression results of its units.
    """
    from nilearn.glm.regression import ARModel, OLSModel

    n = len(data)
    residuals = data - regressors @ (OLSModel(regressors).calc_beta @ data)
    centred = residuals - residuals.mean()
    lag0 = np.einsum("tv,tv->v", centred, centred) / (n * n)
    lag1 = np.einsum("tv,tv->v", centred[:-1], centred[1:]) / ((n - 1) * n)
    rho = np.divide(lag1, lag0, out=np.zeros_like(lag1), where=lag0 > 0)
    binned = (rho * 100).astype(int) / 100
    values, index = np.unique(binned, return_inverse=True)
    results = {value: ARModel(regressors, value).fit(data[:, index == k]) for k, value in enumerate(values)}
    return values[index], results


def fixed_effects(per_run: Sequence) -> ContrastMaps:
    """Combine one contrast's runs by fixed effects, as ``FirstLevelModel`` does.

    The run contrasts are summed (effects, variances and degrees of freedom
    add) and scaled by ``1 / n_runs``, so ``effect`` is the mean of the run
    effects and ``t = sum(effects) / sqrt(sum(variances))``.

    Parameters
    ----------
    per_run : sequence of nilearn.glm.contrasts.Contrast
        The contrast in each run (at least one).

    Returns
    -------
    ContrastMaps
    """
    if not per_run:
        raise ValueError("fixed effects need at least one run")
    total = per_run[0]
    for contrast in per_run[1:]:
        total = total + contrast
    total = total * (1.0 / len(per_run))
    return ContrastMaps(
        effect=np.ravel(total.effect_size()).astype(float),
        variance=np.ravel(total.effect_variance()).astype(float),
        t=np.ravel(total.stat()).astype(float),
        z=np.ravel(total.z_score()).astype(float),
        p=np.ravel(total.p_value()).astype(float),
        dof=float(total.dof),
    )
