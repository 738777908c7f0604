"""A fresh interpreter for checks that must not see what this test process already imported
(import costs, lazily imported dependencies, type hints resolved from scratch)."""

from __future__ import annotations

import os
import subprocess
import sys
import textwrap


def run_fresh_python(code: str, *args: str) -> str:
    """Run ``code`` (dedented) in a fresh interpreter with one thread, warnings off and
    ``SCIML_DEBUG`` unset; its stdout. A non-zero exit fails with the child's stderr."""
    env = {**os.environ, "OMP_NUM_THREADS": "1", "PYTHONWARNINGS": "ignore"}
    env.pop("SCIML_DEBUG", None)
    proc = subprocess.run(
        [sys.executable, "-c", textwrap.dedent(code), *args],
        capture_output=True,
        text=True,
        env=env,
        timeout=300,
    )
    assert proc.returncode == 0, proc.stderr
    return proc.stdout
