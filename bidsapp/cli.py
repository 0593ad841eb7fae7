"""The command line: ``bidsapp BIDS_DIR OUTPUT_DIR {participant,group} [options]``.

``main`` parses the arguments (with ``--config`` values as defaults the command
line overrides), builds the validated configuration, sets up logging once and
hands over to the analysis level. Heavy modules are imported only after
parsing, so ``--help`` and usage errors are fast.
"""

from __future__ import annotations

import logging
import os
import signal
import sys
import time
from collections.abc import Sequence
from pathlib import Path

from bidsapp import __version__
from bidsapp.config import build_config
from bidsapp.errors import BidsAppError, UsageError
from bidsapp.interruption import Interrupted, descendants, raise_on_signals, stop_processes
from bidsapp.parser import parse_arguments

LOGGER = logging.getLogger("bidsapp")


def main(argv: Sequence[str] | None = None) -> int:
    """Run bidsapp; returns the exit code of CONTRACT section 5."""
    argv = list(sys.argv[1:] if argv is None else argv)
    try:
        values = parse_arguments(argv)
    except SystemExit as exit_:  # argparse: usage errors (2), --help and --version (0)
        return int(exit_.code or 0)
    except BidsAppError as error:
        return _report(error)

    log_file = None
    restore_signals = raise_on_signals()  # SIGINT and SIGTERM raise Interrupted: finally clauses remove temporaries
    try:
        config = build_config(values, ["bidsapp", *argv])
        if not config.execution.dry_run:
            from bidsapp.outputs.writer import DerivativesWriter

            DerivativesWriter(config.output_dir, version=__version__, command=config.command).check_ownership()
        log_file = setup_logging(config.execution.verbosity, None if config.execution.dry_run else config.output_dir)
        LOGGER.info("bidsapp %s: %s", __version__, " ".join(config.command))
        from bidsapp.workflow import run

        run(config)
    except BidsAppError as error:
        LOGGER.debug("failure", exc_info=True)
        return _report(error)
    except KeyboardInterrupt as interruption:  # Interrupted, raised by SIGINT or SIGTERM
        stop_processes(descendants())  # any child process the level did not stop itself
        stopped = interruption if isinstance(interruption, Interrupted) else Interrupted(signal.SIGINT)
        LOGGER.debug("%s", stopped, exc_info=True)
        print(f"bidsapp: {stopped}", file=sys.stderr)
        return stopped.exit_code
    except Exception as error:  # noqa: BLE001 - the last line of defence: message, then traceback in the log
        LOGGER.debug("internal error", exc_info=True)
        where = f"; the traceback is in {log_file}" if log_file else "; run with -v for the traceback"
        print(f"bidsapp: internal error: {type(error).__name__}: {error}{where}", file=sys.stderr)
        return 1
    finally:
        restore_signals()
    return 0


def _report(error: BidsAppError) -> int:
    for line in str(error).splitlines():
        print(f"bidsapp: error: {line}", file=sys.stderr)
    return error.exit_code


def setup_logging(verbosity: int, output_dir: Path | None) -> Path | None:
    """Configure logging once: stderr at the chosen verbosity, and a log file.

    Parameters
    ----------
    verbosity : int
        0 shows what was found and done, 1 or more adds debugging detail.
    output_dir : Path, optional
        Where the log file goes (``OUTPUT_DIR/logs``, listed in the output's
        ``.bidsignore``); ``None`` for no file.

    Returns
    -------
    Path or None
        The log file.

    Raises
    ------
    UsageError
        The log folder cannot be made in OUTPUT_DIR.
    """
    logger = logging.getLogger("bidsapp")
    for handler in list(logger.handlers):
        logger.removeHandler(handler)
        handler.close()
    logger.setLevel(logging.DEBUG)
    logger.propagate = False
    console = logging.StreamHandler(sys.stderr)
    console.setLevel(logging.DEBUG if verbosity else logging.INFO)
    console.setFormatter(logging.Formatter("%(asctime)s %(levelname)s %(message)s", "%H:%M:%S"))
    logger.addHandler(console)
    if output_dir is None:
        return None
    stamp = time.strftime("%Y%m%d-%H%M%S")
    path = output_dir / "logs" / f"bidsapp_{stamp}_{os.getpid()}.log"
    try:
        path.parent.mkdir(parents=True, exist_ok=True)
        file_handler = logging.FileHandler(path)
    except OSError as error:
        raise UsageError(f"OUTPUT_DIR {output_dir}: the log folder {path.parent} cannot be made "
                         f"({error.strerror}); give a directory you can write") from error
    file_handler.setLevel(logging.DEBUG)
    file_handler.setFormatter(logging.Formatter("%(asctime)s %(levelname)s %(name)s %(message)s"))
    logger.addHandler(file_handler)
    return path
