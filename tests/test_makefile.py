"""The Makefile's clean target removes what its targets build."""

from __future__ import annotations

import pathlib
import shutil
import subprocess

import pytest

ROOT = pathlib.Path(__file__).resolve().parents[1]


@pytest.mark.skipif(shutil.which("make") is None, reason="needs make")
def test_clean_removes_the_venvs_make_test_and_make_test_mindeps_build():
    """``make test-mindeps`` builds .venv-mindeps beside make test's .venv; ``make clean``
    removed .venv only. Dry run (-n): the commands, nothing removed."""
    out = subprocess.run(
        ["make", "-n", "-C", str(ROOT), "clean", "VENV=.v1", "MINDEPS_VENV=.v2"],
        capture_output=True,
        text=True,
        check=True,
    ).stdout
    removed = [w for line in out.splitlines() if line.startswith("rm -rf") for w in line.split()]
    for path in (".v1", ".v2", "site", "demo_out"):
        assert path in removed, out
