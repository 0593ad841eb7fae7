"""Functional connectivity of region time series: pure functions on ``(time, regions)`` arrays.

The measures are those of nilearn's :class:`~nilearn.connectome.ConnectivityMeasure`
with the empirical (maximum-likelihood) covariance,
``ConnectivityMeasure(kind=..., cov_estimator=sklearn.covariance.EmpiricalCovariance())``:
``covariance`` divides by the number of volumes, ``correlation`` equals
:func:`numpy.corrcoef`, and ``partial correlation`` is the negated, normalised
precision matrix (Marrelec et al. 2006, NeuroImage 32:228). No shrinkage is
applied, so a partial correlation needs more volumes than regions.

Fisher's z (``arctanh r``) makes correlations approximately normal for
averaging; its diagonal (``r = 1``) is undefined and set to NaN, written
``n/a`` in TSV files. Within- and between-network means average Fisher z over
pairs of distinct regions (Cole et al. 2014, Neuron 83:238; networks of Ji et
al. 2019, NeuroImage 185:35).
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Literal

import numpy as np
import pandas as pd

Kind = Literal["correlation", "partial correlation", "covariance"]

#: BIDS ``stat-`` label of each measure (BEP017 relationship matrices, as xcp_d names them).
STAT_LABELS = {"correlation": "pearsoncorrelation", "partial correlation": "partialcorrelation",
               "covariance": "covariance"}
#: Largest |r| before Fisher's z, so that z stays finite (|z| <= 8.4).
MAX_ABS_R = 1.0 - 1e-7


def covariance(data: np.ndarray) -> np.ndarray:
    """Empirical covariance of the columns of ``data`` (divided by ``n_volumes``), float64."""
    centred = np.asarray(data, dtype=float) - np.mean(data, axis=0)
    gram = centred.T @ centred
    return (gram + gram.T) / (2 * centred.shape[0])  # exactly symmetric, whatever BLAS routine ran


def pooled_covariance(runs: Sequence[np.ndarray], covariances: Sequence[np.ndarray]) -> np.ndarray:
    """Empirical covariance of the runs concatenated, from each run's own, without concatenating them.

    The concatenation's scatter is the sum of the runs' scatters plus that of
    their means about the grand mean (each weighted by the run's length).

    Parameters
    ----------
    runs : sequence of ndarray of shape (n_volumes_i, n_regions)
    covariances : sequence of ndarray of shape (n_regions, n_regions)
        Each run's :func:`covariance`.

    Returns
    -------
    ndarray of shape (n_regions, n_regions)
        Equal to ``covariance(np.concatenate(runs))`` up to rounding, exactly symmetric.
    """
    counts = np.array([len(run) for run in runs], dtype=float)
    means = np.array([np.mean(run, axis=0) for run in runs])
    deviations = means - counts @ means / counts.sum()
    scatter = sum(n * cov for n, cov in zip(counts, covariances)) + (deviations.T * counts) @ deviations
    return (scatter + scatter.T) / (2 * counts.sum())


def covariance_to_correlation(cov: np.ndarray) -> np.ndarray:
    """Normalise a covariance to a correlation matrix (unit diagonal; NaN for regions without variance)."""
    with np.errstate(divide="ignore", invalid="ignore"):
        scale = 1.0 / np.sqrt(np.diag(cov))
    corr = cov * np.outer(scale, scale)  # symmetric covariances give exactly symmetric correlations
    flat = ~np.isfinite(scale)
    corr[flat, :] = np.nan
    corr[:, flat] = np.nan
    np.fill_diagonal(corr, np.where(flat, np.nan, 1.0))
    return corr


def connectivity_matrix(data: np.ndarray, kind: Kind = "correlation") -> np.ndarray:
    """One connectivity matrix of a run.

    Parameters
    ----------
    data : ndarray of shape (n_volumes, n_regions)
    kind : {"correlation", "partial correlation", "covariance"}

    Returns
    -------
    ndarray of shape (n_regions, n_regions)
        Symmetric, float64. Regions without variance get NaN rows and columns
        (correlations); a partial correlation is all NaN when the covariance
        is singular (fewer volumes than regions, or flat regions).
    """
    return from_covariance(covariance(data), kind, data.shape[0])


def from_covariance(cov: np.ndarray, kind: Kind, n_volumes: int) -> np.ndarray:
    """A connectivity matrix from the empirical covariance of ``n_volumes`` volumes (:func:`connectivity_matrix`)."""
    if kind == "covariance":
        return cov
    if kind == "correlation":
        return covariance_to_correlation(cov)
    if kind == "partial correlation":
        if n_volumes <= cov.shape[0] or np.linalg.matrix_rank(cov) < cov.shape[0]:
            return np.full_like(cov, np.nan)
        partial = -covariance_to_correlation(np.linalg.inv(cov))
        np.fill_diagonal(partial, 1.0)
        return partial
    raise ValueError(f"unknown connectivity kind {kind!r}; use one of {', '.join(STAT_LABELS)}")


def fisher_z(corr: np.ndarray) -> np.ndarray:
    """Fisher's z of a correlation matrix: ``arctanh(r)``, |r| clipped to :data:`MAX_ABS_R`, NaN diagonal."""
    z = np.arctanh(np.clip(corr, -MAX_ABS_R, MAX_ABS_R))
    np.fill_diagonal(z, np.nan)
    return z


def network_means(matrix: np.ndarray, labels: Sequence[str]) -> pd.DataFrame:
    """Mean of a region x region matrix within and between networks.

    Parameters
    ----------
    matrix : ndarray of shape (n_regions, n_regions)
        E.g. Fisher z; NaN entries and the diagonal are left out.
    labels : sequence of str
        The network of each region.

    Returns
    -------
    DataFrame
        Networks x networks (sorted names as index and columns): the mean over
        pairs of distinct regions, one in each network; NaN without any pair.
    """
    labels = np.asarray(labels, dtype=str)
    networks = np.unique(labels)
    onehot = (labels[:, None] == networks[None, :]).astype(float)
    valid = np.isfinite(matrix)
    np.fill_diagonal(valid, False)
    sums = onehot.T @ np.where(valid, matrix, 0.0) @ onehot
    counts = onehot.T @ valid.astype(float) @ onehot
    with np.errstate(invalid="ignore", divide="ignore"):
        means = np.where(counts > 0, sums / counts, np.nan)
    return pd.DataFrame(means, index=pd.Index(networks, name="network"), columns=networks)
