"""Ground truth planted in the demo datasets.

Every effect the simulators put into the data is written here as a plain
constant, so that tests (and curious users) can check that an analysis
recovers what was planted.  Nothing in this module computes anything or
touches the disk.

Two families of data share this module:

* the voxel-wise fMRIPrep-style dataset (``bids/`` and
  ``bids/derivatives/fmriprep``), in MNI152NLin2009cAsym millimetres;
* the HCP-style parcellated dataset (``hcp/`` and ``hcp_bids/``), on the
  Glasser 360 parcels of ``bidsapp/data/glasser360.tsv``.

Amplitudes are percent signal change (PSC) of the voxel or parcel baseline.
Correlations are *noise-free* targets: the correlation of the planted node
signals before thermal noise, motion artefacts and physiological noise are
added.  Measured correlations are therefore a little lower, and the group
difference is preserved in sign.
"""

from __future__ import annotations

from dataclasses import dataclass

__all__ = [
    "Blob",
    "Node",
    "Network",
    "FMRIPREP_TR",
    "REST_VOLUMES",
    "TASK_VOLUMES",
    "N_NON_STEADY_STATE",
    "NON_STEADY_STATE_GAIN",
    "BASELINE",
    "THERMAL_NOISE_PERCENT",
    "FD_RADIUS_MM",
    "FD_OUTLIER_THRESHOLD_MM",
    "STD_DVARS_OUTLIER_THRESHOLD",
    "MOTION_SPIKES_PER_RUN",
    "MOTION_LEVELS",
    "GROUP_COLUMN",
    "GROUP_LEVELS",
    "TASK_NAME",
    "REST_NAME",
    "TASK_CONDITIONS",
    "TASK_FIRST_ONSET_S",
    "TASK_BLOCK_DURATION_S",
    "TASK_BLOCK_PERIOD_S",
    "TASK_BLOBS",
    "LF_MINUS_RF_SIGN",
    "NODE_RADIUS_MM",
    "NETWORK_BAND_HZ",
    "NETWORK_SIGNAL_PERCENT",
    "REST_NETWORKS",
    "WITHIN_NETWORK_CORRELATION",
    "PATIENT_WITHIN_NETWORK_CORRELATION",
    "BETWEEN_NETWORK_CORRELATION",
    "DMN_GROUP_DIFFERENCE",
    "HCP_TR",
    "HCP_BOLD_NAMES",
    "HCP_TASK_FRAMES",
    "HCP_REST_FRAMES",
    "HCP_CONDITIONS",
    "HCP_SUBJECT_IDS",
    "HCP_BASELINE",
    "HCP_RIGHT_SOMATOMOTOR",
    "HCP_LEFT_SOMATOMOTOR",
    "HCP_VISUAL_NETWORKS",
    "HCP_MOTOR_PSC",
    "HCP_TONGUE_PSC",
    "HCP_CUE_PSC",
    "HCP_EMOTION_PARCELS",
    "HCP_FEAR_EXTRA_PSC",
    "HCP_STIMULUS_VISUAL_PSC",
    "HCP_GAMBLING_PARCELS",
    "HCP_WIN_EXTRA_PSC",
    "HCP_NETWORK_SIGNAL_PERCENT",
    "HCP_WITHIN_NETWORK_CORRELATION",
    "HCP_PATIENT_DEFAULT_CORRELATION",
]


@dataclass(frozen=True)
class Blob:
    """A Gaussian activation blob of the voxel-wise task dataset.

    Attributes
    ----------
    name : str
        Short label of the region.
    center_mm : tuple of float
        Centre in MNI152NLin2009cAsym millimetres (x, y, z).
    fwhm_mm : float
        Full width at half maximum of the isotropic Gaussian profile.
    percent_signal_change : float
        Peak amplitude (at the centre, on the plateau of a block) in percent
        of the voxel baseline.
    conditions : tuple of str
        Conditions (``trial_type`` values) that evoke this blob.
    """

    name: str
    center_mm: tuple[float, float, float]
    fwhm_mm: float
    percent_signal_change: float
    conditions: tuple[str, ...]


