"""Participant level on fMRIPrep derivatives.

For each participant, the denoising strategy first selects every run's
nuisance regressors and censored volumes from fMRIPrep's confounds table, the
events and contrasts are checked, and the atlas and seeds are placed on each
run's grid, so that bad input stops the participant before anything is
written. Then each BOLD run is read once into an in-mask (volumes x voxels)
float32 array, and every analysis works on that array:

1. parcel mean time series, cleaned by :func:`nilearn.signal.clean`
   (detrending, filtering, confound regression, censoring);
2. connectivity matrices of the cleaned series, Fisher z and
   within/between-network means (:func:`bidsapp.steps.connectivity.parcel_connectivity`);
3. seed-to-voxel Pearson r and Fisher z maps for each sphere seed, with the
   voxels cleaned by the same linear operator;
4. a first-level GLM per task on the voxels and on the parcel means (percent
   signal change), from the raw dataset's events, with the strategy's
   regressors in the design and the censored volumes left out; runs are
   combined by fixed effects within each session (:func:`combine_task`), with
   the parcel pipeline's engine (:mod:`bidsapp.steps.glm`).

Each step computes first; :mod:`bidsapp.participant.fmriprep_outputs` only
writes what it is given.

Outputs that are complete with unchanged parameters are skipped, and a run
whose outputs are all complete is not read. An HTML report per participant
shows the motion, regressors, data, designs and results.
"""

from __future__ import annotations

import logging
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING

import numpy as np
import pandas as pd

from bidsapp.config import Analysis
from bidsapp.errors import MissingInputError
from bidsapp.inputs import atlas as atlases
from bidsapp.inputs.discovery import Run
from bidsapp.inputs.readers import BoldRead, read_bold, read_confounds, read_confounds_metadata, read_mask
from bidsapp.inputs.runs import parse_entities
from bidsapp.outputs.writer import DerivativesWriter
from bidsapp.participant import fmriprep_outputs as outputs
from bidsapp.steps import connectivity, denoise, parcellation, strategies
from bidsapp.steps import seeds as spheres
from bidsapp.steps.glm.contrasts import Contrast, contrast_vector, expression_names
from bidsapp.steps.glm.design import design_matrix
from bidsapp.steps.glm.events import check_events, read_events
from bidsapp.steps.glm.fit import RunContrasts, fit_run
from bidsapp.steps.glm.fixed_effects import CombinedContrast, combine_runs
from bidsapp.steps.task_models import check_user_contrasts, task_contrasts

if TYPE_CHECKING:  # the job type's module imports this pipeline when it runs a job
    from bidsapp.participant.level import ParticipantJob

LOGGER = logging.getLogger(__name__)
#: Voxels fitted at a time by the first-level GLM.
VOXEL_BLOCK = 4096


@dataclass
class PreparedRun:
    """A run with everything checked and derived before its BOLD data are read.

    ``carpet`` (a sample of raw voxel series) and ``mean`` (the mean image over
    the mask) for the report, and ``voxel_fit`` and ``parcel_fit`` (the run's
    GLM contrasts on the voxels and on the parcels with data) are filled in
    when the run is processed.
    """

    run: Run
    space: dict[str, str]
    confounds: pd.DataFrame
    denoising: denoise.Denoising
    mask: np.ndarray
    affine: np.ndarray
    parcels: parcellation.ParcelMap
    seed_voxels: dict[str, np.ndarray]
    events: pd.DataFrame | None = None
    design: pd.DataFrame | None = None
    carpet: np.ndarray | None = None
    mean: np.ndarray | None = None
    voxel_fit: RunContrasts | None = None
    parcel_fit: RunContrasts | None = None


@dataclass
class TaskGroup:
    """The runs of one task in one session, modelled together."""

    entities: dict[str, str | None]
    runs: list[PreparedRun]
    contrasts: list[Contrast] = field(default_factory=list)

    @property
    def task(self) -> str:
        """The task label (every run with events has one)."""
        return self.runs[0].run.entities["task"]


