"""Load one group analysis's participant maps, run the inference, and write its outputs.

Voxel analyses write NIfTI maps per group contrast (``stat-t``/``stat-F``,
``stat-z``, ``stat-p``, ``stat-effect``), and per correction a thresholded z map,
a mask of what survives, FWE p maps for permutation corrections, and
atlas-labelled ``clusters.tsv`` / ``peaks.tsv`` tables. Parcel, edge and network
analyses write one table per group contrast with every feature's estimate, t or F,
z, p and, per correction, whether it survives (and its FWE p).

Loading (:func:`load_analysis`) reads and checks every participant's map before
anything is written: an analysis whose maps differ in grid or atlas, or hold no
finite value, raises :class:`Inestimable` with the reason, and the group level
skips it (the others run). The preflight runs the same checks on what it can
read cheaply (:func:`inspect_inputs`: NIfTI headers, parcel and node labels).
"""

from __future__ import annotations

import logging
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

import nibabel as nib
import numpy as np
import pandas as pd

from bidsapp import __version__
from bidsapp.group.cluster_tables import statmap_tables
from bidsapp.group.inference import ContrastInference, infer, summary
from bidsapp.group.inputs import GroupInput
from bidsapp.group.results import AnalysisInputs, FeatureContrast, FeatureValues, GroupResult, VoxelContrast
from bidsapp.outputs.layout import GROUP_FEATURES, GROUP_MAP, GROUP_MASK, GROUP_TABLES, group_desc
from bidsapp.outputs.relmat import read_relmat
from bidsapp.outputs.sidecars import AtlasRecord, read_sidecar
from bidsapp.outputs.writer import DerivativesWriter

LOGGER = logging.getLogger(__name__)


class Inestimable(Exception):
    """An analysis that cannot be estimated from its participants' maps; the message says why."""


@dataclass(frozen=True, eq=False)
class AnalysisData:
    """One analysis's participant-level values, read and checked, in design row order.

    Attributes
    ----------
    data : ndarray, shape (n_rows, n_features)
        Masked voxels (voxel analyses) or parcel, edge, network values.
    labels : DataFrame, optional
        One row per feature (feature analyses).
    mask : ndarray of bool, optional
        The 3-D mask of the tested voxels (voxel analyses).
    affine : ndarray, optional
        The voxel grid's affine (voxel analyses).
    """

    data: np.ndarray
    labels: pd.DataFrame | None = None
    mask: np.ndarray | None = None
    affine: np.ndarray | None = None


def inspect_inputs(kind: str, files: Sequence[Path]) -> str | None:
    """Why an analysis's maps cannot go together (grid, atlas, no finite value), from what is cheap to read.

    Voxel maps: their NIfTI headers (the values are checked when loaded); parcel, edge and
    network tables: their labels and values.
    """
    try:
        if kind == "voxels":
            _grid(files)
        else:
            _features(kind, files)
    except Inestimable as error:
        return str(error)
    return None


def load_analysis(kind: str, files: Sequence[Path]) -> AnalysisData:
    """Read and check one analysis's maps (no write).

    Raises
    ------
    Inestimable
        Grids or atlases differ between participants, or no feature has a finite value for everyone.
    """
    if kind != "voxels":
        labels, rows = _features(kind, files)
        return AnalysisData(np.vstack(rows), labels=labels)
    reference = _grid(files)
    stack = np.empty((len(files), *reference.shape[:3]), dtype=np.float32)
    for index, path in enumerate(files):
        stack[index] = np.asarray(nib.load(path).dataobj, dtype=np.float32).reshape(reference.shape[:3])
    mask = np.isfinite(stack).all(axis=0) & (stack != 0).all(axis=0)
    if not mask.any():
        raise Inestimable("no voxel has a finite, non-zero value in every participant's map")
    return AnalysisData(stack[:, mask], mask=mask, affine=reference.affine)


def _grid(files: Sequence[Path]) -> nib.Nifti1Image:
    """The first map's image, after checking every map's header has its grid."""
    reference = nib.load(files[0])
    for path in files[1:]:
        img = nib.load(path)
        if img.shape[:3] != reference.shape[:3] or not np.allclose(img.affine, reference.affine, atol=1e-3):
            raise Inestimable(f"{path}: its grid {img.shape[:3]} differs from {files[0].name}'s "
                              f"{reference.shape[:3]}; re-run the participant level with the same --space")
    return reference