@dataclass(frozen=True)
class Node:
    """A spherical node of a resting-state network.

    Attributes
    ----------
    name : str
        Short label of the node.
    center_mm : tuple of float
        Centre in MNI millimetres; the node is a sphere of
        :data:`NODE_RADIUS_MM` around it.
    """

    name: str
    center_mm: tuple[float, float, float]


@dataclass(frozen=True)
class Network:
    """A resting-state network: nodes sharing one latent signal.

    Attributes
    ----------
    name : str
        Network label.
    nodes : tuple of Node
        Its nodes.
    """

    name: str
    nodes: tuple[Node, ...]


# --------------------------------------------------------------------------
# Voxel-wise (fMRIPrep) dataset: acquisition
# --------------------------------------------------------------------------

#: Repetition time of every raw and preprocessed BOLD run, seconds.
FMRIPREP_TR = 2.0
#: Volumes in the resting-state run (``task-rest``).
REST_VOLUMES = 120
#: Volumes in each motor task run (``task-motor_run-01``, ...).
TASK_VOLUMES = 100
#: Leading non-steady-state volumes of every run (flagged in the confounds
#: as ``non_steady_state_outlier00`` and ``01``).
N_NON_STEADY_STATE = 2
#: Multiplicative brightness of those volumes (volume 0, volume 1).
NON_STEADY_STATE_GAIN = (1.6, 1.2)
#: Mean in-mask intensity of the preprocessed BOLD (arbitrary units).
BASELINE = 1000.0
#: Standard deviation of the white thermal noise, percent of baseline.
THERMAL_NOISE_PERCENT = 1.0

# --------------------------------------------------------------------------
# Motion
# --------------------------------------------------------------------------

#: Head radius (mm) used to turn rotations into displacements for the
#: framewise displacement of Power et al. (2012).
FD_RADIUS_MM = 50.0
#: fMRIPrep's framewise-displacement threshold for ``motion_outlierXX``.
FD_OUTLIER_THRESHOLD_MM = 0.5
#: fMRIPrep's standardised-DVARS threshold for ``motion_outlierXX``.
STD_DVARS_OUTLIER_THRESHOLD = 1.5
#: (min, max) number of sudden head movements per run; each makes the
#: framewise displacement exceed 0.5 mm in one or two volumes.
MOTION_SPIKES_PER_RUN = (2, 6)
#: Per-participant motion scale, cycled over participants in order: the
#: random-walk step size and the number of spikes grow with it, so the
#: third and sixth participants move the most and the first and fifth
#: the least.
MOTION_LEVELS = (0.6, 1.0, 1.8, 0.8, 0.6, 1.4, 1.0, 1.2)

# --------------------------------------------------------------------------
# Participants
# --------------------------------------------------------------------------

#: Column of ``participants.tsv`` holding the group.
GROUP_COLUMN = "group"
#: Group levels; participants alternate control, patient, control, ...
#: (so a dataset of 2n participants has n of each).
GROUP_LEVELS = ("control", "patient")

# --------------------------------------------------------------------------
# Task (block design) effects
# --------------------------------------------------------------------------

#: BIDS task label of the block-design task and of the resting run.
TASK_NAME = "motor"
REST_NAME = "rest"
#: Conditions of the motor task: left foot and right foot.
TASK_CONDITIONS = ("lf", "rf")
#: Onset of the first block, seconds from the first volume.
TASK_FIRST_ONSET_S = 10.0
#: Duration of every block, seconds.
TASK_BLOCK_DURATION_S = 15.0
#: Onset-to-onset interval of blocks (block + 15 s of fixation).
TASK_BLOCK_PERIOD_S = 30.0
#: Planted task activations.  Conditions alternate lf, rf, lf, ... in odd
#: runs and rf, lf, rf, ... in even runs.  The response is the block boxcar
#: convolved with the Glover HRF and scaled so its plateau is 1.
TASK_BLOBS = (
    Blob("right_motor", (38.0, -22.0, 56.0), 12.0, 3.0, ("lf",)),
    Blob("left_motor", (-38.0, -22.0, 56.0), 12.0, 3.0, ("rf",)),
    Blob("visual", (0.0, -88.0, 4.0), 16.0, 2.0, ("lf", "rf")),
)
#: Expected sign of the ``lf - rf`` contrast at each blob centre.
LF_MINUS_RF_SIGN = {"right_motor": 1, "left_motor": -1, "visual": 0}

