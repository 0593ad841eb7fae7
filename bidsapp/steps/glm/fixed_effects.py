"""Runs combined by fixed effects, as nilearn's ``FirstLevelModel`` combines several runs."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np

from bidsapp.steps.glm.contrasts import Contrast
from bidsapp.steps.glm.fit import RunContrasts


@dataclass(frozen=True)
class ContrastMaps:
    """A t contrast's statistics, one value per unit (voxel or parcel).

    Attributes
    ----------
    effect : ndarray of shape (n_units,)
        Contrast estimate (``c @ beta``), in data units.
    variance : ndarray of shape (n_units,)
        Its variance.
    t : ndarray of shape (n_units,)
        ``effect / sqrt(variance)``.
    z : ndarray of shape (n_units,)
        Standard normal quantile with the same upper-tail probability as ``t``.
    p : ndarray of shape (n_units,)
        One-sided (upper-tail) p-value of ``t``, as nilearn's ``Contrast.p_value``.
    dof : float
        Residual degrees of freedom (summed over runs for fixed effects).
    """

    effect: np.ndarray
    variance: np.ndarray
    t: np.ndarray
    z: np.ndarray
    p: np.ndarray
    dof: float



@dataclass(frozen=True)
class CombinedContrast:
    """A contrast combined over the runs that estimate it.

    Attributes
    ----------
    maps : ContrastMaps
        Its statistics on ``units``.
    runs : tuple of str
        The runs combined.
    units : ndarray of bool, optional
        The units every one of those runs has, in the space the runs share
        (see :class:`~bidsapp.steps.glm.fit.RunContrasts`); ``None`` when
        every run has every unit.
    """

    maps: ContrastMaps
    runs: tuple[str, ...]
    units: np.ndarray | None


def fixed_effects(per_run: Sequence) -> ContrastMaps:
    """Combine one contrast's runs by fixed effects, as ``FirstLevelModel`` does.

    The run contrasts are summed (effects, variances and degrees of freedom
    add) and scaled by ``1 / n_runs``, so ``effect`` is the mean of the run
    effects and ``t = sum(effects) / sqrt(sum(variances))``.

    Parameters
    ----------
    per_run : sequence of nilearn.glm.contrasts.Contrast
        The contrast in each run (at least one).

    Returns
    -------
    ContrastMaps
    """
    if not per_run:
        raise ValueError("fixed effects need at least one run")
    total = per_run[0]
    for contrast in per_run[1:]:
        total = total + contrast
    total = total * (1.0 / len(per_run))
    z = np.ravel(total.z_score()).astype(float)  # computes t and p on the way (p once, not twice)
    return ContrastMaps(
        effect=np.ravel(total.effect_size()).astype(float),
        variance=np.ravel(total.effect_variance()).astype(float),
        t=np.ravel(total.stat_).astype(float),
        z=z,
        p=np.ravel(total.p_value_).astype(float),
        dof=float(total.dof),
    )


def _subset(contrast, index: np.ndarray):
    """A nilearn contrast restricted to some units (voxels or parcels)."""
    from nilearn.glm.contrasts import Contrast as NilearnContrast

    return NilearnContrast(effect=contrast.effect[..., index], variance=contrast.variance[index], dim=contrast.dim,
                           dof=contrast.dof, stat_type=contrast.stat_type)


def combine_runs(runs: Sequence[RunContrasts], contrasts: Sequence[Contrast]) -> dict[str, CombinedContrast]:
    """Combine each contrast by fixed effects over the runs that estimate it.

    Parameters
    ----------
    runs : sequence of RunContrasts
        The runs of one task (and session).
    contrasts : sequence of Contrast

    Returns
    -------
    dict of str to CombinedContrast
        By contrast name, in the order given; contrasts no run estimates are
        absent. With ``units``, each contrast covers the units of every run
        that estimates it.
    """
    combined = {}
    for contrast in contrasts:
        found = [run for run in runs if contrast.name in run.contrasts]
        if not found:
            continue
        unit_masks = [run.units for run in found if run.units is not None]
        units: np.ndarray | None = None
        if len(unit_masks) < len(found):
            per_run = [run.contrasts[contrast.name] for run in found]
        else:
            units = np.logical_and.reduce(unit_masks)
            per_run = [_subset(run.contrasts[contrast.name], np.flatnonzero(units[mask]))
                       for run, mask in zip(found, unit_masks, strict=True)]
        combined[contrast.name] = CombinedContrast(fixed_effects(per_run), tuple(run.run for run in found), units)
    return combined


def combine_maps(effects: Sequence[np.ndarray], variances: Sequence[np.ndarray],
                 dofs: Sequence[float]) -> ContrastMaps:
    """Fixed effects of contrast results already computed (e.g. a participant's sessions).

    The same combination as :func:`fixed_effects` (and nilearn's
    ``compute_fixed_effects`` without precision weighting): the mean effect,
    variance ``sum(variances) / n**2``, degrees of freedom summed.

    Parameters
    ----------
    effects, variances : sequence of ndarray of shape (n_units,)
        Each result's effect and variance, on the same units.
    dofs : sequence of float
        Each result's degrees of freedom.

    Returns
    -------
    ContrastMaps
    """
    from nilearn.glm.contrasts import Contrast as NilearnContrast

    return fixed_effects([NilearnContrast(effect=np.asarray(effect, dtype=float)[np.newaxis, :],
                                          variance=np.asarray(variance, dtype=float), dim=1, dof=float(dof),
                                          stat_type="t")
                          for effect, variance, dof in zip(effects, variances, dofs, strict=True)])
