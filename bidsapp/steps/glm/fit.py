"""Fitting one run's GLM: percent signal change, AR(1) coefficients, prewhitened fit and t contrasts."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import TYPE_CHECKING, Literal

import numpy as np
import pandas as pd

from bidsapp.steps.glm.contrasts import Contrast, contrast_vector, estimable

if TYPE_CHECKING:
    from nilearn.glm.contrasts import Contrast as NilearnContrast

#: Units of a contrast's effect: percent of each unit's mean, or the data's own units (centred data).
EffectUnits = Literal["percent signal change", "data units"]


@dataclass(frozen=True)
class RunContrasts:
    """One run's fitted t contrasts.

    Attributes
    ----------
    run : str
        The run's name (its entities).
    contrasts : dict of str to nilearn.glm.contrasts.Contrast
        By contrast name, those the run's design can estimate.
    units : ndarray of bool, optional
        Where the run's units (the data columns, in C order) lie in the space
        the runs share, e.g. the run's brain mask on the voxel grid or its
        parcels with data; ``None`` when every run has every unit.
    """

    run: str
    contrasts: dict[str, NilearnContrast]
    units: np.ndarray | None = None


def percent_signal_change(data: np.ndarray) -> np.ndarray:
    """Each unit's series in percent of its mean, as ``FirstLevelModel`` scales by default.

    Parameters
    ----------
    data : ndarray of shape (n_volumes, n_units)

    Returns
    -------
    ndarray of shape (n_volumes, n_units)
        ``100 * (data / max(mean, 1) - 1)``, with each unit's mean over the
        volumes given: :func:`nilearn.glm.first_level.mean_scaling`
        (``signal_scaling=0``), same dtype as ``data``.
    """
    from nilearn.glm.first_level import mean_scaling

    return mean_scaling(data)[0]


def effect_units(data: np.ndarray) -> EffectUnits:
    """``"percent signal change"`` for intensity data (median unit mean above 1), else ``"data units"``.

    Centred data (e.g. z-scored parcel series) have no baseline to scale by;
    their effects stay in the data's units.
    """
    return "percent signal change" if np.median(data.mean(axis=0)) > 1 else "data units"


def fit_run(run: str, data: np.ndarray, design: pd.DataFrame, contrasts: Sequence[Contrast], *,
            units: np.ndarray | None = None, noise_model: str = "ar1", sample_mask: np.ndarray | None = None,
            signal_scaling: bool = False, block: int | None = None) -> RunContrasts:
    """Fit one run's GLM and compute the contrasts its design can estimate (:func:`fit_contrasts`).

    Parameters
    ----------
    run : str
        The run's name.
    data, design, noise_model, sample_mask, signal_scaling, block
        As :func:`fit_contrasts`.
    contrasts : sequence of Contrast
        Those naming conditions the design lacks are left out.
    units : ndarray of bool, optional
        See :class:`RunContrasts`.

    Returns
    -------
    RunContrasts
    """
    found = estimable(contrasts, design.columns)
    fitted = fit_contrasts(data, design, found, noise_model=noise_model, sample_mask=sample_mask,
                           signal_scaling=signal_scaling, block=block) if found else {}
    return RunContrasts(run, fitted, units)

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
        (:func:`percent_signal_change`), so that effects are in percent signal change.
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
        return percent_signal_change(chunk) if signal_scaling else chunk

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
    in_order = bool(np.all(order[1:] > order[:-1]))  # fit_contrasts passes the units sorted by rho already
    whitened = np.array(data if in_order else data[:, order], dtype=float)
    whitened[1:] -= rho[order] * whitened[:-1]  # the product is evaluated before the subtraction
    beta = np.empty((p, data.shape[1]))
    dispersion = np.empty(data.shape[1])
    for k, (start, count) in enumerate(zip(starts, counts, strict=True)):
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

