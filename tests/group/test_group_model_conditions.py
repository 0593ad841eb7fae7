"""Seed 004's model file end to end: first-level maps of 9 single conditions -> within design -> group maps.

The participant level runs once on a small fMRIPrep dataset (3 participants, 8 mm); the nine condition maps
of seed 004 are then planted next to its ``lf`` map (names from the output layout, the ``lf`` sidecar), with
faces > scrambled by 1.0, famous > unfamiliar by 0.5, participant offsets and noise. The group t, F and p
maps are checked against statsmodels OLS on the same maps and a design built here.
"""

from __future__ import annotations

import json
import shutil
from pathlib import Path

import nibabel as nib
import numpy as np
import pandas as pd
import pytest
import statsmodels.api as sm
from conftest import error_lines
from scipy import stats

from bidsapp.cli import main
from bidsapp.inputs.runs import parse_entities
from bidsapp.outputs.layout import CONTRAST_EFFECT_MAP, OutputLayout
from bidsapp.outputs.writer import CHECKSUM_KEY, SIZE_KEY, file_checksum

pytestmark = pytest.mark.slow

CONDITIONS = ["IniFF", "ImmFF", "DelFF", "IniUF", "ImmUF", "DelUF", "IniSF", "ImmSF", "DelSF"]
SEED004_MODEL = """\
conditions: [IniFF, ImmFF, DelFF, IniUF, ImmUF, DelUF, IniSF, ImmSF, DelSF]
contrasts:
  FacesScrambled: (IniFF + ImmFF + DelFF + IniUF + ImmUF + DelUF)/6 - (IniSF + ImmSF + DelSF)/3
  StimulusXRepetition: ["(IniFF + IniUF)/2 - IniSF - ((ImmFF + ImmUF)/2 - ImmSF)", "IniFF - IniUF - (ImmFF - ImmUF)"]
  famousOverUnfamiliar: {expression: (IniFF + ImmFF + DelFF)/3 - (IniUF + ImmUF + DelUF)/3, test: greater}
"""
STEM = "task-motor_space-MNI152NLin2009cAsym"


@pytest.fixture(scope="module")
def seed004(fmriprep_templates, tmp_path_factory):
    """Participant level (lf only), then the nine planted condition maps per participant."""
    bids = fmriprep_templates["21+"]
    root = tmp_path_factory.mktemp("seed004")
    out = root / "out"
    assert main([str(bids), str(out), "participant", "--skip-bids-validation", "--task", "motor", "--contrast",
                 "lf=lf", "-w", str(root / "work"), "--nprocs", "2", "--no-reports"]) == 0
    rng = np.random.default_rng(40)
    layout = OutputLayout(out)
    for lf in sorted(out.glob("sub-*/func/*_contrast-lf_stat-effect_statmap.nii.gz")):
        img = nib.load(lf)
        inside = np.asarray(img.dataobj) != 0
        offset = rng.normal(0, 2, inside.shape)
        for condition in CONDITIONS:
            effect = (1.0 if not condition.endswith("SF") else 0.0) + (0.5 if condition.endswith("FF") else 0.0)
            values = np.where(inside, offset + effect + rng.normal(0, 1, inside.shape), 0).astype(np.float32)
            path = layout.participant_file(CONTRAST_EFFECT_MAP, {**parse_entities(lf.name), "contrast": condition})
            nib.Nifti1Image(values, img.affine).to_filename(path)
            sidecar = json.loads(lf.with_name(lf.name.replace(".nii.gz", ".json")).read_text())
            sidecar.update({SIZE_KEY: path.stat().st_size, CHECKSUM_KEY: file_checksum(path)})  # an intact output
            path.with_name(path.name.replace(".nii.gz", ".json")).write_text(json.dumps(sidecar))
    model = root / "seed004.yml"
    model.write_text(SEED004_MODEL)
    return bids, out, model


def group(bids: Path, out: Path, *options: str) -> int:
    return main([str(bids), str(out), "group", "--skip-bids-validation", "--task", "motor", "--no-reports",
                 "-w", str(out.parent / "work"), *options])