def participant_strategy(analysis: Analysis) -> strategies.Strategy:
    """The denoising strategy (default ``simple``) with the command line's overrides."""
    return strategies.with_options(strategies.load_strategy(analysis.denoise_strategy or "simple"),
                                dummy_scans=analysis.dummy_scans, high_pass_hz=analysis.high_pass_hz,
                                low_pass_hz=analysis.low_pass_hz, fd_threshold_mm=analysis.fd_threshold_mm)


def space_entities(run: Run) -> dict[str, str]:
    """The output-space entities of a run from its preprocessed BOLD file name (``space``, ``res``)."""
    entities = parse_entities(run.data.name)
    return {key: entities[key] for key in ("space", "res") if key in entities}


def participant_atlas(job: ParticipantJob) -> atlases.Atlas:
    """The job's atlas, in the space and at the voxel size of its first run."""
    import nibabel as nib

    first = job.runs[0]
    resolution = float(nib.load(first.data).header.get_zooms()[0])
    return atlases.load_atlas(job.analysis.atlas, space_entities(first).get("space", ""), resolution)


def planned_outputs(job: ParticipantJob, writer: DerivativesWriter) -> list[Path]:
    """Every file :func:`process_participant` writes for ``job`` (most with a JSON sidecar).

    Reads the events (for the contrast names) and the atlas, not the BOLD data.
    """
    atlas = participant_atlas(job)
    paths = [path for run in job.runs for path in
             outputs.run_paths(writer, run.entities, space_entities(run), atlas, job.analysis).values()]
    events = {run.name: read_events(run.events) for run in job.runs if run.events is not None}
    by_task: dict[tuple, list[Run]] = {}
    for run in job.runs:
        if run.events is not None:
            by_task.setdefault((run.entities["sub"], run.entities.get("ses"), run.entities["task"]), []).append(run)
    for (sub, ses, task), runs in by_task.items():
        conditions = sorted({c for run in runs for c in events[run.name]["trial_type"]})
        contrasts = task_contrasts(task, conditions, job.analysis.contrasts, {},
                                   defaults=job.analysis.default_contrasts)
        paths += outputs.task_paths(writer, {"sub": sub, "ses": ses, "task": task}, space_entities(runs[0]), atlas,
                                    contrasts).values()
    return paths + ([writer.layout.participant_report(job.participant)] if job.reports else [])


def prepare_run(run: Run, analysis: Analysis, strategy: strategies.Strategy, atlas: atlases.Atlas,
                grids: dict | None = None) -> PreparedRun:
    """Check a run's inputs and derive its regressors, censored volumes, parcels, seeds and design.

    ``grids`` caches the atlas resampled to each BOLD grid across runs.
    Raises the errors of :mod:`bidsapp.steps.denoise`, :mod:`bidsapp.inputs.atlas`,
    :mod:`bidsapp.steps.seeds` and :mod:`bidsapp.steps.glm.events`, each naming the file or option.
    """
    table = read_confounds(run)
    assert run.confounds is not None, "discovery gives every fMRIPrep run its confounds file"
    denoising = denoise.select_confounds(table, read_confounds_metadata(run), strategy, path=run.confounds)
    space = space_entities(run)
    atlases.check_space(atlas, space.get("space", ""), run.data)
    mask, affine = read_mask(run)
    seed_voxels = {seed.name: spheres.sphere_voxels(seed, analysis.seed_radius_mm, affine, mask)
                   for seed in analysis.seeds}
    grids = {} if grids is None else grids
    key = (mask.shape, affine.round(4).tobytes())
    if key not in grids:
        grids[key] = parcellation.resample_labels(atlas, affine, mask.shape)
    item = PreparedRun(run, space, denoise.normalise_confounds(table)[0], denoising, mask, affine,
                       parcellation.parcel_map(atlas, grids[key], mask), seed_voxels)
    if run.events is not None:
        item.events = read_events(run.events)
        check_events(item.events, run.n_volumes, run.repetition_time, run.events)
        item.design = design_matrix(item.events, run.n_volumes, run.repetition_time, hrf_model=analysis.hrf_model,
                                    high_pass_hz=outputs.glm_high_pass(strategy),
                                    confounds=denoising.glm_confounds())
    return item


