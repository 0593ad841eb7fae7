"""The command line: parsing, configuration files, validation of options, exit codes."""

from __future__ import annotations

import json

import pytest

from bidsapp import __version__
from bidsapp.cli import main
from bidsapp.config import build_config
from bidsapp.errors import ProblemsError
from bidsapp.group.level import design_label
from bidsapp.parser import build_parser, parse_arguments


def test_version(capsys):
    assert main(["--version"]) == 0
    assert capsys.readouterr().out.strip() == f"bidsapp {__version__}"


def test_help_lists_every_option(capsys):
    assert main(["--help"]) == 0
    out = capsys.readouterr().out
    for option in ("--participant-label", "--session-label", "--task", "--space", "--bids-filter-file",
                   "--work-dir", "--nprocs", "--mem-gb", "--config", "--skip-bids-validation", "--dry-run",
                   "--input-type", "--derivatives", "--skip-bad-runs", "--verbose"):
        assert option in out


def test_missing_positionals_is_usage_error(capsys):
    assert main([]) == 2
    assert "required" in capsys.readouterr().err


def test_bad_choice_is_usage_error(tmp_path, capsys):
    assert main([str(tmp_path), str(tmp_path / "out"), "participant", "--input-type", "nifti"]) == 2
    assert "--input-type" in capsys.readouterr().err


def test_unknown_analysis_level_exit_17(tmp_path, capsys):
    assert main([str(tmp_path), str(tmp_path / "out"), "subject"]) == 17
    err = capsys.readouterr().err
    assert "'subject'" in err and "participant" in err and len(err.strip().splitlines()) == 1


def test_missing_bids_dir_exit_66(tmp_path, capsys):
    assert main([str(tmp_path / "nope"), str(tmp_path / "out"), "participant"]) == 66
    assert "nope" in capsys.readouterr().err


def test_not_a_dataset_exit_16(tmp_path, capsys):
    (tmp_path / "empty").mkdir()
    assert main([str(tmp_path / "empty"), str(tmp_path / "out"), "participant", "--skip-bids-validation"]) == 16
    assert "dataset_description.json" in capsys.readouterr().err
    assert not (tmp_path / "out" / "dataset_description.json").exists()


def test_every_problem_reported_at_once(tmp_path, capsys):
    code = main([str(tmp_path / "nope"), str(tmp_path / "out"), "both", "--participant-label", "0-1",
                 "--nprocs", "0", "--mem-gb", "-1"])
    err = capsys.readouterr().err.strip().splitlines()
    assert code == 66  # the first problem's code
    assert len(err) == 5
    assert any("--participant-label '0-1'" in line for line in err)
    assert any("--nprocs 0" in line for line in err)
    assert any("--mem-gb -1" in line for line in err)
    assert any("'both'" in line for line in err)


def test_labels_normalised(tmp_path):
    values = parse_arguments([str(tmp_path), str(tmp_path / "out"), "participant",
                              "--participant_label", "sub-01", "02", "--session-label", "ses-A"])
    config = build_config(values, ["bidsapp"])
    assert config.selection.participant_labels == ("01", "02")
    assert config.selection.session_labels == ("A",)


def test_config_file_values_and_command_line_wins(tmp_path):
    config_file = tmp_path / "bidsapp.yml"
    config_file.write_text("participant-label: ['03']\nnprocs: 1\nspace: MNI152NLin6Asym\nmem_gb: 4\n")
    values = parse_arguments([str(tmp_path), str(tmp_path / "out"), "participant", "--config", str(config_file),
                              "--nprocs", "2"])
    config = build_config(values, ["bidsapp"])
    assert config.execution.nprocs == 2  # command line wins
    assert config.execution.mem_gb == 4.0
    assert config.selection.space == "MNI152NLin6Asym"
    assert config.selection.participant_labels == ("03",)


