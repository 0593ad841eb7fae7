"""Inputs: finding the runs (pybids discovery of fMRIPrep and HCP layouts), reading them, atlases and labels.

- :mod:`~bidsapp.inputs.discovery`: the selected runs of a dataset as an :class:`~bidsapp.inputs.runs.Inventory`
  (:mod:`~bidsapp.inputs.fmriprep`, :mod:`~bidsapp.inputs.hcp`, cached by :mod:`~bidsapp.inputs.index`).
- :mod:`~bidsapp.inputs.readers`: BOLD, masks, confounds and parcel time series of one run.
- :mod:`~bidsapp.inputs.atlas`: parcellation atlases; :mod:`~bidsapp.inputs.label_atlases`: label atlases for
  cluster tables; :mod:`~bidsapp.inputs.parcel_labels`: Glasser 360 names and networks.
- :mod:`~bidsapp.inputs.convert`: the HCP course layout to BIDS; :mod:`~bidsapp.inputs.validation`: the BIDS
  validator.
"""
