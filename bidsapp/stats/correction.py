"""Height thresholds at ``--alpha``: uncorrected (``fpr``), FDR (Benjamini-Hochberg) and Bonferroni.

Everything works on p values (NaN = not tested: ignored and not counted). A feature survives when its p
value is at or below the threshold's ``p``. The same threshold is also given on the z scale, the scale of
nilearn's ``threshold_stats_img``:

- two-sided tests (the default): pass two-sided p values (``2 * sf(|t|)``); the z threshold applies to
  ``|z|`` and is ``isf(p / 2)``. This is what ``threshold_stats_img(two_sided=True)`` does when it halves
  alpha and thresholds ``|z|``: BH on ``sf(|z|)`` at ``alpha / 2`` is BH on ``2 * sf(|z|)`` at ``alpha``.
- one-sided tests: pass one-sided p values; the z threshold applies to z and is ``isf(p)``.

The p-scale rules are those of statsmodels' ``multipletests`` (``fdr_bh``, ``bonferroni``): reject where
``p <= threshold``. nilearn's FDR uses a strict ``<`` and subtracts 1e-12 from its z threshold; the
surviving sets agree except for p values exactly on the boundary.

References
----------
Benjamini, Y., & Hochberg, Y. (1995). Controlling the false discovery rate: a practical and powerful
approach to multiple testing. Journal of the Royal Statistical Society B, 57(1), 289-300.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Literal

import numpy as np
from scipy import stats

from bidsapp.errors import UsageError

HeightControl = Literal["fpr", "fdr", "bonferroni"]


@dataclass(frozen=True)
class HeightThreshold:
    """A voxel-, parcel- or edge-level threshold.

    Attributes
    ----------
    method : {"fpr", "fdr", "bonferroni"}
    alpha : float
    p : float
        Features with ``p <= self.p`` survive; NaN when none can (FDR with no discovery).
    z : float
        The same threshold on ``|z|`` (two-sided) or z (one-sided); ``inf`` when nothing survives.
    n_tests : int
        Number of finite p values.
    two_sided : bool
    """

    method: HeightControl
    alpha: float
    p: float
    z: float
    n_tests: int
    two_sided: bool

    def mask(self, p_values: np.ndarray) -> np.ndarray:
        """Boolean mask of the features that survive (False where p is NaN)."""
        with np.errstate(invalid="ignore"):
            return np.asarray(p_values) <= self.p


def height_threshold(p_values: np.ndarray, *, method: HeightControl, alpha: float = 0.05,
                     two_sided: bool = True) -> HeightThreshold:
    """The threshold controlling ``method`` at ``alpha``.

    Parameters
    ----------
    p_values : array
        Two-sided p values for two-sided tests, one-sided otherwise (see module docstring).
    method : {"fpr", "fdr", "bonferroni"}
        ``fpr``: uncorrected, ``p <= alpha``. ``fdr``: Benjamini-Hochberg (1995) step-up. ``bonferroni``:
        ``p <= alpha / n_tests``.
    alpha : float, default 0.05
    two_sided : bool, default True
        Only sets the z-scale threshold (``isf(p / 2)`` or ``isf(p)``).

    Raises
    ------
    UsageError
        alpha outside (0, 1) or an unknown method.
    """
    if not 0 < alpha < 1:
        raise UsageError(f"--alpha {alpha}: must be a probability between 0 and 1")
    p_values = np.asarray(p_values, dtype=float).ravel()
    finite = np.sort(p_values[np.isfinite(p_values)])
    n_tests = finite.size
    if method == "fpr":
        threshold = alpha
    elif method == "bonferroni":
        threshold = alpha / n_tests if n_tests else np.nan
    elif method == "fdr":
        passed = np.flatnonzero(finite <= alpha * np.arange(1, n_tests + 1) / n_tests)
        threshold = float(finite[passed[-1]]) if passed.size else np.nan
    else:
        raise UsageError(f"--correction {method!r}: use fpr, fdr or bonferroni")
    if np.isnan(threshold):
        z = np.inf
    else:
        z = float(stats.norm.isf(threshold / 2 if two_sided else threshold))
    return HeightThreshold(method=method, alpha=alpha, p=float(threshold), z=z, n_tests=n_tests,
                           two_sided=two_sided)


def fdr_adjusted(p_values: np.ndarray) -> np.ndarray:
    """Benjamini-Hochberg adjusted p values (q values), as ``multipletests(method="fdr_bh")[1]``; NaN kept."""
    p_values = np.asarray(p_values, dtype=float)
    adjusted = np.full(p_values.shape, np.nan)
    finite = np.isfinite(p_values)
    values = p_values[finite]
    order = np.argsort(values)
    ranked = values[order] * values.size / np.arange(1, values.size + 1)
    monotone = np.minimum(np.minimum.accumulate(ranked[::-1])[::-1], 1.0)
    result = np.empty(values.size)
    result[order] = monotone
    adjusted[finite] = result
    return adjusted


def bonferroni_adjusted(p_values: np.ndarray) -> np.ndarray:
    """Bonferroni adjusted p values, ``min(1, p * n_tests)``, as ``multipletests(method="bonferroni")[1]``."""
    p_values = np.asarray(p_values, dtype=float)
    return np.minimum(p_values * np.isfinite(p_values).sum(), 1.0)
