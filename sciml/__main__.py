"""``python -m sciml``: the ``sciml`` command, for environments without its console script."""

import sys

from sciml.cli import main

if __name__ == "__main__":  # (why) importing the module (a docs or API walk) must not run it
    sys.exit(main())
