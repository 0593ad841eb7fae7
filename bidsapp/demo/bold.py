"""Voxel-wise BOLD simulation of one run in MNI space.

The signal of an in-mask voxel ``v`` at frame ``t`` is::

    B(v) * (1 + drift + network/100 + task/100 + physio) * (1 - spin(t))
        + motion artefact + AR(1) thermal noise

and the first :data:`~bidsapp.demo.truth.N_NON_STEADY_STATE` frames are
multiplied by :data:`~bidsapp.demo.truth.NON_STEADY_STATE_GAIN`.

* ``B`` is a smooth, tissue-dependent baseline averaging
  :data:`~bidsapp.demo.truth.BASELINE`.
* ``drift`` is a slow polynomial drift of about 1 %.
* ``network`` carries the latent resting-state network signals in the node
  spheres of :data:`~bidsapp.demo.truth.REST_NETWORKS`.
* ``task`` is the HRF-convolved block regressor times the Gaussian blobs of
  :data:`~bidsapp.demo.truth.TASK_BLOBS`.
* ``physio`` is cardiac/respiratory-like noise, strongest in CSF, that
  CompCor captures.
* the motion artefact is the residual partial-volume effect of head motion
  (baseline gradient times displacement) plus a spin-history drop in frames
  of sudden movement, so regressing the motion parameters and censoring
  high-FD frames genuinely helps.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import pandas as pd
from scipy import ndimage

from . import truth
from .grid import Grid, gaussian_blob, sphere_mask
from .signals import (
    band_limited,
    event_regressor,
    framewise_displacement,
    orthonormal_band_limited,
    simulate_motion,
)

__all__ = ["RunSimulation", "baseline_image", "simulate_run"]

#: Fraction of the rigid-body displacement left after motion correction.
_RESIDUAL_MOTION = 0.3
#: Intensity drop (fraction per mm of framewise displacement above 0.3 mm).
_SPIN_HISTORY_PER_MM = 0.03


@dataclass(frozen=True, eq=False)
class RunSimulation:
    """One simulated run.

    Attributes
    ----------
    data : ndarray of shape (n_voxels, n_frames), float32
        In-mask voxel time series (``grid.mask`` order).
    motion : ndarray of shape (n_frames, 6)
        Head motion parameters (mm, radians).
    tr : float
        Repetition time in seconds.
    """

    data: np.ndarray
    motion: np.ndarray
    tr: float

    def to_volume(self, grid: Grid, quantum: float | None = None) -> np.ndarray:
        """Return the run as a 4D float32 array (zeros outside the mask).

        Parameters
        ----------
        grid : Grid
        quantum : float, optional
            Round the values to multiples of this.

        Returns
        -------
        ndarray of shape (*grid.shape, n_frames), Fortran order
        """
        data = self.data
        if quantum:
            data = np.round(data / np.float32(quantum)) * np.float32(quantum)
        vol = np.zeros((*grid.shape, data.shape[1]), dtype=np.float32, order="F")
        vol[grid.mask] = data
        return vol


def baseline_image(grid: Grid) -> np.ndarray:
    """Smooth T2*-like baseline intensity, zero outside the mask.

    Parameters
    ----------
    grid : Grid

    Returns
    -------
    ndarray of shape ``grid.shape``
        Mean over the mask equals :data:`~bidsapp.demo.truth.BASELINE`.
    """
    xyz = grid.coords_mm()
    tissue = 0.96 + 0.04 * grid.gm - 0.04 * grid.wm + 0.12 * grid.csf
    bias = 1.0 + 0.03 * xyz[..., 2] / 100.0 - 0.02 * xyz[..., 1] / 100.0
    img = ndimage.gaussian_filter(tissue * bias, 0.7) * grid.mask
    return img * (truth.BASELINE / img[grid.mask].mean())


def _smooth_field(rng: np.random.Generator, grid: Grid, sigma_mm: float) -> np.ndarray:
    """Unit-variance smooth random field on the mask voxels."""
    field = ndimage.gaussian_filter(rng.normal(size=grid.shape), sigma_mm / grid.resolution)
    vals = field[grid.mask]
    return (vals - vals.mean()) / vals.std()


def _network_component(grid, rng, n_frames, tr, group) -> np.ndarray:
    """Node signals sharing one latent per network (percent of baseline)."""
    nets = truth.REST_NETWORKS
    n_nodes = sum(len(n.nodes) for n in nets)
    latent = orthonormal_band_limited(
        rng, n_frames, tr, len(nets) + n_nodes, truth.NETWORK_BAND_HZ
    )
    corr = (
        truth.PATIENT_WITHIN_NETWORK_CORRELATION
        if group == "patient"
        else truth.WITHIN_NETWORK_CORRELATION
    )
    out = np.zeros((int(grid.mask.sum()), n_frames))
    k = len(nets)
    for i, net in enumerate(nets):
        r = corr[net.name]
        for node in net.nodes:
            sig = np.sqrt(r) * latent[:, i] + np.sqrt(1.0 - r) * latent[:, k]
            k += 1
            sel = sphere_mask(grid, node.center_mm, truth.NODE_RADIUS_MM)[grid.mask]
            out[sel] += truth.NETWORK_SIGNAL_PERCENT * sig
    return out


def _task_component(grid, events: pd.DataFrame, n_frames, tr) -> np.ndarray:
    """Blob activations times HRF-convolved condition regressors (percent)."""
    out = np.zeros((int(grid.mask.sum()), n_frames))
    regs = {}
    for cond, ev in events.groupby("trial_type"):
        regs[cond] = event_regressor(ev["onset"], ev["duration"], n_frames, tr)
    for blob in truth.TASK_BLOBS:
        course = sum((regs[c] for c in blob.conditions if c in regs), np.zeros(n_frames))
        if not np.any(course):
            continue
        profile = gaussian_blob(grid, blob.center_mm, blob.fwhm_mm)[grid.mask]
        out += blob.percent_signal_change * profile[:, None] * course[None, :]
    return out


def _motion_artefact(grid, base: np.ndarray, motion: np.ndarray) -> np.ndarray:
    """Residual partial-volume effect of rigid motion (intensity units)."""
    grads = np.gradient(base, grid.resolution)
    g = np.stack([gr[grid.mask] for gr in grads], axis=1)  # (V, 3)
    r = grid.coords_mm()[grid.mask] - np.array([0.0, -18.0, 18.0])  # (V, 3)
    m = motion - np.median(motion, axis=0)
    trans, rot = m[:, :3], m[:, 3:]
    # displacement d(v, t) = trans(t) + rot(t) x r(v); artefact = -grad . d
    art = -(g @ trans.T)
    cross = np.cross(r, g)  # (rot x r) . g == rot . (r x g)
    art -= cross @ rot.T
    return _RESIDUAL_MOTION * art


def simulate_run(
    grid: Grid,
    *,
    n_frames: int,
    tr: float,
    rng: np.random.Generator,
    events: pd.DataFrame | None = None,
    group: str = "control",
    motion_level: float = 1.0,
) -> RunSimulation:
    """Simulate one BOLD run on the MNI grid.

    Parameters
    ----------
    grid : Grid
    n_frames : int
        Number of volumes.
    tr : float
        Repetition time in seconds.
    rng : numpy.random.Generator
        Source of all randomness of this run.
    events : DataFrame, optional
        BIDS events (onset, duration, trial_type); ``None`` for rest.
    group : {"control", "patient"}, default="control"
        Sets the default-mode coupling.
    motion_level : float, default=1.0
        Motion scale of the participant.

    Returns
    -------
    RunSimulation
    """
    base_img = baseline_image(grid)
    base = base_img[grid.mask][:, None]
    n_vox = base.shape[0]
    motion = simulate_motion(rng, n_frames, motion_level, truth.MOTION_SPIKES_PER_RUN)

    # slow drift: per-run Legendre-like polynomial, voxel-wise scaled
    t = np.linspace(-1.0, 1.0, n_frames)
    coefs = rng.normal(0.0, 0.01, size=2)
    drift_t = coefs[0] * t + coefs[1] * (1.5 * t**2 - 0.5)
    drift = (0.6 + 0.8 * rng.random(n_vox))[:, None] * drift_t[None, :]

    # physiological noise, strongest in CSF (a CompCor target)
    physio_t = band_limited(rng, n_frames, tr, 3, (0.05, 0.25))
    weight = (1.0 * grid.csf + 0.1 * grid.gm + 0.05 * grid.wm)[grid.mask]
    maps = np.stack(
        [np.ones(n_vox)] + [_smooth_field(rng, grid, 20.0) for _ in range(2)], axis=1
    )
    physio = (weight[:, None] * maps) @ physio_t.T / 100.0

    percent = _network_component(grid, rng, n_frames, tr, group)
    if events is not None and len(events):
        percent += _task_component(grid, events, n_frames, tr)

    fd = np.nan_to_num(framewise_displacement(motion, truth.FD_RADIUS_MM))
    spin = _SPIN_HISTORY_PER_MM * np.clip(fd - 0.3, 0.0, None)

    data = base * (1.0 + drift + percent / 100.0 + physio) * (1.0 - spin)[None, :]
    data += _motion_artefact(grid, base_img, motion)

    # AR(1) thermal/neural noise
    sd = truth.THERMAL_NOISE_PERCENT / 100.0 * base[:, 0]
    eps = rng.normal(size=(n_vox, n_frames)) * sd[:, None]
    for i in range(1, n_frames):
        eps[:, i] += 0.3 * eps[:, i - 1]
    data += eps * np.sqrt(1.0 - 0.3**2)

    gains = np.ones(n_frames)
    gains[: len(truth.NON_STEADY_STATE_GAIN)] = truth.NON_STEADY_STATE_GAIN
    data *= gains[None, :]
    return RunSimulation(data=data.astype(np.float32), motion=motion, tr=float(tr))
