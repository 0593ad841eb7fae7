"""First-level GLM on arrays, shared by voxel and parcel data.

The steps are nilearn's, called on plain arrays so any data that fits a
``(time, units)`` matrix can use them: events are read from a BIDS
``events.tsv`` or an HCP EV directory (:func:`read_events`), turned into a
design matrix with the same frame times as
:class:`nilearn.glm.first_level.FirstLevelModel` (:func:`design_matrix`),
fitted with AR(1) prewhitening (Worsley et al. 2002) or OLS and contrasted
(:func:`fit_contrasts`) with the estimator of
:func:`nilearn.glm.first_level.run_glm` and
:func:`nilearn.glm.contrasts.compute_contrast`, vectorised: one stacked
pseudo-inverse for all the AR coefficient bins instead of one nilearn model per
bin. Runs are combined by fixed effects exactly as ``FirstLevelModel``
combines several runs (:func:`fixed_effects`).

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

import functools
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
#: HRF models whose condition regressors :func:`condition_regressors` computes (others: nilearn's own code).
CONVOLVED_HRF_MODELS = ("glover", "spm")
#: nilearn's defaults for the design matrix: samples per frame for the convolution, earliest onset modelled (s).
OVERSAMPLING = 50
MIN_ONSET = -24.0
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
    events = _read_ev_directory(path) if path.is_dir() else _read_events_tsv(path)
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


def _read_ev_directory(path: Path) -> pd.DataFrame:
    blocks, conditions = [], []
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
        blocks.append(rows.reshape(-1, 3))
        conditions += [ev_file.stem] * len(blocks[-1])
    rows = np.concatenate(blocks) if blocks else np.empty((0, 3))
    return pd.DataFrame({"onset": rows[:, 0], "duration": rows[:, 1], "trial_type": conditions,
                         "modulation": rows[:, 2]})


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
    times = frame_times(n_volumes, tr)
    extra, extra_names = [], []
    if len(events) and hrf_model in CONVOLVED_HRF_MODELS:
        conditions, names = condition_regressors(events, times, hrf_model)
        extra.append(conditions)
        extra_names += names
        events = events.iloc[:0]
    if confounds is not None:
        extra.append(confounds.to_numpy(float))
        extra_names += [str(c) for c in confounds.columns]
    return make_first_level_design_matrix(
        times,
        events if len(events) else None,
        hrf_model=hrf_model,
        drift_model=drift_model,
        high_pass=DEFAULT_HIGH_PASS_HZ if high_pass_hz is None else high_pass_hz,
        fir_delays=[0],
        add_regs=np.hstack(extra) if extra else None,
        add_reg_names=extra_names or None,
    )


@functools.lru_cache(maxsize=32)
def _hrf_kernel(hrf_model: str, tr: float) -> np.ndarray:
    """nilearn's HRF sampled :data:`OVERSAMPLING` times per ``tr`` (cached: a few models and TRs per dataset)."""
    from nilearn.glm.first_level import glover_hrf, spm_hrf

    return (glover_hrf if hrf_model == "glover" else spm_hrf)(tr, OVERSAMPLING)


