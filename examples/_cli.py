"""How an example script fails on a bad argument: one line and exit status 2, as ``sciml`` does.

The library's checks raise ``ValueError`` (a setting out of range), ``OSError`` (a missing file, an
``--out`` that exists as a file) or ``ImportError`` (an optional extra, named in the message); a
traceback buries that message under library frames. Other exceptions are bugs and keep theirs.
These three can come from a bug too (numpy's broadcasting errors are ValueErrors), so the line
says that ``SCIML_DEBUG=1`` shows the traceback.
"""

from __future__ import annotations

import os
import sys
from collections.abc import Callable
from pathlib import Path


def run(main: Callable[[], object]) -> None:
    prog = Path(sys.argv[0]).name
    try:
        main()
    except KeyboardInterrupt:
        print(f"{prog}: interrupted", file=sys.stderr)
        sys.exit(130)
    except (ValueError, OSError, ImportError) as exc:
        if os.environ.get("SCIML_DEBUG"):
            raise
        message = " ".join(line.strip() for line in str(exc).splitlines() if line.strip())
        # (why) these exceptions also come from bugs deep in training (numpy's broadcasting,
        # torch's shape checks): say how to get the traceback, documented nowhere else
        print(
            f"{prog}: error: {message or type(exc).__name__} (set SCIML_DEBUG=1 for the traceback)",
            file=sys.stderr,
        )
        sys.exit(2)