def test_seed004_model_file_writes_maps_equal_to_statsmodels(seed004):
    bids, out, model = seed004
    assert group(bids, out, "--group-model", str(model), "--correction", "fpr", "fdr", "--alpha", "0.001") == 0
    maps = {condition: {path.name.split("_")[0]: nib.load(path).get_fdata() for path in sorted(
        out.glob(f"sub-*/func/*_contrast-{condition}_stat-effect_statmap.nii.gz"))} for condition in CONDITIONS}
    subjects = sorted(maps["IniFF"])
    assert len(subjects) == 3
    y = np.stack([maps[c][s] for s in subjects for c in CONDITIONS])  # (27, x, y, z)
    mask = (y != 0).all(axis=0)
    design = pd.DataFrame({**{c: [float(c == k) for _ in subjects for k in CONDITIONS] for c in CONDITIONS},
                           **{s: [float(s == t) for t in subjects for _ in CONDITIONS] for s in subjects}})
    weights = {"FacesScrambled": np.r_[[1 / 6] * 6, [-1 / 3] * 3, [0] * 3],
               "famousOverUnfamiliar": np.r_[[1 / 3] * 3, [-1 / 3] * 3, [0] * 6]}
    interaction = np.pad(np.array([np.kron([1 / 2, 1 / 2, -1], [1, -1, 0]), np.kron([1, -1, 0], [1, -1, 0])]),
                         [(0, 0), (0, 3)])
    group_dir = out / "group"

    def image(name: str) -> np.ndarray:
        return nib.load(group_dir / f"{STEM}_{name}_statmap.nii.gz").get_fdata()

    t_faces, t_famous = image("stat-t_desc-FacesScrambled"), image("stat-t_desc-famousOverUnfamiliar")
    f_map, p_famous = image("stat-F_desc-StimulusXRepetition"), image("stat-p_desc-famousOverUnfamiliar")
    for voxel in list(zip(*np.nonzero(mask), strict=True))[::max(1, int(mask.sum()) // 4)][:4]:
        with pytest.warns(Warning, match="rank-deficient"):
            ols = sm.OLS(y[(slice(None), *voxel)], design.to_numpy()).fit()
        assert ols.df_resid == 16
        assert t_faces[voxel] == pytest.approx(float(ols.t_test(weights["FacesScrambled"]).tvalue.item()), rel=1e-4)
        famous = float(ols.t_test(weights["famousOverUnfamiliar"]).tvalue.item())
        assert t_famous[voxel] == pytest.approx(famous, rel=1e-4)
        assert p_famous[voxel] == pytest.approx(stats.t.sf(famous, 16), rel=1e-3, abs=1e-7)
        assert f_map[voxel] == pytest.approx(float(ols.f_test(interaction).fvalue), rel=1e-4)
    assert (t_faces[mask] > 0).mean() > 0.95  # the planted direction
    sidecar = json.loads((group_dir / f"{STEM}_stat-p_desc-famousOverUnfamiliar_statmap.json").read_text())
    assert sidecar["Alternative"] == "greater" and sidecar["DegreesOfFreedom"] == [1, 16]
    assert json.loads((group_dir / f"{STEM}_stat-F_desc-StimulusXRepetition_statmap.json").read_text()
                      )["DegreesOfFreedom"] == [2, 16]
    fpr = nib.load(group_dir / f"{STEM}_desc-famousOverUnfamiliarFpr_mask.nii.gz").get_fdata()
    np.testing.assert_array_equal(fpr[mask] > 0, p_famous[mask] <= 0.001)
    assert fpr.sum() > 0


def _expect_error(capsys, code: int, *parts: str) -> None:
    err = error_lines(capsys.readouterr().err)
    assert code and err, err
    assert any(all(part in line for part in parts) for line in err), err


@pytest.mark.parametrize(("edit", "code", "parts"), [
    (("IniFF, ImmFF, DelFF,", "IniFFF, ImmFF, DelFF,"), 2, ("condition 'IniFFF' is not a participant-level contrast",
                                                           "known: DelFF, DelSF")),
    (("- (IniSF + ImmSF + DelSF)/3", "- (IniSF + ImmSF + DelXX)/3"), 2, ("contrast FacesScrambled names 'DelXX'",
                                                                         "cells: IniFF, ImmFF")),
    (("- (IniSF + ImmSF + DelSF)/3", "- (IniSF + ImmSF)/3"), 2, ("weights sum to 0.333333, not 0",
                                                                 "a within design has one column per participant")),
])
def test_bad_model_files_exit_2_and_write_nothing(seed004, tmp_path, capsys, edit, code, parts):
    bids, out, _ = seed004
    model = tmp_path / "model.yml"
    model.write_text(SEED004_MODEL.replace(*edit))
    before = sorted(path.name for path in (out / "group").glob("*")) if (out / "group").exists() else []
    assert group(bids, out, "--group-model", str(model)) == code
    _expect_error(capsys, code, f"--group-model {model}", *parts)
    after = sorted(path.name for path in (out / "group").glob("*")) if (out / "group").exists() else []
    assert after == before


def test_groups_column_with_one_level_exit_2(seed004, tmp_path, capsys):
    bids, out, _ = seed004
    participants = pd.read_csv(bids / "participants.tsv", sep="\t")
    level = participants["group"].iloc[0]
    same = [p.removeprefix("sub-") for p in participants.loc[participants["group"] == level, "participant_id"]]
    model = tmp_path / "model.yml"
    model.write_text("conditions: [IniFF, IniSF]\ngroups: group\ncontrasts:\n"
                     f"  faces: {level}.IniFF - {level}.IniSF\n")
    assert group(bids, out, "--group-model", str(model), "--participant-label", *same) == 2
    _expect_error(capsys, 2, f"--group-model {model}", "groups column 'group' has one level", str(level))


def test_conditions_no_participant_has_exit_18(seed004, tmp_path, capsys):
    bids, out, model = seed004
    copy = tmp_path / "out"
    shutil.copytree(out, copy, ignore=shutil.ignore_patterns("logs", "group"))
    for subject, condition in (("01", "IniFF"), ("02", "ImmFF"), ("03", "DelFF")):  # each misses one
        for path in copy.glob(f"sub-{subject}/func/*_contrast-{condition}_stat-effect_statmap.*"):
            path.unlink()
    assert group(bids, copy, "--group-model", str(model)) == 18
    _expect_error(capsys, 18, "no participant has every condition (IniFF, ImmFF")
    assert not (copy / "group").exists()
