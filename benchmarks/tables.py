"""Benchmark and cross-check bidsapp.group.cluster_tables against atlasreader 0.3.2.

Each case runs twice in fresh processes: atlasreader's ``get_statmap_info``
(with a small shim so that it imports on current nilearn, setuptools and
pandas) and ``bidsapp.group.cluster_tables.statmap_tables``. The script compares the two
tables cell by cell (numbers exactly, label strings exactly) and prints wall
time and peak RSS of each, with ratios. Cases: atlasreader's own test image
``image_10426.nii.gz`` (the bytes nilearn ships) at its test settings, one
sign at a time, a percentile threshold, every packaged atlas, and two
synthetic maps (a smooth 2 mm MNI-grid field with many clusters and plateaus;
blocks of 19-21 voxels around ``cluster_extent=20``).

Known difference: atlasreader's peak lookup overwrites its cached
probabilistic atlas (see ``undo_peak_side_effect``); where the tables differ
the case is rerun with that undone, and must then be identical.
With ``min_distance`` set the tables differ by design: atlasreader 0.3.2
returns one centroid per cluster, bidsapp true sub-peaks; that case reports
the peak counts only.

Usage: ``python benchmarks/tables.py [--skip-atlasreader]``
(atlasreader needs ~5 GB of RAM per run with the default atlases).
"""

from __future__ import annotations

import argparse
import importlib.util
import json
import pickle
import resource
import subprocess
import sys
import tempfile
import time
import types
import warnings
from pathlib import Path

import nibabel as nib
import numpy as np
from scipy import ndimage

NILEARN_DATA = Path(importlib.util.find_spec("nilearn").submodule_search_locations[0]) / "datasets" / "data"
IMAGE_10426 = NILEARN_DATA / "image_10426.nii.gz"
MNI_2MM = np.array([[-2.0, 0, 0, 90], [0, 2, 0, -126], [0, 0, 2, -72], [0, 0, 0, 1]])
ALL_ATLASES = ["aal", "aicha", "desikan_killiany", "destrieux", "harvard_oxford", "juelich", "marsatlas",
               "neuromorphometrics", "talairach_ba", "talairach_gyrus"]
DEFAULT = ["aal", "desikan_killiany", "harvard_oxford"]


def synthetic_maps(folder: Path) -> dict[str, Path]:
    """Write the synthetic test maps; return their paths by name."""
    rng = np.random.default_rng(0)
    field = ndimage.gaussian_filter(rng.standard_normal((91, 109, 91)), sigma=2.5)
    field = np.clip(field / field.std(), -3.2, 3.2).astype(np.float32)  # clipped: plateau peaks
    blocks = np.zeros((53, 63, 46), np.float32)
    for offset, (size, value) in enumerate([(19, 5.0), (20, 6.0), (21, -5.5), (40, 4.5)]):
        block = np.zeros(60, np.float32)
        block[:size] = value  # the first `size` voxels of a 4x5x3 box, in C order: face-connected
        blocks[8 + 10 * offset: 12 + 10 * offset, 20:25, 20:23] = block.reshape(4, 5, 3)
    paths = {"mni2mm_smooth": folder / "smooth.nii.gz", "extent_blocks": folder / "blocks.nii.gz"}
    nib.save(nib.Nifti1Image(field, MNI_2MM), paths["mni2mm_smooth"])
    nib.save(nib.Nifti1Image(blocks, nib.load(IMAGE_10426).affine), paths["extent_blocks"])
    return paths


def cases(maps: dict[str, Path]) -> list[dict]:
    """The comparison cases: image, settings and atlases."""
    image = str(IMAGE_10426)

    def case(name: str, img: str, voxel_thresh: float, cluster_extent: int, atlas: list[str] = DEFAULT,
             **extra) -> dict:
        return {"name": name, "img": img, "voxel_thresh": voxel_thresh, "cluster_extent": cluster_extent,
                "atlas": atlas, **extra}

    return [
        case("image_10426 (atlasreader test)", image, 4, 20),
        case("image_10426 pos", image, 4, 20, direction="pos"),
        case("image_10426 neg", image, 4, 20, direction="neg"),
        case("image_10426 top 5%", image, -5, 5),
        case("image_10426 other atlases", image, 3, 0, [a for a in ALL_ATLASES if a not in DEFAULT]),
        case("2 mm smooth field", str(maps["mni2mm_smooth"]), 2.3, 10),
        case("blocks around extent 20", str(maps["extent_blocks"]), 4, 20),
        case("image_10426 min_distance=20", image, 4, 20, min_distance=20),
    ]


def shim_atlasreader() -> None:
    """Let atlasreader 0.3.2 import and build its tables on today's stack."""
    import nilearn._utils
    import nilearn.image
    import pandas as pd

    nilearn._utils.check_niimg = nilearn.image.check_niimg  # moved in nilearn 0.12.1
    if importlib.util.find_spec("pkg_resources") is None:  # gone in setuptools >= 82
        def resource_filename(package: str, path: str) -> str:
            return str(Path(importlib.util.find_spec(package).submodule_search_locations[0]) / path)
        sys.modules["pkg_resources"] = types.SimpleNamespace(resource_filename=resource_filename)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        pd.set_option("future.infer_string", False)  # pandas 3: its float columns start as strings


