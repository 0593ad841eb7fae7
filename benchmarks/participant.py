"""Benchmark: bidsapp's participant level against the nilearn chain a user would write.

One fMRIPrep-style run of 97 x 115 x 97 voxels x 200 volumes (float32
``.nii.gz``, MNI152NLin2009cAsym 2 mm grid, a two-condition block task) is
synthesised on the fly with :mod:`bidsapp.demo`, with a synthetic 400-parcel
atlas (7 networks) and one seed. Then, each in its own process (so that peak
memory is measured with :func:`resource.getrusage` in isolation):

* ``decompress``: reading the file into a float32 array with nibabel (the floor);
* ``bidsapp``: ``bidsapp BIDS_DIR OUT participant`` (discovery, denoising with
  the ``simple`` strategy, parcel time series, correlation matrix, seed maps,
  first-level GLM on voxels and parcels, sidecars and the HTML report);
* ``nilearn``: the seed notebooks' chain on the same data: ``load_confounds_strategy``,
  ``NiftiLabelsMasker`` + ``ConnectivityMeasure``, ``NiftiSpheresMasker`` +
  ``NiftiMasker`` for the seed map, and ``FirstLevelModel`` with the same
  contrasts, each loading the file, writing the same kinds of outputs.

Usage: ``python benchmarks/participant.py [--keep DIR]``. Prints the wall and
CPU times (CPU: every thread of the process, which a shared machine inflates
less than wall time), the speed-up, peak RSS and bidsapp's time over the
decompression time. The decompression stays plain nibabel (``indexed_gzip``),
whatever gzip decoder bidsapp reads with.
"""

from __future__ import annotations

import argparse
import json
import shutil
import subprocess
import sys
import tempfile
import time
from pathlib import Path

SEED = ("PCC", (0.0, -52.0, 26.0))
N_PARCELS = 400


def synthesise(root: Path) -> dict:
    """Write the dataset and the atlas under ``root``; return their paths."""
    import nibabel as nib
    import numpy as np
    import pandas as pd
    from scipy.cluster.vq import kmeans2
    from scipy.spatial import cKDTree

    from bidsapp.demo import write_fmriprep_dataset
    from bidsapp.demo.grid import mni_grid

    bids = root / "bids"
    if not (bids / "dataset_description.json").is_file():
        write_fmriprep_dataset(bids, participants=["01"], n_task_runs=1, resolution_mm=2.0, task_volumes=200,
                               rest_volumes=40, seed=3)
    grid = mni_grid(2.0)
    assert grid.shape == (97, 115, 97), grid.shape
    rng = np.random.default_rng(0)
    coords = grid.coords_mm()[grid.mask]
    centres = coords[rng.choice(len(coords), N_PARCELS, replace=False)]
    labels = np.zeros(grid.shape, np.int16)
    labels[grid.mask] = cKDTree(centres).query(coords)[1] + 1
    networks = kmeans2(centres, 7, seed=1, minit="++")[1]
    atlas = root / "atlas" / "atlas-Synthetic400_space-MNI152NLin2009cAsym_dseg.nii.gz"
    atlas.parent.mkdir(parents=True, exist_ok=True)
    nib.Nifti1Image(labels, grid.affine).to_filename(atlas)
    pd.DataFrame({"index": np.arange(1, N_PARCELS + 1), "name": [f"parcel{i:03d}" for i in range(1, N_PARCELS + 1)],
                  "network": [f"net{k + 1}" for k in networks]}).to_csv(atlas.with_name(
                      "atlas-Synthetic400_space-MNI152NLin2009cAsym_dseg.tsv"), sep="\t", index=False)
    func = bids / "derivatives" / "fmriprep" / "sub-01" / "func"
    prefix = "sub-01_task-motor_run-1"
    return {"bids": str(bids), "atlas": str(atlas),
            "bold": str(func / f"{prefix}_space-MNI152NLin2009cAsym_desc-preproc_bold.nii.gz"),
            "mask": str(func / f"{prefix}_space-MNI152NLin2009cAsym_desc-brain_mask.nii.gz"),
            "events": str(bids / "sub-01" / "func" / "sub-01_task-motor_run-01_events.tsv"),
            "out": str(root / "out"), "work": str(root / "work")}


def run_decompress(paths: dict) -> None:
    import nibabel as nib
    import numpy as np

    np.asarray(nib.load(paths["bold"]).dataobj, dtype=np.float32)


def run_bidsapp(paths: dict) -> None:
    from bidsapp.cli import main

    code = main([paths["bids"], paths["out"], "participant", "--participant-label", "01", "--task", "motor",
                 "--skip-bids-validation", "--atlas", paths["atlas"], "--seeds",
                 f"{SEED[0]}={','.join(str(c) for c in SEED[1])}", "-w", paths["work"]])
    if code:
        raise SystemExit(f"bidsapp failed with exit code {code}")