def condition_regressors(events: pd.DataFrame, times: np.ndarray, hrf_model: str) -> tuple[np.ndarray, list[str]]:
    """Each condition's HRF-convolved regressor, as nilearn's ``compute_regressor`` computes it, faster.

    Events of a condition with the same onset and duration are one event with
    their modulations summed (nilearn's handling of duplicates). The boxcars are
    sampled on nilearn's grid (:data:`OVERSAMPLING` times the frame rate, from
    :data:`MIN_ONSET` seconds before the first frame), convolved with the HRF
    by FFT (nilearn convolves directly, 10 times slower at this length; the
    results agree to rounding) and interpolated linearly at the frame times.

    Parameters
    ----------
    events : DataFrame
        Columns onset, duration, trial_type and optionally modulation (default 1).
    times : ndarray of shape (n_volumes,)
        Frame times in seconds (:func:`frame_times`).
    hrf_model : {"glover", "spm"}

    Returns
    -------
    regressors : ndarray of shape (n_volumes, n_conditions)
    conditions : list of str
        The condition names, sorted (nilearn's column order).
    """
    from scipy.signal import fftconvolve

    n, first, last = times.size, times.min(), times.max()
    end = last * (1 + 1.0 / (n - 1))
    n_high = int(np.rint((n - 1) * 1.0 / (last - first) * ((end - first - MIN_ONSET) * OVERSAMPLING) + 1))
    grid = np.linspace(first + MIN_ONSET, end, n_high)
    kernel = _hrf_kernel(hrf_model, float(np.min(np.diff(times))))
    trial_types = events["trial_type"].to_numpy()
    timing = events[["onset", "duration"]].to_numpy(float)
    modulation = events["modulation"].to_numpy(float) if "modulation" in events else np.ones(len(events))
    conditions = sorted(set(trial_types))
    boxcars = np.zeros((len(conditions), n_high))
    for boxcar, condition in zip(boxcars, conditions):
        rows = trial_types == condition
        pairs, which = np.unique(timing[rows], axis=0, return_inverse=True)
        values = np.bincount(which.ravel(), weights=modulation[rows])
        start = np.minimum(np.searchsorted(grid, pairs[:, 0]), n_high - 1)
        stop = np.minimum(np.searchsorted(grid, pairs[:, 0] + pairs[:, 1]), n_high - 1)
        stop[(stop < n_high - 1) & (stop == start)] += 1  # zero durations last one sample
        np.add.at(boxcar, start, values)
        np.add.at(boxcar, stop, -values)
    convolved = fftconvolve(np.cumsum(boxcars, axis=1), kernel[None, :], axes=1)[:, :n_high]
    columns = [np.interp(times, grid, row) for row in convolved]
    return np.column_stack(columns), conditions


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
    columns = [str(c) for c in columns]
    conditions = [c for c in columns if not c.startswith("drift_") and c != "constant"]

    def problem(what: str) -> UsageError:
        return UsageError(f"--contrast {contrast.name}={contrast.expression}: {what}; conditions available: "
                          f"{', '.join(conditions) or 'none'}")

    unknown = [name for name in expression_names(contrast.expression) if name not in columns]
    if unknown:
        raise problem(f"{', '.join(unknown)} not in this run's design")
    try:
        return np.array(_expression_vector(contrast.expression, tuple(columns)))
    except ValueError as error:
        raise problem("the expression does not parse (write e.g. \"lf - rf\" or \"t - 0.25*(lf + rf + lh + rh)\")"
                      ) from error


@functools.lru_cache(maxsize=1024)
def _expression_vector(expression: str, columns: tuple[str, ...]) -> tuple[float, ...]:
    """nilearn's contrast vector of ``expression`` (cached: every run of a task asks for the same ones)."""
    from nilearn.glm import expression_to_contrast_vector

    return tuple(np.asarray(expression_to_contrast_vector(expression, list(columns)), dtype=float).tolist())