def undo_peak_side_effect(atlasreader) -> None:
    """Make atlasreader's ``read_atlas_peak`` leave the cached atlas as it found it.

    In 0.3.2 it zeroes, in the cached atlas array itself, the probabilities
    below ``prob_thresh`` at each peak it labels (``probs`` is a view), so a
    later cluster's voxel at an earlier peak counts as ``no_label`` when its
    largest probability is below ``prob_thresh``. bidsapp does not copy that.
    """
    original = atlasreader.read_atlas_peak

    def read_atlas_peak(atlastype, coordinate, prob_thresh=5):
        data = atlastype.image.get_fdata()
        voxel = atlasreader.coord_xyz_to_ijk(atlastype.image.affine, coordinate).squeeze()
        voxel = tuple(atlasreader.check_atlas_bounding_box(voxel, data.shape))
        saved = data[voxel].copy()
        try:
            return original(atlastype, coordinate, prob_thresh)
        finally:
            data[voxel] = saved

    atlasreader.read_atlas_peak = read_atlas_peak


def worker(tool: str, case: dict, output: Path) -> None:
    """Make one case's tables with one tool; pickle them with time and peak RSS."""
    kwargs = {"voxel_thresh": case["voxel_thresh"], "cluster_extent": case["cluster_extent"],
                  "direction": case.get("direction", "both"), "min_distance": case.get("min_distance")}
    if tool.startswith("atlasreader"):
        shim_atlasreader()
        from atlasreader import atlasreader

        if tool == "atlasreader-undone":
            undo_peak_side_effect(atlasreader)
        warnings.simplefilter("ignore")
        get_statmap_info = atlasreader.get_statmap_info
        start = time.perf_counter()
        clusters, peaks = get_statmap_info(nib.load(case["img"]), atlas=case["atlas"], **kwargs)
    else:
        from bidsapp.group.cluster_tables import statmap_tables
        start = time.perf_counter()
        clusters, peaks = statmap_tables(case["img"], atlases=case["atlas"], **kwargs)
    seconds = time.perf_counter() - start
    tables = [frame.astype({c: float for c in frame.columns[:6]}) for frame in (clusters, peaks)]
    rss_mb = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
    output.write_bytes(pickle.dumps({"tables": tables, "seconds": seconds, "rss_mb": rss_mb}))


def run(tool: str, case: dict, folder: Path) -> dict:
    """Run ``worker`` in a fresh interpreter and read its result."""
    output = folder / f"{tool}.pkl"
    subprocess.run([sys.executable, __file__, "--worker", tool, json.dumps(case), str(output)], check=True,
                   stdout=subprocess.DEVNULL)
    return pickle.loads(output.read_bytes())


def differences(ours, theirs) -> list[str]:
    """Cells where two (clusters, peaks) pairs differ, as short descriptions."""
    found = []
    for kind, mine, other in zip(("clusters", "peaks"), ours, theirs):
        if mine.shape != other.shape or list(mine.columns) != list(other.columns):
            return [f"{kind}: shape {mine.shape} vs {other.shape}"]
        for column in mine.columns:
            for row, (a, b) in enumerate(zip(mine[column].tolist(), other[column].tolist())):
                if a != b:
                    found.append(f"{kind}[{row}, {column}]: {a!r} vs {b!r}")
    return found


def main(argv: list[str] | None = None) -> int:
    """Run every case, print the comparison and the figures."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--skip-atlasreader", action="store_true")
    parser.add_argument("--worker", nargs=3, help=argparse.SUPPRESS)
    args = parser.parse_args(argv)
    if args.worker:
        worker(args.worker[0], json.loads(args.worker[1]), Path(args.worker[2]))
        return 0
    failures = 0
    with tempfile.TemporaryDirectory() as tmp:
        folder = Path(tmp)
        print(f"{'case':32} {'result':34} {'ours s':>7} {'AR s':>6} {'speed-up':>8} {'ours MB':>8} {'AR MB':>7}"
              f" {'RSS ratio':>9}")
        for case in cases(synthetic_maps(folder)):
            ours = run("bidsapp", case, folder)
            line = f"{case['name']:32} "
            if args.skip_atlasreader:
                print(line + f"{len(ours['tables'][0])} clusters, {len(ours['tables'][1])} peaks".ljust(34)
                      + f" {ours['seconds']:7.2f} {'':6} {'':8} {ours['rss_mb']:8.0f}")
                continue
            theirs = run("atlasreader", case, folder)
            if case.get("min_distance") is not None:
                result = f"peaks: ours {len(ours['tables'][1])}, AR {len(theirs['tables'][1])} (differ)"
                diff = differences((ours["tables"][0],), (theirs["tables"][0],))
            else:
                diff = differences(ours["tables"], theirs["tables"])
                result = f"identical ({len(ours['tables'][0])} clusters)" if not diff else f"{len(diff)} cells differ"
            print(line + f"{result:34} {ours['seconds']:7.2f} {theirs['seconds']:6.2f}"
                  f" {theirs['seconds'] / ours['seconds']:7.1f}x {ours['rss_mb']:8.0f} {theirs['rss_mb']:7.0f}"
                  f" {theirs['rss_mb'] / ours['rss_mb']:8.1f}x")
            for item in diff[:10]:
                print("    " + item)
            if diff and case.get("min_distance") is None:
                diff = differences(ours["tables"], run("atlasreader-undone", case, folder)["tables"])
                print("    atlasreader with its peak-lookup side effect undone: "
                      + ("identical" if not diff else f"{len(diff)} cells differ"))
            failures += bool(diff)
    return 1 if failures else 0


if __name__ == "__main__":
    sys.exit(main())