def test_config_file_json(tmp_path):
    config_file = tmp_path / "bidsapp.json"
    config_file.write_text(json.dumps({"task": ["rest"], "skip_bids_validation": True}))
    config = build_config(parse_arguments([str(tmp_path), str(tmp_path / "o"), "group", "--config",
                                           str(config_file)]), ["bidsapp"])
    assert config.selection.tasks == ("rest",)
    assert config.execution.skip_bids_validation


def test_config_file_unknown_key_exit_2(tmp_path, capsys):
    config_file = tmp_path / "bidsapp.yml"
    config_file.write_text("n_procs: 2\n")
    assert main([str(tmp_path), str(tmp_path / "o"), "participant", "--config", str(config_file)]) == 2
    assert "n_procs" in capsys.readouterr().err


def test_config_file_missing_exit_66(tmp_path, capsys):
    assert main([str(tmp_path), str(tmp_path / "o"), "participant", "--config", str(tmp_path / "c.yml")]) == 66
    assert "c.yml" in capsys.readouterr().err


def test_bids_filter_file(tmp_path):
    filters = tmp_path / "filters.json"
    filters.write_text(json.dumps({"bold": {"session": "ses-01", "run": [1, 2]}}))
    config = build_config(parse_arguments([str(tmp_path), str(tmp_path / "o"), "participant",
                                           "--bids-filter-file", str(filters)]), ["bidsapp"])
    assert dict(config.selection.run_filters) == {"ses": ("01",), "run": ("1", "2")}


@pytest.mark.parametrize(("content", "code", "needle"), [
    (None, 66, "not found"),
    ("{not json", 2, "filters.json: line 1, column 2: Expecting property name"),
    (json.dumps({"t1w": {}}), 2, '{"bold"'),
    (json.dumps({"bold": {"colour": "red"}}), 2, "unknown entity 'colour'"),
])
def test_bids_filter_file_errors(tmp_path, capsys, content, code, needle):
    filters = tmp_path / "filters.json"
    if content is not None:
        filters.write_text(content)
    assert main([str(tmp_path), str(tmp_path / "o"), "participant", "--bids-filter-file", str(filters)]) == code
    assert needle in capsys.readouterr().err


def test_output_dir_must_differ_from_input(tmp_path):
    with pytest.raises(Exception, match="OUTPUT_DIR"):
        build_config(parse_arguments([str(tmp_path), str(tmp_path), "participant"]), ["bidsapp"])


def test_problems_error_keeps_first_code():
    from bidsapp.errors import MissingInputError, UsageError

    error = ProblemsError([UsageError("a"), MissingInputError("b")])
    assert error.exit_code == 2 and str(error) == "a\nb"


def test_parser_has_no_option_without_destination():
    """Every option the parser offers is a configuration value (no option that does nothing)."""
    parser = build_parser()
    config_fields = {"input_type", "derivatives", "participant_label", "session_label", "task", "space",
                     "bids_filter_file", "skip_bad_runs", "work_dir", "nprocs", "mem_gb", "config",
                     "skip_bids_validation", "dry_run", "slurm_script", "verbose", "help", "version",
                     "denoise_strategy", "dummy_scans", "high_pass", "low_pass", "fd_threshold", "smoothing_fwhm",
                     "atlas", "connectivity", "seeds", "seed_radius", "contrast", "hrf_model", "noise_model",
                     "group_test", "group_column", "covariates", "group_model", "correction", "alpha",
                     "height_threshold", "cluster_extent", "n_perm", "random_seed", "no_reports"}
    assert {action.dest for action in parser._actions if action.option_strings} == config_fields


