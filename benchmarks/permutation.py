"""Benchmark the permutation engine against nilearn's ``non_parametric_inference`` in the same run.

Data: 20 synthetic smooth contrast maps (float32, Gaussian noise smoothed with sigma 1.5 voxels, a planted
effect in two blobs) inside nilearn's packaged 2 mm MNI152 brain mask (99 x 117 x 95 grid, ~235k voxels;
no download). Cases, each of ours in a fresh subprocess that reports its peak RSS (``resource.getrusage``,
itself and its worker processes):

- one-sample max-T, 10,000 sign flips: ours vs ``non_parametric_inference(n_perm=..., n_jobs=2)``. nilearn
  needs ~150 s for 10,000 here, so ``--nilearn-perms`` (default 1000) runs fewer and extrapolates linearly
  (printed). t maps are compared with nilearn's ``SecondLevelModel`` (to 1e-5) and FWE p values within Monte
  Carlo error (|difference| <= 4 standard errors of the two estimates plus one permutation's step).
- two-sample max-T, cluster-mass/extent FWE (cluster-forming p < 0.001) and TFCE: time per permutation, ours
  vs nilearn (goal for TFCE: at least 20x faster than nilearn's 1.26 s per permutation).

Ours runs from the masked float32 array (nilearn masks the images itself; its masking is ~1 s).

Usage: ``python benchmarks/permutation.py [--perms 10000] [--nilearn-perms 1000] [--tfce-perms 400]
[--nilearn-tfce-perms 10] [--cluster-perms 2000] [--nilearn-cluster-perms 100] [--jobs 2]``
"""

from __future__ import annotations

import argparse
import json
import resource
import subprocess
import sys
import tempfile
import time
import warnings
from pathlib import Path

import numpy as np

N_SUBJECTS = 20


