"""fMRIPrep-style confounds tables computed from simulated runs.

Three generations of fMRIPrep naming are supported (``naming``):

``"21+"``
    fMRIPrep >= 20.2 (``desc-confounds_timeseries.tsv``): snake_case
    columns with ``_derivative1``/``_power2`` expansions, ``csf_wm``,
    ``tcompcor``, ``rmsd``, ``t/c/w/a_comp_cor_XX`` (each keeping 50 % of
    the variance of its mask), ``cosineXX``,
    ``non_steady_state_outlierXX`` and ``motion_outlierXX``.
``"1.4"``
    fMRIPrep 1.4-20.1 (``desc-confounds_regressors.tsv``): snake_case;
    ``a_comp_cor_XX`` numbers the combined, CSF and WM components in turn
    (the JSON ``Mask`` tells them apart, ``dropped_N`` lists the rest),
    six ``t_comp_cor_XX``; no ``rmsd`` or ``motion_outlierXX``.
``"1.0"``
    fMRIPrep 1.0/1.1 (``*_bold_confounds.tsv``): CamelCase columns
    (``CSF``, ``WhiteMatter``, ``GlobalSignal``, ``stdDVARS``,
    ``non-stdDVARS``, ``vx-wisestdDVARS``, ``FramewiseDisplacement``,
    ``tCompCorXX``, ``aCompCorXX``, ``CosineXX``,
    ``NonSteadyStateOutlierXX``, ``X`` ... ``RotZ``) and no JSON.

Column order and JSON metadata follow the real files shipped with nilearn.
The first row of every derivative, DVARS and FD column is NaN.
"""

from __future__ import annotations

from typing import Any

import numpy as np
import pandas as pd
from scipy import ndimage

from . import truth
from .grid import Grid
from .signals import cosine_basis, framewise_displacement

__all__ = ["NAMINGS", "tissue_masks", "compute_confounds"]

#: Supported ``confounds_naming`` values.
NAMINGS = ("21+", "1.4", "1.0")
_MOTION = ("trans_x", "trans_y", "trans_z", "rot_x", "rot_y", "rot_z")
_MOTION_CAMEL = ("X", "Y", "Z", "RotX", "RotY", "RotZ")


def tissue_masks(grid: Grid) -> dict[str, np.ndarray]:
    """Boolean selections (over in-mask voxels) used for the confounds.

    Parameters
    ----------
    grid : Grid

    Returns
    -------
    dict
        ``"WM"`` (eroded white matter), ``"CSF"`` (deep CSF) and
        ``"combined"`` (their union), each a boolean vector over
        ``grid.mask`` voxels.
    """
    wm = ndimage.binary_erosion(grid.wm > 0.9)
    csf = (grid.csf > 0.7) & ndimage.binary_erosion(grid.mask, iterations=2)
    wm, csf = wm[grid.mask], csf[grid.mask]
    return {"WM": wm, "CSF": csf, "combined": wm | csf}


def _expand(name: str, x: np.ndarray, order: str) -> dict[str, np.ndarray]:
    """A column with its _derivative1 / _power2 expansions."""
    d = np.r_[np.nan, np.diff(x)]
    cols = {
        name: x,
        f"{name}_derivative1": d,
        f"{name}_power2": x**2,
        f"{name}_derivative1_power2": d**2,
    }
    keys = {
        "signal21": ("", "_derivative1", "_derivative1_power2", "_power2"),
        "motion": ("", "_derivative1", "_power2", "_derivative1_power2"),
    }[order]
    return {name + k: cols[name + k] for k in keys}


def _dvars(data: np.ndarray, n_dummy: int):
    """Non-standardised, standardised and voxel-wise standardised DVARS.

    The voxel-wise null standard deviation of the differences comes from
    the steady-state frames (SD and AR(1) coefficient), as in Nichols'
    DVARS standardisation used by fMRIPrep.
    """
    steady = data[:, n_dummy:]
    x = steady - steady.mean(1, keepdims=True)
    sd = np.maximum(x.std(1), 1e-6)
    num = (x[:, 1:] * x[:, :-1]).sum(1)
    den = np.maximum((x**2).sum(1), 1e-12)
    ar1 = np.clip(num / den, -0.99, 0.99)
    diff_sd = np.sqrt(2.0 * (1.0 - ar1)) * sd
    diff = np.diff(data, axis=1)
    dvars = np.sqrt((diff**2).mean(0))
    std = dvars / diff_sd.mean()
    vx = np.sqrt(((diff / diff_sd[:, None]) ** 2).mean(0))
    nan = np.array([np.nan])
    return np.r_[nan, dvars], np.r_[nan, std], np.r_[nan, vx]


