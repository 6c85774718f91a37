"""``python -m mevobs``: the same as the ``mevobs`` command."""

import sys

from mevobs.cli import main

sys.exit(main())
