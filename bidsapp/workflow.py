"""Run one analysis level: validate, discover, check every input (participant level), then plan or do the work.

The group level checks what it reads, the participant-level outputs (:mod:`bidsapp.group.plan`), not the
BOLD inputs: discovery's problems with a run's input files do not stop it.
"""

from __future__ import annotations

import logging

from bidsapp import __version__
from bidsapp.config import Config
from bidsapp.inputs.discovery import detect_input_type, discover
from bidsapp.inputs.fmriprep import is_derivative_dataset
from bidsapp.outputs.writer import DerivativesWriter

LOGGER = logging.getLogger(__name__)


def run(config: Config) -> None:
    """Do what ``config`` asks: the participant or group level, or its dry-run plan."""
    writer = DerivativesWriter(config.output_dir, version=__version__, command=config.command)
    if config.analysis_level == "participant":
        _validate_input(config)
        from bidsapp.participant.preflight import preflight

        inventory = preflight(discover(config, defer_problems=True), config)
    else:  # the group level reads participant-level outputs: a run's BOLD input problems do not stop it
        inventory = discover(config, defer_problems=True)
        for problem in inventory.skipped:
            LOGGER.info("Group level: %s has an input problem (%s); its participant-level outputs are used if "
                        "complete", problem.run_name, problem)
    if config.execution.dry_run:
        from bidsapp.dry_run import render_plan

        print(render_plan(config, inventory, writer))
        return
    if config.analysis_level == "participant":
        from bidsapp.participant.level import run_participant_level

        run_participant_level(inventory, writer, config)
        print(f"bidsapp: participant level done; outputs in {config.output_dir}")
    else:
        from bidsapp.group.level import run_group_level

        report = run_group_level(inventory, writer, config)
        print(f"bidsapp: group level done; report: {report}")


def _validate_input(config: Config) -> None:
    """Run the BIDS validator on a raw BIDS input unless the user opted out."""
    if config.execution.skip_bids_validation:
        LOGGER.info("BIDS validation skipped (--skip-bids-validation)")
        return
    input_type = detect_input_type(config.bids_dir) if config.input_type == "auto" else config.input_type
    if input_type != "fmriprep" or is_derivative_dataset(config.bids_dir):
        LOGGER.info("BIDS validation applies to raw BIDS inputs; %s is not one", config.bids_dir)
        return
    from bidsapp.inputs.validation import validate_bids

    validate_bids(config.bids_dir)
