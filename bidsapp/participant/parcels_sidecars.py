"""JSON sidecar content of the parcel pipeline's outputs (what a reader needs to use the file).

Parameters, Sources and GeneratedBy are added by :class:`bidsapp.outputs.writer.DerivativesWriter`.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from bidsapp.config import Analysis
from bidsapp.inputs.discovery import Run
from bidsapp.outputs.sidecars import AtlasRecord, ContrastRecord
from bidsapp.steps.connectivity import MAX_ABS_R
from bidsapp.steps.glm.contrasts import STATISTICS, Contrast, condition_weights
from bidsapp.steps.glm.design import DEFAULT_HIGH_PASS_HZ
from bidsapp.steps.parcel_glm import TaskFit

STRATEGY = {"Name": "none", "Detrend": True, "Standardize": "zscore_sample", "Confounds": [],
            "Description": "Parcellated HCP data have no confounds: each run's parcel series were linearly "
                           "detrended and z-scored (nilearn signal.clean), band-passed only when --high-pass "
                           "or --low-pass was given."}
_MEASURES = {"pearsoncorrelation": "Pearson correlation", "partialcorrelation": "partial correlation",
             "covariance": "covariance (divided by the number of volumes)"}
_LAYOUT = ("Square matrix: the first column ('node') names the rows, the header names the columns; "
           "n/a for undefined values. Read with pandas.read_csv(path, sep='\\t', index_col=0, na_values='n/a').")
_P_VALUE = ("One-sided (upper-tail) p-value of t, nilearn's Contrast.p_value convention; two-sided p = "
            "2 * min(p, 1 - p). z is the standard normal quantile with the same upper-tail probability.")


def _runs(runs: Sequence[Run], dummy: int) -> dict[str, Any]:
    return {"Runs": [run.name for run in runs],
            "RepetitionTime": runs[0].repetition_time,
            "NumberOfVolumes": {run.name: run.n_volumes - dummy for run in runs},
            "CensoredVolumes": {run.name: list(range(dummy)) for run in runs}}


def relmat(stat: str, desc: str | None, runs: Sequence[Run], dummy: int, analysis: Analysis,
           coordinates: list[list[float]] | None = None) -> dict[str, Any]:
    """Sidecar of a relationship matrix; ``coordinates`` (parcel centroids, mm) are recorded when known."""
    atlas = AtlasRecord("Glasser", "fsLR", coordinates if coordinates and desc != "networks" else None)
    content: dict[str, Any] = {
        "Description": f"{_MEASURES[stat]} between Glasser parcels",
        "Measure": _MEASURES[stat], "Atlas": atlas.to_sidecar(), "Space": "fsLR", "Layout": _LAYOUT,
        "DenoisingStrategy": {**STRATEGY, "HighPassHz": analysis.high_pass_hz, "LowPassHz": analysis.low_pass_hz},
        **_runs(runs, dummy),
    }
    if len(runs) > 1:
        content["Combination"] = "Runs cleaned separately, then concatenated in time before the matrix was computed."
    if desc == "fisherz":
        content["Description"] = "Fisher z (arctanh) of the Pearson correlation between Glasser parcels"
        content["FisherZ"] = f"arctanh(r), |r| clipped to {MAX_ABS_R}; the diagonal is n/a (undefined)."
    if desc == "networks":
        content["Description"] = ("Within- and between-network connectivity: the mean Fisher z over pairs of "
                                  "distinct parcels, one in each network (Cole-Anticevic networks, Ji et al. 2019)")
        content["Units"] = "Fisher z"
        content["Layout"] = _LAYOUT.replace("'node'", "'network'")
    return content


def statmap(contrast: Contrast, plan, fit: TaskFit, dof: float, analysis: Analysis, dummy: int) -> dict[str, Any]:
    """Sidecar of a contrast's GLM statistics table."""
    return {
        "Description": f"First-level GLM contrast {contrast.name} per Glasser parcel, runs combined by fixed effects",
        **ContrastRecord(contrast.name, contrast.expression, tuple(plan.conditions),
                         condition_weights(contrast, plan.conditions)).to_sidecar(),
        "RunsCombined": list(fit.contrasts[contrast.name].runs),
        "CombinationMethod": "fixed effects (sum of run contrasts scaled by 1/n_runs, as nilearn FirstLevelModel)",
        "DegreesOfFreedom": dof,
        "HRFModel": analysis.hrf_model, "NoiseModel": analysis.noise_model, "DriftModel": "cosine",
        "HighPassHz": analysis.high_pass_hz or DEFAULT_HIGH_PASS_HZ,
        "EffectUnits": fit.units,
        "PValue": _P_VALUE,
        "DenoisingStrategy": {"Name": "none", "Description": "The GLM models drifts (cosine basis) and the mean; "
                                                             "each run is scaled to percent of its parcel means."},
        **_runs(plan.runs, dummy),
        "name": {"Description": "Glasser parcel"},
        "hemisphere": {"Description": "right or left"},
        "network": {"Description": "Cole-Anticevic network (Ji et al. 2019)"},
        **{statistic.name: {"Description": statistic.description,
                            **({"Units": fit.units} if statistic.name == "effect" else {})}
           for statistic in STATISTICS},
    }


def selective_average(contrast: Contrast, plan) -> dict[str, Any]:
    """Sidecar of a contrast's selective-average table."""
    return {
        "Description": (f"Selective average of contrast {contrast.name} (HCP course): the contrast weights applied "
                        "to each condition's mean over its frames, frames floor(onset/TR) to "
                        "floor(onset/TR) + ceil(duration/TR) - 1 pooled over runs, each run with its parcel means "
                        "removed"),
        **ContrastRecord(contrast.name, contrast.expression,
                         weights=condition_weights(contrast, plan.conditions)).to_sidecar(),
        "SkipFrames": 0,
        "EffectUnits": "data units (parcel mean removed)",
        "Runs": [run.name for run in plan.runs],
        "RepetitionTime": plan.runs[0].repetition_time,
        "effect": {"Description": "weighted difference of the conditions' frame means"},
    }
