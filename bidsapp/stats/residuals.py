"""The Freedman-Lane model of the permutation engine: the design split by the contrast, normalised residuals.

The contrast splits the design into tested directions and nuisance directions (``Z = X @ null(C)``); the
data are residualised on ``Z`` and normalised to unit norm, so a resample's t or F depends only on the
projections of the residuals on the resampled directions (:func:`statistic`). The residuals are kept in
float32 column chunks for the engine's matrix products (see :mod:`bidsapp.stats.permutation`).
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Literal

import numpy as np
from scipy import linalg

from bidsapp.errors import NoDataError, UsageError
from bidsapp.stats.parametric import contrast_matrix
from bidsapp.stats.resampling import Scheme


@dataclass(frozen=True, eq=False)
class ResidualModel:
    """Normalised residuals in float32 column chunks and the orthonormal tested/nuisance bases."""

    chunks: np.ndarray      # (n_chunks, n_rows, width)
    n_features: int         # valid features, the rest of the last chunk is padding
    basis: np.ndarray       # (n_rows, r + k): tested columns then resampling-variant nuisance columns
    exact_basis: np.ndarray  # the same, float64
    n_tested: int
    dof: int
    stat_type: Literal["t", "F"]
    two_sided: bool


def build_model(data: np.ndarray, design: np.ndarray, contrast: np.ndarray, blocks: np.ndarray | None,
                two_sided: bool, dtype: type) -> tuple[ResidualModel, np.ndarray, Scheme]:
    """Partition the design, residualise and normalise the data; observed statistic in float64."""
    matrix = contrast_matrix(design, contrast)
    n_rows = design.shape[0]
    dof = n_rows - int(np.linalg.matrix_rank(design))
    if dof < 1:
        raise NoDataError(f"the design has {n_rows} maps and rank {n_rows - dof}: at least {n_rows - dof + 1} "
                          "maps are needed")
    is_t = np.ndim(contrast) == 1
    nuisance = _orthonormal(design @ linalg.null_space(matrix))
    tested = np.linalg.pinv(design).T @ matrix.T
    tested -= nuisance @ (nuisance.T @ tested)
    tested = tested / np.linalg.norm(tested) if is_t else _orthonormal(tested)
    constant = np.ptp(design @ matrix.T, axis=0).max() == 0  # the intercept: nothing to permute
    scheme: Scheme = "signflip" if constant else "permutation"
    variant = nuisance if scheme == "signflip" else _variant_part(nuisance, blocks, n_rows)
    if scheme == "permutation" and _variant_part(tested, blocks, n_rows).shape[1] < tested.shape[1]:
        raise UsageError("the tested effect does not change when rows are permuted within their exchangeability "
                         "blocks (it is constant within participants): it cannot be tested by permutation here")
    residuals = np.array(data, dtype=float)  # the one float64 copy, residualised and normalised in place
    scale = np.linalg.norm(residuals, axis=0)
    if nuisance.shape[1]:
        residuals -= nuisance @ (nuisance.T @ residuals)
    norms = np.linalg.norm(residuals, axis=0)
    fitted = norms > 1e-12 * scale  # else constant or exactly fitted: no test
    residuals /= np.where(fitted, norms, 1.0)
    stat = statistic(tested.T @ residuals, np.zeros((0, data.shape[1])), dof, is_t)
    stat[~fitted] = np.nan
    finite = np.isfinite(stat)
    basis = np.hstack([tested, variant])
    model = ResidualModel(chunks=_chunked(residuals if finite.all() else residuals[:, finite], dtype,
                                          2**18 // (64 * basis.shape[1])),
                          n_features=int(finite.sum()), basis=basis.astype(dtype), exact_basis=basis,
                          n_tested=tested.shape[1], dof=dof, stat_type="t" if is_t else "F",
                          two_sided=two_sided and is_t)
    return model, stat, scheme


def _orthonormal(matrix: np.ndarray) -> np.ndarray:
    """Orthonormal basis of the column space (rank-revealing SVD)."""
    if matrix.shape[1] == 0:
        return matrix
    left, singular, _ = np.linalg.svd(matrix, full_matrices=False)
    return left[:, singular > 1e-10 * max(singular.max(), 1e-300)]


def _variant_part(basis: np.ndarray, blocks: np.ndarray | None, n_rows: int) -> np.ndarray:
    """The directions of an orthonormal ``basis`` that within-block permutation changes.

    Directions constant within every block (the intercept; per-participant columns when the blocks are
    participants) are left out: permuting rows within blocks leaves them unchanged.
    """
    if basis.shape[1] == 0:
        return basis
    codes = np.zeros(n_rows, int) if blocks is None else np.unique(blocks, return_inverse=True)[1]
    indicator = np.eye(codes.max() + 1)[codes]
    left, singular, _ = np.linalg.svd(basis.T @ (indicator / np.sqrt(indicator.sum(axis=0))))
    singular = np.concatenate([singular, np.zeros(basis.shape[1] - singular.size)])
    return basis @ left[:, singular < 1 - 1e-8]


def _chunked(values: np.ndarray, dtype: type, width: int) -> np.ndarray:
    """Columns as contiguous (n_chunks, n_rows, width) blocks of ``dtype``, the last one zero-padded."""
    width = int(np.clip(width, 256, max(values.shape[1], 1)))
    n_chunks = max(1, -(-values.shape[1] // width))
    chunks = np.zeros((n_chunks, values.shape[0], width), dtype)
    for index in range(n_chunks):
        part = values[:, index * width:(index + 1) * width]
        chunks[index, :, :part.shape[1]] = part
    return chunks


def statistic(explained: np.ndarray, nuisance: np.ndarray, dof: int, is_t: bool) -> np.ndarray:
    """t or F from projections of unit-norm residuals on the tested and nuisance directions (first axis)."""
    nuisance_ss = np.einsum("k...,k...->...", nuisance, nuisance) if nuisance.shape[0] else 0.0
    with np.errstate(divide="ignore", invalid="ignore"):
        if is_t:
            return explained[0] * np.sqrt(dof / np.maximum(1 - explained[0] ** 2 - nuisance_ss, 0))
        ss = np.einsum("k...,k...->...", explained, explained)
        return ss / explained.shape[0] * dof / np.maximum(1 - ss - nuisance_ss, 0)