def task_groups(prepared: Sequence[PreparedRun], analysis: Analysis) -> list[TaskGroup]:
    """Task runs grouped by session and task, with their contrasts.

    Raises
    ------
    UsageError
        For a ``--contrast`` naming conditions of no task.
    """
    groups: dict[tuple, TaskGroup] = {}
    conditions: dict[str, set] = {}
    for item in prepared:
        if item.events is not None:
            entities = {key: item.run.entities.get(key) for key in ("sub", "ses", "task")}
            groups.setdefault(tuple(entities.values()), TaskGroup(entities, [])).runs.append(item)
            conditions.setdefault(item.run.entities["task"], set()).update(item.events["trial_type"])
    check_user_contrasts(analysis.contrasts, {task: sorted(names) for task, names in conditions.items()})
    for group in groups.values():
        task = group.task
        group.contrasts = task_contrasts(task, sorted(conditions[task]), analysis.contrasts, {},
                                         defaults=analysis.default_contrasts)
        for contrast in group.contrasts:  # refuse an expression that does not parse before any work
            names = set(expression_names(contrast.expression))
            design = next((item.design for item in group.runs
                           if item.design is not None and names <= set(item.design.columns)), None)
            if design is not None:
                contrast_vector(contrast, design.columns)
    return list(groups.values())


def process_participant(job: ParticipantJob, writer: DerivativesWriter) -> list[Path]:
    """Denoise, parcellate, correlate and model every run of one participant, then write the report.

    Returns every data file planned (written now or complete before), for the subject level.
    """
    reads = _first_read(job)
    try:
        strategy = participant_strategy(job.analysis)
        atlas = participant_atlas(job)
        grids: dict = {}
        prepared = [prepare_run(run, job.analysis, strategy, atlas, grids) for run in job.runs]
        groups = task_groups(prepared, job.analysis)
        context = outputs.Context(writer, job.analysis, strategy, atlas)
        in_groups = {id(item) for group in groups for item in group.runs}
        for item in prepared:
            if id(item) not in in_groups:
                _process_run(item, context, reads, fit=False)
        for group in groups:
            pending = not all(writer.is_complete(path, parameters)
                              for path, parameters in outputs.task_parameters(context, group).items())
            for item in group.runs:
                _process_run(item, context, reads, fit=pending, contrasts=group.contrasts)
            if pending:
                voxels, parcels = combine_task(group)
                outputs.write_task(context, group, voxels, parcels)
    finally:  # an error or an interruption before the first run was processed
        for read in reads.values():
            read.cancel()
    if job.reports:
        outputs.write_report(context, job.participant, prepared, groups)
    paths = [path for item in prepared for path in
             outputs.run_paths(writer, item.run.entities, item.space, atlas, job.analysis).values()]
    return paths + [path for group in groups for path in
                    outputs.task_paths(writer, group.entities, group.runs[0].space, atlas, group.contrasts).values()]


def _first_read(job: ParticipantJob) -> dict[str, BoldRead]:
    """The read of the first run :func:`process_participant` analyses, started in the background.

    Its decompression then overlaps the imports and the checks of every run
    that come first. Empty when that run's mask cannot be read: the checks
    report it in their order.
    """
    first = next((run for run in job.runs if run.events is None), job.runs[0])
    try:
        mask = read_mask(first)[0]
    except MissingInputError:
        return {}
    return {first.name: BoldRead(first, mask, smoothing_fwhm=job.analysis.smoothing_fwhm_mm)}


