"""A label atlas of the demo's planted resting-state network nodes, with network labels.

It lets the demo show seed 001's workflow end to end: parcel the nodes, compare
the default-mode network's within-network connectivity between groups.
"""

from __future__ import annotations

from pathlib import Path

import nibabel as nib
import numpy as np
import pandas as pd

from bidsapp.demo import truth
from bidsapp.demo.grid import mni_grid, sphere_mask


def write_network_atlas(directory: Path, resolution_mm: float = 4.0) -> Path:
    """Write ``atlas-DemoNetworks_dseg.nii.gz`` and its ``_dseg.tsv`` (index, name, network); return the image path."""
    grid = mni_grid(resolution_mm)
    labels = np.zeros(grid.shape, np.int16)
    rows = []
    nodes = [(network.name, node) for network in truth.REST_NETWORKS for node in network.nodes]
    for index, (network, node) in enumerate(nodes, start=1):
        labels[sphere_mask(grid, node.center_mm, truth.NODE_RADIUS_MM) & grid.mask] = index
        rows.append({"index": index, "name": node.name, "network": network})
    directory.mkdir(parents=True, exist_ok=True)
    image = directory / "atlas-DemoNetworks_dseg.nii.gz"
    nib.save(nib.Nifti1Image(labels, grid.affine), image)
    pd.DataFrame(rows).to_csv(directory / "atlas-DemoNetworks_dseg.tsv", sep="\t", index=False)
    return image
