"""The Boutiques descriptor: generated from the parser, valid for BIDS apps, and launchable."""

from __future__ import annotations

import json
import os
import re
import shlex
import subprocess
import sys
from pathlib import Path
from urllib.parse import unquote, urlparse

import nibabel as nib
import numpy as np
import pandas as pd
import pytest
from scipy import stats

from bidsapp.boutiques import ERROR_CODES, descriptor
from bidsapp.cli import main
from bidsapp.parser import build_parser, parse_arguments

ROOT = Path(__file__).resolve().parents[1]
BOSH = str(Path(sys.executable).parent / "bosh")


def test_committed_descriptor_is_generated_from_parser():
    committed = json.loads((ROOT / "boutiques.json").read_text())
    assert committed == json.loads(json.dumps(descriptor())), (
        "boutiques.json is stale: python -m bidsapp.boutiques > boutiques.json")


def test_every_option_is_an_input_with_same_flag_type_default_choices():
    inputs = {entry["id"]: entry for entry in descriptor()["inputs"]}
    for action in build_parser()._actions:
        if not action.option_strings or action.dest in ("help", "version"):
            continue
        entry = inputs[action.dest]
        assert entry["command-line-flag"] in action.option_strings
        assert entry.get("default-value") == action.default or (action.default in (None, False, 0)
                                                               and "default-value" not in entry)
        assert entry.get("value-choices") == (list(action.choices) if action.choices else None)
        assert entry.get("list", False) == (action.nargs == "+")
    assert [e["code"] for e in descriptor()["error-codes"]] == [code for code, _ in ERROR_CODES]
    assert {code for code, _ in ERROR_CODES} == {1, 2, 16, 17, 18, 66}


def test_bosh_validate_bids():
    result = subprocess.run([BOSH, "validate", "-b", str(ROOT / "boutiques.json")], capture_output=True, text=True)
    assert result.returncode == 0, result.stdout + result.stderr
    assert "BIDS validation OK" in result.stdout + result.stderr


def test_simulated_command_parses_to_the_invocation(tmp_path):
    invocation = {"bids_dir": "/data", "output_dir_name": "/out", "analysis_level": "group",
                  "participant_label": ["01", "02"], "session_label": ["1"], "n_perm": 100,
                  "correction": ["fdr", "tfce"], "dry_run": True, "connectivity": ["correlation", "partial correlation"],
                  "contrast": ["lfMinusRf=lf - rf"], "alpha": 0.01}
    path = tmp_path / "invocation.json"
    path.write_text(json.dumps(invocation))
    result = subprocess.run([BOSH, "exec", "simulate", str(ROOT / "boutiques.json"), "-i", str(path)],
                            capture_output=True, text=True, check=True)
    command = result.stdout.split("Generated Command:")[-1].strip().split("; ", 1)[1]
    argv = shlex.split(command)
    assert argv[0] == "bidsapp"
    values = parse_arguments(argv[1:])
    assert values["participant_label"] == ["01", "02"] and values["session_label"] == ["1"]
    assert values["n_perm"] == 100 and values["correction"] == ["fdr", "tfce"] and values["dry_run"]
    assert values["connectivity"] == ["correlation", "partial correlation"]
    assert values["contrast"] == ["lfMinusRf=lf - rf"] and values["alpha"] == 0.01


@pytest.mark.slow
def test_bosh_launch_on_demo(demo, tmp_path):
    invocation = {"bids_dir": str(demo.bids_dir), "output_dir_name": str(tmp_path / "out"),
                  "analysis_level": "participant", "participant_label": ["01"], "dry_run": True,
                  "skip_bids_validation": True, "work_dir": str(tmp_path / "work")}
    path = tmp_path / "invocation.json"
    path.write_text(json.dumps(invocation))
    env = {**os.environ, "PATH": f"{Path(sys.executable).parent}{os.pathsep}{os.environ['PATH']}"}
    result = subprocess.run([BOSH, "exec", "launch", "--no-container", str(ROOT / "boutiques.json"), str(path)],
                            capture_output=True, text=True, env=env, cwd=tmp_path)
    assert result.returncode == 0, result.stdout + result.stderr
    assert "sub-01: 3 runs" in result.stdout


# -- every documented invocation, and both levels launched --------------------------------------------------------
def simulate(invocation: dict, tmp_path: Path) -> list[str]:
    """The bidsapp argv ``bosh exec simulate`` generates for ``invocation``."""
    path = tmp_path / "invocation.json"
    path.write_text(json.dumps(invocation))
    result = subprocess.run([BOSH, "exec", "simulate", str(ROOT / "boutiques.json"), "-i", str(path)],
                            capture_output=True, text=True, check=True)
    command = result.stdout.split("Generated Command:")[-1].strip().split("; ", 1)[1]
    return shlex.split(command)


def readme_invocations() -> list[dict]:
    """The JSON invocations in the README's Boutiques section."""
    section = (ROOT / "README.md").read_text().split("### Boutiques", 1)[1].split("\n### ", 1)[0]
    return [json.loads(block) for block in re.findall(r"```json\n(.*?)```", section, flags=re.S)]


