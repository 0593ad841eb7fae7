"""``python -m bidsapp``: the same as the ``bidsapp`` command."""

import sys

from bidsapp.cli import main

sys.exit(main())
