"""The command line: the parser and its option values (a ``--config`` file's included).

:mod:`bidsapp.cli` runs it; :mod:`bidsapp.boutiques` describes it; :mod:`bidsapp.slurm` writes it again into job
scripts.
"""

from __future__ import annotations

import argparse
from collections.abc import Sequence
from pathlib import Path

from bidsapp import __version__
from bidsapp.errors import UsageError
from bidsapp.options import DEFAULT_SPACE, INPUT_TYPES, load_config_file
from bidsapp.steps.strategies import preset_names


class HelpFormatter(argparse.HelpFormatter):
    """Help that states an option's default once: where its text does not already and it has one."""

    def _get_help_string(self, action: argparse.Action) -> str:
        text = action.help or ""
        default = action.default
        if "(default" in text or action.nargs == 0 or default is None or default is argparse.SUPPRESS:
            return text
        shown = " ".join(str(value) for value in default) if isinstance(default, list) else str(default)
        return f"{text} (default: {shown.replace('%', '%%')})"


def build_parser() -> argparse.ArgumentParser:
    """Build the argument parser (the single source of the command-line options)."""
    parser = argparse.ArgumentParser(
        prog="bidsapp",
        description="Denoising, parcellation, connectivity, GLMs and group statistics after fMRIPrep.",
        formatter_class=HelpFormatter,
    )
    parser.add_argument("bids_dir", help="raw BIDS dataset (with derivatives/fmriprep), an fMRIPrep "
                        "derivatives dataset, or an HCP-style parcellated dataset")
    parser.add_argument("output_dir", help="BIDS-Derivatives dataset bidsapp writes (and the group level reads)")
    parser.add_argument("analysis_level", metavar="{participant,group}", help="analysis level to run")
    parser.add_argument("--version", action="version", version=f"bidsapp {__version__}")

    inputs = parser.add_argument_group("input selection")
    inputs.add_argument("--input-type", choices=INPUT_TYPES, default="auto",
                        help="kind of input dataset; auto tells them apart")
    inputs.add_argument("--derivatives", nargs="+", metavar="PATH",
                        help="fMRIPrep derivatives directories (default: BIDS_DIR/derivatives/fmriprep)")
    inputs.add_argument("--participant-label", "--participant_label", nargs="+", metavar="LABEL",
                        help="participants to analyse, with or without 'sub-' (default: all)")
    inputs.add_argument("--session-label", "--session_label", nargs="+", metavar="LABEL",
                        help="sessions to analyse, with or without 'ses-' (default: all)")
    inputs.add_argument("--task", nargs="+", metavar="TASK", help="tasks to analyse (default: all)")
    inputs.add_argument("--space", default=DEFAULT_SPACE, help="template space of the fMRIPrep outputs")
    inputs.add_argument("--bids-filter-file", metavar="FILE",
                        help='JSON file of entity filters for the BOLD runs: {"bold": {"session": "01"}}')
    inputs.add_argument("--skip-bad-runs", action="store_true",
                        help="leave out runs with missing or inconsistent files (with a warning) instead of stopping")

    analysis = parser.add_argument_group("participant level")
    analysis.add_argument("--denoise-strategy", metavar="NAME|FILE",
                          help=f"denoising preset ({', '.join(preset_names())}) or a YAML/JSON strategy file "
                          "(default: simple for fMRIPrep data, none for parcellated data)")
    analysis.add_argument("--dummy-scans", metavar="N|auto",
                          help="volumes to drop at the start of each run; auto: fMRIPrep's non-steady-state volumes")
    analysis.add_argument("--high-pass", type=float, metavar="HZ", help="high-pass cut-off (default: the strategy's)")
    analysis.add_argument("--low-pass", type=float, metavar="HZ", help="low-pass cut-off (default: the strategy's)")
    analysis.add_argument("--fd-threshold", type=float, metavar="MM",
                          help="framewise displacement above which scrubbing censors a volume (default: the "
                          "strategy's, 0.5 mm in the presets)")
    analysis.add_argument("--smoothing-fwhm", type=float, metavar="MM",
                          help="spatial smoothing for voxel-wise GLMs (default: none)")
    analysis.add_argument("--atlas", metavar="NAME|PATH",
                          help="parcellation: a name, or a label NIfTI with a *_dseg.tsv (index, name[, network]) "
                          "beside it")
    analysis.add_argument("--connectivity", nargs="+", metavar="KIND",
                          help="connectivity measures: correlation, 'partial correlation', covariance "
                          "(default: correlation)")
    analysis.add_argument("--seeds", nargs="+", metavar="NAME=X,Y,Z",
                          help="sphere seeds at MNI coordinates in mm for seed-to-voxel maps, e.g. PCC=0,-52,26")
    analysis.add_argument("--seed-radius", type=float, default=8.0, metavar="MM", help="seed sphere radius")
    analysis.add_argument("--contrast", nargs="+", metavar="NAME=EXPR",
                          help='first-level contrasts over condition names, e.g. lfMinusRf="lf - rf"; they '
                          "replace the defaults (each condition and each pair of conditions; HCP tasks: HCP's "
                          "contrasts), which the word 'defaults' among them keeps")
    analysis.add_argument("--hrf-model", default="glover", help="HRF model (glover, spm, '... + derivative', fir)")
    analysis.add_argument("--noise-model", default="ar1", choices=("ar1", "ols"), help="first-level noise model")

    group = parser.add_argument_group("group level")
    group.add_argument("--group-test", default="onesample", choices=("onesample", "twosample", "paired", "anova"),
                       help="group design; anova with --group-column is between groups, without it repeated "
                       "measures over single-condition contrasts (or sessions)")
    group.add_argument("--group-column", metavar="COL", help="participants.tsv column defining the groups")
    group.add_argument("--covariates", nargs="+", metavar="COL", help="participants.tsv columns added to the design")
    group.add_argument("--group-model", metavar="FILE",
                       help="YAML/JSON group model: conditions, groups, covariates and contrasts (or design "
                       "columns over participants.tsv); replaces --group-test")
    group.add_argument("--correction", nargs="+", default=["fdr"], metavar="METHOD",
                       help="fpr (uncorrected at --alpha), fdr, bonferroni (parametric); fwe, cluster, tfce "
                       "(permutation)")
    group.add_argument("--alpha", type=float, default=0.05, help="error rate")
    group.add_argument("--height-threshold", type=float, default=0.001, metavar="P",
                       help="cluster-forming threshold (uncorrected p)")
    group.add_argument("--cluster-extent", type=int, default=10, metavar="N", help="minimum cluster size in voxels")
    group.add_argument("--n-perm", type=int, default=5000, metavar="N", help="permutations")
    group.add_argument("--random-seed", type=int, default=0, metavar="N", help="seed of the permutations")

    execution = parser.add_argument_group("execution")
    execution.add_argument("-w", "--work-dir", metavar="DIR",
                           help="scratch directory, also holds the cached dataset index (default: TMPDIR/bidsapp_work)")
    execution.add_argument("--nprocs", type=int, metavar="N", help="processes to run at once (default: all cores)")
    execution.add_argument("--mem-gb", type=float, metavar="GB",
                           help="memory budget; fewer processes run at once when it is tight")
    execution.add_argument("--config", metavar="FILE",
                           help="YAML or JSON file of option values (long names); the command line wins")
    execution.add_argument("--skip-bids-validation", action="store_true",
                           help="do not run bids-validator-deno on a raw BIDS input")
    execution.add_argument("--dry-run", action="store_true",
                           help="print the plan (inputs, outputs, memory and time per run); write nothing to "
                           "OUTPUT_DIR")
    execution.add_argument("--slurm-script", metavar="FILE",
                           help="with --dry-run at participant level: also write a SLURM job-array script sized "
                           "from the plan (one task per participant), and FILE_group for the group job after it")
    execution.add_argument("--no-reports", action="store_true", help="do not write the HTML reports")
    execution.add_argument("-v", "--verbose", action="count", default=0, help="debugging detail on the console")
    return parser


def parse_arguments(argv: Sequence[str]) -> dict:
    """Parse ``argv``, taking ``--config`` file values as defaults.

    Returns
    -------
    dict
        Option destinations to values.
    """
    parser = build_parser()
    pre_parser = argparse.ArgumentParser(add_help=False)
    pre_parser.add_argument("--config")
    known, _ = pre_parser.parse_known_args(argv)
    if known.config:
        from_file = load_config_file(Path(known.config))
        settable = {action.dest for action in parser._actions if action.option_strings} - {"help", "version", "config"}
        unknown = sorted(set(from_file) - settable)
        if unknown:
            raise UsageError(f"--config {known.config}: unknown option(s) {', '.join(unknown)}; "
                             "keys are long option names, e.g. participant-label or nprocs")
        parser.set_defaults(**from_file)
    return vars(parser.parse_args(argv))