def voxel_analysis(group_input: GroupInput, loaded: AnalysisData, writer: DerivativesWriter,
                   context: AnalysisInputs) -> GroupResult:
    """Test voxel-wise contrast maps; write maps, masks and tables; return the report's summary."""
    mask, affine = loaded.mask, loaded.affine
    assert mask is not None and affine is not None, "voxel data come with their mask and affine"
    settings = context.settings
    inferences = infer(loaded.data, context.design, settings, mask=mask)

    def image(values: np.ndarray) -> nib.Nifti1Image:
        volume = np.zeros(mask.shape, np.float32)
        volume[mask] = np.nan_to_num(values, nan=0.0)
        return nib.Nifti1Image(volume, affine)

    layout, own_desc = writer.layout, group_input.entities.get("desc")
    contrasts: list[VoxelContrast | FeatureContrast] = []
    for inference in inferences:
        sidecar, parameters = _sidecar(group_input, inference, context)
        base = {**group_input.entities, "desc": group_desc(own_desc, inference.name)}
        result = inference.result
        maps = {result.stat_type: result.stat, "z": result.z, "p": result.p}
        if result.stat_type == "t":
            maps["effect"] = result.effect
        if inference.tfce is not None:
            maps["tfce"] = inference.tfce
        paths = {stat: writer.write_image(layout.group_file(GROUP_MAP, {**base, "stat": stat}), image(values),
                                          sidecar, parameters=parameters, sources=context.sources)
                 for stat, values in maps.items()}
        tables = {}
        for correction in inference.corrections:
            corrected = {**group_input.entities, "desc": group_desc(own_desc, inference.name, correction.name)}
            details = {**sidecar, "Correction": correction.name, "Threshold": correction.threshold}
            surviving_z = np.where(correction.survives, result.z, 0.0)
            paths[correction.name] = writer.write_image(
                layout.group_file(GROUP_MAP, {**corrected, "stat": "z"}), image(surviving_z), details,
                parameters=parameters, sources=context.sources)
            writer.write_image(layout.group_file(GROUP_MASK, corrected), image(correction.survives.astype(np.float32)),
                               details, parameters=parameters, sources=context.sources)
            if correction.p is not None:
                writer.write_image(layout.group_file(GROUP_MAP, {**corrected, "stat": "p"}), image(correction.p),
                                   details, parameters=parameters, sources=context.sources)
            if correction.survives.any():
                threshold = float(np.min(np.abs(result.z[correction.survives]))) - 1e-6
                clusters, peaks = statmap_tables(image(surviving_z), voxel_thresh=threshold,
                                                 cluster_extent=settings.cluster_extent)
                for kind, table in (("clusters", clusters), ("peaks", peaks)):
                    writer.write_table(layout.group_file(GROUP_TABLES[kind], corrected), table, details,
                                       parameters=parameters, sources=context.sources)
                tables[correction.name] = clusters
        contrasts.append(VoxelContrast(inference.name, result.stat_type, tuple(result.df), summary(inference),
                                       paths, tables))
    return _result(group_input, context, contrasts)


def feature_analysis(group_input: GroupInput, loaded: AnalysisData, writer: DerivativesWriter,
                     context: AnalysisInputs) -> GroupResult:
    """Test parcel, edge or network values; write one table per group contrast; return the report's summary."""
    labels, data = loaded.labels, loaded.data
    assert labels is not None, "feature data come with their labels"
    inferences = infer(data, context.design, context.settings)
    contrasts: list[VoxelContrast | FeatureContrast] = []
    for inference in inferences:
        sidecar, parameters = _sidecar(group_input, inference, context)
        result = inference.result
        table = labels.copy()
        table["mean"] = np.nanmean(data, axis=0)
        if result.stat_type == "t":
            table["effect"] = result.effect
        table[result.stat_type] = result.stat
        table["z"], table["p"] = result.z, result.p
        for correction in inference.corrections:
            if correction.p is not None:
                table[f"p_{correction.name}"] = correction.p
            table[f"survives_{correction.name}"] = correction.survives
        entities = {**group_input.entities, "desc": group_desc(group_input.entities.get("desc"), inference.name)}
        path = writer.write_table(writer.layout.group_file(GROUP_FEATURES[group_input.kind], entities), table,
                                  sidecar, parameters=parameters, sources=context.sources)
        contrasts.append(FeatureContrast(inference.name, result.stat_type, tuple(result.df), summary(inference),
                                         table, path))
    features = FeatureValues(labels, data, np.nanmean(data, axis=0), context.groups,
                             _coordinates(Path(context.sources[0])))
    return _result(group_input, context, contrasts, features)


