"""The cached index: pybids' answers as a plain BIDSLayout gives them, invalidation, concurrent jobs."""

from __future__ import annotations

import json
import logging
import os
import shutil
import subprocess
import sys
from pathlib import Path

import nibabel as nib
import numpy as np
from bids import BIDSLayout

from bidsapp.cli import parse_arguments
from bidsapp.config import build_config
from bidsapp.inputs.discovery import discover
from bidsapp.inputs.fmriprep import _QUERIES
from bidsapp.inputs.index import query_index

RUN = "sub-01/ses-1/func/sub-01_ses-1_task-motor_run-1"
SPACE = "space-MNI152NLin2009cAsym"


def _discover(bids_dir: Path, work: Path, *extra: str):
    argv = [str(bids_dir), str(work.parent / "out"), "participant", "-w", str(work), *extra]
    return discover(build_config(parse_arguments(argv), ["bidsapp"]), defer_problems=True)


def _add_unread_files(bids_dir: Path) -> None:
    """Files discovery never asks about (anat, fmap, figures, reports) and raw sidecars it inherits from."""
    deriv = bids_dir / "derivatives" / "fmriprep"
    image = nib.Nifti1Image(np.zeros((2, 2, 2), np.float32), np.eye(4))
    for path in (bids_dir / "sub-01" / "ses-1" / "anat" / "sub-01_ses-1_T1w.nii.gz",
                 bids_dir / "sub-01" / "ses-1" / "fmap" / "sub-01_ses-1_phasediff.nii.gz",
                 deriv / "sub-01" / "anat" / f"sub-01_{SPACE}_desc-preproc_T1w.nii.gz"):
        path.parent.mkdir(parents=True, exist_ok=True)
        nib.save(image, path)
    (deriv / "sub-01" / "figures").mkdir()
    (deriv / "sub-01" / "figures" / "sub-01_task-rest_desc-carpetplot_bold.svg").write_text("<svg/>")
    (deriv / "sub-01.html").write_text("<html/>")
    (bids_dir / "task-rest_bold.json").write_text(json.dumps({"RepetitionTime": 2.0}))
    (bids_dir / "sub-01" / "sub-01_task-motor_bold.json").write_text(json.dumps({"RepetitionTime": 2.0}))


def test_answers_equal_a_plain_bidslayouts(fmriprep, tmp_path):
    bids_dir = fmriprep("sessions")
    _add_unread_files(bids_dir)
    deriv = bids_dir / "derivatives" / "fmriprep"
    index = query_index(bids_dir, [deriv], tmp_path / "work", _QUERIES)
    plain = BIDSLayout(bids_dir, validate=False, derivatives=[deriv])
    for name, query in _QUERIES.items():
        expected = sorted(plain.get(return_type="filename", **query))
        if name == "sidecars":  # discovery inherits from raw sidecars only: fMRIPrep's own are read by name
            expected = [path for path in expected if "_desc-" not in path and "_space-" not in path]
        assert expected and list(index.found[name]) == expected, name
    assert len(index.found["bold"]) == 12 and len(index.found["sidecars"]) > 2  # 12 runs; both raw sidecars too
    anat = query_index(bids_dir, [deriv], tmp_path / "work2", {"anat": {"suffix": "T1w"}})
    assert plain.get(suffix="T1w") and anat.found["anat"] == ()  # anat/ is never indexed


