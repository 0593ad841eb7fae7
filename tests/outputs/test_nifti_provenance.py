"""NIfTI headers of written images and provenance (BIDS URIs, DatasetLinks, SourceDatasets), read back with nibabel."""

from __future__ import annotations

import json
from pathlib import Path
from urllib.parse import unquote, urlparse

import nibabel as nib
import numpy as np
import pandas as pd
import pytest

from bidsapp.outputs.writer import DerivativesWriter, sidecar_path
from bidsapp.steps import denoise, strategies

AFFINE = np.array([[-4.0, 0, 0, 90], [0, 4, 0, -126], [0, 0, 4, -72], [0, 0, 0, 1]])


def _nifti(path: Path, data: np.ndarray, code: int) -> Path:
    img = nib.Nifti1Image(data, AFFINE)
    img.set_sform(AFFINE, code=code)
    img.set_qform(AFFINE, code=code)
    path.parent.mkdir(parents=True, exist_ok=True)
    nib.save(img, path)
    return path


@pytest.fixture
def datasets(tmp_path):
    """A raw BIDS dataset with fMRIPrep derivatives inside it, and an atlas folder outside any dataset."""
    raw = tmp_path / "ds"
    raw.mkdir()
    (raw / "dataset_description.json").write_text(json.dumps({"Name": "x", "BIDSVersion": "1.10.0",
                                                              "DatasetDOI": "doi:10.18112/openneuro.ds000001.v1"}))
    fmriprep = raw / "derivatives" / "fmriprep"
    fmriprep.mkdir(parents=True)
    (fmriprep / "dataset_description.json").write_text(json.dumps(
        {"Name": "fMRIPrep", "BIDSVersion": "1.10.0", "DatasetType": "derivative",
         "GeneratedBy": [{"Name": "fMRIPrep"}]}))
    bold = _nifti(fmriprep / "sub-01" / "func" / "sub-01_task-rest_space-MNI152NLin2009cAsym_desc-preproc_bold.nii.gz",
                  np.zeros((3, 4, 5, 2), np.float32), code=4)
    events = raw / "sub-01" / "func" / "sub-01_task-rest_events.tsv"
    events.parent.mkdir(parents=True)
    events.write_text("onset\tduration\n0\t1\n")
    atlas = _nifti(tmp_path / "my atlases" / "atlas.nii.gz", np.ones((3, 4, 5), np.int16), code=4)
    writer = DerivativesWriter(tmp_path / "out", version="0.1.0", command=["bidsapp", "ds", "out", "participant"])
    writer.ensure_dataset_description()
    return writer, bold, events, atlas


def _write(writer, entities, suffix, data, sidecar, sources):
    path = writer.layout.group_path(entities, suffix, ".nii.gz")
    writer.write_image(path, nib.Nifti1Image(data, AFFINE), sidecar, parameters={"x": 1}, sources=sources)
    return path, nib.load(path).header, json.loads(sidecar_path(path).read_text())


@pytest.mark.parametrize(("stat", "dof", "intent"), [
    ("t", [1, 17], ("t test", (17.0,), "t")),
    ("t", 130.0, ("t test", (130.0,), "t")),  # first level: one number
    ("F", [2, 15], ("f test", (2.0, 15.0), "F")),
    ("z", [1, 17], ("z score", (), "z")),
    ("p", [1, 17], ("p value", (), "p")),
    ("effect", [1, 17], ("estimate", (), "effect")),
    ("pearsoncorrelation", None, ("estimate", (), "pearsoncorrelati")),
])
def test_statistical_maps_keep_codes_and_carry_their_intent(datasets, stat, dof, intent):
    writer, bold, _, _ = datasets
    data = np.random.default_rng(0).standard_normal((3, 4, 5)).astype(np.float32)
    path, header, _ = _write(writer, {"contrast": "lf", "stat": stat}, "statmap", data,
                             {"DegreesOfFreedom": dof}, [bold])
    assert (int(header["sform_code"]), int(header["qform_code"])) == (4, 4)  # the BOLD's MNI code, not 2
    np.testing.assert_allclose(header.get_sform(), AFFINE)
    np.testing.assert_allclose(header.get_qform(), AFFINE, atol=1e-5)
    assert header.get_xyzt_units() == ("mm", "sec")
    assert header.get_intent() == intent
    np.testing.assert_array_equal(nib.load(path).get_fdata(dtype=np.float32), data)


def test_t_map_without_degrees_of_freedom_is_refused(datasets):
    writer, bold, _, _ = datasets
    with pytest.raises(ValueError, match="stat-t_statmap.nii.gz.*DegreesOfFreedom"):
        _write(writer, {"stat": "t"}, "statmap", np.zeros((3, 4, 5), np.float32), {}, [bold])
    assert not list((writer.output_dir / "group").glob("*stat-t*"))


