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
from dataclasses import dataclass, field
from typing import Literal

import numpy as np
import pandas as pd

Kind = Literal["correlation", "partial correlation", "covariance"]

#: BIDS ``stat-`` label of each measure (BEP017 relationship matrices, as xcp_d names them).
STAT_LABELS: dict[Kind, str] = {"correlation": "pearsoncorrelation", "partial correlation": "partialcorrelation",
                                 "covariance": "covariance"}
#: Largest |r| before Fisher's z, so that z stays finite (|z| <= 8.4).
MAX_ABS_R = 1.0 - 1e-7


@dataclass(frozen=True)
class ParcelConnectivity:
    """The connectivity of one run's cleaned parcel series, on every parcel of the atlas.

    Attributes
    ----------
    matrices : dict of str to ndarray of shape (n_parcels, n_parcels)
        By kind; NaN rows and columns for parcels without data.
    fisher_z : ndarray of shape (n_parcels, n_parcels), optional
        Fisher z of the correlation matrix (NaN diagonal), when correlation is one of the kinds.
    networks : DataFrame, optional
        Mean Fisher z within and between networks (:func:`network_means`), when networks are known.
    warnings : dict of str to str
        By kind, why a matrix is all NaN.
    """

    matrices: dict[Kind, np.ndarray]
    fisher_z: np.ndarray | None = None
    networks: pd.DataFrame | None = None
    warnings: dict[Kind, str] = field(default_factory=dict)


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
    scatter = sum(n * cov for n, cov in zip(counts, covariances, strict=True)) + (deviations.T * counts) @ deviations
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


def fisher_z(r: np.ndarray) -> np.ndarray:
    """Fisher's z of correlations (any shape): ``arctanh(r)``, |r| clipped to :data:`MAX_ABS_R`."""
    return np.arctanh(np.clip(r, -MAX_ABS_R, MAX_ABS_R))


def fisher_z_matrix(corr: np.ndarray) -> np.ndarray:
    """Fisher's z of a correlation matrix (:func:`fisher_z`), with a NaN (undefined) diagonal."""
    z = fisher_z(corr)
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
    network_of = np.asarray(labels, dtype=str)
    networks = np.unique(network_of)
    onehot = (network_of[:, None] == networks[None, :]).astype(float)
    valid = np.isfinite(matrix)
    np.fill_diagonal(valid, False)
    sums = onehot.T @ np.where(valid, matrix, 0.0) @ onehot
    counts = onehot.T @ valid.astype(float) @ onehot
    with np.errstate(invalid="ignore", divide="ignore"):
        means = np.where(counts > 0, sums / counts, np.nan)
    return pd.DataFrame(means, index=pd.Index(networks, name="network"), columns=networks)


def parcel_connectivity(cleaned: np.ndarray, valid: np.ndarray, kinds: Sequence[Kind],
                        networks: Sequence[str] | None = None) -> ParcelConnectivity:
    """The connectivity matrices of one run between the parcels with data, placed among all parcels.

    Parameters
    ----------
    cleaned : ndarray of shape (n_volumes, n_parcels)
        Cleaned parcel series (columns of parcels without data are ignored).
    valid : ndarray of bool, shape (n_parcels,)
        The parcels with data.
    kinds : sequence of {"correlation", "partial correlation", "covariance"}
    networks : sequence of str, optional
        Each parcel's network, for within/between-network means of Fisher z.

    Returns
    -------
    ParcelConnectivity
    """
    n_parcels = len(valid)
    matrices: dict[Kind, np.ndarray] = {}
    warnings: dict[Kind, str] = {}
    z = means = None
    for kind in kinds:
        matrix = np.full((n_parcels, n_parcels), np.nan)
        matrix[np.ix_(valid, valid)] = connectivity_matrix(cleaned[:, valid], kind)
        matrices[kind] = matrix
        if kind == "partial correlation" and np.isnan(matrix[np.ix_(valid, valid)]).all():
            warnings[kind] = (f"partial correlation needs more kept volumes ({len(cleaned)}) than parcels with "
                              f"data ({int(valid.sum())}); use an atlas with fewer parcels")
        if kind == "correlation":
            z = fisher_z_matrix(matrix)
            means = network_means(z, networks) if networks else None
    return ParcelConnectivity(matrices, z, means, warnings)