def test_cache_reused_and_each_change_seen(fmriprep, tmp_path, caplog):
    bids_dir, work = fmriprep("sessions"), tmp_path / "work"
    deriv = bids_dir / "derivatives" / "fmriprep"
    caplog.set_level(logging.INFO, logger="bidsapp.inputs.index")
    first = _discover(bids_dir, work)
    assert "Indexing" in caplog.text and len(first.runs) == 12 and not first.skipped
    caplog.clear()
    again = _discover(bids_dir, work)
    assert "Reusing the dataset index cached in" in caplog.text and "Indexing" not in caplog.text
    assert again.runs == first.runs

    # same size and modification time: the cached check stands (proof it is reused) ...
    sidecar = deriv / f"{RUN}_{SPACE}_desc-preproc_bold.json"
    stat = sidecar.stat()
    text = sidecar.read_text()
    assert '"RepetitionTime": 2.0' in text
    sidecar.write_text(text.replace('"RepetitionTime": 2.0', '"RepetitionTime": 3.0'))
    os.utime(sidecar, ns=(stat.st_atime_ns, stat.st_mtime_ns))
    run = next(r for r in _discover(bids_dir, work).runs if r.data.name.startswith(Path(RUN).name))
    assert run.repetition_time == 2.0
    # ... a new modification time is seen
    os.utime(sidecar, ns=(stat.st_atime_ns, stat.st_mtime_ns + 10**9))
    run = next(r for r in _discover(bids_dir, work).runs if r.data.name.startswith(Path(RUN).name))
    assert run.repetition_time == 3.0

    # a changed size: two more confounds rows than volumes
    confounds = deriv / f"{RUN}_desc-confounds_timeseries.tsv"
    rows = confounds.read_text().splitlines()
    confounds.write_text("\n".join(rows + rows[-2:]) + "\n")
    found = _discover(bids_dir, work)
    assert [(p.path, p.message.split(" but ")[0]) for p in found.skipped] == [(confounds, f"has {len(rows) + 1} rows")]

    # a file removed: the mask of another run
    mask = deriv / f"sub-02/ses-2/func/sub-02_ses-2_task-rest_{SPACE}_desc-brain_mask.nii.gz"
    mask.unlink()
    found = _discover(bids_dir, work)
    assert sorted(str(p.path) for p in found.skipped) == sorted([str(confounds), str(mask)])
    assert "brain mask not found" in next(p.message for p in found.skipped if p.path == mask)

    # files added: a third motor run, found by pybids again
    caplog.clear()
    for source in (deriv / "sub-01" / "ses-1" / "func").glob("*_run-2_*"):
        shutil.copy(source, source.with_name(source.name.replace("_run-2_", "_run-3_")))
    found = _discover(bids_dir, work, "--participant-label", "01")
    assert "Indexing" in caplog.text
    assert sorted(r.name for r in found.runs if r.entities.get("ses") == "1") == [
        "sub-01_ses-1_task-motor_run-2", "sub-01_ses-1_task-motor_run-3", "sub-01_ses-1_task-rest"]


def test_concurrent_array_tasks_share_the_cache(fmriprep, tmp_path, caplog):
    bids_dir, work = fmriprep("21+"), tmp_path / "work"
    script = ("import sys; from bidsapp.cli import parse_arguments; from bidsapp.config import build_config; "
              "from bidsapp.inputs.discovery import discover; "
              "print(len(discover(build_config(parse_arguments(sys.argv[1:]), ['bidsapp'])).runs))")
    jobs = [subprocess.Popen([sys.executable, "-c", script, str(bids_dir), str(tmp_path / "out"), "participant",
                              "-w", str(work), "--participant-label", label], stdout=subprocess.PIPE, text=True)
            for label in ("01", "02", "03", "01")]
    assert [job.communicate(timeout=300)[0].strip() for job in jobs] == ["3"] * 4
    assert [job.returncode for job in jobs] == [0] * 4
    (folder,) = (work / "index").iterdir()
    assert sorted(p.name for p in folder.iterdir()) == ["files.pickle", "runs-sub-01.pickle", "runs-sub-02.pickle",
                                                      "runs-sub-03.pickle"]  # no temporary file left
    caplog.set_level(logging.INFO, logger="bidsapp.inputs.index")
    cached, fresh = _discover(bids_dir, work), _discover(bids_dir, tmp_path / "w2")
    assert [r.name for r in cached.runs] == [r.name for r in fresh.runs]
    assert caplog.text.count("Reusing the dataset index cached in") == 1


def test_run_check_reads_headers_of_every_kind(fmriprep, tmp_path):
    bids_dir = fmriprep("21+")
    func = bids_dir / "derivatives" / "fmriprep" / "sub-01" / "func"
    (motor1, motor2, rest) = sorted(func.glob("*_desc-preproc_bold.nii.gz"))
    original = nib.load(motor1)
    data = np.asarray(original.dataobj)
    big_endian = nib.Nifti1Header(endianness=">")
    nib.save(nib.Nifti1Image(data.astype(">f4"), original.affine, big_endian), motor1)
    nib.save(nib.Nifti2Image(data, original.affine), motor2)
    nib.save(nib.Nifti1Image(data[..., 0], original.affine), rest)
    assert nib.load(motor1).header.endianness == ">" and isinstance(nib.load(motor2), nib.Nifti2Image)
    found = _discover(bids_dir, tmp_path / "work", "--participant-label", "01")
    shapes = {run.data: (*run.shape, run.n_volumes) for run in found.runs}
    assert shapes == {path: nib.load(path).shape for path in (motor1, motor2)}  # nibabel's own reading
    assert [(p.path, p.message) for p in found.skipped] == [(rest, "is 3-D, a BOLD run must be 4-D")]

    rest.write_bytes(b"\x1f\x8b" + b"not gzip at all")
    (problem,) = _discover(bids_dir, tmp_path / "work", "--participant-label", "01").skipped
    assert problem.path == rest and problem.message.startswith("cannot be read as NIfTI (")