def make_data(seed: int = 0) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Masked maps (20, n_voxels) float32, the 3-D mask and its affine."""
    from nilearn.datasets import load_mni152_brain_mask
    from scipy import ndimage

    mask_img = load_mni152_brain_mask(resolution=2)
    mask = mask_img.get_fdata() > 0
    rng = np.random.default_rng(seed)
    maps = np.empty((N_SUBJECTS, int(mask.sum())), np.float32)
    blob = np.zeros(mask.shape, np.float32)
    blob[30:38, 40:48, 40:46] = 1.0
    blob[60:66, 50:58, 30:38] = 0.8
    for index in range(N_SUBJECTS):
        volume = ndimage.gaussian_filter(rng.standard_normal(mask.shape).astype(np.float32), 1.5) * 2.5
        maps[index] = (volume + blob)[mask]
    return maps, mask, mask_img.affine


def worker(arguments: dict) -> None:
    """Run one case of ours on the saved data and print time and peak RSS as JSON."""
    from joblib.externals.loky import get_reusable_executor

    from bidsapp.stats.permutation import permutation_test

    folder = Path(arguments["folder"])
    data = np.load(folder / "data.npy")
    mask = np.load(folder / "mask.npy")
    design, contrast = np.ones((N_SUBJECTS, 1)), np.array([1.0])
    if arguments["case"] == "twosample":
        group = np.repeat([1.0, 0.0], N_SUBJECTS // 2)
        design, contrast = np.column_stack([group, 1 - group]), np.array([1.0, -1.0])
    options = {"cluster": {"mask": mask, "height_threshold": 0.001}, "tfce": {"mask": mask, "with_tfce": True}}
    start = time.perf_counter()
    result = permutation_test(data, design, contrast, n_perm=arguments["perms"], random_state=0,
                              alpha=max(0.05, 1 / (arguments["perms"] + 1)), n_jobs=arguments["jobs"],
                              **options.get(arguments["case"], {}))
    seconds = time.perf_counter() - start
    get_reusable_executor().shutdown(wait=True)
    np.savez(folder / f"ours_{arguments['case']}.npz", stat=result.stat, p=result.p_fwe)
    print(json.dumps({"seconds": seconds, "n_perm": result.n_perm,
                      "rss_self_mb": resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024,
                      "rss_children_mb": resource.getrusage(resource.RUSAGE_CHILDREN).ru_maxrss / 1024}))


def ours(folder: Path, case: str, perms: int, jobs: int) -> dict:
    arguments = json.dumps({"folder": str(folder), "case": case, "perms": perms, "jobs": jobs})
    output = subprocess.run([sys.executable, __file__, "--worker", arguments], check=True, capture_output=True,
                            text=True).stdout
    return json.loads(output.strip().splitlines()[-1])


def nilearn(images, mask_img, case: str, perms: int, jobs: int) -> tuple[float, object]:
    import pandas as pd
    from nilearn.glm.second_level import non_parametric_inference

    design = pd.DataFrame({"intercept": np.ones(N_SUBJECTS)})
    contrast = "intercept"
    if case == "twosample":
        group = np.repeat([1.0, 0.0], N_SUBJECTS // 2)
        design, contrast = pd.DataFrame({"a": group, "b": 1 - group}), [1.0, -1.0]
    extra = {"cluster": {"threshold": 0.001}, "tfce": {"tfce": True}}.get(case, {})
    start = time.perf_counter()
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        output = non_parametric_inference(images, design_matrix=design, second_level_contrast=contrast,
                                          mask=mask_img, n_perm=perms, two_sided_test=True, random_state=0,
                                          n_jobs=jobs, **extra)
    return time.perf_counter() - start, output


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--perms", type=int, default=10000)
    parser.add_argument("--nilearn-perms", type=int, default=1000)
    parser.add_argument("--tfce-perms", type=int, default=400)
    parser.add_argument("--nilearn-tfce-perms", type=int, default=10)
    parser.add_argument("--cluster-perms", type=int, default=2000)
    parser.add_argument("--nilearn-cluster-perms", type=int, default=100)
    parser.add_argument("--jobs", type=int, default=2)
    parser.add_argument("--worker", help=argparse.SUPPRESS)
    parser.add_argument("--make-data", help=argparse.SUPPRESS)
    args = parser.parse_args(argv)
    if args.worker:
        worker(json.loads(args.worker))
        return 0
    if args.make_data:
        data, mask, affine = make_data()
        np.save(Path(args.make_data) / "data.npy", data)
        np.save(Path(args.make_data) / "mask.npy", mask)
        np.save(Path(args.make_data) / "affine.npy", affine)
        return 0

    cases = (("onesample", args.perms, args.nilearn_perms), ("twosample", args.perms, args.nilearn_perms),
             ("cluster", args.cluster_perms, args.nilearn_cluster_perms),
             ("tfce", args.tfce_perms, args.nilearn_tfce_perms))
    with tempfile.TemporaryDirectory() as folder:
        folder = Path(folder)
        # Ours first, each in a fresh subprocess started while this process is still small (a child's
        # ru_maxrss starts from its parent's RSS at fork time).
        subprocess.run([sys.executable, __file__, "--make-data", str(folder)], check=True)
        runs = {case: ours(folder, case, mine, args.jobs) for case, mine, _ in cases}
        data, mask, affine = (np.load(folder / name) for name in ("data.npy", "mask.npy", "affine.npy"))
        print(f"data: {N_SUBJECTS} maps, {data.shape[1]} voxels in the 2 mm MNI152 mask, {args.jobs} jobs")
        report(folder, runs, cases, data, mask, affine, args)
    return 0


def report(folder: Path, runs: dict, cases, data: np.ndarray, mask: np.ndarray, affine: np.ndarray, args) -> None:
    """Run nilearn on the same data and print the comparisons."""
    import nibabel as nib

    mask_img = nib.Nifti1Image(mask.astype(np.uint8), affine)
    images = []
    for row in data:
        volume = np.zeros(mask.shape, np.float32)
        volume[mask] = row
        images.append(nib.Nifti1Image(volume, affine))
    for case, mine, theirs in cases:
        run = runs[case]
        seconds, output = nilearn(images, mask_img, case, theirs, args.jobs)
        ours_rate, theirs_rate = run["seconds"] / mine, seconds / theirs
        memory = (f"our peak RSS {run['rss_self_mb']:.0f} MB (< 2048 MB: {run['rss_self_mb'] < 2048})"
                  + (f", worker processes {run['rss_children_mb']:.0f} MB each at most" if case == "tfce" else ""))
        if case == "onesample":
            scale = mine / theirs
            if scale != 1:
                print(f"nilearn ran {theirs} permutations; its time is extrapolated linearly x{scale:g}")
            print(f"one-sample max-T, {run['n_perm']} sign flips: ours {run['seconds']:.2f} s, nilearn "
                  f"{seconds * scale:.1f} s -> {seconds * scale / run['seconds']:.1f}x faster; {memory}")
            compare_one_sample(folder, output, images, mask, mask_img, mine, theirs)
            continue
        print(f"{case}: ours {ours_rate * 1e3:.2f} ms/permutation ({mine} in {run['seconds']:.1f} s), nilearn "
              f"{theirs_rate * 1e3:.1f} ms/permutation ({theirs} in {seconds:.1f} s) -> "
              f"{theirs_rate / ours_rate:.1f}x faster; {memory}")
        if case == "tfce":
            print(f"  TFCE vs the 1.26 s/permutation baseline of REFERENCES.md: {1.26 / ours_rate:.1f}x (goal >= 20x; "
                  "the same-run ratio above is the fair one on a shared machine)")


def compare_one_sample(folder: Path, logp, images, mask, mask_img, perms: int, nilearn_perms: int) -> None:
    import pandas as pd
    from nilearn.glm.second_level import SecondLevelModel

    result = np.load(folder / "ours_onesample.npz")
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        model = SecondLevelModel(mask_img=mask_img).fit(images, design_matrix=pd.DataFrame({"i": np.ones(N_SUBJECTS)}))
        t_map = model.compute_contrast("i", output_type="stat").get_fdata()[mask]
    difference = np.abs(result["stat"] - t_map).max()
    print(f"  t maps: max |ours - nilearn SecondLevelModel| = {difference:.2e} (<= 1e-5: {difference <= 1e-5})")
    p_nilearn, p_ours = 10 ** -logp.get_fdata()[mask], result["p"]
    mean = (p_nilearn + p_ours) / 2
    error = 4 * np.sqrt(mean * (1 - mean) * (1 / perms + 1 / nilearn_perms)) + 1 / nilearn_perms
    within = np.abs(p_ours - p_nilearn) <= error
    print(f"  FWE p values within Monte Carlo error (4 SE): {within.mean() * 100:.3f}% of voxels; voxels with "
          f"p < 0.05: ours {(p_ours < 0.05).sum()}, nilearn {(p_nilearn < 0.05).sum()}")


if __name__ == "__main__":
    sys.exit(main())