def _compcor(data: np.ndarray, n_dummy: int, basis: np.ndarray) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """SVD of high-passed, variance-normalised voxel series.

    Returns components (frames x k, zero in dummy frames), singular values
    and variance-explained fractions of all components.
    """
    y = data[:, n_dummy:].T.astype(float)
    design = np.column_stack([np.ones(y.shape[0]), basis])
    beta, *_ = np.linalg.lstsq(design, y, rcond=None)
    y = y - design @ beta
    y /= np.maximum(y.std(0), 1e-6)
    # left singular vectors from the (frames x frames) Gram matrix: cheap
    evals, u = np.linalg.eigh(y @ y.T)
    order = np.argsort(evals)[::-1]
    evals, u = np.clip(evals[order], 0.0, None), u[:, order]
    u *= np.sign(u[0:1, :] + 1e-12)  # deterministic signs
    s = np.sqrt(evals)
    var = evals / evals.sum()
    comps = np.zeros((data.shape[1], u.shape[1]))
    comps[n_dummy:] = u
    return comps, s, var


def _n_retained(var: np.ndarray, threshold: float = 0.5) -> int:
    """Number of components needed to explain ``threshold`` of the variance."""
    return int(np.searchsorted(np.cumsum(var), threshold) + 1)


def _add_compcor(cols: dict[str, np.ndarray], meta: dict[str, Any], prefix: str, comps: np.ndarray, s: np.ndarray,
                 var: np.ndarray, n_keep: int, method: str, mask: str | None, dropped: list[int] | None) -> None:
    """Add kept components as columns and describe all in the metadata."""
    cum = np.cumsum(var)
    start = sum(1 for k in cols if k.startswith(prefix)) if prefix else 0
    for i in range(comps.shape[1]):
        keep = i < n_keep
        entry = {
            "CumulativeVarianceExplained": float(cum[i]),
            "Method": method,
            "Retained": keep,
            "SingularValue": float(s[i]),
            "VarianceExplained": float(var[i]),
        }
        if mask is not None:
            entry["Mask"] = mask
        if keep:
            name = f"{prefix}{start + i:02d}"
            cols[name] = comps[:, i]
            meta[name] = dict(sorted(entry.items()))
        elif dropped is not None:
            meta[f"dropped_{dropped[0]}"] = dict(sorted(entry.items()))
            dropped[0] += 1


