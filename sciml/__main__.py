"""``python -m sciml``: the ``sciml`` command, for environments without its console script."""

import sys

from sciml.cli import main

sys.exit(main())