def test_every_documented_invocation_gives_its_command(tmp_path):
    examples = [test["invocation"] for test in descriptor()["tests"]] + readme_invocations()
    levels = {example["analysis_level"] for example in examples}
    assert levels == {"participant", "group"} and len(readme_invocations()) >= 2
    for invocation in examples:
        argv = simulate(invocation, tmp_path)
        assert argv[0] == "bidsapp"
        values = parse_arguments(argv[1:])
        # OUTPUT_DIR is in the command at both levels (it used to be dropped from group invocations)
        assert (values["bids_dir"], values["output_dir"], values["analysis_level"]) == (
            invocation["bids_dir"], invocation["output_dir_name"], invocation["analysis_level"]), argv
        for key, value in invocation.items():
            if key not in ("bids_dir", "output_dir_name", "analysis_level"):
                assert values[key] == value, (key, argv)


def test_group_invocation_without_output_dir_name_is_refused(tmp_path):
    path = tmp_path / "invocation.json"
    path.write_text(json.dumps({"bids_dir": "/data", "analysis_level": "group"}))
    result = subprocess.run([BOSH, "exec", "simulate", str(ROOT / "boutiques.json"), "-i", str(path)],
                            capture_output=True, text=True)
    assert result.returncode != 0 and "output_dir_name" in result.stdout + result.stderr


PARTICIPANT = ["--skip-bids-validation", "--seeds", "PCC=0,-52,26", "--nprocs", "2"]
GROUP = ["--correction", "fdr", "fwe", "--n-perm", "100"]


def _launch(invocation: dict, tmp_path: Path, name: str) -> subprocess.CompletedProcess:
    path = tmp_path / f"{name}.json"
    path.write_text(json.dumps(invocation))
    env = {**os.environ, "PATH": f"{Path(sys.executable).parent}{os.pathsep}{os.environ['PATH']}"}
    return subprocess.run([BOSH, "exec", "launch", "--no-container", str(ROOT / "boutiques.json"), str(path)],
                          capture_output=True, text=True, env=env, cwd=tmp_path)


@pytest.fixture(scope="module")
def both_ways(fmriprep_templates, tmp_path_factory):
    """Participant then group level on a small fMRIPrep dataset, by the CLI and by ``bosh exec launch``."""
    root = tmp_path_factory.mktemp("boutiques")
    bids_dir = fmriprep_templates["21+"]
    cli = root / "cli"
    assert main([str(bids_dir), str(cli), "participant", "-w", str(root / "work_cli"), *PARTICIPANT]) == 0
    assert main([str(bids_dir), str(cli), "group", "-w", str(root / "work_cli"), *GROUP]) == 0
    launched = root / "bosh"
    common = {"bids_dir": str(bids_dir), "output_dir_name": str(launched), "work_dir": str(root / "work_bosh")}
    participant = {**common, "analysis_level": "participant", "skip_bids_validation": True,
                   "seeds": ["PCC=0,-52,26"], "nprocs": 2}
    group = {**common, "analysis_level": "group", "correction": ["fdr", "fwe"], "n_perm": 100}
    results = [_launch(participant, root, "participant"), _launch(group, root, "group")]
    return bids_dir, cli, launched, results


def _data_files(root: Path) -> set[Path]:
    return {path.relative_to(root) for path in root.rglob("*") if path.is_file() and "logs" not in path.parts}


@pytest.mark.slow
def test_bosh_launch_both_levels_writes_what_the_cli_writes(both_ways):
    _, cli, launched, results = both_ways
    for result in results:
        assert result.returncode == 0, result.stdout[-2000:] + result.stderr[-2000:]
    assert "group level done" in results[1].stdout + results[1].stderr
    files = _data_files(cli)
    assert _data_files(launched) == files
    assert any(path.parts[0] == "group" and path.name.endswith("_mask.nii.gz") for path in files)
    compared = 0
    for path in sorted(files):
        if path.name.endswith(".tsv"):
            pd.testing.assert_frame_equal(pd.read_csv(launched / path, sep="\t"), pd.read_csv(cli / path, sep="\t"))
        elif path.name.endswith(".nii.gz"):
            np.testing.assert_array_equal(np.asanyarray(nib.load(launched / path).dataobj),
                                          np.asanyarray(nib.load(cli / path).dataobj))
        else:
            continue
        compared += 1
    assert compared > 50


