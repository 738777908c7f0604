"""Writes that land whole or not at all: a temporary file beside the target, renamed over it.

Also the one safetensors writer (:func:`save_safetensors`).

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
import sys
import threading
from collections.abc import Callable, Iterator, Mapping
from pathlib import Path
from typing import IO, Any

__all__ = [
    "atomic_write",
    "atomic_write_text",
    "metadata_json",
    "resolve_lazy",
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
    tensors: Mapping[str, Any],
    path: str | os.PathLike[str],
    metadata: Mapping[str, str] | None = None,
) -> None:
    """Write ``tensors`` to ``path`` in the safetensors format: the bytes
    ``safetensors.torch.save_file`` writes (its layout: :func:`_safetensors_plan`,
    :func:`_safetensors_header`; checked byte for byte in tests/test_io.py), but for three
    differences:

    * the file's permissions are those a plain ``open(path, "w")`` leaves (the existing file's,
      or 0o666 less the umask), where safetensors recreates it owner-only (0o600);
    * ``metadata`` is written with its keys sorted, so that two saves of one model are the same
      bytes (safetensors writes them in a random order, from a Rust ``HashMap``);
    * a non-contiguous tensor is written as its values (``t.contiguous()``), where safetensors
      refuses it.

    (why) written here, not by safetensors: ``safetensors.torch`` views each tensor through
    ``ctypes.POINTER(c_ubyte * nbytes)``, and ctypes keeps every such type for good, one per
    distinct byte size (5.6 KB of Python memory and 14 objects each, measured with safetensors
    0.8): a training checkpoint's history columns have a new size at every checkpoint, so a long
    run grew without bound; ``safetensors.numpy`` avoids that but has no bfloat16 or float8.

    A lazily conjugated or negated view (``z.conj()``, ``z.conj().imag``) is written as its
    values (:func:`resolve_lazy`). What safetensors refuses is refused: two tensors whose
    memory overlaps (they would load as two tensors), a dtype it has no name for (complex128,
    ...), a sparse tensor, a tensor on the meta device. The file is written in place (callers write into
    :func:`tmp_path` and rename).
    """
    plan = _safetensors_plan(tensors)
    header = _safetensors_header(plan, metadata)
    with open(path, "wb") as f:  # (why) plain open: the permissions of a plain write
        f.write(len(header).to_bytes(8, "little"))
        f.write(header)
        for _, t, _ in plan:
            f.write(_little_endian_bytes(t))


def resolve_lazy(t: Any) -> Any:
    """``t`` with a lazy conjugation or negation applied: a tensor that holds the values of
    ``z.conj()`` / ``z.conj().imag`` (whose memory holds those of ``z`` / ``z.imag``, with a
    flag); ``t`` itself for any other tensor or object. The one rule for every writer of
    tensor memory (files, ``torch.view_as_real``, NumPy refuse or misread such views)."""
    import torch

    if isinstance(t, torch.Tensor) and (t.is_conj() or t.is_neg()):
        return t.resolve_conj().resolve_neg()
    return t


#: torch's name of each dtype safetensors stores -> safetensors' name for it, in the order
#: safetensors lays tensors out in a file: by its ``Dtype`` enumeration, which lists dtypes
#: "in increasing alignment order", from the last (largest) down, then by name (read from
#: safetensors 0.8's files: a file with one tensor of each dtype). A name torch lacks (float8 on
#: an old torch) is simply never met.
_SAFETENSORS_DTYPES = {
    "uint64": "U64",
    "int64": "I64",
    "float64": "F64",
    "complex64": "C64",
    "float32": "F32",
    "uint32": "U32",
    "int32": "I32",
    "bfloat16": "BF16",
    "float16": "F16",
    "uint16": "U16",
    "int16": "I16",
    "float8_e5m2fnuz": "F8_E5M2FNUZ",
    "float8_e4m3fnuz": "F8_E4M3FNUZ",
    "float8_e8m0fnu": "F8_E8M0",
    "float8_e4m3fn": "F8_E4M3",
    "float8_e5m2": "F8_E5M2",
    "int8": "I8",
    "uint8": "U8",
    "float4_e2m1fn_x2": "F4",
    "bool": "BOOL",
}
_SAFETENSORS_RANK = {name: rank for rank, name in enumerate(_SAFETENSORS_DTYPES)}


def _safetensors_plan(tensors: Mapping[str, Any]) -> list[tuple[str, Any, str]]:
    """``(name, tensor, torch dtype name)`` in file order, each tensor detached and with lazy
    views resolved; refuses (before any file is touched) what the format cannot hold."""
    import torch

    plan = []
    for name, t in tensors.items():
        if not isinstance(name, str) or name == "__metadata__":
            raise ValueError(
                f"expected tensor names that are strings other than '__metadata__' (the key of "
                f"the file's metadata), got {name!r}; rename it"
            )
        if not isinstance(t, torch.Tensor):
            raise TypeError(f"expected a torch.Tensor for {name!r}, got {type(t).__name__}")
        if t.layout != torch.strided:
            raise ValueError(
                f"expected dense tensors, got {name!r} with layout {t.layout}; "
                f"save {name}.to_dense() (a file holds every element)"
            )
        if t.is_meta:  # (why) found only when its bytes were due, after the header was written
            raise ValueError(
                f"expected tensors that hold values, got {name!r} on the meta device (a shape "
                f"without data); give it values first (module.to_empty(device='cpu'), then "
                f"initialize or load it)"
            )
        dtype = str(t.dtype).removeprefix("torch.")
        if dtype not in _SAFETENSORS_DTYPES:
            raise ValueError(
                f"expected a dtype safetensors stores ({', '.join(sorted(_SAFETENSORS_DTYPES))}), "
                f"got {t.dtype} for {name!r}; convert it (complex128: torch.view_as_real)"
            )
        if dtype == "float4_e2m1fn_x2" and t.dim() == 0:
            raise ValueError(
                f"expected a float4_e2m1fn_x2 tensor with at least one dimension (the file "
                f"counts its halves along the last one), got a 0-d one for {name!r}; reshape(1)"
            )
        plan.append((name, resolve_lazy(t.detach()), dtype))
    _refuse_shared_memory(plan)
    plan.sort(key=lambda entry: (_SAFETENSORS_RANK[entry[2]], entry[0]))
    return plan


def _refuse_shared_memory(plan: list[tuple[str, Any, str]]) -> None:
    """Raise where two tensors' bytes overlap (``{"a": w, "b": w}``, a transposed view beside
    its weight): the file would hold them apart, and they would load as two tensors. Slices
    of one storage that do not overlap are fine (safetensors' rule)."""
    by_storage: dict[tuple, list[tuple[str, Any]]] = {}
    for name, t, _ in plan:
        if t.numel() == 0 or t.is_meta:
            continue
        ptr = t.untyped_storage().data_ptr()
        if ptr:
            by_storage.setdefault((t.device, ptr), []).append((name, t))
    for group in by_storage.values():
        if len(group) < 2:  # (why) the common case, checked cheaply: a model has 100s of tensors
            continue
        spans = []
        for name, t in group:
            # (why) one past the last element, not start + nbytes: a view's elements may spread
            last = sum((n - 1) * s for n, s in zip(t.shape, t.stride(), strict=True))
            spans.append((t.data_ptr(), t.data_ptr() + (last + 1) * t.element_size(), name))
        spans.sort()
        reach, holder = -1, ""
        for start, stop, name in spans:
            if start < reach:
                raise RuntimeError(
                    f"expected tensors that do not share memory, got {holder!r} and {name!r} "
                    f"sharing it (tied weights, or a view of another tensor); the file would "
                    f"hold them apart and they would load as two tensors: save one of them, "
                    f"or .clone() the other"
                )
            if stop > reach:
                reach, holder = stop, name


def _safetensors_header(
    plan: list[tuple[str, Any, str]], metadata: Mapping[str, str] | None
) -> bytes:
    """The JSON header, as safetensors writes it: compact JSON (``serde_json``: non-ASCII as
    UTF-8, control characters escaped), ``__metadata__`` first (absent where ``metadata`` is
    None), then each tensor's ``dtype``, ``shape`` and ``data_offsets`` (bytes, from the end of
    the header) in file order, padded with spaces to a multiple of 8 bytes so that the data
    starts aligned."""
    header: dict[str, Any] = {}
    if metadata is not None:
        bad = [
            (k, v) for k, v in metadata.items() if not (isinstance(k, str) and isinstance(v, str))
        ]
        if bad:
            k, v = bad[0]
            raise TypeError(
                f"expected metadata with str keys and str values (a safetensors header holds "
                f"text only), got {k!r}: {type(v).__name__}; write it as str() or json.dumps()"
            )
        # (why) sorted: safetensors' order is a Rust HashMap's, random from one save to the next
        header["__metadata__"] = {k: metadata[k] for k in sorted(metadata)}
    offset = 0
    for name, t, dtype in plan:
        shape = list(t.shape)
        if dtype == "float4_e2m1fn_x2":
            shape[-1] *= 2  # (why) torch counts bytes (pairs of float4), the file counts float4s
        nbytes = t.numel() * t.element_size()
        header[name] = {
            "dtype": _SAFETENSORS_DTYPES[dtype],
            "shape": shape,
            "data_offsets": [offset, offset + nbytes],
        }
        offset += nbytes
    text = json.dumps(header, ensure_ascii=False, separators=(",", ":")).encode()
    return text + b" " * (-len(text) % 8)


def _little_endian_bytes(t: Any, byteorder: str = sys.byteorder) -> Any:
    """The bytes of ``t``'s values in C order, little-endian (the format's), as a buffer: the
    tensor's own memory where it is a contiguous CPU tensor on a little-endian machine."""
    import torch

    t = t.contiguous().cpu()  # (why) both return t itself where nothing is to be done
    # (why) view(uint8) needs a last stride of 1, which a 0-d tensor lacks, and so may a
    # contiguous one whose last dim has one element (w.t()[:, :1]) or none; reshaping (a view
    # here) every tensor cost 1.5 us each
    flat = t if t.dim() and t.stride(-1) == 1 else t.reshape(-1)
    raw = flat.view(torch.uint8).numpy()
    if byteorder == "big":
        # (why) a complex number is two floats, each swapped on its own
        size = t.element_size() // (2 if t.is_complex() else 1)
        if size > 1:
            raw = raw.view(f"u{size}").byteswap().view("u1")
    return raw


def fsync(path: str | os.PathLike[str]) -> None:
    """Flush the file or folder ``path`` to disk (``os.fsync``), raising its ``OSError``."""
    fd = os.open(path, os.O_RDONLY)
    try:
        os.fsync(fd)
    finally:
        os.close(fd)


def file_in_the_way(folder: str | os.PathLike[str]) -> Path | None:
    """The file that stops ``folder`` from being made or used as a folder: the first of
    ``folder`` and its parents that exists, where that is not a directory (in the form
    ``folder`` is given, relative or absolute); None where ``folder`` is a directory or can be
    made. (why) one rule for the CLI's outputs and the run folder: written three times before,
    each so that a file where a folder must be is refused before the work, not after it."""
    folder = Path(folder)
    for p in (folder, *folder.parents):
        if p.exists():
            return None if p.is_dir() else p
    return None


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