def fit_contrasts(data: np.ndarray, design: pd.DataFrame, contrasts: Sequence[Contrast], *,
                  noise_model: str = "ar1", sample_mask: np.ndarray | None = None, signal_scaling: bool = False,
                  block: int | None = None) -> dict:
    """Fit one run's GLM and compute t contrasts.

    Parameters
    ----------
    data : ndarray of shape (n_volumes, n_units)
        Voxel or parcel time series (float32 or float64; fitted in float64).
    design : DataFrame
        One row per volume, e.g. from :func:`design_matrix`.
    contrasts : sequence of Contrast
    noise_model : {"ar1", "ols"}, default="ar1"
        AR(1) prewhitening with coefficients binned to 0.01
        (:func:`ar1_coefficients`), or OLS; both fitted by :func:`whitened_contrasts`,
        which gives what nilearn's :func:`~nilearn.glm.first_level.run_glm` and
        :func:`~nilearn.glm.contrasts.compute_contrast` give.
    sample_mask : ndarray, optional
        Volumes to keep: indices, or a boolean mask of length ``n_volumes``.
        Censored volumes (rows not kept) never enter the fit, as with
        ``FirstLevelModel.fit(sample_masks=...)``.
    signal_scaling : bool, default=False
        Scale each unit by its mean over the kept volumes first
        (:func:`nilearn.glm.first_level.mean_scaling`, ``FirstLevelModel``'s
        default), so that effects are in percent signal change.
    block : int, optional
        Units scaled and fitted at a time (bounds the working memory; default
        all). The AR(1) coefficients are estimated on consecutive blocks; the
        fit then takes the units in order of their coefficient, so that each
        block holds few coefficient bins and each bin is one large product.

    Returns
    -------
    dict of str to nilearn.glm.contrasts.Contrast
        Keyed by contrast name, in the order given.
    """
    if data.shape[0] != len(design):
        raise ValueError(f"data have {data.shape[0]} volumes but the design has {len(design)} rows")
    if noise_model not in ("ar1", "ols"):
        raise ValueError(f"unknown noise model {noise_model!r}; use ar1 or ols")
    vectors = {c.name: contrast_vector(c, design.columns) for c in contrasts}
    keep = slice(None) if sample_mask is None else np.arange(len(design))[np.asarray(sample_mask)]
    regressors = design.to_numpy(float)[keep]

    def units(columns) -> np.ndarray:
        """The kept volumes of some units (a slice or indices), scaled as asked."""
        chunk = data[:, columns][keep]
        return _mean_scaling(chunk) if signal_scaling else chunk

    n_units = data.shape[1]
    size = block or max(n_units, 1)
    starts = range(0, max(n_units, 1), size)
    if noise_model == "ar1":
        rho = np.concatenate([ar1_coefficients(units(slice(s, s + size)), regressors) for s in starts])
    else:
        rho = np.zeros(n_units)
    order = np.argsort(rho, kind="stable")
    pieces = [whitened_contrasts(units(order[s:s + size]), regressors, rho[order[s:s + size]], vectors)
              for s in starts]
    return {name: _in_order([piece[name] for piece in pieces], order) for name in vectors}


def _mean_scaling(data: np.ndarray) -> np.ndarray:
    """Percent signal change about each column's mean (nilearn's ``mean_scaling``)."""
    from nilearn.glm.first_level import mean_scaling

    return mean_scaling(data)[0]


def _in_order(pieces: Sequence, order: np.ndarray):
    """One nilearn contrast from contrasts on consecutive blocks of the units listed in ``order``."""
    from nilearn.glm.contrasts import Contrast as NilearnContrast

    effect, variance = np.empty(len(order)), np.empty(len(order))
    effect[order] = np.concatenate([piece.effect for piece in pieces])
    variance[order] = np.concatenate([piece.variance for piece in pieces])
    return NilearnContrast(effect=effect, variance=variance, dim=1, dof=pieces[0].dof, stat_type="t")


def _pinv(matrices: np.ndarray) -> np.ndarray:
    """Pseudo-inverse of each (stacked) matrix, with the cut-off of :func:`scipy.linalg.pinv` that nilearn uses."""
    return np.linalg.pinv(matrices, rtol=max(matrices.shape[-2:]) * np.finfo(float).eps)


