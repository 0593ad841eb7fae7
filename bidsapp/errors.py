"""Error types, one per kind of failure, each carrying its BIDS-App exit code.

The exit codes follow the BIDS execution specification (CONTRACT section 5).
Every error renders as one plain line naming the file or option at fault and
what to do about it.
"""

from __future__ import annotations

from collections.abc import Sequence


class BidsAppError(Exception):
    """A failure the user can act on; ``str()`` is the one line they read."""

    exit_code = 1


class UsageError(BidsAppError):
    """An option or option value that cannot be used (exit code 2)."""

    exit_code = 2


class InvalidDatasetError(BidsAppError):
    """The input is not a valid BIDS (or HCP-style) dataset (exit code 16)."""

    exit_code = 16


class UnknownLevelError(BidsAppError):
    """The analysis level is neither ``participant`` nor ``group`` (exit code 17)."""

    exit_code = 17


class NoDataError(BidsAppError):
    """The selection (labels, filters, space) matched no data (exit code 18)."""

    exit_code = 18


class MissingInputError(BidsAppError):
    """An input file is missing, unreadable or inconsistent (exit code 66)."""

    exit_code = 66


class WorkerKilledError(BidsAppError):
    """A worker process was killed from outside (SIGKILL: the kernel's out-of-memory killer) (exit code 137).

    CONTRACT section 5 has no code for it. 137 is 128 + SIGKILL, the rule by which it
    gives 130 and 143 to SIGINT and SIGTERM, and the code a shell or scheduler reports
    for a process the out-of-memory killer ended, so scripts that look for it find it.
    """

    exit_code = 137


class ProblemsError(BidsAppError):
    """Several problems found at once; reported together, one line each.

    Parameters
    ----------
    problems : sequence of BidsAppError
        The problems, in the order they were found. The exit code is the
        first problem's.
    """

    def __init__(self, problems: Sequence[BidsAppError]):
        if not problems:
            raise ValueError("ProblemsError needs at least one problem")
        self.problems = tuple(problems)
        self.exit_code = self.problems[0].exit_code
        super().__init__("\n".join(str(problem) for problem in self.problems))


def raise_collected(problems: Sequence[BidsAppError]) -> None:
    """Raise the problems found, if any: the single one, or all together."""
    if len(problems) == 1:
        raise problems[0]
    if problems:
        raise ProblemsError(problems)
