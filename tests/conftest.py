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


def _tensors_held(module: torch.nn.Module) -> int:
    """Tensors a module and its submodules keep in their attributes (parameters and buffers
    aside), through lists, tuples, dicts and dataclasses (the recorded solver steps)."""
    import dataclasses

    def count(x) -> int:
        if isinstance(x, torch.Tensor):
            return 1
        if isinstance(x, (list, tuple)):
            return sum(count(v) for v in x)
        if isinstance(x, dict):
            return sum(count(v) for v in x.values())
        if dataclasses.is_dataclass(x) and not isinstance(x, type):
            return sum(count(getattr(x, f.name)) for f in dataclasses.fields(x))
        return 0

    skip = ("_parameters", "_buffers", "_modules")
    return sum(count(v) for m in module.modules() for k, v in vars(m).items() if k not in skip)


@pytest.fixture
def tensors_held():
    """``tensors_held(module)``: how many tensors the module keeps outside its parameters and
    buffers (for the tests that a solve leaves O(1), not O(steps), state behind)."""
    return _tensors_held