def ar1_coefficients(data: np.ndarray, regressors: np.ndarray) -> np.ndarray:
    """Each unit's AR(1) coefficient as nilearn's ``run_glm(noise_model="ar1")`` estimates and bins it.

    The lag-1 autocorrelation of the OLS residuals is nilearn's Yule-Walker
    estimate (residuals centred on their overall mean, biased autocovariances),
    truncated to steps of 0.01.

    Parameters
    ----------
    data : ndarray of shape (n_volumes, n_units)
    regressors : ndarray of shape (n_volumes, n_regressors)

    Returns
    -------
    ndarray of shape (n_units,)
    """
    n = len(data)
    residuals = regressors @ (_pinv(regressors) @ data)
    np.subtract(data, residuals, out=residuals)
    residuals -= residuals.mean()
    lag0 = np.einsum("tv,tv->v", residuals, residuals) / (n * n)
    lag1 = np.einsum("tv,tv->v", residuals[:-1], residuals[1:]) / ((n - 1) * n)
    rho = np.divide(lag1, lag0, out=np.zeros_like(lag1, dtype=float), where=lag0 > 0)
    return (rho * 100).astype(int) / 100


def whitened_contrasts(data: np.ndarray, regressors: np.ndarray, rho: np.ndarray,
                       vectors: dict[str, np.ndarray]) -> dict:
    """Fit an AR(1)-prewhitened GLM per unit and compute t contrasts, as nilearn's ``ARModel`` does.

    Each unit's data and the design are whitened with the unit's coefficient
    (``x[t] - rho * x[t - 1]``, the first volume kept: ``ARModel.whiten``);
    the units sharing a coefficient share one pseudo-inverse of the whitened
    design, all of them computed in one stacked call, and are fitted together
    (the units are taken in order of their coefficient, so each bin is one
    contiguous product). The residual variance divides by
    ``n_volumes - n_regressors`` and the degrees of freedom are
    ``n_volumes - rank(design)``, as in nilearn. ``rho = 0`` is OLS.

    Parameters
    ----------
    data : ndarray of shape (n_volumes, n_units)
    regressors : ndarray of shape (n_volumes, n_regressors)
    rho : ndarray of shape (n_units,)
        AR(1) coefficients (:func:`ar1_coefficients`), or zeros for OLS.
    vectors : dict of str to ndarray of shape (n_regressors,)
        Contrast weights by name.

    Returns
    -------
    dict of str to nilearn.glm.contrasts.Contrast
    """
    from nilearn.glm.contrasts import Contrast as NilearnContrast

    n, p = regressors.shape
    order = np.argsort(rho, kind="stable")
    values, starts, counts = np.unique(rho[order], return_index=True, return_counts=True)
    designs = np.repeat(regressors[None], len(values), axis=0)
    designs[:, 1:] -= values[:, None, None] * regressors[None, :-1]
    pinvs = _pinv(designs)
    whitened = np.asarray(data[:, order], dtype=float)
    whitened[1:] -= rho[order] * whitened[:-1]  # the product is evaluated before the subtraction
    beta = np.empty((p, data.shape[1]))
    dispersion = np.empty(data.shape[1])
    for k, (start, count) in enumerate(zip(starts, counts)):
        units = slice(start, start + count)
        beta[:, order[units]] = fitted = pinvs[k] @ whitened[:, units]
        residuals = whitened[:, units] - designs[k] @ fitted
        dispersion[order[units]] = np.einsum("tv,tv->v", residuals, residuals) / (n - p)
    index = np.empty(data.shape[1], dtype=int)
    index[order] = np.repeat(np.arange(len(values)), counts)
    covariances = pinvs @ pinvs.transpose(0, 2, 1)
    dof = n - np.linalg.matrix_rank(regressors, tol=np.abs(regressors).sum() * np.finfo(float).eps)
    return {name: NilearnContrast(effect=vector @ beta, variance=(vector @ covariances @ vector)[index] * dispersion,
                                  dim=1, dof=dof, stat_type="t")
            for name, vector in vectors.items()}


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
    z = np.ravel(total.z_score()).astype(float)  # computes t and p on the way (p once, not twice)
    return ContrastMaps(
        effect=np.ravel(total.effect_size()).astype(float),
        variance=np.ravel(total.effect_variance()).astype(float),
        t=np.ravel(total.stat_).astype(float),
        z=z,
        p=np.ravel(total.p_value_).astype(float),
        dof=float(total.dof),
    )