def test_participant_options_parsed(tmp_path):
    values = parse_arguments([str(tmp_path), str(tmp_path / "o"), "participant", "--seeds", "PCC=0,-52,26",
                              "--contrast", "lfMinusRf=lf - rf", "--dummy-scans", "auto", "--connectivity",
                              "correlation", "partial correlation", "--high-pass", "0.01", "--low-pass", "0.1"])
    analysis = build_config(values, ["bidsapp"]).analysis
    assert analysis.seeds[0].name == "PCC" and (analysis.seeds[0].y, analysis.seeds[0].z) == (-52.0, 26.0)
    assert analysis.contrasts[0].name == "lfMinusRf" and analysis.contrasts[0].expression == "lf - rf"
    assert analysis.dummy_scans == "auto" and analysis.connectivity == ("correlation", "partial correlation")
    assert (analysis.high_pass_hz, analysis.low_pass_hz, analysis.fd_threshold_mm) == (0.01, 0.1, None)


def test_participant_option_errors_all_reported(tmp_path, capsys):
    code = main([str(tmp_path), str(tmp_path / "o"), "participant", "--seeds", "PCC=0,-52", "--contrast", "a-b=a - b",
                 "--dummy-scans", "some", "--connectivity", "coherence", "--high-pass", "0.1", "--low-pass", "0.01",
                 "--hrf-model", "gamma"])
    lines = [line for line in capsys.readouterr().err.splitlines() if line.startswith("bidsapp:")]
    assert code == 2 and len(lines) == 6
    for needle in ("--seeds 'PCC=0,-52'", "--contrast 'a-b=a - b'", "--dummy-scans some", "--connectivity 'coherence'",
                   "--high-pass 0.1 must be below", "--hrf-model 'gamma'"):
        assert any(needle in line for line in lines), needle


def test_group_options(tmp_path):
    values = parse_arguments([str(tmp_path), str(tmp_path / "o"), "group", "--group-test", "twosample",
                              "--group-column", "group", "--covariates", "age", "sex", "--correction", "fdr", "tfce",
                              "--n-perm", "1000", "--random-seed", "7", "--alpha", "0.01"])
    group = build_config(values, ["bidsapp"]).group
    assert (group.test, group.group_column, group.covariates) == ("twosample", "group", ("age", "sex"))
    assert group.corrections == ("fdr", "tfce") and (group.n_perm, group.random_seed, group.alpha) == (1000, 7, 0.01)
    assert design_label(group) == "twosampleGroup"  # the report's desc-<label>, one per design


@pytest.mark.parametrize(("arguments", "label"), [
    ((), "onesample"), (("--group-test", "paired"), "paired"),
    (("--group-test", "anova", "--group-column", "dx_group"), "anovaDxgroup"),
    (("--group-model", "seed-004 model.yml"), "modelSeed004model")])
def test_group_report_label_names_the_design(tmp_path, arguments, label):
    (tmp_path / "seed-004 model.yml").write_text("conditions: [a, b]\ncontrasts:\n  aMinusB: a - b\n")
    values = parse_arguments([str(tmp_path), str(tmp_path / "o"), "group",
                              *(str(tmp_path / a) if a.endswith(".yml") else a for a in arguments)])
    assert design_label(build_config(values, ["bidsapp"]).group) == label


def test_group_option_errors(tmp_path, capsys):
    code = main([str(tmp_path), str(tmp_path / "o"), "group", "--group-test", "twosample", "--correction", "holm",
                 "--alpha", "1.5", "--n-perm", "0", "--cluster-extent", "-3"])
    lines = [line for line in capsys.readouterr().err.splitlines() if line.startswith("bidsapp:")]
    assert code == 2 and len(lines) == 5
    for needle in ("--group-column", "--correction 'holm'", "--alpha 1.5", "--n-perm 0", "--cluster-extent -3"):
        assert any(needle in line for line in lines), needle


def test_unknown_strategy_and_atlas_reported_together(tmp_path, capsys):
    code = main([str(tmp_path), str(tmp_path / "o"), "participant", "--denoise-strategy", "bogus",
                 "--atlas", "Nope"])
    lines = [line for line in capsys.readouterr().err.splitlines() if line.startswith("bidsapp:")]
    assert code == 2 and len(lines) == 2
    assert "--denoise-strategy 'bogus'" in lines[0] and "simple" in lines[0] and "--atlas Nope" in lines[1]