def compute_confounds(
    data: np.ndarray,
    grid: Grid,
    motion: np.ndarray,
    tr: float,
    naming: str = "21+",
    n_dummy: int = truth.N_NON_STEADY_STATE,
) -> tuple[pd.DataFrame, dict | None]:
    """Compute the confounds table of one run.

    Parameters
    ----------
    data : ndarray of shape (n_voxels, n_frames)
        In-mask voxel series of the preprocessed run.
    grid : Grid
    motion : ndarray of shape (n_frames, 6)
        Head motion (mm, radians).
    tr : float
    naming : {"21+", "1.4", "1.0"}, default="21+"
    n_dummy : int
        Leading non-steady-state frames.

    Returns
    -------
    table : DataFrame
        One row per frame; NaN where fMRIPrep writes ``n/a``.
    metadata : dict or None
        Content of the JSON sidecar (``None`` for ``"1.0"``).
    """
    if naming not in NAMINGS:
        raise ValueError(f"confounds_naming must be one of {NAMINGS}, not {naming!r}")
    n = data.shape[1]
    masks = tissue_masks(grid)
    gs = data.mean(0)
    csf = data[masks["CSF"]].mean(0)
    wm = data[masks["WM"]].mean(0)
    dvars, std_dvars, vx_dvars = _dvars(data, n_dummy)
    fd = framewise_displacement(motion, truth.FD_RADIUS_MM)
    dm = np.diff(motion, axis=0)
    rmsd = np.r_[np.nan, np.sqrt((dm[:, :3] ** 2).sum(1) + 80.0**2 / 5 * (dm[:, 3:] ** 2).sum(1))]
    basis = cosine_basis(n - n_dummy, tr)
    cosines = np.zeros((n, basis.shape[1]))
    cosines[n_dummy:] = basis
    nss = np.zeros((n, n_dummy))
    nss[np.arange(n_dummy), np.arange(n_dummy)] = 1.0

    # tCompCor mask: top 2 % temporal variance after high-pass
    resid = data[:, n_dummy:] - data[:, n_dummy:].mean(1, keepdims=True)
    resid = resid - (resid @ basis) @ basis.T
    var = resid.var(1)
    tmask = var >= np.quantile(var, 0.98)
    comp = {k: _compcor(data[m], n_dummy, basis) for k, m in masks.items()}
    tcomp = _compcor(data[tmask], n_dummy, basis)

    cols: dict[str, np.ndarray] = {}
    meta: dict[str, Any] = {}
    if naming == "1.0":
        cols.update(CSF=csf, WhiteMatter=wm, GlobalSignal=gs, stdDVARS=std_dvars)
        cols["non-stdDVARS"] = dvars
        cols["vx-wisestdDVARS"] = vx_dvars
        cols["FramewiseDisplacement"] = fd
        for i in range(6):
            cols[f"tCompCor{i:02d}"] = tcomp[0][:, i]
        for i in range(6):
            cols[f"aCompCor{i:02d}"] = comp["combined"][0][:, i]
        for i in range(cosines.shape[1]):
            cols[f"Cosine{i:02d}"] = cosines[:, i]
        for i in range(n_dummy):
            cols[f"NonSteadyStateOutlier{i:02d}"] = nss[:, i]
        for i, name in enumerate(_MOTION_CAMEL):
            cols[name] = motion[:, i]
        return pd.DataFrame(cols), None

    if naming == "21+":
        for name, x in (("global_signal", gs), ("csf", csf), ("white_matter", wm)):
            cols.update(_expand(name, x, "signal21"))
            meta[name] = {"Method": "Mean"}
        cols["csf_wm"] = data[masks["combined"]].mean(0)
        cols["tcompcor"] = data[tmask].mean(0)
        meta["csf_wm"] = {"Method": "Mean"}
        meta["tcompcor"] = {"Method": "Mean"}
        cols.update(std_dvars=std_dvars, dvars=dvars, framewise_displacement=fd, rmsd=rmsd)
        _add_compcor(cols, meta, "t_comp_cor_", *tcomp, _n_retained(tcomp[2]), "tCompCor", None, None)
        for prefix, mask in (("c_comp_cor_", "CSF"), ("w_comp_cor_", "WM"), ("a_comp_cor_", "combined")):
            c = comp[mask]
            _add_compcor(cols, meta, prefix, *c, _n_retained(c[2]), "aCompCor", mask, None)
    else:  # "1.4"
        cols.update(_expand("csf", csf, "motion"))
        cols.update(_expand("white_matter", wm, "signal21"))
        cols.update(_expand("global_signal", gs, "motion"))
        cols.update(std_dvars=std_dvars, dvars=dvars, framewise_displacement=fd)
        _add_compcor(cols, meta, "t_comp_cor_", *tcomp, 6, "tCompCor", None, None)
        dropped = [0]
        for mask in ("combined", "CSF", "WM"):
            c = comp[mask]
            _add_compcor(cols, meta, "a_comp_cor_", *c, _n_retained(c[2]), "aCompCor", mask, dropped)
    for i in range(cosines.shape[1]):
        cols[f"cosine{i:02d}"] = cosines[:, i]
    for i in range(n_dummy):
        cols[f"non_steady_state_outlier{i:02d}"] = nss[:, i]
    for i, name in enumerate(_MOTION):
        cols.update(_expand(name, motion[:, i], "motion"))
    if naming == "21+":
        bad = (np.nan_to_num(fd) > truth.FD_OUTLIER_THRESHOLD_MM) | (
            np.nan_to_num(std_dvars) > truth.STD_DVARS_OUTLIER_THRESHOLD
        )
        for i, t in enumerate(np.flatnonzero(bad)):
            onehot = np.zeros(n)
            onehot[t] = 1.0
            cols[f"motion_outlier{i:02d}"] = onehot
    return pd.DataFrame(cols), meta
