"""Voxel group level with every permutation correction: exact p maps, never below the smallest attainable p."""

from __future__ import annotations

import json

import nibabel as nib
import numpy as np
import pandas as pd
import pytest
from scipy import stats

from bidsapp.cli import main
from bidsapp.demo import write_fmriprep_dataset

pytestmark = pytest.mark.slow

N = 6  # 64 sign flips: the smallest two-sided p is 2/64


@pytest.fixture(scope="module")
def voxel_group(tmp_path_factory):
    """Six small fMRIPrep participants (8 mm), the motor task's lf map, then max-T, cluster and TFCE FWE."""
    root = tmp_path_factory.mktemp("exact_p")
    bids, out, work = root / "bids", root / "out", root / "work"
    write_fmriprep_dataset(bids, participants=N, n_task_runs=1, resolution_mm=8.0, seed=5, n_jobs=1)
    common = ["--skip-bids-validation", "--task", "motor", "-w", str(work), "--no-reports"]
    assert main([str(bids), str(out), "participant", *common, "--contrast", "lf=lf", "--nprocs", "2"]) == 0
    assert main([str(bids), str(out), "group", *common, "--correction", "fwe", "cluster", "tfce",
                 "--n-perm", "1000"]) == 0
    return out


def _image(path):
    return nib.load(path).get_fdata()


def test_voxel_max_t_p_map_equals_the_sign_flip_oracle(voxel_group):
    out = voxel_group
    stem = "task-motor_space-MNI152NLin2009cAsym_contrast-lf"
    t_map = _image(out / "group" / f"{stem}_stat-t_desc-mean_statmap.nii.gz")
    effects = np.stack([_image(path) for path in sorted(out.glob(f"sub-*/func/*{stem.split('_', 1)[1]}"
                                                                   "_stat-effect_statmap.nii.gz"))])
    assert len(effects) == N
    mask = np.isfinite(effects).all(axis=0) & (effects != 0).all(axis=0)
    values = effects[:, mask]
    signs = 1 - 2 * ((np.arange(2**N)[:, None] >> np.arange(N)) & 1)
    null = np.array([np.abs(stats.ttest_1samp(flip[:, None] * values, 0).statistic).max() for flip in signs])
    observed = np.abs(stats.ttest_1samp(values, 0).statistic)
    np.testing.assert_allclose(np.abs(t_map[mask]), observed, rtol=1e-4)
    expected = (null[None, :] >= observed[:, None] * (1 - 1e-6)).sum(axis=1) / 2**N
    p_map = _image(out / "group" / f"{stem}_stat-p_desc-meanFwe_statmap.nii.gz")
    np.testing.assert_allclose(p_map[mask], expected, rtol=1e-6)  # float32 NIfTI
    assert p_map[mask].min() == pytest.approx(2 / 2**N)


@pytest.mark.parametrize("correction", ["Fwe", "Clustersize", "Clustermass", "Tfce"])
def test_no_permutation_p_below_the_smallest_attainable_and_the_rule_is_recorded(voxel_group, correction):
    out = voxel_group
    stem = "task-motor_space-MNI152NLin2009cAsym_contrast-lf"
    mask = _image(out / "group" / f"{stem}_stat-t_desc-mean_statmap.nii.gz") != 0  # the analysis mask
    path = out / "group" / f"{stem}_stat-p_desc-mean{correction}_statmap.nii.gz"
    sidecar = json.loads(path.with_name(path.name.replace(".nii.gz", ".json")).read_text())
    assert sidecar["PermutationPValue"] == ("#{resamples >= observed} / 64, the identity included; exact "
                                            "enumeration of the 64 sign flips")
    assert sidecar["PermutationResamples"] == 64 and sidecar["SmallestPValue"] == 2 / 64
    p_values = _image(path)[mask]
    assert p_values.min() >= 2 / 64 * (1 - 1e-6) and p_values.max() <= 1
    for table in (out / "group").glob("*.tsv"):  # parcel and edge tables of the same run
        columns = [column for column in pd.read_csv(table, sep="\t", nrows=0).columns if column == "p_fwe"]
        if columns:
            smallest = json.loads(table.with_suffix(".json").read_text())["SmallestPValue"]
            assert (pd.read_csv(table, sep="\t")["p_fwe"].dropna() >= smallest).all(), table
