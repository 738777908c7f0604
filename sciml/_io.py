"""Writes that land whole or not at all: a temporary file beside the target, renamed over it.

Every temporary file made here (and the data writer's) is also removed when the process is
killed by ``SIGTERM`` (``kill``, a batch scheduler's time limit, ``docker stop``): see
:func:`watch_sigterm`.
"""

from __future__ import annotations

import contextlib
import json
import os
import secrets
import shutil
import signal
import stat
import threading
from collections.abc import Callable, Iterator, Mapping
from pathlib import Path
from typing import IO, Any

__all__ = [
    "atomic_write",
    "atomic_write_text",
    "metadata_json",
    "save_safetensors",
    "tmp_path",
    "watch_sigterm",
    "unwatch_sigterm",
]

# -- SIGTERM ----------------------------------------------------------------------------------
# A SIGTERM ends a Python process without unwinding it (no finally, no __exit__), so a killed
# save left its temporary file (".model.safetensors.<hex>.tmp", a data set's "f.h5.tmp<pid>-<hex>"
# as large as the data) beside the destination. While temporary files are live, the main
# thread's SIGTERM handler is _on_sigterm: with the default action it removes this process's
# temporary files, then dies of SIGTERM as before (same exit status); a handler the user had
# installed is called instead, and decides (an exception it raises unwinds through the writes,
# which then remove their files; if it returns, writing goes on). SIG_IGN, or a handler not set
# from Python, is left alone. The previous handler is put back when the last temporary file is
# gone, unless someone replaced ours since.
_live_tmp: dict[Path, int] = {}  # temporary file -> pid of its writer (not a forked child's)
_previous_sigterm: Any = None
_sigterm_installed = False
# (why) not taken by the handler: it runs in the main thread, which may hold this lock
_sigterm_lock = threading.Lock()


def _on_sigterm(signum: int, frame: Any) -> None:
    previous = _previous_sigterm
    if callable(previous):
        previous(signum, frame)
        return
    pid = os.getpid()
    for tmp, owner in list(_live_tmp.items()):
        if owner != pid:  # a forked child does not remove its parent's files
            continue
        if tmp.is_dir() and not tmp.is_symlink():  # a directory being filled (a checkpoint's)
            shutil.rmtree(tmp, ignore_errors=True)
        else:
            with contextlib.suppress(OSError):
                tmp.unlink(missing_ok=True)
    signal.signal(signum, signal.SIG_DFL)
    os.kill(pid, signum)


def watch_sigterm(tmp: Path) -> None:
    """Register ``tmp`` (a file, or a directory, removed with its contents, such as a training
    checkpoint being written) for removal on SIGTERM until :func:`unwatch_sigterm`; installs
    :func:`_on_sigterm` from the main thread (Python runs signal handlers there only, and
    ``signal.signal`` raises elsewhere: a file registered from another thread is covered while
    a main-thread write has the handler installed)."""
    global _previous_sigterm, _sigterm_installed
    with _sigterm_lock:
        _live_tmp[Path(tmp)] = os.getpid()
        if _sigterm_installed or threading.current_thread() is not threading.main_thread():
            return
        previous = signal.getsignal(signal.SIGTERM)
        if previous is None or previous == signal.SIG_IGN or previous is _on_sigterm:
            return
        signal.signal(signal.SIGTERM, _on_sigterm)
        _previous_sigterm, _sigterm_installed = previous, True


def unwatch_sigterm(tmp: Path) -> None:
    """Forget ``tmp`` (renamed into place or removed); the last one out puts the previous
    SIGTERM handler back."""
    global _previous_sigterm, _sigterm_installed
    with _sigterm_lock:
        _live_tmp.pop(Path(tmp), None)
        if _live_tmp or not _sigterm_installed:
            return
        if threading.current_thread() is not threading.main_thread():
            return  # left installed: with no file to remove it acts as the previous handler
        if signal.getsignal(signal.SIGTERM) is _on_sigterm:
            signal.signal(signal.SIGTERM, _previous_sigterm)
        _previous_sigterm, _sigterm_installed = None, False


@contextlib.contextmanager
def tmp_path(target: Path, suffix: str = ".tmp") -> Iterator[Path]:
    """A new empty file in ``target``'s folder (same file system, so a rename is atomic), for
    the ``with`` block: on leaving it the file is removed unless it was renamed away, and a
    SIGTERM meanwhile removes it too (:func:`watch_sigterm`).

    Its permissions are those a plain ``open(target, "w")`` would leave: the existing target's
    mode, or ``0o666`` less the umask for a new file (``tempfile.mkstemp`` makes ``0o600``, and
    the rename would carry that onto checkpoints and outputs meant to be shared).
    """
    target = Path(target)
    existing = target.is_file()
    mode = stat.S_IMODE(target.stat().st_mode) if existing else 0o666
    for _ in range(100):
        name = target.parent / f".{target.name}.{secrets.token_hex(4)}{suffix}"
        # (why) registered before it exists: a SIGTERM right after os.open must find it
        watch_sigterm(name)
        try:
            fd = os.open(name, os.O_WRONLY | os.O_CREAT | os.O_EXCL, mode)  # umask applies
        except FileExistsError:  # another writer's file: not ours to remove
            unwatch_sigterm(name)
            continue
        except OSError as exc:  # the message named only the hidden temporary file
            unwatch_sigterm(name)
            raise type(exc)(
                exc.errno,
                f"{target}: cannot create its temporary file {name.name} in {target.parent} "
                f"({exc.strerror}); expected an existing folder you can write to",
            ) from None
        except BaseException:
            unwatch_sigterm(name)
            raise
        break
    else:
        raise FileExistsError(
            f"{target.parent}: no free temporary name for {target.name} in 100 tries"
        )
    try:
        try:
            if existing:
                os.fchmod(fd, mode)  # the existing file's mode, umask or not
        finally:
            os.close(fd)
        yield name
    finally:
        try:
            name.unlink(missing_ok=True)
        finally:
            unwatch_sigterm(name)


