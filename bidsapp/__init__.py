"""bidsapp: a BIDS App for what researchers do after fMRIPrep."""

__version__ = "0.1.0"
