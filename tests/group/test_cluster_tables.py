"""Peak, cluster and parcel tables against atlasreader's expectations and hand-made atlases.

The oracle for ``image_10426.nii.gz`` (the bytes nilearn ships, also in
atlasreader's tests) is atlasreader 0.3.2: ``EXPECTED_TABLES`` from its
``tests/test_atlasreader.py`` (voxel_thresh=4, cluster_extent=20) and, for the
label columns, which its tests do not check, the strings its
``get_statmap_info`` printed for the same call (run with the shim in
``benchmarks/tables.py``). atlasreader itself is not imported here.
"""

from __future__ import annotations

import importlib.util
import json
import subprocess
import sys
from pathlib import Path

import nibabel as nib
import numpy as np
import pandas as pd
import pytest

import bidsapp
from bidsapp.errors import UsageError
from bidsapp.group.cluster_tables import cluster_table, peak_table, statmap_tables
from bidsapp.inputs.label_atlases import available_atlases

NILEARN_DATA = Path(importlib.util.find_spec("nilearn").submodule_search_locations[0]) / "datasets" / "data"
IMAGE_10426 = NILEARN_DATA / "image_10426.nii.gz"
GLASSER = Path(bidsapp.__file__).parent / "data" / "glasser360.tsv"

# atlasreader/tests/test_atlasreader.py, EXPECTED_TABLES (columns 1-5 of its CSVs).
EXPECTED_CLUSTERS = np.array([
    [42, -25, 58, 6.66003, 36936],
    [-36, -25, 55, -6.63604, 15012],
    [45, -19, 16, 5.76538, 7722],
    [-15, -52, -26, 6.11673, 7101],
    [18, -55, -23, -5.90086, 5184],
    [-36, -19, 19, -5.00687, 648],
])
EXPECTED_PEAKS = np.array([
    [42, -25, 58, 7.94135, 36936],
    [-36, -25, 55, -7.94144, 15012],
    [45, -19, 16, 7.94135, 7722],
    [-15, -52, -26, 7.94135, 7101],
    [18, -55, -23, -7.94144, 5184],
    [-36, -19, 19, -6.21808, 648],
])
# atlasreader 0.3.2 get_statmap_info(image_10426, cluster_extent=20, voxel_thresh=4), label columns.
EXPECTED_CLUSTER_LABELS = {
    "aal": [
        ("43.27% Postcentral_R; 23.54% Precentral_R; 9.65% Supp_Motor_Area_R; 7.82% Frontal_Sup_2_R; "
        "6.36% Parietal_Sup_R"),
        "64.03% Postcentral_L; 30.40% Precentral_L",
        ("45.10% Rolandic_Oper_R; 17.13% Insula_R; 8.39% SupraMarginal_R; 7.34% Heschl_R; 7.34% Putamen_R; "
        "6.99% Temporal_Sup_R; 5.24% no_label"),
        "44.11% Cerebelum_6_L; 41.83% Cerebelum_4_5_L; 6.84% no_label",
        "49.48% Cerebelum_4_5_R; 32.29% Cerebelum_6_R; 7.29% Vermis_4_5; 5.73% no_label",
        "66.67% Rolandic_Oper_L; 33.33% Insula_L",
    ],
    "desikan_killiany": [
        ("32.53% Right-Cerebral-White-Matter; 29.09% Unknown; 10.45% ctx-rh-postcentral; 10.16% ctx-rh-precentral; "
        "8.33% ctx-rh-superiorparietal"),
        "48.38% Left-Cerebral-White-Matter; 19.24% ctx-lh-postcentral; 16.73% Unknown; 15.47% ctx-lh-precentral",
        ("43.01% Unknown; 20.63% ctx-rh-supramarginal; 9.09% Right-Putamen; 9.09% ctx-rh-insula; "
        "8.39% Right-Cerebral-White-Matter"),
        "78.71% Left-Cerebellum-Cortex; 18.25% Left-Cerebellum-White-Matter",
        "80.73% Right-Cerebellum-Cortex; 10.42% Right-Cerebellum-White-Matter; 8.85% Unknown",
        "50.00% Unknown; 29.17% ctx-lh-supramarginal; 16.67% ctx-lh-postcentral",
    ],
    "harvard_oxford": [
        ("40.35% Right_Postcentral_Gyrus; 26.54% Right_Precentral_Gyrus; 16.52% Right_Superior_Parietal_Lobule; "
        "7.16% Right_Juxtapositional_Lobule_Cortex_(formerly_Supplementary_Motor_Cortex)"),
        "62.41% Left_Postcentral_Gyrus; 36.33% Left_Precentral_Gyrus",
        ("30.07% Right_Parietal_Operculum_Cortex; 28.67% Right_Central_Opercular_Cortex; 18.88% Right_Insular_Cortex; "
        "8.39% Right_Heschl's_Gyrus_(includes_H1_and_H2); 7.34% Right_Putamen"),
        "84.03% no_label; 9.13% Left_Lingual_Gyrus",
        "85.42% no_label; 13.54% Right_Lingual_Gyrus",
        "66.67% Left_Central_Opercular_Cortex; 16.67% Left_Parietal_Operculum_Cortex; 16.67% Left_Insular_Cortex",
    ],
}
EXPECTED_PEAK_LABELS = {
    "aal": ["Precentral_R", "Precentral_L", "Rolandic_Oper_R", "no_label", "Cerebelum_6_R", "Insula_L"],
    "desikan_killiany": ["ctx-rh-postcentral", "Left-Cerebral-White-Matter", "Unknown", "Left-Cerebellum-Cortex",
                         "Right-Cerebellum-Cortex", "Unknown"],
    "harvard_oxford": [
        "43.0% Right_Postcentral_Gyrus; 17.0% Right_Precentral_Gyrus",
        "30.0% Left_Postcentral_Gyrus; 30.0% Left_Precentral_Gyrus",
        ("43.0% Right_Central_Opercular_Cortex; 40.0% Right_Parietal_Operculum_Cortex; "
        "8.0% Right_Heschl's_Gyrus_(includes_H1_and_H2)"),
        "0% no_label",
        "0% no_label",
        "37.0% Left_Central_Opercular_Cortex; 37.0% Left_Insular_Cortex; 8.0% Left_Parietal_Operculum_Cortex",
    ],
}