# --------------------------------------------------------------------------
# Resting-state networks
# --------------------------------------------------------------------------

#: Radius of every network node sphere, mm.
NODE_RADIUS_MM = 8.0
#: Pass band of the latent network signals, Hz.
NETWORK_BAND_HZ = (0.01, 0.1)
#: Standard deviation of a node's network fluctuation, percent of baseline.
NETWORK_SIGNAL_PERCENT = 1.5
#: Networks whose nodes share one latent signal (in rest and task runs).
REST_NETWORKS = (
    Network(
        "default_mode",
        (
            Node("PCC", (0.0, -52.0, 26.0)),
            Node("mPFC", (0.0, 52.0, -6.0)),
            Node("lAG", (-46.0, -68.0, 32.0)),
            Node("rAG", (46.0, -68.0, 32.0)),
        ),
    ),
    Network(
        "somatomotor",
        (
            Node("lM1", (-38.0, -22.0, 56.0)),
            Node("rM1", (38.0, -22.0, 56.0)),
            Node("SMA", (0.0, -10.0, 60.0)),
        ),
    ),
    Network(
        "visual",
        (
            Node("V1", (0.0, -88.0, 4.0)),
            Node("lLO", (-44.0, -76.0, -2.0)),
            Node("rLO", (44.0, -76.0, -2.0)),
        ),
    ),
)
#: Noise-free correlation between two nodes of one network, controls.
WITHIN_NETWORK_CORRELATION = {"default_mode": 0.6, "somatomotor": 0.6, "visual": 0.6}
#: Same for patients: only the default-mode coupling is weaker.
PATIENT_WITHIN_NETWORK_CORRELATION = {
    "default_mode": 0.2,
    "somatomotor": 0.6,
    "visual": 0.6,
}
#: Noise-free correlation between nodes of different networks (the latent
#: signals are orthogonalised within each run).
BETWEEN_NETWORK_CORRELATION = 0.0
#: Planted group effect: control minus patient default-mode within-network
#: correlation (noise-free; Fisher z difference atanh(0.6)-atanh(0.2)=0.49).
DMN_GROUP_DIFFERENCE = 0.4

# --------------------------------------------------------------------------
# HCP-style parcellated dataset
# --------------------------------------------------------------------------

