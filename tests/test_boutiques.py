"""The Boutiques descriptor: generated from the parser, valid for BIDS apps, and launchable."""

from __future__ import annotations

import json
import os
import shlex
import subprocess
import sys
from pathlib import Path

import pytest

from bidsapp.boutiques import ERROR_CODES, descriptor
from bidsapp.cli import build_parser, parse_arguments

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
