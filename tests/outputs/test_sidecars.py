"""bidsapp.outputs.sidecars: the typed Contrast and Atlas records round-trip through sidecar JSON."""

from __future__ import annotations

import json

from bidsapp.outputs.sidecars import AtlasRecord, ContrastRecord, read_sidecar


def _through_json(content: dict) -> dict:
    return json.loads(json.dumps(content))


def test_contrast_record_round_trips_in_the_hcp_form():
    record = ContrastRecord("lfMinusRf", "lf - rf", ("lf", "rf", "t"), {"lf": 1.0, "rf": -1.0})
    content = _through_json(record.to_sidecar())
    assert content == {"Contrast": {"Name": "lfMinusRf", "Expression": "lf - rf", "Weights": {"lf": 1.0, "rf": -1.0}},
                       "Conditions": ["lf", "rf", "t"]}
    assert ContrastRecord.from_sidecar({**content, "Description": "x"}) == record
    assert not record.single_condition


def test_single_condition_needs_the_conditions():
    assert ContrastRecord("lf", " lf ", ("lf", "rf")).single_condition
    assert not ContrastRecord("lf", "lf").single_condition  # e.g. a selective average, which records no Conditions
    content = ContrastRecord("lf", "lf", weights={"lf": 1.0}).to_sidecar()
    assert "Conditions" not in content and not ContrastRecord.from_sidecar(content).single_condition


def test_contrast_record_absent():
    assert ContrastRecord.from_sidecar({}) is None
    assert ContrastRecord.from_sidecar({"Contrast": "lf"}) is None


def test_atlas_record_round_trips():
    voxel = AtlasRecord("AICHA", "MNI152", [[1.0, 2.0, 3.0], [None, None, None]], ("a.nii.gz", "a.tsv"), "", "c", 2)
    content = _through_json({"Atlas": voxel.to_sidecar()})
    assert list(content["Atlas"]) == ["Name", "Space", "Files", "Description", "Citation", "NumberOfParcels",
                                      "NodeCoordinates"]
    assert AtlasRecord.from_sidecar(content) == voxel
    parcel = AtlasRecord("Glasser", "fsLR")
    assert parcel.to_sidecar() == {"Name": "Glasser", "Space": "fsLR"}
    assert AtlasRecord.from_sidecar({"Atlas": parcel.to_sidecar()}) == parcel
    assert AtlasRecord.from_sidecar({"Atlas": "Glasser"}) is None


def test_read_sidecar(tmp_path):
    data = tmp_path / "sub-01_stat-z_statmap.nii.gz"
    assert read_sidecar(data) is None
    (tmp_path / "sub-01_stat-z_statmap.json").write_text('{"Contrast": {"Name": "a", "Expression": "a"}}')
    assert ContrastRecord.from_sidecar(read_sidecar(data)) == ContrastRecord("a", "a")
    (tmp_path / "sub-01_stat-z_statmap.json").write_text("[1]")
    assert read_sidecar(data) is None
