"""Resamples for the permutation engine: sign flips, permutations within exchangeability blocks.

Random resamples come from ``numpy.random.default_rng(seed)`` and are drawn up front, so the results do
not depend on how the work is split. When every sign flip can be afforded (``2**n_rows <= n_perm``) they
are enumerated instead (exact test, the identity included). Permutations are given as row indices applied
to the design rows; within blocks, rows only move inside their own block (Winkler et al., 2015). Random
permutations are drawn independently (with replacement): with few participants the same rearrangement can
recur, so a paired design is better tested as a one-sample test of the differences, whose sign flips are
enumerated when they are few.

References
----------
Winkler, A. M., Webster, M. A., Vidaurre, D., Nichols, T. E., & Smith, S. M. (2015). Multi-level block
permutation. NeuroImage, 123, 253-268.
"""

from __future__ import annotations

import math
from typing import Literal

import numpy as np

from bidsapp.errors import NoDataError, UsageError

Scheme = Literal["signflip", "permutation"]


def draw_resamples(scheme: Scheme, n_rows: int, n_perm: int, blocks: np.ndarray | None, seed: int,
                   given: np.ndarray | None = None) -> tuple[np.ndarray, bool]:
    """The resamples of one test.

    Parameters
    ----------
    scheme : {"signflip", "permutation"}
    n_rows : int
        Rows of the design (input maps).
    n_perm : int
        Random resamples to draw; sign flips are enumerated instead when ``2**n_rows <= n_perm``.
    blocks : array, shape (n_rows,), optional
        Exchangeability blocks for permutations.
    seed : int
        Seed of ``numpy.random.default_rng``.
    given : array, shape (n_resamples, n_rows), optional
        Resamples to use as they are (checked): +1/-1 signs, or row indices that stay within blocks.

    Returns
    -------
    resamples : numpy.ndarray
        int8 signs or int32 row indices, one resample per row.
    exhaustive : bool
        True when every sign flip was enumerated.
    """
    codes = np.zeros(n_rows, int) if blocks is None else np.unique(np.asarray(blocks), return_inverse=True)[1]
    if given is not None:
        given = np.asarray(given)
        if given.ndim != 2 or given.shape[1] != n_rows:
            raise ValueError(f"resamples must have shape (n_resamples, {n_rows}), got {given.shape}")
        if scheme == "signflip" and not np.isin(given, (-1, 1)).all():
            raise ValueError("sign-flip resamples must be +1 or -1")
        if scheme == "permutation" and not ((np.sort(given, axis=1) == np.arange(n_rows)).all()
                                            and (codes[given] == codes).all()):
            raise ValueError("permutation resamples must permute the row indices within their blocks")
        return given.astype(np.int8 if scheme == "signflip" else np.int32), False
    if n_perm < 1:
        raise UsageError(f"--n-perm {n_perm}: must be a positive number of permutations")
    if scheme == "signflip" and 2**n_rows <= n_perm:
        bits = np.arange(2**n_rows)[:, None] >> np.arange(n_rows) & 1
        return (1 - 2 * bits).astype(np.int8), True
    rng = np.random.default_rng(seed)
    if scheme == "signflip":
        return (1 - 2 * rng.integers(0, 2, size=(n_perm, n_rows))).astype(np.int8), False
    shuffled = np.argsort(rng.random((n_perm, n_rows)) + codes, axis=1)
    indices = np.empty((n_perm, n_rows), np.int32)
    indices[:, np.argsort(codes, kind="stable")] = shuffled
    return indices, False


def check_resolution(n_resamples: int, exhaustive: bool, alpha: float, n_rows: int) -> None:
    """Refuse resamples whose smallest attainable p value is above ``alpha``.

    Raises
    ------
    UsageError
        Too few random permutations (names ``--n-perm`` and the minimum).
    NoDataError
        Too few participants for any sign-flip p value to reach alpha (says how many are needed).
    """
    if exhaustive and 1 / n_resamples > alpha:
        raise NoDataError(f"with {n_rows} maps only {n_resamples} sign flips exist, so no FWE p value can reach "
                          f"--alpha {alpha}: at least {math.ceil(math.log2(1 / alpha))} participants are needed")
    if not exhaustive and 1 / (n_resamples + 1) > alpha:
        raise UsageError(f"--n-perm {n_resamples} is too small for --alpha {alpha} (the smallest p value is "
                         f"1/(n_perm + 1)): use at least {math.ceil(1 / alpha - 1)}, and 5000 or more for "
                         "stable p values")