def _result(group_input: GroupInput, context: AnalysisInputs, contrasts: list[VoxelContrast | FeatureContrast],
            features: FeatureValues | None = None) -> GroupResult:
    return GroupResult(group_input.kind, group_input.name, len(context.sources), context.design, context.left_out,
                       tuple(contrasts), features, context.rows, context.cells)


def _coordinates(path: Path) -> np.ndarray | None:
    """Parcel centroids (mm) recorded in a participant-level sidecar's ``Atlas.NodeCoordinates``, if any."""
    metadata = read_sidecar(path)
    atlas = AtlasRecord.from_sidecar(metadata) if metadata is not None else None
    if atlas is None or atlas.node_coordinates is None:
        return None
    return np.asarray(atlas.node_coordinates, dtype=float)


def _features(kind: str, files: Sequence[Path]) -> tuple[pd.DataFrame, list[np.ndarray]]:
    """Feature labels and one value vector per file: parcel effects, or a matrix's upper triangle.

    Raises
    ------
    Inestimable
        A file without parcel rows, parcels or nodes differing between files, or no finite value.
    """
    rows, labels, names = [], None, None
    for path in files:
        try:
            current, values, found = _feature_values(kind, path)
        except (ValueError, KeyError) as error:
            raise Inestimable(f"{path}: not a readable {kind} table ({error}); re-run the participant level for "
                              "it") from error
        labels = found if labels is None else labels
        if names is not None and current != names:
            raise Inestimable(f"{path}: its parcels differ from {files[0].name}'s; every participant needs the "
                              "same atlas")
        names = current
        rows.append(values)
    if labels is None or not np.isfinite(np.vstack(rows)).all(axis=0).any():
        raise Inestimable("no parcel, edge or network has a finite value in every participant's table")
    return labels, rows


def _feature_values(kind: str, path: Path) -> tuple[tuple, np.ndarray, pd.DataFrame]:
    """One file's feature names, values and labels: parcel effects, or a matrix's upper triangle."""
    if kind == "parcels":
        table = pd.read_csv(path, sep="\t", na_values=["n/a"])
        if "effect" not in table or "name" not in table:
            raise ValueError("expected parcel rows with 'name' and 'effect' columns")
        labels = table[[c for c in ("name", "hemisphere", "network") if c in table]].copy()
        return tuple(table["name"]), table["effect"].to_numpy(float), labels
    matrix = read_relmat(path)
    current = tuple(matrix.index)
    upper = np.triu_indices(len(current), k=0 if kind == "networks" else 1)
    nodes = np.asarray(current)
    labels = pd.DataFrame({"node_a": nodes[upper[0]], "node_b": nodes[upper[1]]})
    return current, matrix.to_numpy(float)[upper], labels


def _sidecar(group_input: GroupInput, inference: ContrastInference, context: AnalysisInputs) -> tuple[dict, dict]:
    """What every group output records (test, contrast, participants) and its parameters (settings)."""
    design, settings = context.design, context.settings
    contrast = np.asarray(design.contrasts[inference.name])
    permutation = inference.permutation.metadata() if inference.permutation is not None else None
    parameters = {"bidsapp": __version__, "test": design.test, "group_column": settings.group_column,
                  "covariates": list(settings.covariates), "contrast": inference.name,
                  "model": dict(settings.model) if settings.model else None,
                  "contrast_weights": contrast.tolist(), "design_columns": list(design.matrix.columns),
                  "corrections": list(settings.corrections), "alpha": settings.alpha,
                  "height_threshold": settings.height_threshold, "cluster_extent": settings.cluster_extent,
                  "n_perm": settings.n_perm, "random_seed": settings.random_seed}
    sidecar = {"Description": f"Group {design.test} test, contrast {inference.name}, of {group_input.name}",
               "Statistic": inference.result.stat_type, "DegreesOfFreedom": list(inference.result.df),
               "Alternative": inference.result.alternative, "Participants": len(context.sources),
               "LeftOut": list(context.left_out), "Permutation": permutation}
    if inference.permutation is not None:  # how its FWE p values were counted, and from how many resamples
        sidecar.update(PermutationPValue=inference.permutation.p_rule,
                       PermutationResamples=inference.permutation.n_perm,
                       SmallestPValue=inference.permutation.smallest_p)
    return sidecar, parameters
