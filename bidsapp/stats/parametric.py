"""Ordinary least squares on (n_maps, n_features) arrays: t and F contrasts with z and p values.

The model is fitted with the Moore-Penrose pseudo-inverse, so rank-deficient designs (the per-participant
columns of paired and repeated-measures designs) are allowed; only estimable contrasts (combinations of the
design's rows) are accepted. Results match ``scipy.stats`` (``ttest_1samp``, ``ttest_ind``, ``ttest_rel``,
``f_oneway``), statsmodels (``OLS`` t/F tests, ``AnovaRM``) and nilearn's ``SecondLevelModel``.

Features (voxels, parcels, edges) with any non-finite value are not fitted: every result there is NaN, never
zero. Features whose residuals are all zero give infinite or NaN statistics, as scipy does.

z values follow nilearn: ``z = isf(sf(stat))``, using the lower tail where that is more accurate, with the
tail probability clipped to [1e-300, 1 - 1e-16] (so ``|z| <= 37.05``). z is signed like t and does not
depend on ``alternative``; p does.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Literal

import numpy as np
from scipy import stats

from bidsapp.errors import NoDataError, UsageError

Alternative = Literal["two-sided", "greater", "less"]


@dataclass(frozen=True, eq=False)
class OLSFit:
    """A fitted mass-univariate OLS model.

    Attributes
    ----------
    design : numpy.ndarray, shape (n_maps, n_columns)
    beta : numpy.ndarray, shape (n_columns, n_features)
        Minimum-norm parameter estimates (NaN for features not fitted).
    sigma2 : numpy.ndarray, shape (n_features,)
        Residual variance, residual sum of squares over ``dof``.
    dof : int
        Residual degrees of freedom, ``n_maps - rank(design)``.
    valid : numpy.ndarray of bool, shape (n_features,)
        Features with finite data in every map.
    """

    design: np.ndarray
    beta: np.ndarray
    sigma2: np.ndarray
    dof: int
    valid: np.ndarray


@dataclass(frozen=True, eq=False)
class ContrastResult:
    """Maps of one contrast; arrays have shape (n_features,) unless noted.

    Attributes
    ----------
    stat_type : {"t", "F"}
    effect : numpy.ndarray
        Contrast estimate ``C @ beta``; shape (n_rows, n_features) for F.
    variance : numpy.ndarray or None
        Variance of the t effect ``sigma2 * c' pinv(X'X) c``; None for F.
    stat, z, p : numpy.ndarray
        Statistic, signed z value, p value (per ``alternative`` for t; upper tail for F).
    df : tuple of int
        (numerator, denominator) degrees of freedom; numerator 1 for t.
    alternative : {"two-sided", "greater", "less"}
    """

    stat_type: Literal["t", "F"]
    effect: np.ndarray
    variance: np.ndarray | None
    stat: np.ndarray
    z: np.ndarray
    p: np.ndarray
    df: tuple[int, int]
    alternative: Alternative


def fit_ols(data: np.ndarray, design: np.ndarray) -> OLSFit:
    """Fit ``data = design @ beta + error`` independently for every feature.

    Parameters
    ----------
    data : array, shape (n_maps, n_features)
        One row per input map (e.g. a participant's contrast map, masked).
    design : array, shape (n_maps, n_columns)

    Raises
    ------
    NoDataError
        No residual degree of freedom (fewer maps than the design needs).
    """
    data = np.asarray(data, dtype=float)
    design = np.asarray(design, dtype=float)
    if data.ndim != 2 or design.ndim != 2 or data.shape[0] != design.shape[0]:
        raise ValueError(f"data {data.shape} and design {design.shape} need the same number of rows")
    dof = design.shape[0] - int(np.linalg.matrix_rank(design))
    if dof < 1:
        raise NoDataError(f"the design has {design.shape[0]} maps and rank {design.shape[0] - dof}: "
                          f"at least {design.shape[0] - dof + 1} maps are needed to estimate the error")
    valid = np.isfinite(data).all(axis=0)
    beta = np.full((design.shape[1], data.shape[1]), np.nan)
    sigma2 = np.full(data.shape[1], np.nan)
    fitted = data[:, valid]
    beta_valid = np.linalg.pinv(design) @ fitted
    residuals = fitted - design @ beta_valid
    beta[:, valid] = beta_valid
    sigma2[valid] = np.einsum("ij,ij->j", residuals, residuals) / dof
    return OLSFit(design=design, beta=beta, sigma2=sigma2, dof=dof, valid=valid)


def contrast_matrix(design: np.ndarray, contrast: np.ndarray, name: str = "contrast") -> np.ndarray:
    """The contrast as a 2-D (n_rows, n_columns) matrix, checked for size and estimability.

    Raises
    ------
    UsageError
        Wrong number of weights, or a contrast that is not a combination of the design's rows (for
        example a single condition's mean in a design with per-participant columns).
    """
    design = np.asarray(design, dtype=float)
    matrix = np.atleast_2d(np.asarray(contrast, dtype=float))
    if matrix.ndim != 2 or matrix.shape[1] != design.shape[1]:
        raise UsageError(f"contrast {name!r} has {matrix.shape[-1]} weights for {design.shape[1]} design columns")
    if not np.any(matrix):
        raise UsageError(f"contrast {name!r} is all zeros")
    residual = matrix - matrix @ np.linalg.pinv(design) @ design
    if np.abs(residual).max() > 1e-8 * max(1.0, np.abs(matrix).max()):
        raise UsageError(f"contrast {name!r} is not estimable with this design: use differences between "
                         "columns that the design can separate (e.g. conditions, not one condition's mean, "
                         "when every participant has a column)")
    return matrix


def compute_contrast(fit: OLSFit, contrast: np.ndarray, *, alternative: Alternative = "two-sided",
                     name: str = "contrast") -> ContrastResult:
    """t (1-D contrast) or F (2-D contrast) statistic with z and p maps.

    Parameters
    ----------
    fit : OLSFit
    contrast : array, shape (n_columns,) or (n_rows, n_columns)
        A vector gives a t test, a matrix an F test of all its rows (redundant rows are allowed; the
        numerator degrees of freedom are the rank).
    alternative : {"two-sided", "greater", "less"}, default "two-sided"
        Tail of the t test's p value, as in ``scipy.stats.ttest_1samp``. Ignored for F (upper tail).
    name : str
        Used in error messages.
    """
    if alternative not in ("two-sided", "greater", "less"):
        raise UsageError(f"alternative {alternative!r}: use two-sided, greater or less")
    matrix = contrast_matrix(fit.design, contrast, name)
    xtx_pinv = np.linalg.pinv(fit.design.T @ fit.design)
    effect = matrix @ fit.beta
    with np.errstate(divide="ignore", invalid="ignore"):
        if np.ndim(contrast) == 1:
            variance = fit.sigma2 * float(matrix[0] @ xtx_pinv @ matrix[0])
            stat = effect[0] / np.sqrt(variance)
            return ContrastResult(stat_type="t", effect=effect[0], variance=variance, stat=stat,
                                  z=t_to_z(stat, fit.dof), p=t_p_value(stat, fit.dof, alternative),
                                  df=(1, fit.dof), alternative=alternative)
        eigenvalues, eigenvectors = np.linalg.eigh(matrix @ xtx_pinv @ matrix.T)
        keep = eigenvalues > 1e-10 * eigenvalues.max()
        whitened = (eigenvectors[:, keep] / np.sqrt(eigenvalues[keep])).T @ effect
        rank = int(keep.sum())
        stat = np.einsum("ij,ij->j", whitened, whitened) / (rank * fit.sigma2)
    return ContrastResult(stat_type="F", effect=effect, variance=None, stat=stat, z=f_to_z(stat, rank, fit.dof),
                          p=stats.f.sf(stat, rank, fit.dof), df=(rank, fit.dof), alternative="two-sided")


def t_p_value(t: np.ndarray, dof: float, alternative: Alternative = "two-sided") -> np.ndarray:
    """p value of t statistics with ``dof`` degrees of freedom, as scipy's t-tests report it."""
    if alternative == "greater":
        return stats.t.sf(t, dof)
    if alternative == "less":
        return stats.t.cdf(t, dof)
    return 2.0 * stats.t.sf(np.abs(t), dof)


def t_to_z(t: np.ndarray, dof: float) -> np.ndarray:
    """Signed z values with the same upper-tail probability as ``t`` (nilearn's convention)."""
    return _z_from_tails(stats.t.sf(t, dof), stats.t.cdf(t, dof))


def f_to_z(f: np.ndarray, df_num: float, df_den: float) -> np.ndarray:
    """z values with the same upper-tail probability as ``f`` (nilearn's convention)."""
    return _z_from_tails(stats.f.sf(f, df_num, df_den), stats.f.cdf(f, df_num, df_den))


def _z_from_tails(upper: np.ndarray, lower: np.ndarray) -> np.ndarray:
    """``isf(upper)``, or ``ppf(lower)`` where z is negative (accurate far in the lower tail)."""
    z_upper = stats.norm.isf(np.clip(upper, 1e-300, 1 - 1e-16))
    z_lower = stats.norm.ppf(np.clip(lower, 1e-300, 1 - 1e-16))
    return np.where(z_upper < 0, z_lower, z_upper)