@pytest.fixture(scope="module")
def tables_10426():
    """atlasreader's test call, made once: (clusters, peaks)."""
    return statmap_tables(IMAGE_10426, voxel_thresh=4, cluster_extent=20)


def test_image_10426_numbers_match_atlasreader_expected_tables(tables_10426):
    clusters, peaks = tables_10426
    assert list(clusters.columns) == ["cluster_id", "peak_x", "peak_y", "peak_z", "cluster_mean", "volume_mm",
                                      "aal", "desikan_killiany", "harvard_oxford"]
    assert list(peaks.columns[:6]) == ["cluster_id", "peak_x", "peak_y", "peak_z", "peak_value", "volume_mm"]
    assert clusters["cluster_id"].tolist() == peaks["cluster_id"].tolist() == [1, 2, 3, 4, 5, 6]
    # atlasreader compares its "%5g" CSVs with np.allclose; volumes and coordinates are exact.
    assert np.allclose(clusters.iloc[:, 1:6].to_numpy(float), EXPECTED_CLUSTERS)
    assert np.allclose(peaks.iloc[:, 1:6].to_numpy(float), EXPECTED_PEAKS)
    assert clusters["volume_mm"].tolist() == [36936.0, 15012.0, 7722.0, 7101.0, 5184.0, 648.0]
    assert np.array_equal(clusters[["peak_x", "peak_y", "peak_z"]].to_numpy(), EXPECTED_CLUSTERS[:, :3])


def test_image_10426_labels_match_atlasreader(tables_10426):
    clusters, peaks = tables_10426
    for atlas, expected in EXPECTED_CLUSTER_LABELS.items():
        assert clusters[atlas].tolist() == expected, atlas
    for atlas, expected in EXPECTED_PEAK_LABELS.items():
        assert peaks[atlas].tolist() == expected, atlas


def test_cluster_and_peak_table_are_the_two_halves(tables_10426):
    kwargs = {"voxel_thresh": 4, "cluster_extent": 20, "atlases": ("aal",)}
    assert cluster_table(IMAGE_10426, **kwargs).equals(tables_10426[0].drop(columns=["desikan_killiany",
                                                                                      "harvard_oxford"]))
    assert peak_table(nib.load(IMAGE_10426), **kwargs).equals(tables_10426[1].drop(columns=["desikan_killiany",
                                                                                         "harvard_oxford"]))


@pytest.mark.parametrize(("direction", "volumes", "sign"), [
    ("pos", [36936.0, 7722.0, 7101.0], 1), ("neg", [15012.0, 5184.0, 648.0], -1)])