def run_nilearn(paths: dict) -> None:
    """The chain of seeds 001 and 003 and nilearn's first-level example, on one run."""
    import numpy as np
    import pandas as pd
    from nilearn.connectome import ConnectivityMeasure
    from nilearn.glm.first_level import FirstLevelModel
    from nilearn.interfaces.fmriprep import load_confounds, load_confounds_strategy
    from nilearn.maskers import NiftiLabelsMasker, NiftiMasker, NiftiSpheresMasker

    out = Path(paths["out"] + "_nilearn")
    out.mkdir(parents=True, exist_ok=True)
    bold, mask = paths["bold"], paths["mask"]
    confounds, sample_mask = load_confounds_strategy(bold, "simple")
    cleaning = {"detrend": True, "standardize": "zscore_sample", "t_r": 2.0}
    masker = NiftiLabelsMasker(paths["atlas"], mask_img=mask, **cleaning)
    series = masker.fit_transform(bold, confounds=confounds, sample_mask=sample_mask)
    pd.DataFrame(series).to_csv(out / "timeseries.tsv", sep="\t", index=False)
    matrix = ConnectivityMeasure(kind="correlation").fit_transform([series])[0]
    pd.DataFrame(matrix).to_csv(out / "relmat.tsv", sep="\t", index=False)
    pd.DataFrame(np.arctanh(np.clip(matrix, -0.9999999, 0.9999999))).to_csv(out / "fisherz.tsv", sep="\t", index=False)
    seed = NiftiSpheresMasker([SEED[1]], radius=8.0, mask_img=mask, **cleaning)
    seed_series = seed.fit_transform(bold, confounds=confounds, sample_mask=sample_mask)
    brain = NiftiMasker(mask_img=mask, **cleaning)
    voxels = brain.fit_transform(bold, confounds=confounds, sample_mask=sample_mask)
    r = voxels.T @ seed_series / seed_series.shape[0]
    brain.inverse_transform(r.T).to_filename(out / "seed_r.nii.gz")
    brain.inverse_transform(np.arctanh(r).T).to_filename(out / "seed_z.nii.gz")
    glm_confounds, glm_mask = load_confounds(bold, strategy=("motion", "wm_csf"), motion="full", wm_csf="basic")
    events = pd.read_csv(paths["events"], sep="\t")
    model = FirstLevelModel(t_r=2.0, mask_img=mask, noise_model="ar1", high_pass=0.01)
    model.fit(bold, events=events, confounds=glm_confounds, sample_masks=glm_mask)
    for name, expression in (("lf", "lf"), ("rf", "rf"), ("lfMinusRf", "lf - rf"), ("rfMinusLf", "rf - lf")):
        for stat, img in model.compute_contrast(expression, output_type="all").items():
            img.to_filename(out / f"{name}_{stat}.nii.gz")


def measure(step: str, paths: dict) -> dict:
    """Run one step in a fresh process; its wall time, CPU time (every thread of the process) and peak RSS."""
    code = (f"import json, resource, sys, time; sys.path.insert(0, {str(Path(__file__).parent)!r}); "
            f"import participant as b; p = json.loads({json.dumps(json.dumps(paths))}); t = time.perf_counter(); "
            f"c = time.process_time(); b.run_{step}(p); print(json.dumps({{'seconds': time.perf_counter() - t, "
            f"'cpu_seconds': time.process_time() - c, "
            f"'rss_gb': resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024 ** 2}}))")
    result = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True)
    if result.returncode:
        raise SystemExit(f"{step} failed:\n{result.stderr[-3000:]}")
    return json.loads(result.stdout.strip().splitlines()[-1])


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--keep", type=Path, help="directory for the data (kept; re-used when it exists)")
    parser.add_argument("--synthesise-only", action="store_true", help=argparse.SUPPRESS)
    args = parser.parse_args()
    root = args.keep or Path(tempfile.mkdtemp(prefix="bidsapp-participant-bench-"))
    if args.synthesise_only:
        print(json.dumps(synthesise(root)))
        return
    started = time.perf_counter()
    # in a child process: Linux carries a process's peak RSS over to the children it starts
    made = subprocess.run([sys.executable, __file__, "--keep", str(root), "--synthesise-only"], capture_output=True,
                          text=True, check=True)
    paths = json.loads(made.stdout.strip().splitlines()[-1])
    print(f"data: {paths['bold']} ({time.perf_counter() - started:.0f} s to synthesise)")
    for folder in (paths["out"], paths["out"] + "_nilearn", paths["work"]):  # a fresh run, nothing to skip
        shutil.rmtree(folder, ignore_errors=True)
    results = {step: measure(step, paths) for step in ("decompress", "bidsapp", "nilearn")}
    for step, result in results.items():
        print(f"{step:>10}: {result['seconds']:6.1f} s wall, {result['cpu_seconds']:6.1f} s CPU, "
              f"peak RSS {result['rss_gb']:.2f} GB")
    ours, theirs, floor = (results[s]["seconds"] for s in ("bidsapp", "nilearn", "decompress"))
    cpu = {step: result["cpu_seconds"] for step, result in results.items()}
    print(f"speed-up over nilearn: {theirs / ours:.1f}x wall, {cpu['nilearn'] / cpu['bidsapp']:.1f}x CPU (goal >= 6)")
    print(f"bidsapp / decompression: {ours / floor:.2f} wall, {cpu['bidsapp'] / cpu['decompress']:.2f} CPU "
          "(goal <= 3)")
    print(f"bidsapp peak RSS: {results['bidsapp']['rss_gb']:.2f} GB (goal <= 1)")


if __name__ == "__main__":
    main()
