"""Outputs: the layout (every file name written or read), the BIDS-Derivatives writer (sidecars, atomic
writes, re-run checks), the typed sidecar records other stages read, and relmat TSVs."""
