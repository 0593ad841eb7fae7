"""Resamples for the permutation engine: sign flips, permutations within exchangeability blocks.

Random resamples come from ``numpy.random.default_rng(seed)`` and are drawn up front, so the results do
not depend on how the work is split. When every resample can be afforded they are enumerated instead (exact
test, the identity first): every sign flip when ``2**n_rows <= n_perm``, every permutation within the blocks
when their number (the product of the blocks' factorials, ``n_rows!`` without blocks) is at most ``n_perm``.
Permutations are given as row indices applied to the design rows; within blocks, rows only move inside their
own block (Winkler et al., 2015). Random permutations are drawn independently (with replacement): with few
participants the same rearrangement can recur, so a paired design is better tested as a one-sample test of
the differences, whose sign flips are enumerated when they are few.

References
----------
Winkler, A. M., Webster, M. A., Vidaurre, D., Nichols, T. E., & Smith, S. M. (2015). Multi-level block
permutation. NeuroImage, 123, 253-268.
"""

from __future__ import annotations

import itertools
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
        Random resamples to draw; every resample is enumerated instead when there are at most ``n_perm``.
    blocks : array, shape (n_rows,), optional
        Exchangeability blocks for permutations.
    seed : int
        Seed of ``numpy.random.default_rng``.
    given : array, shape (n_resamples, n_rows), optional
        Resamples to use as they are (checked): +1/-1 signs, or row indices that stay within blocks.

    Returns
    -------
    resamples : numpy.ndarray
        int8 signs or int32 row indices, one resample per row; when enumerated, the identity first.
    exhaustive : bool
        True when every sign flip, or every permutation within blocks, was enumerated.
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
    if scheme == "permutation" and math.prod(math.factorial(size) for size in np.bincount(codes)) <= n_perm:
        return _all_permutations(codes), True
    rng = np.random.default_rng(seed)
    if scheme == "signflip":
        return (1 - 2 * rng.integers(0, 2, size=(n_perm, n_rows))).astype(np.int8), False
    shuffled = np.argsort(rng.random((n_perm, n_rows)) + codes, axis=1)
    indices = np.empty((n_perm, n_rows), np.int32)
    indices[:, np.argsort(codes, kind="stable")] = shuffled
    return indices, False


def _all_permutations(codes: np.ndarray) -> np.ndarray:
    """Every permutation of the rows within their blocks (``codes``), the identity first, as int32 row indices.

    Each block's own permutations are listed once; the resamples are their Cartesian product, built by index
    arithmetic (one pass per block, no loop over resamples).
    """
    members = [np.flatnonzero(codes == code) for code in range(codes.max() + 1)]
    orders = [np.array(list(itertools.permutations(range(len(rows)))), dtype=np.int32) for rows in members]
    choice = np.unravel_index(np.arange(math.prod(len(order) for order in orders)), [len(order) for order in orders])
    indices = np.empty((choice[0].size, codes.size), np.int32)
    for rows, order, chosen in zip(members, orders, choice, strict=True):
        indices[:, rows] = rows[order[chosen]]
    return indices


def check_resolution(least: float, n_resamples: int, exhaustive: bool, alpha: float, scheme: Scheme) -> None:
    """Refuse resamples whose smallest attainable p value is above ``alpha``.

    Parameters
    ----------
    least : float
        The smallest attainable p value (``bidsapp.stats.pvalues.smallest_p``).
    n_resamples : int
    exhaustive : bool
    alpha : float
    scheme : {"signflip", "permutation"}

    Raises
    ------
    UsageError
        Too few random permutations (names ``--n-perm`` and the minimum).
    NoDataError
        Too few participants for any enumerated p value to reach alpha (says how many are needed).
    """
    if least <= alpha:
        return
    if not exhaustive:
        raise UsageError(f"--n-perm {n_resamples} is too small for --alpha {alpha} (the smallest p value is "
                         f"1/(n_perm + 1)): use at least {math.ceil(1 / alpha - 1)}, and 5000 or more for "
                         "stable p values")
    if scheme == "signflip":  # the smallest p is (resamples giving back the data) / 2**n
        needed = math.ceil(math.log2(round(least * n_resamples) / alpha))
        raise NoDataError(f"with {round(math.log2(n_resamples))} maps only {n_resamples} sign flips exist and the "
                          f"smallest FWE p value is {least:.3g}, so none can reach --alpha {alpha}: at least "
                          f"{needed} participants are needed")
    raise NoDataError(f"only {n_resamples} permutations within the exchangeability blocks exist and the smallest "
                      f"FWE p value is {least:.3g}, so none can reach --alpha {alpha}: more participants are needed")
