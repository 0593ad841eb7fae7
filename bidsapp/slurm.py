"""SLURM job scripts from the participant level's dry run (``--dry-run --slurm-script FILE``).

The dry run writes two ``sbatch`` scripts sized from its plan: FILE, a job array with one task per selected
participant, each task running the participant level on its participant, and FILE_group (``jobs.sbatch`` ->
``jobs_group.sbatch``), the group level, submitted with ``--dependency=afterok:<array job id>``. Both run the
dry run's own command line (options of a ``--config`` file written out) from the folder it ran in, with the
bidsapp that ``$BIDSAPP`` names (default ``bidsapp``; with a container e.g.
``BIDSAPP="apptainer run --cleanenv -B /data bidsapp.sif"``).
"""

from __future__ import annotations

import math
import os
import shlex
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from functools import partial
from pathlib import Path
from typing import Any

from bidsapp import __version__
from bidsapp.config import Config
from bidsapp.errors import UsageError
from bidsapp.options import as_list
from bidsapp.outputs.atomic import replace_atomically
from bidsapp.parser import build_parser, parse_arguments

#: ``--mem`` is the largest participant's peak-memory estimate times this margin, and at least
#: :data:`MINIMUM_MEMORY_MB` (the interpreter and the numerical libraries).
MEMORY_MARGIN = 1.5
MINIMUM_MEMORY_MB = 1024
#: ``--time`` is the longest participant's time estimate times this margin, and at least
#: :data:`MINIMUM_MINUTES` (start-up and discovery, which the time estimate leaves out).
TIME_MARGIN = 2.0
MINIMUM_MINUTES = 15
#: The group job's ``--time``: the participant level's dry run cannot size it (the group level's dry run lists
#: its analyses and permutations; about 15 s per 1,000 permutations of a voxel map on the demo).
GROUP_TIME = "02:00:00"
#: Options the scripts set themselves rather than copy from the dry run's command line.
_SET_BY_SCRIPT = {"help", "version", "config", "dry_run", "slurm_script", "nprocs", "mem_gb", "work_dir",
                  "participant_label"}


@dataclass(frozen=True)
class ArrayTask:
    """One task of the job array: a participant and the dry run's estimates for it.

    Attributes
    ----------
    participant : str
        Label without ``sub-``.
    seconds : float
        Estimated processing time, in seconds.
    memory_gb : float
        Estimated peak memory, in GB.
    """

    participant: str
    seconds: float
    memory_gb: float


@dataclass(frozen=True)
class Resources:
    """What every task of the array asks SLURM for.

    Attributes
    ----------
    cpus : int
        ``--cpus-per-task``.
    memory_mb : int
        ``--mem``, in MB.
    time_limit : str
        ``--time``, ``[D-]HH:MM:SS``.
    """

    cpus: int
    memory_mb: int
    time_limit: str


def resources(tasks: Sequence[ArrayTask], cpus: int) -> Resources:
    """Size the array's tasks from the estimates, with :data:`MEMORY_MARGIN` and :data:`TIME_MARGIN`."""
    memory_mb = max(MINIMUM_MEMORY_MB, math.ceil(MEMORY_MARGIN * max(task.memory_gb for task in tasks) * 1024))
    minutes = max(MINIMUM_MINUTES, math.ceil(TIME_MARGIN * max(task.seconds for task in tasks) / 60))
    return Resources(cpus, memory_mb, time_limit(minutes))


def time_limit(minutes: int) -> str:
    """A SLURM ``--time`` value, ``HH:MM:SS`` or ``D-HH:MM:SS`` from one day on."""
    days, minutes = divmod(minutes, 24 * 60)
    clock = f"{minutes // 60:02d}:{minutes % 60:02d}:00"
    return f"{days}-{clock}" if days else clock


def group_script_path(path: Path) -> Path:
    """The group job's script beside the array's: ``jobs.sbatch`` -> ``jobs_group.sbatch``."""
    return path.with_name(f"{path.stem}_group{path.suffix}")


def write_slurm_scripts(config: Config, tasks: Sequence[ArrayTask]) -> list[str]:
    """Write the array script (``config.execution.slurm_script``) and the group script beside it.

    Parameters
    ----------
    config : Config
        The dry run's configuration; its command line is what each task runs.
    tasks : sequence of ArrayTask
        One per selected participant, in array order.

    Returns
    -------
    list of str
        Lines for the plan: what was written and how to submit it.

    Raises
    ------
    UsageError
        A script cannot be written (exit 2).
    """
    path = config.execution.slurm_script
    assert path is not None
    values = parse_arguments(config.command[1:])
    options = copied_options(values)
    sizes = resources(tasks, int(values.get("nprocs") or 1))
    group_path = group_script_path(path)
    labels = [str(label) for label in as_list(values.get("participant_label"))]
    texts = {path: array_script(config, tasks, sizes, options, group_path),
             group_path: group_script(config, sizes, [*(["--participant-label", *labels] if labels else []), *options],
                                      path)}
    try:
        replace_atomically((target, partial(Path.write_text, data=text)) for target, text in texts.items())
        for target in texts:
            target.chmod(0o755)
    except OSError as error:
        raise UsageError(f"--slurm-script {path}: cannot be written ({error.strerror}); give a file name in a "
                         "folder you can write") from error
    return [f"SLURM job array: {path} ({len(tasks)} tasks, --cpus-per-task={sizes.cpus} --mem={sizes.memory_mb}M "
            f"--time={sizes.time_limit}); group job: {group_path}",
            f"  submit: array=$(sbatch --parsable {shlex.quote(str(path))}) && "
            f"sbatch --dependency=afterok:$array {shlex.quote(str(group_path))}"]


