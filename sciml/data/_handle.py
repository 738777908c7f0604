"""A per-process, lazily opened HDF5 handle.

HDF5 handles must never cross ``fork``: a ``DataLoader`` worker or a ``torchrun`` rank that used a
handle inherited from its parent reads through shared library state and can return garbage.
The handle here is opened on first use, remembers the pid that opened it, reopens when the pid
changes, and is dropped (never pickled) when the owning object is sent to another process.

Every (re)open checks that the path still names the file whose layout was read (same inode,
size and modification time), and an open handle checks its own file at most once a second. A
data set file replaced (``write(..., overwrite=True)``, ``sciml data generate --overwrite``),
rewritten in place (``cp``) or truncated while a run had it open otherwise gave workers forked
after the change the new contents, or zeros past the new end of file, under the old layout,
beside a parent still reading the old ones. A handle opened before a replace or a delete keeps
reading the file it opened, which is still whole.
"""

from __future__ import annotations

import os
import re
import socket
import time
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

import h5py

from ._errors import DataFormatError

# A 64 MiB raw-data chunk cache per dataset: one snapshot of a 1024^2 float32 field is 4 MiB,
# and windows revisit the chunks of neighbouring steps.
_RDCC_NBYTES = 64 * 1024 * 1024

# Seconds between two checks that an open file was not changed (a stat costs ~1-5 us).
_RECHECK_S = 1.0

Identity = tuple[str, int, int, int, int]


def file_identity(path: str | os.PathLike[str] | int) -> Identity:
    """``(host, device, inode, size, mtime_ns)`` of ``path`` (or of an open file descriptor):
    what changes when a file is replaced, rewritten or truncated."""
    st = os.stat(path)
    return (socket.gethostname(), st.st_dev, st.st_ino, st.st_size, st.st_mtime_ns)


def check_unchanged(path: Path, expected: Identity, fd: int | None = None) -> None:
    """Raise :class:`DataFormatError` when ``path`` (or the open file ``fd``, when given) is no
    longer the file ``expected`` names.

    Device and inode are compared on the host that opened the file only: a view pickled to
    another machine sees the same file (a shared mount, or a copy that kept its size and
    modification time) under other numbers.
    """
    try:
        now = file_identity(path if fd is None else fd)
    except FileNotFoundError:
        raise DataFormatError(
            path, "no such file: it was deleted or moved after sciml.data.open read it"
        ) from None
    names = ("device", "inode", "size", "mtime_ns")
    pairs = zip(names, expected[1:], now[1:])
    what = [f"{name} {a} -> {b}" for name, a, b in pairs if a != b]
    if now[0] != expected[0]:  # another host
        what = [w for w in what if not w.startswith(("device", "inode"))]
    if not what:
        return
    raise DataFormatError(
        path,
        f"changed after sciml.data.open read its layout ({', '.join(what)}): replaced, rewritten "
        "or truncated; expected the file that was opened -- open it again (sciml.data.open) to "
        "read the new contents",
    )


def as_path(path: object, caller: str) -> Path:
    """``path`` as a :class:`~pathlib.Path`, or a ``TypeError`` that says what was expected.

    (why) h5py opens file-like objects, and ``Path(io.BytesIO(...))`` raised "expected str,
    bytes or os.PathLike object, not BytesIO". sciml needs the path itself: each process
    (``DataLoader`` worker, ``torchrun`` rank) opens the file again by its path, as an HDF5 handle
    must not cross ``fork`` and an open file object cannot be pickled to a spawned worker, and
    every open checks that the path still names the file whose layout was read (inode, size,
    modification time), which a file-like object has not got.
    """
    if isinstance(path, (str, os.PathLike)):
        return Path(path)
    what = f"{type(path).__name__} {path!r}"
    todo = "pass the path of an HDF5 / NetCDF-4 file"
    if isinstance(path, bytes):
        todo = "decode it (os.fsdecode(path))"
    elif hasattr(path, "read"):  # io.BytesIO, open(..., "rb"), an fsspec file, ...
        name = getattr(path, "name", None)
        what = f"a file-like {type(path).__name__}"
        if isinstance(name, str) and os.path.isfile(name):
            todo = f"pass the path it was opened from ({name!r})"
        else:
            todo = (
                "write its bytes to a file (tempfile.NamedTemporaryFile(suffix='.h5')) and pass "
                "that path"
            )
        what += (
            " (sciml opens the file again by its path in each DataLoader worker and torchrun "
            "rank, and checks that it was not replaced)"
        )
    raise TypeError(
        f"{caller}: expected the path (str or os.PathLike) of an HDF5 file, got {what} -- {todo}"
    )