# -- the README's output names are the files a run writes ----------------------------------------------------------
def _pattern(text: str) -> str:
    """A README file name (``<x>`` a value, ``<a\\|b>`` alternatives, ``[...]`` optional, ``...`` any prefix)."""
    text = text.replace("\\|", "|")
    out, index = "", 0
    while index < len(text):
        char = text[index]
        if text.startswith("...", index):
            out, index = out + ".*", index + 3
        elif char == "<":
            end = text.index(">", index)
            inner = text[index + 1:end]
            if "|" in inner:
                out += "(?:" + "|".join(re.escape(option) for option in inner.split("|")) + ")"
            elif inner == "time":
                out += "[0-9-]+"
            elif inner in ("run", "analysis"):
                out += r"[A-Za-z0-9]+-[A-Za-z0-9]+(?:_[A-Za-z0-9]+-[A-Za-z0-9]+)*"
            else:
                out += "[A-Za-z0-9]+"
            index = end + 1
        elif char == "[":
            out, index = out + "(?:", index + 1
        elif char == "]":
            out, index = out + ")?", index + 1
        else:
            out, index = out + re.escape(char), index + 1
    return out


def readme_names() -> dict[str, re.Pattern]:
    """Each file name of the README's Outputs table (HCP rows left out) with the pattern it stands for."""
    section = (ROOT / "README.md").read_text().split("## Outputs", 1)[1].split("\n## ", 1)[0]
    names = {}
    for line in section.splitlines():
        if not line.startswith("| `"):
            continue
        cell = line[2:].split(" | ", 1)[0]
        group = cell.startswith("`group/")
        for name in re.findall(r"`([^`]+)`", cell):
            path = name if "/" in name or not group else f"group/{name}"
            if "/" in path:
                names[name] = re.compile(_pattern(path))
            else:
                names[name] = re.compile(r"(?:.*/)?" + _pattern(path))
    return names


@pytest.mark.slow
def test_readme_output_names_match_the_files_written(both_ways):
    _, cli, _, _ = both_ways
    names = readme_names()
    written = sorted(path.relative_to(cli).as_posix() for path in cli.rglob("*")
                     if path.is_file() and not path.name.endswith(".json") or path.name == "dataset_description.json")
    unnamed = [path for path in written if not any(p.fullmatch(path) for p in names.values())]
    assert unnamed == [], "files the README's Outputs table does not name"
    # every name is a file of this run, but those of options or atlases it did not use
    unused = {name for name, p in names.items() if not any(p.fullmatch(path) for path in written)}
    assert unused <= {"..._desc-networks_relmat.tsv", "..._networks.tsv"}, unused


# -- headers and provenance of a real run ----------------------------------------------------------------------
@pytest.mark.slow
def test_run_headers_match_scipy_and_provenance_resolves(both_ways):
    bids_dir, cli, _, _ = both_ways
    bold = nib.load(next(bids_dir.glob("derivatives/fmriprep/sub-01/func/*_bold.nii.gz"))).header
    t_path = next((cli / "group").glob("task-motor_*_contrast-lf_stat-t_desc-mean_statmap.nii.gz"))
    t_img = nib.load(t_path)
    header = t_img.header
    assert (int(header["sform_code"]), int(header["qform_code"])) == (int(bold["sform_code"]),
                                                                     int(bold["qform_code"])) == (4, 4)
    assert header.get_xyzt_units() == ("mm", "sec")
    intent, (dof,), _ = header.get_intent()
    assert intent == "t test" and dof == 2  # one-sample over 3 participants
    # the header's degrees of freedom turn the t map into the p map bidsapp wrote (two-sided)
    t = t_img.get_fdata()
    p_img = nib.load(str(t_path).replace("_stat-t_", "_stat-p_"))
    assert p_img.header.get_intent()[0] == "p value"
    inside = t != 0
    np.testing.assert_allclose(p_img.get_fdata()[inside], 2 * stats.t.sf(np.abs(t[inside]), dof), rtol=1e-4)
    first = next(cli.glob("sub-01/func/*_contrast-lf_stat-t_statmap.nii.gz"))
    assert nib.load(first).header.get_intent()[1] == (
        json.loads(first.with_name(first.name.replace(".nii.gz", ".json")).read_text())["DegreesOfFreedom"],)
    masks = sorted((cli / "group").glob("*_mask.nii.gz"))
    assert masks and all(nib.load(mask).get_data_dtype() == np.uint8 for mask in masks)

    description = json.loads((cli / "dataset_description.json").read_text())
    assert [entry["Command"].split()[3] for entry in description["GeneratedBy"]] == ["participant", "group"]
    for sidecar in [*cli.glob("sub-01/func/*.json"), *(cli / "group").glob("*.json")]:
        for uri in json.loads(sidecar.read_text()).get("Sources", []):
            _, name, relative = uri.split(":", 2)
            root = cli if name == "" else Path(unquote(urlparse(description["DatasetLinks"][name]).path))
            assert (root / relative).is_file(), (sidecar.name, uri)

    # a re-run of the same command rewrites nothing and records no new command line
    data = {path: path.stat().st_mtime_ns for path in cli.glob("sub-*/func/*") if path.is_file()}
    assert main([str(bids_dir), str(cli), "participant", "-w", str(cli.parent / "work_cli"), *PARTICIPANT]) == 0
    assert {path: path.stat().st_mtime_ns for path in data} == data
    assert json.loads((cli / "dataset_description.json").read_text()) == description
