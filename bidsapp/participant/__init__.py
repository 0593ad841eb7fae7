"""Participant-level pipelines, one per input kind: ``fmriprep`` (voxels) and ``parcels`` (HCP-style).

Each module offers ``process_participant(job, writer)`` taking a
:class:`bidsapp.participant.level.ParticipantJob`; the steps it chains are pure
functions in the step modules (denoising, parcellation, connectivity, GLM).
"""
