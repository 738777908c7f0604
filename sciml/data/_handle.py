"""A per-process, lazily opened HDF5 handle.

HDF5 handles must never cross ``fork``: a ``DataLoader`` worker or a ``torchrun`` rank that used a
handle inherited from its parent reads through shared library state and can return garbage.
The handle here is opened on first use, remembers the pid that opened it, reopens when the pid
changes, and is dropped (never pickled) when the owning object is sent to another process.
"""

from __future__ import annotations

import os
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

import h5py

from ._errors import DataFormatError

# A 64 MiB raw-data chunk cache per dataset: one snapshot of a 1024^2 float32 field is 4 MiB,
# and windows revisit the chunks of neighbouring steps.
_RDCC_NBYTES = 64 * 1024 * 1024


def open_h5(path: str | os.PathLike[str]) -> h5py.File:
    """Open ``path`` read-only, turning h5py's low-level errors into a :class:`DataFormatError`."""
    path = Path(path)
    if not path.exists():
        raise DataFormatError(path, "no such file")
    try:
        # HDF5's default file locking (best-effort in HDF5 2; HDF5_USE_FILE_LOCKING=FALSE turns
        # it off): every open of one file in a process must use the same locking flags, so a
        # user's plain h5py.File(path) beside a dataset failed with locking=False
        return h5py.File(path, "r", rdcc_nbytes=_RDCC_NBYTES)
    except OSError as e:
        raise DataFormatError(
            path,
            f"cannot be opened as HDF5 / NetCDF-4 ({e}); expected a complete HDF5 file "
            f"of {path.stat().st_size} bytes -- is it truncated (interrupted download or write)?",
        ) from e


@contextmanager
def unreadable_as_format_error(path: str | os.PathLike[str]) -> Iterator[None]:
    """Turn what h5py raises on a damaged file into a :class:`DataFormatError` naming ``path``.

    A flipped byte in an object header or an attribute surfaces as whatever h5py or the reader
    meets first: ``RuntimeError`` / ``KeyError`` ("incorrect metadata checksum"), ``OSError``
    ("ran off end of input buffer"), a ``JSONDecodeError`` from a damaged JSON attribute, or
    ``None`` where h5py cannot resolve a link.
    """
    try:
        yield
    except DataFormatError:
        raise
    except (OSError, RuntimeError, KeyError, ValueError, TypeError, AttributeError) as e:
        raise DataFormatError(
            path,
            f"cannot be read ({type(e).__name__}: {e}); expected an intact HDF5 / NetCDF-4 "
            "file -- is it damaged, or was it changed while being read?",
        ) from e


class LazyH5:
    """``LazyH5(path).file`` is an open ``h5py.File`` owned by the calling process."""

    def __init__(self, path: str | os.PathLike[str]):
        self.path = Path(path)
        self._file: h5py.File | None = None
        self._pid: int | None = None
        self._datasets: dict[str, h5py.Dataset] = {}

    def dataset(self, key: str) -> h5py.Dataset:
        """``file[key]``, looked up once per process (h5py's path lookup costs ~20 us)."""
        f = self.file
        ds = self._datasets.get(key)
        if ds is None:
            ds = self._datasets[key] = f[key]
        return ds

    @property
    def file(self) -> h5py.File:
        pid = os.getpid()
        if self._file is None or self._pid != pid:
            # A handle from another pid is abandoned, not closed: closing it here would touch
            # the parent's HDF5 state through the copied library.
            self._file = open_h5(self.path)
            self._pid = pid
            self._datasets = {}
        return self._file

    def close(self) -> None:
        if self._file is not None and self._pid == os.getpid():
            self._file.close()
        self._file = None
        self._pid = None
        self._datasets = {}

    def __getstate__(self) -> dict:
        return {"path": self.path}

    def __setstate__(self, state: dict) -> None:
        self.path = state["path"]
        self._file = None
        self._pid = None
        self._datasets = {}
