"""Time courses used by the simulators.

HRF regressors, band-limited latent signals, head motion and framewise
displacement.

All functions are pure: randomness comes from the ``numpy.random.Generator``
passed in.
"""

from __future__ import annotations

import numpy as np
from scipy import stats

__all__ = [
    "glover_hrf",
    "event_regressor",
    "band_limited",
    "orthonormal_band_limited",
    "simulate_motion",
    "framewise_displacement",
    "cosine_basis",
]


def glover_hrf(dt: float, length_s: float = 32.0) -> np.ndarray:
    """Glover (1999) haemodynamic response, as in nilearn's ``glover_hrf``.

    Parameters
    ----------
    dt : float
        Sampling interval in seconds.
    length_s : float, default=32.0
        Kernel length in seconds.

    Returns
    -------
    ndarray
        Kernel normalised to unit sum.
    """
    t = np.linspace(0.0, length_s, int(np.rint(length_s / dt)))
    peak = stats.gamma.pdf(t, 6.0 / 0.9, loc=dt, scale=0.9)
    under = stats.gamma.pdf(t, 12.0 / 0.9, loc=dt, scale=0.9)
    hrf = peak - 0.48 * under
    return hrf / hrf.sum()


def event_regressor(
    onsets, durations, n_frames: int, tr: float, oversampling: int = 20
) -> np.ndarray:
    """Boxcar of events convolved with the Glover HRF, plateau scaled to 1.

    Parameters
    ----------
    onsets, durations : sequence of float
        Event timing in seconds from the first frame.
    n_frames : int
        Number of frames.
    tr : float
        Frame interval in seconds.
    oversampling : int, default=20
        Temporal oversampling of the convolution.

    Returns
    -------
    ndarray of shape (n_frames,)
        Regressor sampled at frame times ``k * tr``; a block long enough to
        reach its plateau peaks at 1.
    """
    dt = tr / oversampling
    n_fine = n_frames * oversampling + int(np.ceil(40.0 / dt))
    t = np.arange(n_fine) * dt
    box = np.zeros(n_fine)
    for onset, duration in zip(onsets, durations, strict=True):
        box[(t >= onset) & (t < onset + max(duration, dt))] = 1.0
    hrf = glover_hrf(dt)
    conv = np.convolve(box, hrf)[:n_fine]
    return conv[: n_frames * oversampling : oversampling]


def band_limited(
    rng: np.random.Generator, n_frames: int, tr: float, n_signals: int, band_hz
) -> np.ndarray:
    """Gaussian noise restricted to a frequency band, unit variance.

    Parameters
    ----------
    rng : numpy.random.Generator
    n_frames : int
    tr : float
    n_signals : int
    band_hz : (float, float)
        Pass band (low, high) in Hz; clipped to Nyquist.

    Returns
    -------
    ndarray of shape (n_frames, n_signals)
        Zero-mean, unit-variance columns.
    """
    n_pad = 2 * n_frames
    freqs = np.fft.rfftfreq(n_pad, d=tr)
    lo, hi = band_hz
    keep = (freqs >= lo) & (freqs <= min(hi, 0.5 / tr))
    spec = rng.normal(size=(freqs.size, n_signals)) + 1j * rng.normal(
        size=(freqs.size, n_signals)
    )
    spec[~keep] = 0.0
    x = np.fft.irfft(spec, n=n_pad, axis=0)[:n_frames]
    x -= x.mean(0)
    x /= x.std(0)
    return x


def orthonormal_band_limited(
    rng: np.random.Generator, n_frames: int, tr: float, n_signals: int, band_hz
) -> np.ndarray:
    """Band-limited signals that are exactly uncorrelated in the sample.

    Linear combinations of band-limited signals stay in the band, so the
    columns are orthogonalised (QR) after centring.

    Parameters
    ----------
    rng : numpy.random.Generator
    n_frames : int
    tr : float
    n_signals : int
        Must not exceed the number of frequency bins in the band.
    band_hz : (float, float)

    Returns
    -------
    ndarray of shape (n_frames, n_signals)
        Zero-mean, unit-variance, mutually uncorrelated columns.
    """
    x = band_limited(rng, n_frames, tr, n_signals, band_hz)
    q, _ = np.linalg.qr(x - x.mean(0))
    q -= q.mean(0)
    return q / q.std(0)


def simulate_motion(
    rng: np.random.Generator, n_frames: int, level: float, spikes=(2, 6)
) -> np.ndarray:
    """Head motion: smooth random walks plus a few sudden movements.

    Parameters
    ----------
    rng : numpy.random.Generator
    n_frames : int
    level : float
        Motion scale (1 is typical); scales the walk and the spike count.
    spikes : (int, int), default=(2, 6)
        Range of the number of sudden movements for ``level`` 1.

    Returns
    -------
    ndarray of shape (n_frames, 6)
        trans_x, trans_y, trans_z in mm and rot_x, rot_y, rot_z in radians,
        relative to the first frame.
    """
    steps = np.empty((n_frames, 6))
    steps[:, :3] = rng.normal(0.0, 0.025 * level, size=(n_frames, 3))
    steps[:, 3:] = rng.normal(0.0, 0.0004 * level, size=(n_frames, 3))
    kernel = np.array([0.25, 0.5, 0.25])
    for j in range(6):
        steps[:, j] = np.convolve(steps[:, j], kernel, mode="same")
    steps[0] = 0.0
    walk = np.cumsum(steps, axis=0)
    lo, hi = spikes
    n_spikes = int(np.clip(np.rint(rng.integers(lo, hi + 1) * level), 1, n_frames // 8))
    where = rng.choice(np.arange(3, n_frames - 1), size=n_spikes, replace=False)
    for t in np.sort(where):
        size = rng.uniform(0.75, 1.6) * max(level, 0.8)
        direction = rng.normal(size=6)
        direction[3:] *= 0.01  # rotations: radians per mm-ish
        direction /= np.abs(direction[:3]).sum() + 50.0 * np.abs(direction[3:]).sum()
        jump = size * direction
        if rng.random() < 0.5:  # transient jerk: back next frame
            walk[t] += jump
        else:  # sustained shift
            walk[t:] += jump
    return walk


def framewise_displacement(motion: np.ndarray, radius_mm: float = 50.0) -> np.ndarray:
    """Framewise displacement of Power et al. (2012).

    Parameters
    ----------
    motion : ndarray of shape (n_frames, 6)
        Translations in mm then rotations in radians.
    radius_mm : float, default=50.0
        Sphere radius turning rotations into arc lengths.

    Returns
    -------
    ndarray of shape (n_frames,)
        NaN for the first frame, as fMRIPrep writes it.
    """
    d = np.abs(np.diff(motion, axis=0))
    fd = d[:, :3].sum(1) + radius_mm * d[:, 3:].sum(1)
    return np.r_[np.nan, fd]


def cosine_basis(n_frames: int, tr: float, period_s: float = 128.0) -> np.ndarray:
    """Discrete cosine drift basis, as fMRIPrep's ``cosineXX`` columns.

    Parameters
    ----------
    n_frames : int
    tr : float
    period_s : float, default=128.0
        Longest period removed (high-pass cut-off 1/period).

    Returns
    -------
    ndarray of shape (n_frames, n_cosines)
        Unit-norm cosines (no constant column).
    """
    order = min(n_frames - 1, int(np.floor(2.0 * n_frames * tr / period_s)))
    k = np.arange(1, order + 1)
    n = np.arange(n_frames)[:, None]
    return np.sqrt(2.0 / n_frames) * np.cos(np.pi / n_frames * (n + 0.5) * k)
