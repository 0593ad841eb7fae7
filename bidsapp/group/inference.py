"""Group-level inference on stacked participant maps: parametric maps, then every requested correction.

Pure functions on arrays: the rows of ``data`` are participants' maps (masked
voxels, parcels or edges), the design comes from :func:`bidsapp.stats.design.group_design`.
"""

from __future__ import annotations

import logging
from collections.abc import Mapping
from dataclasses import dataclass, field

import numpy as np

from bidsapp.config import GroupAnalysis
from bidsapp.errors import NoDataError
from bidsapp.stats.correction import HeightControl, height_threshold
from bidsapp.stats.design import GroupDesign
from bidsapp.stats.parametric import ContrastResult, compute_contrast, fit_ols
from bidsapp.stats.permutation import PermutationResult, permutation_test

LOGGER = logging.getLogger(__name__)

PARAMETRIC: tuple[HeightControl, ...] = ("fpr", "fdr", "bonferroni")
SPATIAL = ("cluster", "tfce")


@dataclass(frozen=True, eq=False)
class Correction:
    """What survives one correction.

    Attributes
    ----------
    name : str
        ``fpr``, ``fdr``, ``bonferroni``, ``fwe``, ``clustersize``, ``clustermass`` or ``tfce``.
    survives : ndarray of bool
        Features that survive at alpha.
    p : ndarray, optional
        Corrected p values (FWE), or None for threshold-based corrections.
    threshold : float, optional
        The uncorrected p threshold of fpr, FDR or Bonferroni (NaN when nothing survives).
    """

    name: str
    survives: np.ndarray
    p: np.ndarray | None = None
    threshold: float | None = None


@dataclass(frozen=True, eq=False)
class ContrastInference:
    """One group contrast: its parametric maps and every correction."""

    name: str
    result: ContrastResult
    corrections: list[Correction] = field(default_factory=list)
    permutation: PermutationResult | None = None
    tfce: np.ndarray | None = None


def infer(data: np.ndarray, design: GroupDesign, settings: GroupAnalysis, *,
          mask: np.ndarray | None = None) -> list[ContrastInference]:
    """Fit the design, then test each of its contrasts with every requested correction.

    A contrast the design marks one-sided (``design.alternatives``) gets one-sided p values, and every
    correction (height thresholds, max-T, cluster and TFCE permutations) counts only effects in its direction.

    Parameters
    ----------
    data : ndarray, shape (n_maps, n_features)
    design : GroupDesign
    settings : GroupAnalysis
        ``corrections``, ``alpha``, ``height_threshold``, ``n_perm``, ``random_seed``.
    mask : 3-D bool array, optional
        The voxel mask of ``data``'s features; cluster and TFCE corrections need it
        and are left out without it (parcels and edges).

    Returns
    -------
    list of ContrastInference
    """
    matrix = design.matrix.to_numpy(float)
    fit = fit_ols(data, matrix)
    inferences = []
    for name, contrast in design.contrasts.items():
        alternative = design.alternatives.get(name, "two-sided")
        result = compute_contrast(fit, contrast, alternative=alternative, name=name)
        corrections = [Correction(method, *_height(result, method, settings.alpha))
                       for method in settings.corrections if method in PARAMETRIC]
        permutation = None
        wants_spatial = mask is not None and any(method in SPATIAL for method in settings.corrections)
        if "fwe" in settings.corrections or wants_spatial:
            try:
                permutation = permutation_test(
                    data, matrix, contrast, n_perm=settings.n_perm, alpha=settings.alpha, blocks=design.blocks,
                    alternative=result.alternative,
                    mask=mask if wants_spatial else None,
                    height_threshold=settings.height_threshold if "cluster" in settings.corrections and wants_spatial
                    else None,
                    with_tfce="tfce" in settings.corrections and wants_spatial, random_state=settings.random_seed)
            except NoDataError as error:  # too few resamples exist: the parametric results still stand
                LOGGER.warning("%s: permutation corrections left out: %s", name, error)
            else:
                corrections += _permutation_corrections(permutation, settings)
        inferences.append(ContrastInference(name, result, corrections, permutation,
                                            permutation.tfce if permutation is not None else None))
    return inferences


def _height(result: ContrastResult, method: HeightControl, alpha: float) -> tuple[np.ndarray, None, float]:
    """Survivors and the p threshold; one-sided t contrasts are thresholded on their one-sided p."""
    threshold = height_threshold(result.p, method=method, alpha=alpha,
                                 two_sided=result.alternative == "two-sided")
    return threshold.mask(result.p), None, threshold.p


def _permutation_corrections(result: PermutationResult, settings: GroupAnalysis) -> list[Correction]:
    alpha = settings.alpha
    found = []
    if "fwe" in settings.corrections:
        found.append(Correction("fwe", _below(result.p_fwe, alpha), result.p_fwe))
    if result.p_fwe_size is not None and result.p_fwe_mass is not None:  # set together, by the cluster inference
        found.append(Correction("clustersize", _below(result.p_fwe_size, alpha), result.p_fwe_size))
        found.append(Correction("clustermass", _below(result.p_fwe_mass, alpha), result.p_fwe_mass))
    if result.p_fwe_tfce is not None:
        found.append(Correction("tfce", _below(result.p_fwe_tfce, alpha), result.p_fwe_tfce))
    return found


def _below(p: np.ndarray, alpha: float) -> np.ndarray:
    with np.errstate(invalid="ignore"):
        return np.asarray(p) <= alpha


def summary(inference: ContrastInference) -> Mapping[str, int]:
    """Number of surviving features per correction."""
    return {correction.name: int(np.sum(correction.survives)) for correction in inference.corrections}
