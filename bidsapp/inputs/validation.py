"""BIDS validation of a raw input dataset with the BIDS validator (bids-validator-deno)."""

from __future__ import annotations

import json
import logging
import shutil
import subprocess
import sys
from collections import Counter
from pathlib import Path

from bidsapp.errors import InvalidDatasetError, UsageError

LOGGER = logging.getLogger(__name__)


def validator_executable() -> Path:
    """The ``bids-validator-deno`` command installed with bidsapp (or on PATH)."""
    beside = Path(sys.executable).parent / "bids-validator-deno"
    found = beside if beside.is_file() else shutil.which("bids-validator-deno")
    if not found:
        raise UsageError("bids-validator-deno not found: pip install bids-validator-deno, "
                         "or pass --skip-bids-validation")
    return Path(found)


def validate_bids(bids_dir: Path) -> None:
    """Validate a raw BIDS dataset; warnings are logged, errors stop the run.

    Raises
    ------
    InvalidDatasetError
        The validator reports errors (exit code 16); the message counts them and
        names the first, and every error is in the log.
    """
    LOGGER.info("Validating %s with the BIDS validator (skip with --skip-bids-validation)", bids_dir)
    result = subprocess.run([str(validator_executable()), "--format", "json", str(bids_dir)],
                            capture_output=True, text=True)
    try:
        issues = json.loads(result.stdout)["issues"]["issues"]
    except (ValueError, KeyError) as error:
        raise InvalidDatasetError(f"{bids_dir}: the BIDS validator failed ({result.stderr.strip()[:200]}); "
                                  "pass --skip-bids-validation to go on without it") from error
    errors = [issue for issue in issues if issue.get("severity") == "error"]
    warnings = Counter(issue.get("code") for issue in issues if issue.get("severity") == "warning")
    for code, count in sorted(warnings.items()):
        LOGGER.info("BIDS validator warning %s (%d times)", code, count)
    for issue in errors:
        LOGGER.error("BIDS validator error %s at %s", issue.get("code"), issue.get("location"))
    if errors:
        first = errors[0]
        raise InvalidDatasetError(
            f"{bids_dir}: not valid BIDS, {len(errors)} validator errors, e.g. {first.get('code')} at "
            f"{first.get('location')} (all are in the log); fix them or pass --skip-bids-validation")
    LOGGER.info("BIDS validation passed (%d warnings)", sum(warnings.values()))
