"""Permutation p values: the counting rule, the resamples that give back the data, the smallest p.

The observed statistic counts as one of the resamples (Phipson & Smyth, 2010). With ``n_perm`` random
resamples a feature's FWE p value is ``(1 + #{null max >= observed}) / (1 + n_perm)``. When every resample
is enumerated (all sign flips, or all permutations within the exchangeability blocks) it is
``#{resamples whose max >= observed} / n_resamples``, the identity included.

Some resamples give back the observed statistic map exactly: the identity, any resample that leaves the
tested and nuisance directions unchanged (swapping two participants of the same group), and for a
two-sided t or an F any resample that negates them (flipping every sign). Their null maximum is the
observed maximum; it is taken from the float64 observed statistic rather than recomputed in float32, where
rounding can put it just below the observed value and leave no resample at or above the strongest feature
(the ``p = 0`` of an exhaustive test). So no p value is below :func:`smallest_p`: ``1 / (1 + n_perm)`` for
random resamples, ``#{reproducing resamples} / n_resamples`` for enumerated ones (``2 / 2**n`` for a
two-sided one-sample test of ``n`` maps, ``1 / 2**n`` one-sided).

References
----------
Phipson, B., & Smyth, G. K. (2010). Permutation p-values should never be zero: calculating exact p-values
when permutations are randomly drawn. Statistical Applications in Genetics and Molecular Biology, 9(1), 39.
"""

from __future__ import annotations

import numpy as np

from bidsapp.stats.resampling import Scheme


def reproducing(resamples: np.ndarray, basis: np.ndarray, scheme: Scheme, symmetric: bool) -> np.ndarray:
    """Which resamples give back the observed statistic map exactly.

    Parameters
    ----------
    resamples : array, shape (n_resamples, n_rows)
        +1/-1 signs (``signflip``) or row indices applied to the design rows (``permutation``).
    basis : array, shape (n_rows, n_directions)
        The tested and resampling-variant nuisance directions (float64).
    scheme : {"signflip", "permutation"}
    symmetric : bool
        The statistic's score is unchanged when every direction is negated (two-sided t, F).

    Returns
    -------
    numpy.ndarray of bool, shape (n_resamples,)
        True where the resampled directions equal the observed ones (or their negation if ``symmetric``).
    """
    tolerance = 1e-9 * max(float(np.abs(basis).max(initial=0.0)), 1e-300)
    if scheme == "signflip":
        unchanged = np.abs(basis).max(axis=1) <= tolerance  # rows that no sign changes
        same = ((resamples == 1) | unchanged).all(axis=1)
        negated = ((resamples == -1) | unchanged).all(axis=1)
    else:
        columns = np.arange(basis.shape[0])
        equal = np.abs(basis[:, None, :] - basis[None, :, :]).max(axis=2) <= tolerance
        opposite = np.abs(basis[:, None, :] + basis[None, :, :]).max(axis=2) <= tolerance
        same = equal[resamples, columns].all(axis=1)
        negated = opposite[resamples, columns].all(axis=1)
    return same | negated if symmetric else same


def smallest_p(n_reproducing: int, n_resamples: int, exhaustive: bool) -> float:
    """The smallest FWE p value the resamples can give.

    Parameters
    ----------
    n_reproducing : int
        Resamples that give back the observed map (:func:`reproducing`), at least the identity when
        ``exhaustive``.
    n_resamples : int
    exhaustive : bool
        Every resample enumerated (else random resamples, with the observed counted once more).
    """
    return max(n_reproducing, 1) / n_resamples if exhaustive else 1 / (n_resamples + 1)


def fwe_p(observed: np.ndarray, null: np.ndarray, exhaustive: bool, dtype: type) -> np.ndarray:
    """FWE p values of observed scores against the null maxima of every resample.

    Ties within the resamples' rounding (``64 * eps`` of ``dtype``, relative) count as exceedances.
    ``(1 + #{null >= observed}) / (1 + n)`` for random resamples, ``#{null >= observed} / n`` for
    enumerated ones (whose null includes the identity's exact maximum).
    """
    tolerance = 64 * np.finfo(dtype).eps * np.maximum(np.abs(observed), 1.0)
    exceed = null.size - np.searchsorted(np.sort(null), observed - tolerance, side="left")
    return exceed / null.size if exhaustive else (1 + exceed) / (null.size + 1)


def p_rule(scheme: Scheme, n_resamples: int, exhaustive: bool, seed: int | None) -> str:
    """The rule of the p values in words, for sidecars and reports."""
    kind = "sign flips" if scheme == "signflip" else "permutations"
    if exhaustive:
        where = " within exchangeability blocks" if scheme == "permutation" else ""
        return (f"#{{resamples >= observed}} / {n_resamples}, the identity included; exact enumeration of the "
                f"{n_resamples} {kind}{where}")
    return (f"(1 + #{{null >= observed}}) / (1 + n_perm); {n_resamples} random {kind}"
            + (f" (seed {seed})" if seed is not None else ""))