def test_one_sign_keeps_that_sign_of_atlasreader_clusters(direction, volumes, sign):
    clusters, peaks = statmap_tables(IMAGE_10426, voxel_thresh=4, cluster_extent=20, atlases=(),
                                     direction=direction)
    assert clusters["volume_mm"].tolist() == volumes
    assert (np.sign(clusters["cluster_mean"]) == sign).all() and (np.sign(peaks["peak_value"]) == sign).all()


def test_percentile_threshold_gives_atlasreaders_cluster_count():
    # atlasreader 0.3.2 finds 36 clusters with voxel_thresh=-5 (top 5 %), cluster_extent=5 (benchmarks/tables.py).
    assert len(cluster_table(IMAGE_10426, voxel_thresh=-5, cluster_extent=5, atlases=())) == 36


def test_cluster_extent_keeps_clusters_larger_than_the_extent():
    # atlasreader's rule in float32 mm3 drops a cluster of exactly cluster_extent voxels (benchmarks/tables.py).
    data = np.zeros((30, 12, 6), np.float32)
    for row, size in enumerate((19, 20, 21, 40)):
        block = np.zeros(60, np.float32)
        block[:size] = 5.0 if size != 21 else -5.0
        data[1 + 7 * row: 5 + 7 * row, 2:7, 1:4] = block.reshape(4, 5, 3)
    image = nib.Nifti1Image(data, np.diag([3.0, 3.0, 3.0, 1.0]))
    clusters = cluster_table(image, voxel_thresh=4, cluster_extent=20, atlases=())
    assert clusters["volume_mm"].tolist() == [40 * 27.0, 21 * 27.0]
    assert len(cluster_table(image, voxel_thresh=4, cluster_extent=0, atlases=())) == 4


def test_sub_peaks_are_separated_local_maxima_led_by_the_cluster_peak():
    min_distance = 20.0
    clusters, peaks = statmap_tables(IMAGE_10426, voxel_thresh=4, cluster_extent=20, atlases=(),
                                     min_distance=min_distance)
    single = peak_table(IMAGE_10426, voxel_thresh=4, cluster_extent=20, atlases=())
    image = nib.load(IMAGE_10426)
    data = np.abs(image.get_fdata())
    assert len(peaks) > len(clusters)
    for cluster_id, group in peaks.groupby("cluster_id"):
        first = group.iloc[0]
        assert first.equals(single.iloc[cluster_id - 1])
        xyz = group[["peak_x", "peak_y", "peak_z"]].to_numpy()
        distances = np.linalg.norm(xyz[:, None] - xyz[None], axis=-1)
        assert (distances[np.triu_indices(len(xyz), 1)] >= min_distance).all()
        values = group["peak_value"].abs().to_numpy()
        assert (np.diff(values[1:]) <= 0).all() and values[0] == values.max()
        ijk = np.round(nib.affines.apply_affine(np.linalg.inv(image.affine), xyz[1:])).astype(int)
        for i, j, k in ijk:  # a sub-peak is at least as large as its 26 neighbours of the same sign
            neighbourhood = data[i - 1:i + 2, j - 1:j + 2, k - 1:k + 2]
            assert data[i, j, k] >= 4 and data[i, j, k] == neighbourhood.max()


def test_nothing_above_threshold_gives_empty_tables_with_columns():
    clusters, peaks = statmap_tables(IMAGE_10426, voxel_thresh=10, cluster_extent=20)
    assert clusters.empty and peaks.empty
    assert list(clusters.columns)[-3:] == list(peaks.columns)[-3:] == ["aal", "desikan_killiany", "harvard_oxford"]
    zero = nib.Nifti1Image(np.zeros((5, 5, 5), np.float32), np.eye(4))
    assert cluster_table(zero, voxel_thresh=0, cluster_extent=0, atlases=()).empty


