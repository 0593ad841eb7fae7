"""The embedded demo dataset of bidsapp, simulated on the fly.

:func:`make_demo` writes, under one root directory:

``bids/``
    a raw BIDS dataset (resting state + block-design motor task, two
    groups) that passes the BIDS validator, with fMRIPrep-style
    derivatives in ``bids/derivatives/fmriprep``;
``hcp/``
    HCP-style Glasser-360 parcel time series in the HCP course layout;
``hcp_bids/``
    the same HCP simulation in a BIDS-like parcellated form.

Everything is deterministic for a given seed, needs no network, and the
planted effects are listed in :mod:`bidsapp.demo.truth`.  The lower-level
writers are re-exported here.
"""

from __future__ import annotations

from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from pathlib import Path

from . import truth
from .atlas import write_network_atlas
from .fmriprep import derivative_paths, write_fmriprep_dataset
from .hcp import hcp_bids_stem, write_hcp_bids_dataset, write_hcp_course_dataset, write_hcp_datasets

__all__ = [
    "DemoDataset",
    "make_demo",
    "write_fmriprep_dataset",
    "write_hcp_course_dataset",
    "write_hcp_bids_dataset",
    "write_hcp_datasets",
    "derivative_paths",
    "hcp_bids_stem",
    "truth",
]


@dataclass(frozen=True)
class DemoDataset:
    """Paths of a demo dataset made by :func:`make_demo`.

    Attributes
    ----------
    root : Path
        The directory given to :func:`make_demo`.
    bids_dir : Path
        Raw BIDS dataset (``root/bids``).
    fmriprep_dir : Path
        fMRIPrep derivatives (``root/bids/derivatives/fmriprep``).
    hcp_dir : Path
        HCP course layout (``root/hcp``).
    hcp_bids_dir : Path
        BIDS-style parcellated HCP data (``root/hcp_bids``).
    network_atlas : Path
        Label atlas of the planted network nodes with a network column
        (``root/atlas/atlas-DemoNetworks_dseg.nii.gz``).
    """

    root: Path
    bids_dir: Path
    fmriprep_dir: Path
    hcp_dir: Path
    hcp_bids_dir: Path
    network_atlas: Path


def make_demo(root, n_participants: int = 8, seed: int = 0) -> DemoDataset:
    """Build the whole demo dataset.

    Parameters
    ----------
    root : str or Path
        Output directory (created; existing demo files are overwritten).
    n_participants : int, default=8
        Participants of the voxel-wise dataset and subjects of the HCP
        datasets; groups alternate control, patient.
    seed : int, default=0
        Seed of every random stream.

    Returns
    -------
    DemoDataset
    """
    if int(n_participants) < 1:
        raise ValueError("n_participants must be at least 1")
    root = Path(root)
    bids_dir = root / "bids"
    n = int(n_participants)
    # The HCP writer is mostly Python (GIL-bound); the voxel-wise writer is
    # mostly numpy/zlib (GIL released): running them side by side saves time.
    with ThreadPoolExecutor(max_workers=1) as pool:
        hcp_dir, hcp_bids_dir = root / "hcp", root / "hcp_bids"
        hcp = pool.submit(write_hcp_datasets, hcp_dir, hcp_bids_dir, subjects=n, seed=seed)
        fmriprep_dir = write_fmriprep_dataset(bids_dir, participants=n, seed=seed)
        hcp.result()
    return DemoDataset(
        root=root,
        bids_dir=bids_dir,
        fmriprep_dir=fmriprep_dir,
        hcp_dir=hcp_dir,
        hcp_bids_dir=hcp_bids_dir,
        network_atlas=write_network_atlas(root / "atlas"),
    )