#: Repetition time of every HCP run, seconds.
HCP_TR = 0.72
#: Run order of the HCP course; file ``bold<k>_...npy`` is entry k (1-based).
HCP_BOLD_NAMES = (
    "rfMRI_REST1_LR", "rfMRI_REST1_RL",
    "rfMRI_REST2_LR", "rfMRI_REST2_RL",
    "tfMRI_MOTOR_RL", "tfMRI_MOTOR_LR",
    "tfMRI_WM_RL", "tfMRI_WM_LR",
    "tfMRI_EMOTION_RL", "tfMRI_EMOTION_LR",
    "tfMRI_GAMBLING_RL", "tfMRI_GAMBLING_LR",
    "tfMRI_LANGUAGE_RL", "tfMRI_LANGUAGE_LR",
    "tfMRI_RELATIONAL_RL", "tfMRI_RELATIONAL_LR",
    "tfMRI_SOCIAL_RL", "tfMRI_SOCIAL_LR",
)  # fmt: skip
#: Frames per task run (the real HCP counts).
HCP_TASK_FRAMES = {"MOTOR": 284, "EMOTION": 176, "GAMBLING": 253}
#: Default frames per resting run (real HCP runs have 1200).
HCP_REST_FRAMES = 300
#: EV files written per task (``EVs/tfMRI_<TASK>_<DIR>/<condition>.txt``).
#: GAMBLING also gets trial-level ``win_event``, ``loss_event`` and
#: ``neut_event`` files.
HCP_CONDITIONS = {
    "MOTOR": ("cue", "lf", "lh", "rf", "rh", "t"),
    "EMOTION": ("fear", "neut"),
    "GAMBLING": ("win", "loss", "neut"),
}
#: Subject identifiers, used in order (real-looking HCP ids; the data are
#: simulated).  More subjects than listed get ids ``200000 + k``.
HCP_SUBJECT_IDS = (
    "100307", "100408", "101107", "101309", "101915", "103111",
    "103414", "103818", "105014", "105115", "106016", "108828",
)  # fmt: skip
#: Mean parcel intensity (each parcel's baseline varies by +-20 %).
HCP_BASELINE = 10000.0
#: Right-hemisphere parcels of the Somatomotor network: lf and lh activate
#: them, so lf - rf and lh - rh are positive here.
HCP_RIGHT_SOMATOMOTOR = (
    "R_4", "R_3b", "R_5m", "R_5L", "R_24dd", "R_24dv", "R_7AL", "R_7PC",
    "R_1", "R_2", "R_3a", "R_6d", "R_6mp", "R_6v", "R_OP4", "R_OP1",
    "R_OP2-3", "R_FOP2", "R_Ig",
)  # fmt: skip
#: Left-hemisphere Somatomotor parcels: rf and rh activate them, so lf - rf
#: and lh - rh are negative here.
HCP_LEFT_SOMATOMOTOR = (
    "L_4", "L_3b", "L_5m", "L_5L", "L_24dd", "L_24dv", "L_7AL", "L_7PC",
    "L_1", "L_2", "L_3a", "L_6d", "L_6mp", "L_6v", "L_OP4", "L_OP1",
    "L_OP2-3", "L_RI", "L_FOP2", "L_Ig",
)  # fmt: skip
#: Networks (``network`` column) driven by visual stimulation.
HCP_VISUAL_NETWORKS = ("Visual1", "Visual2")
#: PSC of lf/lh (right parcels) and rf/rh (left parcels) blocks.
HCP_MOTOR_PSC = 2.0
#: PSC of tongue (``t``) blocks in both hemispheres' Somatomotor parcels.
HCP_TONGUE_PSC = 1.0
#: PSC of the 3-s motor cues in the visual networks.
HCP_CUE_PSC = 0.8
#: Parcels where fear (faces) exceeds neut (shapes).
HCP_EMOTION_PARCELS = ("R_FFC", "L_FFC", "R_PIT", "L_PIT", "R_VVC", "L_VVC")
#: Extra PSC of fear blocks in :data:`HCP_EMOTION_PARCELS` (fear - neut).
HCP_FEAR_EXTRA_PSC = 1.5
#: PSC of any EMOTION or GAMBLING block in the visual networks (equal for
#: all conditions, so it cancels in fear - neut and win - loss).
HCP_STIMULUS_VISUAL_PSC = 1.0
#: Parcels where win (reward) blocks exceed loss blocks.
HCP_GAMBLING_PARCELS = ("R_pOFC", "L_pOFC", "R_10r", "L_10r")
#: Extra PSC of win blocks in :data:`HCP_GAMBLING_PARCELS` (win - loss).
HCP_WIN_EXTRA_PSC = 1.2
#: Standard deviation of the shared network fluctuation of each parcel,
#: percent of baseline (rest and task runs alike).
HCP_NETWORK_SIGNAL_PERCENT = 1.0
#: Noise-free correlation between two parcels of one Cole-Anticevic
#: network (the ``network`` column); between networks it is 0.
HCP_WITHIN_NETWORK_CORRELATION = 0.5
#: Noise-free within-network correlation of the ``Default`` network for
#: ``patient`` subjects of ``hcp_bids/participants.tsv`` (controls: 0.5).
HCP_PATIENT_DEFAULT_CORRELATION = 0.2