def open_h5(path: str | os.PathLike[str]) -> h5py.File:
    """Open ``path`` read-only, turning h5py's low-level errors into a :class:`DataFormatError`."""
    path = Path(path)
    if not path.exists():
        raise DataFormatError(path, "no such file")
    # (why) a directory, a file without read permission and a file of another format were all
    # reported as "found N bytes -- is it truncated?", which sent users looking for a download
    # that had not failed
    if path.is_dir():
        raise DataFormatError(
            path, "is a directory; expected an HDF5 / NetCDF-4 file -- pass a file inside it"
        )
    try:
        # HDF5's default file locking (best-effort in HDF5 2; HDF5_USE_FILE_LOCKING=FALSE turns
        # it off): every open of one file in a process must use the same locking flags, so a
        # user's plain h5py.File(path) beside a dataset failed with locking=False
        return h5py.File(path, "r", rdcc_nbytes=_RDCC_NBYTES)
    except OSError as e:
        # (why) decided from the file itself, not from h5py's exception type or HDF5's wording
        # of it (both differ between versions): an h5py that raises a plain OSError for EACCES,
        # or an HDF5 that words "signature not found" otherwise, got the truncated message
        if isinstance(e, PermissionError) or not os.access(path, os.R_OK):
            raise DataFormatError(
                path,
                "cannot be read: permission denied (no read permission for this user); expected "
                "a file this user can read -- check its permissions and owner (ls -l)",
            ) from e
        if _held_by_a_writer(path):
            raise DataFormatError(
                path,
                f"cannot be opened ({e}): a writer holds it open for writing (HDF5's file lock: "
                "h5py.File(path, 'a' or 'w') in this or another process); expected a file no "
                "one is writing -- let the writer finish or close it",
            ) from e
        size = path.stat().st_size
        head, signed = _read_signature(path, size)
        # HDF5 looks for its signature at offsets 0, 512, 1024, ...; a file shorter than the
        # signature, or empty, is truncated rather than of another format
        if size >= len(_SIGNATURE) and not signed:
            raise DataFormatError(
                path,
                f"not an HDF5 file (signature not found): its {size} bytes start with {head!r}, "
                f"not {_SIGNATURE!r}; expected an HDF5 / NetCDF-4 file -- is it another format "
                "(NetCDF-3 classic starts with b'CDF', or Zarr, NumPy, text)?",
            ) from e
        # HDF5 names the size its superblock records ("stored_eof = 10145") when the file is
        # shorter: that is the size expected; the file's own size is what was found
        stored = re.search(r"stored_eof = (\d+)", str(e))
        expected = f" of {stored[1]} bytes" if stored else ""
        raise DataFormatError(
            path,
            f"cannot be opened as HDF5 / NetCDF-4 ({e}); expected a complete HDF5 file{expected}, "
            f"found {size} bytes -- is it truncated (interrupted download or write)?",
        ) from e


_SIGNATURE = b"\x89HDF\r\n\x1a\n"  # the first 8 bytes of an HDF5 superblock


def _held_by_a_writer(path: Path) -> bool:
    """Whether another open file description holds an exclusive ``flock`` on ``path``, as HDF5
    takes for a file opened to write (where file locking is on).

    (why) HDF5 refuses to open such a file, and the refusal was reported as a truncated file:
    decided here from the file's lock, not from HDF5's wording of its error.
    """
    try:
        import fcntl
    except ImportError:  # no flock (Windows): HDF5 locks otherwise there
        return False
    try:
        with open(path, "rb") as f:
            try:
                fcntl.flock(f.fileno(), fcntl.LOCK_SH | fcntl.LOCK_NB)
            except BlockingIOError:
                return True
            fcntl.flock(f.fileno(), fcntl.LOCK_UN)
    except OSError:
        return False
    return False


