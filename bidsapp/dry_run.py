"""The ``--dry-run`` plan: what was found, what would be written, and what it would cost."""

from __future__ import annotations

from pathlib import Path

from bidsapp.config import Config
from bidsapp.group.level import group_outputs
from bidsapp.inputs.discovery import Inventory
from bidsapp.outputs.writer import DerivativesWriter
from bidsapp.participant.level import n_workers, participant_jobs, planned_outputs

#: Throughput assumed for the time estimate: uncompressed data read and processed per second.
_BYTES_PER_SECOND = 150e6


def render_plan(config: Config, inventory: Inventory, writer: DerivativesWriter) -> str:
    """Describe the run without doing it: inputs per participant, outputs, memory and time."""
    lines = [f"bidsapp dry run: {config.analysis_level} level (nothing is written)",
             f"Input: {inventory.form} at {config.bids_dir}",
             f"Output: {config.output_dir}",
             f"Participants ({len(inventory.participants)}): {' '.join(inventory.participants)}"]
    for problem in inventory.skipped:
        lines.append(f"  skipped: {problem}")
    outputs: list[Path] = []
    for job in participant_jobs(inventory, config):
        participant, runs = job.participant, job.runs
        memory = max(run.estimated_memory_gb() for run in runs)
        seconds = sum(_estimated_seconds(run) for run in runs)
        lines.append(f"sub-{participant}: {len(runs)} runs, peak memory ~{memory:.1f} GB, time ~{seconds:.0f} s")
        for run in runs:
            grid = "x".join(map(str, run.shape))
            lines.append(f"  {run.name}: {run.n_volumes} volumes x {grid}, TR {run.repetition_time:g} s, "
                         f"~{run.estimated_memory_gb():.2f} GB")
            lines += [f"    {role}: {path}" for role, path in
                      (("data", run.data), ("mask", run.mask), ("confounds", run.confounds),
                       ("events", run.events)) if path is not None]
        if config.analysis_level == "participant":
            outputs += planned_outputs(job, writer)
    if config.analysis_level == "group":
        fixed = group_outputs(writer)
        outputs += [fixed.summary, fixed.report]
    lines.append(f"Outputs to write ({len(outputs)}, each with a JSON sidecar):")
    lines += [f"  {path}" for path in outputs]
    if config.analysis_level == "participant":
        workers = n_workers(config.execution, inventory.runs, len(inventory.participants))
        peak = workers * max(run.estimated_memory_gb() for run in inventory.runs)
        total = sum(_estimated_seconds(run) for run in inventory.runs) / workers
        lines.append(f"Estimate: {workers} participants at a time, peak memory ~{peak:.1f} GB, time ~{total:.0f} s "
                     "(rough: set --mem-gb per participant job from the peak-memory figures above)")
    return "\n".join(lines)


def _estimated_seconds(run) -> float:
    """Rough processing time of a run from its uncompressed size."""
    n_values = run.n_volumes
    for size in run.shape:
        n_values *= size
    return 0.2 + 4 * n_values / _BYTES_PER_SECOND
