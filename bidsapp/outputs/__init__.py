"""Outputs: what the participant and group levels write, and the names they read back.

The layout (every file name written or read), the BIDS-Derivatives writer (sidecars, atomic writes, re-run
checks), the typed sidecar records other stages read, and relmat TSVs.
"""
