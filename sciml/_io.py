"""Writes that land whole or not at all: a temporary file beside the target, renamed over it."""

from __future__ import annotations

import os
import secrets
import stat
from collections.abc import Callable
from pathlib import Path
from typing import IO

__all__ = ["atomic_write", "atomic_write_text", "save_safetensors", "tmp_path"]


def tmp_path(target: Path, suffix: str = ".tmp") -> Path:
    """A new empty file in ``target``'s folder (same file system, so a rename is atomic).

    Its permissions are those a plain ``open(target, "w")`` would leave: the existing target's
    mode, or ``0o666`` less the umask for a new file (``tempfile.mkstemp`` makes ``0o600``, and
    the rename would carry that onto checkpoints and outputs meant to be shared).
    """
    existing = target.is_file()
    mode = stat.S_IMODE(target.stat().st_mode) if existing else 0o666
    for _ in range(100):
        name = target.parent / f".{target.name}.{secrets.token_hex(4)}{suffix}"
        try:
            fd = os.open(name, os.O_WRONLY | os.O_CREAT | os.O_EXCL, mode)  # umask applies
        except FileExistsError:
            continue
        if existing:
            os.fchmod(fd, mode)  # the existing file's mode, umask or not
        os.close(fd)
        return name
    raise FileExistsError(f"{target.parent}: no free temporary name for {target.name} in 100 tries")


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


def save_safetensors(
    tensors: dict, path: str | os.PathLike[str], metadata: dict[str, str] | None = None
) -> None:
    """``safetensors.torch.save_file`` leaving the permissions a plain ``open(path, "w")`` would
    (it recreates the file owner-only, 0o600): the existing file's, or 0o666 less the umask."""
    from safetensors.torch import save_file

    path = Path(path)
    os.close(os.open(path, os.O_WRONLY | os.O_CREAT, 0o666))  # the umask applies to a new file
    mode = stat.S_IMODE(path.stat().st_mode)
    save_file(tensors, str(path), metadata=metadata)
    os.chmod(path, mode)
