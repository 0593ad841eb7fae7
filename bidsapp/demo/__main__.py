"""Command line: ``python -m bidsapp.demo OUTDIR [--participants N] [--seed S]``."""

from __future__ import annotations

import argparse
import sys

from . import make_demo


def main(argv=None) -> int:
    """Build the demo dataset and print the paths it made.

    Parameters
    ----------
    argv : list of str, optional
        Arguments (default: ``sys.argv[1:]``).

    Returns
    -------
    int
        Exit status (0 on success).
    """
    parser = argparse.ArgumentParser(
        prog="python -m bidsapp.demo",
        description="Simulate the bidsapp demo dataset (raw BIDS + fMRIPrep derivatives, "
        "HCP course layout, HCP BIDS-style parcellated data). No download.",
    )
    parser.add_argument("outdir", help="output directory (created)")
    parser.add_argument("--participants", type=int, default=8, metavar="N", help="participants (default 8)")
    parser.add_argument("--seed", type=int, default=0, metavar="S", help="random seed (default 0)")
    args = parser.parse_args(argv)
    if args.participants < 1:
        parser.error("--participants must be at least 1")
    demo = make_demo(args.outdir, n_participants=args.participants, seed=args.seed)
    print(f"bids_dir:     {demo.bids_dir}")
    print(f"fmriprep_dir: {demo.fmriprep_dir}")
    print(f"hcp_dir:      {demo.hcp_dir}")
    print(f"hcp_bids_dir: {demo.hcp_bids_dir}")
    print(f"network_atlas: {demo.network_atlas}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
