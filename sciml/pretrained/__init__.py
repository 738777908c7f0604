"""Registry of pretrained surrogates shipped inside the package.

A shipped model lives in ``sciml/pretrained/weights/<name>/`` as an ordinary checkpoint directory
(``config.json`` + ``model.safetensors``). Nothing is downloaded: a name that is not shipped is
an error that lists the names that are.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

__all__ = ["names", "is_registered", "load", "path_of"]

_WEIGHTS = Path(__file__).parent / "weights"


def names() -> list[str]:
    """Names of the shipped pretrained models."""
    if not _WEIGHTS.is_dir():
        return []
    return sorted(p.name for p in _WEIGHTS.iterdir() if (p / "config.json").is_file())


def is_registered(name: str) -> bool:
    return name in names()


def path_of(name: str) -> Path:
    """Directory of the shipped model ``name``."""
    if not is_registered(name):
        from ..errors import CheckpointError

        raise CheckpointError(
            f"{name!r} is not a shipped pretrained model (looked in {_WEIGHTS}); "
            f"shipped: {names() or 'none yet'}"
        )
    return _WEIGHTS / name


def load(name: str, *, map_location: Any = "cpu"):
    """Load the shipped model ``name`` (see :func:`names`)."""
    from ..operator import Operator

    return Operator.from_pretrained(path_of(name), map_location=map_location)