def copied_options(values: Mapping[str, Any]) -> list[str]:
    """The options of the parsed ``values`` that differ from the parser's defaults, as command-line words.

    ``values`` are :func:`bidsapp.parser.parse_arguments`'s (a ``--config`` file's values included); the options
    the scripts set themselves (:data:`_SET_BY_SCRIPT`) are left out.
    """
    words: list[str] = []
    for action in build_parser()._actions:
        value = values.get(action.dest)
        if (not action.option_strings or action.dest in _SET_BY_SCRIPT or value is None or value is False
                or value == action.default):
            continue
        flag = next(option for option in action.option_strings if option.startswith("--"))
        if isinstance(value, bool):
            words.append(flag)
        elif action.nargs == 0:  # a count (--verbose)
            words += [flag] * int(value)
        else:
            words += [flag, *(str(item) for item in as_list(value))]
    return words


def array_script(config: Config, tasks: Sequence[ArrayTask], sizes: Resources, options: Sequence[str],
                 group_path: Path) -> str:
    """The job array's script: one task per participant, each running the participant level on it."""
    longest = max(tasks, key=lambda task: task.seconds)
    largest = max(tasks, key=lambda task: task.memory_gb)
    labels = " ".join(shlex.quote(task.participant) for task in tasks)
    return "\n".join([
        "#!/bin/bash",
        "#SBATCH --job-name=bidsapp",
        f"#SBATCH --array=1-{len(tasks)}",
        *_resources(sizes, sizes.time_limit),
        f"# The participant level of bidsapp {__version__}, one array task per participant, written by its dry run:",
        f"#   {shlex.join(config.command)}",
        f"# --mem: {MEMORY_MARGIN:g} x the largest peak-memory estimate ({largest.memory_gb:.2f} GB, "
        f"sub-{largest.participant}), at least {MINIMUM_MEMORY_MB} MB;",
        f"# --time: {TIME_MARGIN:g} x the longest time estimate ({longest.seconds:.0f} s, sub-{longest.participant}), "
        f"at least {MINIMUM_MINUTES} min.",
        f"# Submit: array=$(sbatch --parsable {shlex.quote(str(config.execution.slurm_script))})",
        f"# then the group level once every task has succeeded: sbatch --dependency=afterok:$array "
        f"{shlex.quote(str(group_path))}",
        *_launcher(config),
        f"labels=({labels})",
        'label=${labels[SLURM_ARRAY_TASK_ID - 1]}',
        f'exec "${{bidsapp[@]}}" {_positionals(config, "participant")} --participant-label "$label" \\',
        f'    --nprocs "$SLURM_CPUS_PER_TASK" --work-dir {shlex.quote(str(config.execution.work_dir))}'
        + "".join(f" {shlex.quote(word)}" for word in options),
        ""])


def group_script(config: Config, sizes: Resources, options: Sequence[str], array_path: Path) -> str:
    """The group job's script, to submit with ``--dependency=afterok:<array job id>``; ``options`` as given."""
    return "\n".join([
        "#!/bin/bash",
        "#SBATCH --job-name=bidsapp-group",
        *_resources(sizes, GROUP_TIME),
        f"# The group level of bidsapp {__version__}, after the participant array of {array_path}:",
        f"#   sbatch --dependency=afterok:<array job id> {shlex.quote(str(group_script_path(array_path)))}",
        "# --time is not estimated by the participant level's dry run: the group level's dry run lists its analyses",
        "# and permutations.",
        *_launcher(config),
        f'exec "${{bidsapp[@]}}" {_positionals(config, "group")} --nprocs "$SLURM_CPUS_PER_TASK" \\',
        f"    --work-dir {shlex.quote(str(config.execution.work_dir))}"
        + "".join(f" {shlex.quote(word)}" for word in options),
        ""])


def _resources(sizes: Resources, time: str) -> list[str]:
    """The ``#SBATCH`` lines shared by both scripts."""
    return [f"#SBATCH --cpus-per-task={sizes.cpus}", f"#SBATCH --mem={sizes.memory_mb}M", f"#SBATCH --time={time}",
            f"#SBATCH --chdir={os.getcwd()}"]


def _launcher(config: Config) -> list[str]:
    """The lines that pick the bidsapp command: ``$BIDSAPP``, default ``bidsapp``."""
    return ["# The bidsapp command: $BIDSAPP, default the installed bidsapp; with the container, e.g.",
            '#   BIDSAPP="apptainer run --cleanenv -B /data -B /scratch bidsapp.sif" sbatch ...',
            f"# Every task shares the work folder {config.execution.work_dir} (the cached dataset index): it must be",
            "# on a file system all nodes see.",
            "set -euo pipefail",
            'read -r -a bidsapp <<< "${BIDSAPP:-bidsapp}"']


def _positionals(config: Config, level: str) -> str:
    """BIDS_DIR OUTPUT_DIR LEVEL, quoted for the shell."""
    return shlex.join([str(config.bids_dir), str(config.output_dir), level])