def atomic_write(
    target: str | os.PathLike[str], write: Callable[[IO], object], mode: str = "wb"
) -> Path:
    """``write(f)`` into a temporary file beside ``target``, then rename it over ``target``: a
    crash, an error in ``write`` or a SIGTERM leaves the old file (or none), never a
    half-written one."""
    target = Path(target)
    with tmp_path(target) as tmp:
        with open(tmp, mode) as f:
            write(f)
            f.flush()
            os.fsync(f.fileno())
        os.replace(tmp, target)
    return target


def atomic_write_text(target: str | os.PathLike[str], text: str) -> Path:
    """:func:`atomic_write` of a text."""
    return atomic_write(target, lambda f: f.write(text), mode="w")


def save_safetensors(
    tensors: dict, path: str | os.PathLike[str], metadata: dict[str, str] | None = None
) -> None:
    """``safetensors.torch.save_file`` leaving the permissions a plain ``open(path, "w")`` would
    (it recreates the file owner-only, 0o600): the existing file's, or 0o666 less the umask.

    Tensors NumPy can hold (contiguous, on the CPU, of a dtype in :data:`_NUMPY_NAMES`, no two
    sharing memory) are written through ``safetensors.numpy``: the same file, byte for byte.
    (why) ``safetensors.torch`` views each tensor through ``ctypes.POINTER(c_ubyte * nbytes)``,
    and ctypes keeps every such type for good, one per distinct byte size (5.6 KB of Python
    memory and 14 objects each, measured with safetensors 0.8): a training checkpoint's history
    columns have a new size at every checkpoint, so a long run grew without bound.

    A lazily conjugated or negated view (``z.conj()``, ``z.conj().imag``) is written as its
    values: both writers copy the memory under it, which holds the values before the
    conjugation or negation (``safetensors.torch`` wrote those, and NumPy refuses such a view)."""
    from safetensors.torch import save_file

    path = Path(path)
    os.close(os.open(path, os.O_WRONLY | os.O_CREAT, 0o666))  # the umask applies to a new file
    mode = stat.S_IMODE(path.stat().st_mode)
    tensors = _resolved(tensors)
    arrays = _as_numpy(tensors)
    if arrays is None:
        save_file(tensors, str(path), metadata=metadata)
    else:
        from safetensors.numpy import save_file as save_numpy

        save_numpy(arrays, str(path), metadata=metadata)
    os.chmod(path, mode)


def _resolved(tensors: Mapping[str, Any]) -> Mapping[str, Any]:
    """``tensors`` with each lazily conjugated or negated view replaced by a tensor holding its
    values (``tensors`` itself where there is none)."""
    import torch

    def lazy(t: Any) -> bool:
        return isinstance(t, torch.Tensor) and (t.is_conj() or t.is_neg())

    if not any(lazy(t) for t in tensors.values()):
        return tensors
    return {k: t.resolve_conj().resolve_neg() if lazy(t) else t for k, t in tensors.items()}


#: the dtypes written through ``safetensors.numpy``, by name (torch's and NumPy's agree)
_NUMPY_NAMES = frozenset(
    ["float64", "float32", "float16", "complex64", "bool"]
    + ["int64", "int32", "int16", "int8", "uint64", "uint32", "uint16", "uint8"]
)


def _as_numpy(tensors: Mapping[str, Any]) -> dict[str, Any] | None:
    """``tensors`` as NumPy arrays sharing their memory, or None where one is not a contiguous
    CPU tensor of a dtype in :data:`_NUMPY_NAMES` or two share memory (those go through
    ``safetensors.torch``, which refuses what it refuses, tied weights say, with its own
    message)."""
    import torch

    arrays: dict[str, Any] = {}
    storages: set[int] = set()
    for name, t in tensors.items():
        if (
            not isinstance(t, torch.Tensor)
            or t.layout != torch.strided
            or t.device.type != "cpu"
            or str(t.dtype).removeprefix("torch.") not in _NUMPY_NAMES
            or not t.is_contiguous()
        ):
            return None
        ptr = t.untyped_storage().data_ptr()
        if ptr and ptr in storages:
            return None
        storages.add(ptr)
        arrays[name] = t.detach().numpy()
    return arrays


def metadata_json(value: Mapping[str, Any], indent: int | None = None) -> str:
    """``json.dumps(dict(value), indent=indent)``, raising a :class:`TypeError` that says what
    JSON can hold when user metadata (in ``value``) cannot be written: the one check for
    ``save_pretrained`` and the training checkpoints (run before any file is touched).

    ``value`` may be any mapping (a ``MappingProxyType``, ...), which ``json.dumps`` refuses
    unless it is a dict; mappings nested inside it must be dicts, as ``save_pretrained`` writes
    them with ``json.dumps``.
    """
    try:
        return json.dumps(dict(value), indent=indent)
    except (TypeError, ValueError) as exc:
        raise TypeError(
            f"expected metadata that JSON can hold (numbers, strings, booleans, None, lists, "
            f"dicts with string keys), got {exc}; convert tensors with .tolist()"
        ) from None