def _process_run(item: PreparedRun, context: outputs.Context, reads: dict[str, BoldRead], *, fit: bool,
                 contrasts: Sequence[Contrast] = ()) -> None:
    """Read one run (or take its read from ``reads``), unless its outputs are complete; compute what is missing."""
    run, analysis, strategy = item.run, context.analysis, context.strategy
    read = reads.pop(run.name, None)
    wanted = {role: path for role, path in outputs.run_paths(context.writer, run.entities, item.space, context.atlas,
                                                               analysis).items()
              if not context.writer.is_complete(path, outputs.run_parameters(context, item, role))}
    if not wanted and not fit:
        LOGGER.info("%s: outputs complete, skipped", run.name)
        if read is not None:
            read.cancel()
        return
    LOGGER.info("%s: reading %s", run.name, run.data.name)
    warning = denoise.denoising_record(strategy, item.denoising, run.repetition_time).get("Warning")
    if warning:
        LOGGER.warning("%s: %s", run.name, warning)
    data, smoothed = read.result() if read is not None else read_bold(run, item.mask,
                                                                       smoothing_fwhm=analysis.smoothing_fwhm_mm)
    voxels = data if smoothed is None else smoothed
    item.carpet = np.array(data[:, ::max(1, data.shape[1] // 2000)])
    item.mean = data.mean(axis=0)
    means = parcellation.parcel_means(data, item.parcels)
    if any(not role.startswith("seed:") for role in wanted):
        valid = item.parcels.valid
        cleaned = np.full((len(item.denoising.sample_mask), len(valid)), np.nan)
        cleaned[:, valid] = denoise.clean(means[:, valid], strategy, item.denoising, run.repetition_time)
        result = connectivity.parcel_connectivity(cleaned, valid, analysis.connectivity, context.atlas.networks)
        for warning in result.warnings.values():
            LOGGER.warning("%s: %s", run.name, warning)
        outputs.write_parcel_outputs(context, item, cleaned, result, wanted)
    if any(role.startswith("seed:") for role in wanted):
        cleaner = denoise.cleaning_matrix(strategy, item.denoising, run.repetition_time)
        for seed in analysis.seeds:
            series = data[:, item.seed_voxels[seed.name]].mean(axis=1, dtype=np.float64)
            outputs.write_seed_outputs(context, item, seed, spheres.seed_correlation(cleaner, series, voxels), wanted)
    del data
    if fit:
        _fit_run(item, contrasts, analysis, voxels, means)


def _fit_run(item: PreparedRun, contrasts: Sequence[Contrast], analysis: Analysis, voxels: np.ndarray,
             means: np.ndarray) -> None:
    """Fit the run's GLM on voxels and on valid parcels, in percent signal change; keep its contrasts.

    As ``FirstLevelModel`` does, the censored volumes are dropped from data and
    design, and each series is scaled by its mean over the kept volumes.
    Voxels are fitted :data:`VOXEL_BLOCK` at a time (each voxel's fit is its
    own), which bounds the memory the fit needs.
    """
    assert item.design is not None, "only runs with events (and so a design) are fitted"
    sample_mask = item.denoising.sample_mask
    item.voxel_fit = fit_run(item.run.name, voxels, item.design, contrasts, units=item.mask,
                             noise_model=analysis.noise_model, sample_mask=sample_mask, signal_scaling=True,
                             block=VOXEL_BLOCK)
    item.parcel_fit = fit_run(item.run.name, means[:, item.parcels.valid], item.design, contrasts,
                              units=item.parcels.valid, noise_model=analysis.noise_model, sample_mask=sample_mask,
                              signal_scaling=True, block=VOXEL_BLOCK)


def combine_task(group: TaskGroup) -> tuple[dict[str, CombinedContrast], dict[str, CombinedContrast]]:
    """Each contrast of a task combined by fixed effects over the runs that estimate it.

    Voxels are those inside the brain mask of every such run; parcels those
    with data in every such run. A contrast no run can estimate is left out
    (with a warning).

    Returns
    -------
    voxels, parcels : dict of str to CombinedContrast
        By contrast name.
    """
    voxels = combine_runs([item.voxel_fit for item in group.runs if item.voxel_fit is not None], group.contrasts)
    parcels = combine_runs([item.parcel_fit for item in group.runs if item.parcel_fit is not None], group.contrasts)
    for contrast in group.contrasts:
        if contrast.name not in voxels:
            LOGGER.warning("task %s: no run can estimate contrast %s; not written", group.task,
                           contrast.name)
    return voxels, parcels