def test_masks_are_uint8_with_type_spatial_reference_and_sources(datasets):
    writer, bold, _, _ = datasets
    survives = np.zeros((3, 4, 5), np.float32)
    survives[1, 2, 3] = 1.0
    path, header, sidecar = _write(writer, {"task": "rest", "desc": "meanFdr"}, "mask", survives, {}, [bold])
    assert header.get_data_dtype() == np.uint8 and (int(header["sform_code"]), int(header["qform_code"])) == (4, 4)
    data = np.asanyarray(nib.load(path).dataobj)
    assert data.dtype == np.uint8 and data.sum() == 1 and data[1, 2, 3] == 1
    assert sidecar["Type"] == "ROI"
    assert sidecar["SpatialReference"] == sidecar["Sources"][0] == (
        "bids:fmriprep:sub-01/func/sub-01_task-rest_space-MNI152NLin2009cAsym_desc-preproc_bold.nii.gz")


def test_label_maps_are_integers(datasets):
    writer, _, _, atlas = datasets
    labels = np.array([0.0, 1.0, 2.0, 40000.0] * 15, np.float32).reshape(3, 4, 5)
    path, header, _ = _write(writer, {"seg": "AICHA"}, "dseg", labels, {}, [atlas])
    data = np.asanyarray(nib.load(path).dataobj)
    assert data.dtype == np.int32 and set(np.unique(data)) == {0, 1, 2, 40000}
    assert header.get_intent()[0] == "label"


def test_sources_are_bids_uris_that_resolve_through_dataset_links(datasets):
    writer, bold, events, atlas = datasets
    participant = writer.layout.participant_path({"sub": "01", "stat": "mean"}, "timeseries", ".tsv")
    writer.write_table(participant, pd.DataFrame({"a": [1.0]}), parameters={"x": 1}, sources=[bold, events, atlas])
    group = writer.layout.group_path({"desc": "mean"}, "statmap", ".tsv")
    writer.write_table(group, pd.DataFrame({"a": [1.0]}), parameters={"x": 1}, sources=[str(participant)])

    sources = json.loads(sidecar_path(participant).read_text())["Sources"]
    assert sources == ["bids:fmriprep:sub-01/func/sub-01_task-rest_space-MNI152NLin2009cAsym_desc-preproc_bold.nii.gz",
                       "bids:raw:sub-01/func/sub-01_task-rest_events.tsv", "bids:myatlases:atlas.nii.gz"]
    assert json.loads(sidecar_path(group).read_text())["Sources"] == [
        "bids::sub-01/func/sub-01_stat-mean_timeseries.tsv"]  # OUTPUT_DIR itself
    description = json.loads((writer.output_dir / "dataset_description.json").read_text())
    links = description["DatasetLinks"]
    for uri, original in zip(sources, [bold, events, atlas], strict=True):
        _, name, relative = uri.split(":", 2)
        assert Path(unquote(urlparse(links[name]).path)) / relative == original
    assert {entry["URL"] for entry in description["SourceDatasets"]} == set(links.values())
    raw = next(entry for entry in description["SourceDatasets"] if entry["URL"] == links["raw"])
    assert raw["DOI"] == "doi:10.18112/openneuro.ds000001.v1"

    # another process (a new writer) reuses the links, and a re-run still finds its outputs complete
    again = DerivativesWriter(writer.output_dir, version="0.1.0", command=["bidsapp", "ds", "out", "participant"])
    again.ensure_dataset_description()
    assert again.links.uri(events) == "bids:raw:sub-01/func/sub-01_task-rest_events.tsv"
    assert json.loads((writer.output_dir / "dataset_description.json").read_text()) == description
    assert again.is_complete(participant, {"x": 1}) and again.is_complete(group, {"x": 1})


def test_minimum_volumes_after_scrubbing_only_where_scrubbing_ran():
    n = 100
    rng = np.random.default_rng(0)
    table = pd.DataFrame({c: rng.normal(size=n) for c in ("trans_x", "trans_y", "trans_z", "rot_x", "rot_y",
                                                          "rot_z", "csf", "white_matter", "global_signal")})
    table["framewise_displacement"] = np.abs(rng.normal(0.1, 0.05, n))
    table["std_dvars"] = np.abs(rng.normal(1.0, 0.1, n))
    for k in range(3):
        table[f"cosine{k:02d}"] = np.cos(np.pi * (k + 1) * (np.arange(n) + 0.5) / n)
    records = {}
    for name in ("simple", "scrubbing"):
        strategy = strategies.with_options(strategies.load_strategy(name), dummy_scans=0)
        chosen = denoise.select_confounds(table, None, strategy, path="x_desc-confounds_timeseries.tsv")
        records[name] = denoise.denoising_record(strategy, chosen, 2.0)
    assert "MinimumVolumesAfterScrubbing" not in records["simple"]
    assert records["scrubbing"]["MinimumVolumesAfterScrubbing"] == 120  # ceil(240 s / 2 s)
