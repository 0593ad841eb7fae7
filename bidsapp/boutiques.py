"""The Boutiques descriptor, generated from the argument parser so the two cannot drift.

``python -m bidsapp.boutiques > boutiques.json`` writes the descriptor that
platforms (OpenNeuro, brainlife, CBRAIN) launch bidsapp from; a test checks the
committed file equals what this module generates.

One input, ``output_dir_name``, gives OUTPUT_DIR at both levels. The BIDS-app
convention (``bosh validate -b``) also wants a File input on the same
``[OUTPUT_DIR]`` value-key, ``participant_level_analysis_dir``; Boutiques fills a
value-key from the first input that has it and erases it when that input is
unset, so the convention's usual split (the String input at the participant
level, the File input at the group level) drops OUTPUT_DIR from every group
command. ``output_dir_name`` therefore comes first and is the one to give at
both levels; Boutiques allows neither a required member of the two inputs'
mutually exclusive group nor one member requiring the other, so the File input
stays, described as not to be used.
"""

from __future__ import annotations

import argparse
import json

from bidsapp import __version__
from bidsapp.parser import build_parser

#: Exit codes of CONTRACT section 5.
ERROR_CODES = (
    (1, "Unexpected internal error (the traceback is in OUTPUT_DIR/logs)"),
    (2, "Usage error: an option or its value, or an OUTPUT_DIR that is not bidsapp's"),
    (16, "The input is not valid BIDS"),
    (17, "Unknown analysis level"),
    (18, "The selection (labels, filters, space) matched no data"),
    (66, "An input file is missing, unreadable or inconsistent"),
)
#: Example invocations (the descriptor's ``tests``), on the demo that ``make demo`` builds.
EXAMPLES = (
    ("dry run on the demo dataset",
     {"bids_dir": "demo_output/data/bids", "output_dir_name": "demo_output/boutiques",
      "analysis_level": "participant", "participant_label": ["01"], "dry_run": True, "skip_bids_validation": True}),
    ("participant level on two demo participants",
     {"bids_dir": "demo_output/data/bids", "output_dir_name": "demo_output/boutiques",
      "analysis_level": "participant", "participant_label": ["01", "02"], "skip_bids_validation": True,
      "work_dir": "demo_output/work"}),
    ("group level on their outputs",
     {"bids_dir": "demo_output/data/bids", "output_dir_name": "demo_output/boutiques", "analysis_level": "group",
      "correction": ["fdr"], "work_dir": "demo_output/work"}),
)
_FILE_OPTIONS = {"derivatives", "bids_filter_file", "config", "group_model"}
_SKIPPED = {"help", "version"}


def descriptor() -> dict:
    """The Boutiques descriptor (schema 0.5, BIDS-app conventions) of the current parser."""
    parser = build_parser()
    inputs = [
        {"id": "bids_dir", "name": "BIDS directory", "type": "File", "value-key": "[BIDS_DIR]", "optional": False,
         "description": _help(parser, "bids_dir")},
        {"id": "output_dir_name", "name": "Output directory", "type": "String", "value-key": "[OUTPUT_DIR]",
         "optional": True, "description": f"{_help(parser, 'output_dir')}; the same folder at both levels"},
        {"id": "participant_level_analysis_dir", "name": "Participant-level output directory (unused)",
         "type": "File", "value-key": "[OUTPUT_DIR]", "optional": True,
         "description": "do not use: give output_dir_name at both levels. Boutiques fills [OUTPUT_DIR] from "
         "output_dir_name first and erases it when that is unset, so this input alone leaves OUTPUT_DIR out of the "
         "command; it is here because the BIDS-app convention (bosh validate -b) asks for it"},
        {"id": "analysis_level", "name": "Analysis level", "type": "String", "value-key": "[ANALYSIS_LEVEL]",
         "value-choices": ["participant", "group"], "optional": False, "description": "Level of the analysis"},
    ]
    keys = ["[BIDS_DIR]", "[OUTPUT_DIR]", "[ANALYSIS_LEVEL]"]
    options = [action for action in parser._actions if action.option_strings and action.dest not in _SKIPPED]
    # The BIDS-app convention puts the participant and session labels right after the positionals.
    options.sort(key=lambda action: action.dest not in ("participant_label", "session_label"))
    for action in options:
        entry = _input(action)
        inputs.append(entry)
        keys.append(entry["value-key"])
    return {
        "name": "bidsapp",
        "tool-version": __version__,
        "description": parser.description,
        "schema-version": "0.5",
        "command-line": "mkdir -p [OUTPUT_DIR]; bidsapp " + " ".join(keys),
        # Built from this repository (docker build -t bidsapp:<version> .) or loaded from a saved archive
        # (docker load -i bidsapp-<version>.tar.gz): see the README's "Boutiques" section.
        "container-image": {"type": "docker", "image": f"bidsapp:{__version__}"},
        "inputs": inputs,
        "groups": [{"id": "output_directory", "name": "Output directory",
                    "description": "give output_dir_name, at both levels",
                    "members": ["output_dir_name", "participant_level_analysis_dir"],
                    "mutually-exclusive": True, "one-is-required": True}],
        "output-files": [{"id": "output_dir", "name": "Output directory", "path-template": "[OUTPUT_DIR]",
                          "optional": False}],
        "error-codes": [{"code": code, "description": text} for code, text in ERROR_CODES],
        "suggested-resources": {"cpu-cores": 2, "ram": 8, "walltime-estimate": 3600},
        "tests": [{"name": name, "invocation": invocation, "assertions": {"exit-code": 0}}
                  for name, invocation in EXAMPLES],
    }


def _help(parser: argparse.ArgumentParser, dest: str) -> str:
    """The help text of the argument stored in ``dest`` (empty when it has none)."""
    return next(action.help or "" for action in parser._actions if action.dest == dest)


def _input(action: argparse.Action) -> dict:
    """One Boutiques input for one argparse option."""
    flag = next((s for s in action.option_strings if s.startswith("--") and "_" in s),
                max(action.option_strings, key=len))
    entry = {"id": action.dest, "name": action.dest.replace("_", " ").capitalize(),
             "description": action.help or "", "value-key": f"[{action.dest.upper()}]",
             "command-line-flag": flag, "optional": True}
    if isinstance(action, (argparse._StoreTrueAction, argparse._CountAction)):
        entry["type"] = "Flag"
        return entry
    if action.type in (int, float):
        entry["type"] = "Number"
        entry["integer"] = action.type is int
    else:
        entry["type"] = "File" if action.dest in _FILE_OPTIONS else "String"
    if action.nargs == "+":
        entry["list"] = True
        entry["min-list-entries"] = 1
    if action.choices:
        entry["value-choices"] = list(action.choices)
    if action.default is not None:
        entry["default-value"] = action.default
    return entry


if __name__ == "__main__":
    print(json.dumps(descriptor(), indent=2))