@pytest.fixture
def toy_atlases(tmp_path):
    """A 1 mm label atlas and a 2 mm probabilistic one, over a 2 mm map with two clusters."""
    affine_2mm = np.array([[2.0, 0, 0, -10], [0, 2, 0, -10], [0, 0, 2, -10], [0, 0, 0, 1]])
    affine_1mm = np.array([[1.0, 0, 0, -10], [0, 1, 0, -10], [0, 0, 1, -10], [0, 0, 0, 1]])
    labels = np.zeros((20, 20, 20), np.uint8)
    labels[:9] = 1  # x <= -2 mm
    labels[9:] = 2
    labels[:, 12:] = 0  # y >= 2 mm: background
    probs = np.zeros((10, 10, 10, 3), np.uint8)
    probs[:5, :6, ..., 0], probs[:5, :6, ..., 1], probs[:5, :6, ..., 2] = 70, 20, 3
    probs[5:, :6, ..., 2] = 4  # below prob_thresh: counts for the cluster share, not at a peak
    nib.save(nib.Nifti1Image(labels, affine_1mm), tmp_path / "atlas_toy.nii.gz")
    nib.save(nib.Nifti1Image(probs, affine_2mm), tmp_path / "atlas_toyprob.nii.gz")
    pd.DataFrame({"index": [1, 2], "name": ["Left_Thing", "Right_Thing"]}).to_csv(tmp_path / "labels_toy.csv",
                                                                                   index=False)
    pd.DataFrame({"index": [0, 1, 2], "name": ["A", "B", "C"]}).to_csv(tmp_path / "labels_toyprob.csv", index=False)
    stat = np.zeros((10, 10, 10), np.float32)
    stat[2:7, 3:5, 5] = 5.0  # 10 voxels, 6 at x <= -2 mm
    stat[4, 3, 5] = 8.0
    stat[2:4, 7:9, 7:9] = -4.0  # 8 voxels, a plateau, outside both atlases' labels
    return nib.Nifti1Image(stat, affine_2mm), tmp_path


def test_labels_on_hand_made_atlases(toy_atlases):
    stat, atlas_dir = toy_atlases
    clusters, peaks = statmap_tables(stat, voxel_thresh=3, cluster_extent=5, atlases=("toy", "TOYPROB"),
                                     atlas_dir=atlas_dir)
    assert clusters[["peak_x", "peak_y", "peak_z"]].to_numpy().tolist() == [[-2, -4, 0], [-6, 4, 4]]
    assert clusters["cluster_mean"].tolist() == pytest.approx([5.3, -4.0])
    assert clusters["volume_mm"].tolist() == [80.0, 64.0]
    assert clusters["toy"].tolist() == ["60.00% Left_Thing; 40.00% Right_Thing", "100.00% no_label"]
    assert clusters["toyprob"].tolist() == ["60.00% A; 40.00% C", "100.00% no_label"]
    assert peaks["peak_value"].tolist() == [8.0, -4.0]  # the plateau's peak: floor of its centre
    assert peaks["toy"].tolist() == ["Left_Thing", "no_label"]
    assert peaks["toyprob"].tolist() == ["70.0% A; 20.0% B", "0% no_label"]


def test_cluster_table_memory_is_small():
    code = (
        "import json, resource, time, tracemalloc\n"
        "from bidsapp.group.cluster_tables import cluster_table\n"
        "tracemalloc.start(); start = time.perf_counter()\n"
        f"cluster_table({str(IMAGE_10426)!r}, voxel_thresh=4, cluster_extent=20)\n"
        "print(json.dumps({'seconds': time.perf_counter() - start,\n"
        "                  'traced_mb': tracemalloc.get_traced_memory()[1] / 2**20,\n"
        "                  'rss_mb': resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024}))\n"
    )
    result = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    figures = json.loads(result.stdout)
    print(figures)
    assert figures["traced_mb"] < 100  # atlasreader: ~5 GB for the same call
    assert figures["rss_mb"] < 1024  # whole process, imports included


def test_bad_parameters_are_named():
    with pytest.raises(UsageError, match="harvard_oxford"):
        cluster_table(IMAGE_10426, voxel_thresh=4, cluster_extent=20, atlases=("nope",))
    with pytest.raises(ValueError, match="direction"):
        cluster_table(IMAGE_10426, voxel_thresh=4, cluster_extent=20, direction="up")
    with pytest.raises(ValueError, match="min_distance"):
        peak_table(IMAGE_10426, voxel_thresh=4, cluster_extent=20, min_distance=0)
    four_d = nib.Nifti1Image(np.zeros((4, 4, 4, 2), np.float32), np.eye(4))
    with pytest.raises(ValueError, match="3-D"):
        cluster_table(four_d, voxel_thresh=4, cluster_extent=20, atlases=())


def test_packaged_atlases_are_atlasreaders():
    assert set(available_atlases()) >= {"aal", "aicha", "desikan_killiany", "destrieux", "harvard_oxford",
                                        "juelich", "marsatlas", "neuromorphometrics", "talairach_ba",
                                        "talairach_gyrus"}