def _read_signature(path: Path, size: int) -> tuple[bytes, bool]:
    """``path``'s first 8 bytes (fewer when it is shorter) and whether HDF5's signature is at one
    of the offsets HDF5 searches (0, 512, 1024, 2048, ...; a user block shifts the superblock to
    one of them), from one opening of the file. Unreadable here: ``(b"", True)``, not known to
    be another format."""
    try:
        with open(path, "rb") as f:
            head = f.read(len(_SIGNATURE))
            offset = 0
            while offset + len(_SIGNATURE) <= size:
                f.seek(offset)
                if f.read(len(_SIGNATURE)) == _SIGNATURE:
                    return head, True
                offset = max(512, 2 * offset)
    except OSError:
        return b"", True
    return head, False


@contextmanager
def unreadable_as_format_error(path: str | os.PathLike[str]) -> Iterator[None]:
    """Turn what h5py raises on a damaged file into a :class:`DataFormatError` naming ``path``.

    A flipped byte in an object header or an attribute surfaces as whatever h5py or the reader
    meets first: ``RuntimeError`` / ``KeyError`` ("incorrect metadata checksum"), ``OSError``
    ("ran off end of input buffer"), ``ValueError`` (h5py's type for some HDF5 errors) or a
    ``JSONDecodeError`` (a ``ValueError``) from a damaged JSON attribute: all that one flipped
    bit raised at 7,822 positions of a 19 kB sciml file, through open, validate and read.
    ``TypeError`` and ``AttributeError`` are not caught: they are programming errors in sciml,
    not damage, and were reported as a damaged file (h5py's ``items()`` hid a damaged member as
    ``None``; the readers use :func:`~sciml.data._format.members` instead).
    """
    try:
        yield
    except DataFormatError:
        raise
    except (OSError, RuntimeError, KeyError, ValueError) as e:
        raise DataFormatError(
            path,
            f"cannot be read ({type(e).__name__}: {e}); expected an intact HDF5 / NetCDF-4 "
            "file -- is it damaged, or was it changed while being read?",
        ) from e


class LazyH5:
    """``LazyH5(path).file`` is an open ``h5py.File`` owned by the calling process.

    ``identity``: the :func:`file_identity` of the file whose layout the caller read (default:
    the file's at the first open); a file that no longer matches it is refused.
    """

    def __init__(self, path: str | os.PathLike[str], identity: Identity | None = None):
        self.path = Path(path)
        self.identity = None if identity is None else tuple(identity)
        self._file: h5py.File | None = None
        self._pid: int | None = None
        self._checked = 0.0
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
        now = time.monotonic()
        if self._file is None or self._pid != pid:
            # Checked before opening: a child's HDF5 reuses the state inherited for a file it
            # believes open (same inode) without reading the file's end or header again.
            if self.identity is None and self.path.exists():
                self.identity = file_identity(self.path)
            if self.identity is not None:
                check_unchanged(self.path, self.identity)
            # A handle from another pid is abandoned, not closed: closing it here would touch
            # the parent's HDF5 state through the copied library.
            f = open_h5(self.path)
            if self.identity is not None:  # and the file opened (the path may have moved on)
                try:
                    check_unchanged(self.path, self.identity, fd=f.id.get_vfd_handle())
                except DataFormatError:
                    f.close()
                    raise
            self._file, self._pid, self._datasets, self._checked = f, pid, {}, now
        elif self.identity is not None and now - self._checked > _RECHECK_S:
            check_unchanged(self.path, self.identity, fd=self._file.id.get_vfd_handle())
            self._checked = now
        return self._file

    def close(self) -> None:
        if self._file is not None and self._pid == os.getpid():
            self._file.close()
        self._file = None
        self._pid = None
        self._datasets = {}

    def __getstate__(self) -> dict:
        return {"path": self.path, "identity": self.identity}

    def __setstate__(self, state: dict) -> None:
        self.path = state["path"]
        self.identity = state["identity"]
        self._file = None
        self._pid = None
        self._checked = 0.0
        self._datasets = {}
