"""Test-wide settings: fixed seeds and thread counts so runs on 2-core CPUs are fast and repeatable."""

import os
import random
import subprocess
import sys

os.environ.setdefault("OMP_NUM_THREADS", "1")
os.environ.setdefault("OPENBLAS_NUM_THREADS", "1")
os.environ.setdefault("MKL_NUM_THREADS", "1")

import numpy as np  # noqa: E402
import pytest  # noqa: E402
import torch  # noqa: E402

torch.set_num_threads(1)


@pytest.fixture(autouse=True)
def _seed():
    random.seed(0)
    np.random.seed(0)
    torch.manual_seed(0)
    yield


@pytest.fixture
def blocked_child():
    """``start(code, *args)`` runs ``python -c code args`` and waits for the line ``ready ...``
    that the child prints once it is blocked where a test wants it (inside a write, waiting on
    stdin); returns ``(child, the words after 'ready')``. Children are killed at teardown."""
    children: list[subprocess.Popen] = []

    def start(code: str, *args: object) -> tuple[subprocess.Popen, list[str]]:
        child = subprocess.Popen(
            [sys.executable, "-c", code, *map(str, args)],
            stdin=subprocess.PIPE,
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            text=True,
        )
        children.append(child)
        words = child.stdout.readline().split()
        assert words[:1] == ["ready"], child.stderr.read()
        return child, words[1:]

    yield start
    for child in children:
        child.kill()
        child.communicate()
