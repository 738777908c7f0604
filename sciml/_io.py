"""Writes that land whole or not at all: a temporary file beside the target, renamed over it."""

from __future__ import annotations

import os
import tempfile
from collections.abc import Callable
from pathlib import Path
from typing import IO

__all__ = ["atomic_write", "atomic_write_text", "tmp_path"]


def tmp_path(target: Path) -> Path:
    """A new empty file in ``target``'s folder (same file system, so a rename is atomic)."""
    fd, name = tempfile.mkstemp(prefix=f".{target.name}.", suffix=".tmp", dir=target.parent)
    os.close(fd)
    return Path(name)


def atomic_write(
    target: str | os.PathLike[str], write: Callable[[IO], object], mode: str = "wb"
) -> Path:
    """``write(f)`` into a temporary file beside ``target``, then rename it over ``target``: a
    crash or an error in ``write`` leaves the old file (or none), never a half-written one."""
    target = Path(target)
    tmp = tmp_path(target)
    try:
        with open(tmp, mode) as f:
            write(f)
            f.flush()
            os.fsync(f.fileno())
        os.replace(tmp, target)
    finally:
        tmp.unlink(missing_ok=True)
    return target


def atomic_write_text(target: str | os.PathLike[str], text: str) -> Path:
    """:func:`atomic_write` of a text."""
    return atomic_write(target, lambda f: f.write(text), mode="w")
