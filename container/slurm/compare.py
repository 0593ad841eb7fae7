"""Compare two bidsapp OUTPUT_DIRs for make slurm-check: same file names, TSV and NIfTI data equal.

Usage: ``python compare.py REFERENCE OTHER``. Logs, reports and JSON files (sidecars and the dataset
description record the command line and times) are left out of the data comparison but not of the names;
a hidden temporary left in OTHER fails the comparison. Prints one line, exits 1 on any difference.
"""

from __future__ import annotations

import sys
from pathlib import Path

import nibabel as nib
import numpy as np
import pandas as pd


def files(root: Path) -> set[Path]:
    """Every file under ``root`` but the logs, relative to it."""
    return {path.relative_to(root) for path in root.rglob("*")
            if path.is_file() and path.relative_to(root).parts[0] != "logs"}


def same_data(one: Path, other: Path) -> bool:
    """TSV tables equal (values and names) and NIfTI data arrays equal, to the bit."""
    if one.name.endswith(".tsv"):
        return pd.read_csv(one, sep="\t").equals(pd.read_csv(other, sep="\t"))
    if one.name.endswith((".nii", ".nii.gz")):
        first, second = nib.load(one), nib.load(other)
        return np.array_equal(first.affine, second.affine) and np.array_equal(
            np.asanyarray(first.dataobj), np.asanyarray(second.dataobj), equal_nan=True)
    return True


def main(reference: Path, other: Path) -> int:
    """Compare; print the result on one line."""
    expected, found = files(reference), files(other)
    if expected != found:
        print(f"file names differ: only in {reference}: {sorted(map(str, expected - found))[:5]}; "
              f"only in {other}: {sorted(map(str, found - expected))[:5]}")
        return 1
    checked = [path for path in sorted(expected) if path.name.endswith((".tsv", ".nii", ".nii.gz"))]
    different = [str(path) for path in checked if not same_data(reference / path, other / path)]
    if different:
        print(f"data differ in {len(different)} of {len(checked)} files, e.g. {different[:3]}")
        return 1
    print(f"same {len(expected)} file names and equal data in {len(checked)} TSV and NIfTI files")
    return 0


if __name__ == "__main__":
    sys.exit(main(Path(sys.argv[1]), Path(sys.argv[2])))
