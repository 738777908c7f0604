"""Write sciml's HDF5 layout, atomically: ``write(...)`` in one call, ``Writer`` in slices.

The file is built under a temporary name in the destination folder and moved into place with
``os.replace`` only once every sample of every field has been written, checked and flushed to
disk (``fsync``), so a crash (a power loss included), a ``KeyboardInterrupt`` or a NaN never
leaves a half-written file where a good one was. A ``SIGTERM`` (``kill``, a batch scheduler's
time limit, ``docker stop``) removes the temporary file too (:func:`sciml._io.watch_sigterm`).
"""

from __future__ import annotations

import contextlib
import os
import uuid
import warnings
import weakref
from collections.abc import Mapping, Sequence
from numbers import Integral
from pathlib import Path
from typing import Any

import h5py
import numpy as np

from .. import _io
from .._scalars import is_int
from ._errors import DataFormatError, shape_str
from ._format import (
    BC_TYPES,
    EXPORT_ATTRS,
    FORMAT_NAME,
    FORMAT_VERSION,
    LAYOUT_ATTRS,
    POINT_AXIS,
    encode_attr,
)

ArrayLike = Any

#: HDF5 chunks smaller than this cost more in index and per-chunk overhead than they save: a
#: file of scalar series (no spatial axes, e.g. ``prose-ode``) chunked one value per chunk grew
#: to 11 GB of memory while being read. Snapshots at least this big keep one snapshot per chunk.
MIN_CHUNK_BYTES = 16 * 1024


def chunk_shape(
    n_samples: int, n_steps: int | None, spatial: Sequence[int], itemsize: int
) -> tuple[int, ...]:
    """The chunk shape of a ``(N, T, *spatial)`` field (``n_steps=None``: ``(N, *spatial)``).

    One snapshot ``(1, 1, *spatial)`` when it holds at least :data:`MIN_CHUNK_BYTES`; otherwise
    consecutive steps of one sample and, when a whole sample is still smaller, consecutive
    samples, until the chunk reaches that size (never more than the dataset).
    """
    spatial = tuple(int(s) for s in spatial)
    snapshot = max(1, int(np.prod(spatial, dtype=np.int64)) * itemsize)
    want = -(-MIN_CHUNK_BYTES // snapshot)  # snapshots per chunk
    steps = 1 if n_steps is None else max(1, min(n_steps, want))
    samples = 1
    if steps == (n_steps or 1):
        samples = max(1, min(n_samples, -(-want // steps)))
    head = (samples,) if n_steps is None else (samples, steps)
    return (*head, *spatial)


# -- SIGTERM ----------------------------------------------------------------------------------
# The temporary file is removed on SIGTERM by sciml._io's handler, which every atomic write of
# sciml shares (checkpoints, `sciml solve --out`, normaliser and split files);
# _on_sigterm is the handler installed while a file is live.
_on_sigterm = _io._on_sigterm
_watch_sigterm = _io.watch_sigterm
_unwatch_sigterm = _io.unwatch_sigterm


def _discard_unclosed(f: h5py.File, tmp: Path, target: Path, pid: int) -> None:
    """Finaliser of a :class:`Writer` garbage-collected (or alive at exit) without ``close`` or
    ``abort``: its temporary file is removed, never moved into place, since nothing checked
    that every sample was written. (why) a writer made without ``with`` whose ``close`` an
    exception skipped left ``<path>.tmp<pid>-<hex>``, as large as the data, and its SIGTERM
    registration behind."""
    if os.getpid() != pid:  # (why) a forked child's copy: the file is its parent's to remove
        return
    try:
        with contextlib.suppress(Exception):
            f.close()
        with contextlib.suppress(OSError):
            tmp.unlink(missing_ok=True)
    finally:
        _unwatch_sigterm(tmp)
    with contextlib.suppress(Exception):  # at interpreter exit warnings may be gone
        warnings.warn(
            f"{target}: sciml.data.Writer was never closed; its temporary file {tmp.name} was "
            "removed and nothing was written (use `with Writer(...) as w:` or call close())",
            ResourceWarning,
            stacklevel=2,
        )


def _spatial_from_coords(
    coords: Mapping[str, ArrayLike] | None,
) -> tuple[tuple[str, ...], tuple[int, ...], dict[str, np.ndarray], bool]:
    if not coords:
        return (), (), {}, False
    arrays = {k: np.asarray(v) for k, v in coords.items()}
    for k, v in arrays.items():
        # (why) strings failed inside h5py, and NaN reached models as NaN grid points
        if v.dtype.kind not in "iuf" or not np.isfinite(v).all():
            raise ValueError(
                f"coords['{k}']: expected finite numbers, got {v.dtype} values "
                f"{v.reshape(-1)[:6].tolist()}{'...' if v.size > 6 else ''}"
            )
    if "points" in arrays:
        pts = arrays["points"]
        if len(arrays) != 1 or pts.ndim != 2:
            raise ValueError(
                f"coords: a point cloud is given as coords={{'points': (n_points, dim)}} alone, "
                f"got keys {list(arrays)} with points shape {shape_str(pts.shape)}"
            )
        return (POINT_AXIS,), (pts.shape[0],), arrays, True
    for k, v in arrays.items():
        if v.ndim != 1:
            raise ValueError(f"coords['{k}'] must be 1-D, got shape {shape_str(v.shape)}")
    return tuple(arrays), tuple(v.shape[0] for v in arrays.values()), arrays, False


def _metadata(path: Path, attrs: Mapping[str, Any] | None) -> dict[str, Any]:
    """``attrs`` without the layout's own attribute names, which it refuses.

    Most were written after the layout's attributes and replaced them: ``{"n_samples": 99}``
    committed a file that ``open`` refused, ``{"format_version": 2}`` one that claimed a format
    it is not in; ``json_attrs`` (written last) silently dropped the caller's value.
    ``format_version`` equal to the writer's is dropped, so the ``attrs`` that ``open`` reports
    for a sciml file can be written back.
    """
    attrs = dict(attrs or {})
    if "format_version" in attrs:
        version = attrs.pop("format_version")
        integer = isinstance(version, Integral) and not isinstance(version, bool)
        if not (integer and version == FORMAT_VERSION):
            # (why) the attrs of a file of another format version (an older sciml's, once the
            # format moves on) name it: the generic "rename them" hint did not say so
            raise ValueError(
                f"{path}: expected attrs['format_version'] absent or this writer's "
                f"{FORMAT_VERSION}, got {version!r}: the writer always writes its own "
                "format version; drop it from attrs (or keep it under another name, e.g. "
                "'source_format_version', to record the source file's)"
            )
    clash = sorted(set(attrs) & LAYOUT_ATTRS)
    if clash:
        raise ValueError(
            f"{path}: expected metadata names other than the layout's own attributes "
            f"{sorted(LAYOUT_ATTRS)}, got attrs {', '.join(map(repr, clash))}; rename them "
            "(e.g. 'source_n_samples')"
        )
    # (why) such a file was written, and only its xarray export refused it ("would replace the
    # file's attribute(s) 'sciml_source'"), long after the writing script had finished
    clash = [k for k in EXPORT_ATTRS if k in attrs]
    if clash:
        raise ValueError(
            f"{path}: expected metadata names other than {list(EXPORT_ATTRS)}, which "
            f"H5Dataset.to_xarray adds beside the file's attributes, got attrs "
            f"{', '.join(map(repr, clash))}; rename them (e.g. 'my_source')"
        )
    return attrs


def _check_names(path: Path, fields: list[str], static_fields: list[str]) -> None:
    """Refuse channel names sciml's layout cannot hold, each by name.

    (why) a name is an HDF5 link under ``fields/`` or ``static_fields/``: ``'a/b'`` made a
    subgroup, and the file committed was refused by ``open`` ("dataset 'fields/a' is not listed");
    ``''``, ``'.'`` and a repeated name failed inside h5py with messages that named neither. A name
    in both lists was written, and ``Normalizer`` (keyed by channel name) then gave the
    time-dependent field the static field's statistics.
    """
    seen: set[str] = set()
    for name in [*fields, *static_fields]:
        if not isinstance(name, str) or name in ("", ".") or "/" in name:
            raise ValueError(
                f"{path}: expected field names that are non-empty strings without '/' and not "
                f"'.', got {name!r}"
            )
        if name in seen:
            where = "fields" if fields.count(name) > 1 else "static_fields"
            if name in fields and name in static_fields:
                where = "both fields and static_fields"
            raise ValueError(
                f"{path}: expected each field name once (channels are keyed by name, e.g. by "
                f"Normalizer), got {name!r} twice, in {where}; rename one"
            )
        seen.add(name)


def _positive_int(value: object) -> bool:
    return is_int(value) and value >= 1  # type: ignore[operator]


def _bc_entry(axis: str, bc: Any) -> dict[str, Any]:
    if not isinstance(bc, (str, Mapping)):
        # (why) dict(bc) failed with "dictionary update sequence element #0 has length 9; 2 is
        # required" for The Well's (low, high) pair ('dirichlet', 'neumann'), naming nothing
        raise ValueError(
            f"boundary_conditions['{axis}']: expected a type string {BC_TYPES} or a dict "
            f"{{'type': ..., **values}}, got {type(bc).__name__} {bc!r}; sciml's layout holds "
            "one type per axis (a (low, high) pair of The Well's has no place in it)"
        )
    entry = {"type": bc} if isinstance(bc, str) else dict(bc)
    if entry.get("type") not in BC_TYPES:
        raise ValueError(
            f"boundary_conditions['{axis}']: type must be one of {BC_TYPES}, got {entry.get('type')!r}"
        )
    for k, v in entry.items():
        # (why) a dict or a list of strings failed inside h5py ("Object dtype dtype('O') has no
        # native HDF5 equivalent") with nothing naming the value
        if not isinstance(v, str) and np.asarray(v).dtype.kind not in "biuf":
            raise ValueError(
                f"boundary_conditions['{axis}']['{k}']: expected a string, a number or an array "
                f"of numbers, got {type(v).__name__} {v!r}"
            )
    return entry


class Writer:
    """Stream samples into a new sciml file; committed atomically when the context closes.

    Without ``with``, call :meth:`close` (or :meth:`abort`); a writer garbage-collected without
    either removes its temporary file, with a ``ResourceWarning``, and writes nothing.

    Args:
        path: destination ``.h5`` file; a symlink is followed (the file it points to is
            written, and the link stays a link).
        n_samples: number of samples (trajectories) the file will hold.
        fields: names of time-dependent scalar fields, stored ``(n_samples, n_steps, *spatial)``.
        static_fields: names of time-independent fields, stored ``(n_samples, *spatial)``.
        coords: ordered ``axis -> (n_axis,)`` grid coordinates, or ``{"points": (n_points, dim)}``.
        spatial_shape: grid shape; inferred from ``coords`` when omitted.
        time: ``(n_steps,)`` time stamps; required when ``fields`` is not empty.
        params: per-sample parameter name -> trailing shape (``()`` for a scalar per sample);
            the values written must be finite.
        boundary_conditions: axis -> ``"periodic" | "dirichlet" | "neumann" | "open"`` or a dict
            ``{"type": ..., **values}``.
        attrs: metadata (``pde``, ``units`` = field -> unit, ``generator``,
            ``generator_settings``, ...). Dicts and lists are stored as JSON strings. The names
            of the layout's own root attributes (``n_samples``, ``field_names``, ...) and of
            those :meth:`~sciml.data.H5Dataset.to_xarray` adds (``sciml_layout``,
            ``sciml_source``, ``sciml_boundary_conditions``) are refused; ``format_version`` equal to the writer's is accepted and ignored, so an
            opened file's ``attrs`` can be written back (another value is refused).
        dtype: storage dtype of fields (float32 by default).
        compression: h5py compression filter (``None``: fastest reads).
        overwrite: replace an existing file (atomically, at commit).

    Example::

        with Writer("ns.h5", n_samples=1000, fields=["w"], coords={"x": x, "y": y}, time=t) as w:
            for i in range(0, 1000, 100):
                w.write(slice(i, i + 100), fields={"w": solve(i, i + 100)})
    """

    def __init__(
        self,
        path: str | os.PathLike[str],
        *,
        n_samples: int,
        fields: Sequence[str] = (),
        static_fields: Sequence[str] = (),
        coords: Mapping[str, ArrayLike] | None = None,
        spatial_shape: Sequence[int] | None = None,
        time: ArrayLike | None = None,
        params: Mapping[str, Sequence[int]] | None = None,
        boundary_conditions: Mapping[str, Any] | None = None,
        attrs: Mapping[str, Any] | None = None,
        dtype: Any = np.float32,
        compression: str | None = None,
        overwrite: bool = False,
    ):
        self.path = Path(path)
        if self.path.is_dir():
            # os.replace onto a folder fails only at commit, leaving the temporary file behind
            raise IsADirectoryError(f"{self.path}: is a folder; expected the path of a .h5 file")
        if self.path.exists() and not overwrite:
            raise FileExistsError(f"{self.path}: exists; pass overwrite=True to replace it")
        # (why) os.replace onto a symlink replaced the link with a regular file and left the
        # file it points to with the old data; the data goes where the link points, as cp or an
        # in-place h5py write would, and the temporary file beside it keeps the rename atomic
        self._target = Path(os.path.realpath(self.path))
        if not self._target.parent.is_dir():
            raise FileNotFoundError(f"{self.path}: folder {self._target.parent} does not exist")
        attrs = _metadata(self.path, attrs)
        dims, shape_from_coords, coord_arrays, points = _spatial_from_coords(coords)
        if spatial_shape is None:
            if not coord_arrays:
                raise ValueError(f"{self.path}: give coords or spatial_shape")
            spatial_shape = shape_from_coords
        # (why) int() truncated 2.5 to 2 silently, and 0 or -1 failed inside h5py ("Chunk shape
        # must not be greater than data shape")
        if not all(_positive_int(s) for s in spatial_shape):
            raise ValueError(
                f"{self.path}: expected spatial_shape integers >= 1, got {tuple(spatial_shape)}"
            )
        if not _positive_int(n_samples):
            raise ValueError(f"{self.path}: expected n_samples an integer >= 1, got {n_samples!r}")
        spatial_shape = tuple(int(s) for s in spatial_shape)
        if coord_arrays and shape_from_coords != spatial_shape:
            raise ValueError(
                f"{self.path}: coords give spatial shape {shape_str(shape_from_coords)}, "
                f"fields have {shape_str(spatial_shape)}"
            )
        if not dims:  # no coordinates given: index coordinates, so every file carries some
            dims = tuple(f"x{k}" for k in range(len(spatial_shape)))
            coord_arrays = {d: np.arange(s, dtype=np.float64) for d, s in zip(dims, spatial_shape)}
        self.n_samples = int(n_samples)
        self.spatial_shape = spatial_shape
        self.field_names = list(fields)
        self.static_field_names = list(static_fields)
        if not self.field_names and not self.static_field_names:
            raise ValueError(f"{self.path}: give at least one field or static field")
        _check_names(self.path, self.field_names, self.static_field_names)
        if np.dtype(dtype).kind != "f":
            # (why) open() refuses any other: the file was written whole, then unreadable
            raise ValueError(
                f"{self.path}: expected a floating-point storage dtype (np.float32, np.float64, "
                f"np.float16), got {np.dtype(dtype)}"
            )
        self.time = None if time is None else np.asarray(time, dtype=np.float64)
        if self.field_names and self.time is None:
            raise ValueError(f"{self.path}: time-dependent fields need time of shape (n_steps,)")
        if self.time is not None and self.time.ndim != 1:
            # (why) a static-only file took any shape: () raised IndexError below
            raise ValueError(
                f"{self.path}: expected time of shape (n_steps,), got shape "
                f"{shape_str(self.time.shape)}"
            )
        if self.field_names and self.time.size == 0:
            # (why) 0 steps failed inside h5py ("Chunk shape must not be greater than data shape")
            raise ValueError(
                f"{self.path}: time-dependent fields expected at least one time step, got time=[]"
            )
        if self.time is not None and not np.isfinite(self.time).all():
            # NaN compares False, so it passed the ordering check and gave NaN lead times
            raise ValueError(
                f"{self.path}: expected finite time stamps, got {self.time.tolist()[:8]}"
                f"{'...' if self.time.size > 8 else ''}"
            )
        if self.time is not None and self.time.size > 1 and np.any(np.diff(self.time) <= 0):
            raise ValueError(f"{self.path}: time stamps must be strictly increasing")
        self.n_steps = None if self.time is None else int(self.time.shape[0])
        self.param_shapes = {k: tuple(int(s) for s in v) for k, v in (params or {}).items()}

        self._tmp = self._target.with_name(
            f"{self._target.name}.tmp{os.getpid()}-{uuid.uuid4().hex[:8]}"
        )
        _watch_sigterm(self._tmp)  # before it exists: a SIGTERM right after must find it
        try:
            self._f = h5py.File(self._tmp, "w", libver="latest")
        except OSError as e:  # h5py's message names only the temporary file
            _unwatch_sigterm(self._tmp)
            raise type(e)(
                e.errno,
                f"{self.path}: cannot create its temporary file {self._tmp.name} in "
                f"{self._tmp.parent} ({e}); expected a folder you can write to",
            ) from e
        except BaseException:  # e.g. Ctrl-C: unregistered, or our handler stayed installed
            self._tmp.unlink(missing_ok=True)
            _unwatch_sigterm(self._tmp)
            raise
        # (why) not a __del__: the finaliser holds no reference to the writer, and it also
        # runs at interpreter exit for a writer still referenced then
        self._finalizer = weakref.finalize(
            self, _discard_unclosed, self._f, self._tmp, self.path, os.getpid()
        )
        self._written: dict[str, np.ndarray] = {}
        self._closed = False
        try:
            self._layout(dims, coord_arrays, points, boundary_conditions, attrs, dtype, compression)
        except BaseException:
            self.abort()
            raise

    # -- structure ----------------------------------------------------------------------------
    def _layout(self, dims, coords, points, bcs, attrs, dtype, compression) -> None:
        f = self._f
        f.attrs["sciml_format"] = FORMAT_NAME
        f.attrs["format_version"] = FORMAT_VERSION
        f.attrs["n_samples"] = self.n_samples
        if self.n_steps is not None:
            f.attrs["n_steps"] = self.n_steps
        f.attrs["spatial_dims"] = list(dims)
        f.attrs["grid"] = "points" if points else "grid"
        f.attrs["field_names"] = self.field_names
        f.attrs["static_field_names"] = self.static_field_names
        json_keys = []
        for k, v in attrs.items():
            try:
                value, is_json = encode_attr(v)
            except TypeError as e:  # (why) json's message names the value, not the attribute
                raise TypeError(
                    f"{self.path}: attrs[{k!r}]: expected str, numbers, bools, numeric arrays, "
                    f"or dicts / lists of them, {e}"
                ) from e
            f.attrs[k] = value
            if is_json:
                json_keys.append(k)
        f.attrs["json_attrs"] = json_keys

        cg = f.create_group("coords")
        for k, v in coords.items():
            cg.create_dataset(k, data=v)
        if self.time is not None:
            f.create_dataset("time", data=self.time)

        n, sp = self.n_samples, self.spatial_shape
        fg = f.create_group("fields")
        for name in self.field_names:
            fg.create_dataset(
                name, shape=(n, self.n_steps, *sp), dtype=dtype,
                chunks=chunk_shape(n, self.n_steps, sp, np.dtype(dtype).itemsize),
                compression=compression,
            )  # fmt: skip
            self._written[f"fields/{name}"] = np.zeros(n, bool)
        sg = f.create_group("static_fields")
        for name in self.static_field_names:
            sg.create_dataset(
                name, shape=(n, *sp), dtype=dtype, compression=compression,
                chunks=chunk_shape(n, None, sp, np.dtype(dtype).itemsize),
            )  # fmt: skip
            self._written[f"static_fields/{name}"] = np.zeros(n, bool)
        pg = f.create_group("params")
        for name, shape in self.param_shapes.items():
            pg.create_dataset(name, shape=(n, *shape), dtype=np.float64)
            self._written[f"params/{name}"] = np.zeros(n, bool)

        bg = f.create_group("boundary_conditions")
        for axis, bc in (bcs or {}).items():
            if axis not in dims:
                raise ValueError(
                    f"boundary_conditions: axis '{axis}' is not a spatial axis {list(dims)}"
                )
            entry = _bc_entry(axis, bc)
            g = bg.create_group(axis)
            g.attrs["type"] = entry.pop("type")
            for k, v in entry.items():
                if np.ndim(v) == 0:
                    g.attrs[k] = v
                else:
                    g.create_dataset(k, data=np.asarray(v))

    # -- data -----------------------------------------------------------------------------------
    def write(
        self,
        samples: slice | int | range,
        *,
        fields: Mapping[str, ArrayLike] | None = None,
        static_fields: Mapping[str, ArrayLike] | None = None,
        params: Mapping[str, ArrayLike] | None = None,
    ) -> None:
        """Write samples ``samples`` (an int, negative from the end, or a contiguous slice or range)
        of some fields / parameters.

        ``fields[name]``: ``(k, n_steps, *spatial)``; ``static_fields[name]``: ``(k, *spatial)``;
        ``params[name]``: ``(k, *param_shape)``, where ``k`` is the number of samples selected.
        """
        if self._closed:
            raise RuntimeError(f"{self.path}: writer is closed")
        # (why) np.int64 (a loop over np.arange) is no int: it reached samples.indices as an
        # AttributeError; -1 became slice(-1, 0), refused as "not a contiguous slice"
        if isinstance(samples, Integral) and not isinstance(samples, bool):
            i = int(samples) + (self.n_samples if samples < 0 else 0)
            if not 0 <= i < self.n_samples:
                raise IndexError(
                    f"{self.path}: sample {samples} is out of range for n_samples={self.n_samples}"
                )
            samples = slice(i, i + 1)
        elif not isinstance(samples, (slice, range)):
            raise TypeError(
                f"{self.path}: expected samples an int, a slice or a range of consecutive "
                f"samples, got {type(samples).__name__} {samples!r}"
            )
        start, stop, step = (
            samples.indices(self.n_samples) if isinstance(samples, slice) else (
                samples.start, samples.stop, samples.step)
        )  # fmt: skip
        if step != 1 or not 0 <= start < stop <= self.n_samples:
            raise ValueError(
                f"{self.path}: samples must be a contiguous slice inside [0, {self.n_samples}), "
                f"got {samples}"
            )
        k = stop - start
        groups = (
            ("fields", fields, (self.n_steps, *self.spatial_shape)),
            ("static_fields", static_fields, self.spatial_shape),
        )
        for group, arrays, trailing in groups:
            for name, value in (arrays or {}).items():
                key = f"{group}/{name}"
                if key not in self._written:
                    raise KeyError(f"{self.path}: '{name}' was not declared in {group}=")
                self._put(key, start, stop, value, (k, *trailing), finite=True)
        for name, value in (params or {}).items():
            key = f"params/{name}"
            if key not in self._written:
                raise KeyError(f"{self.path}: parameter '{name}' was not declared in params=")
            # (why) finite, as fields are: a NaN parameter was written, and validate passed it
            self._put(key, start, stop, value, (k, *self.param_shapes[name]), finite=True)

    def _put(self, key, start, stop, value, expected, *, finite: bool) -> None:
        arr = np.asarray(value)
        if arr.shape != tuple(expected):
            raise DataFormatError(
                self.path,
                f"got shape {shape_str(arr.shape)} for samples [{start}:{stop}], "
                f"expected {shape_str(tuple(expected))}",
                key=key,
            )
        if arr.dtype.kind == "c":
            # (why) the cast to the storage dtype kept the real part, with only numpy's
            # ComplexWarning to say the imaginary part was gone
            raise DataFormatError(
                self.path,
                f"expected real values, got {arr.dtype} for samples [{start}:{stop}]; store the "
                "real and imaginary parts as two fields (value.real, value.imag)",
                key=key,
            )
        if finite and not np.isfinite(arr).all():
            bad = np.argwhere(~np.isfinite(arr))[0]
            raise DataFormatError(
                self.path,
                f"non-finite value {arr[tuple(bad)]} at sample {start + bad[0]}, index "
                f"{tuple(int(b) for b in bad[1:])}; expected finite values",
                key=key,
            )
        dtype = self._f[key].dtype
        if finite and arr.dtype != dtype:
            # a value past the storage dtype's range was stored as inf, and the committed file
            # failed only when read ("non-finite value")
            with np.errstate(over="ignore"):
                arr = arr.astype(dtype)
            if not np.isfinite(arr).all():
                bad = tuple(np.argwhere(~np.isfinite(arr))[0])
                raise DataFormatError(
                    self.path,
                    f"value {np.asarray(value)[bad]} at sample {start + bad[0]}, index "
                    f"{tuple(int(b) for b in bad[1:])} overflows the storage dtype {dtype} "
                    f"(largest {np.finfo(dtype).max:.4g}); expected values that fit, or a "
                    "wider Writer(dtype=...)",
                    key=key,
                )
        self._f[key][start:stop] = arr
        self._written[key][start:stop] = True

    # -- commit ---------------------------------------------------------------------------------
    def close(self) -> Path:
        """Check that every sample was written, then move the file into place atomically."""
        if self._closed:
            return self.path
        missing = {k: np.flatnonzero(~w) for k, w in self._written.items() if not w.all()}
        if missing:
            detail = "; ".join(
                f"'{k}' samples {v[:5].tolist()}{'...' if v.size > 5 else ''}"
                for k, v in missing.items()
            )
            self.abort()
            raise DataFormatError(self.path, f"not every sample was written: {detail}")
        self._finalizer.detach()  # every path below removes or moves the temporary file
        try:
            self._f.close()
        except BaseException:
            # (why) HDF5 writes its last metadata here: a full disk (ENOSPC) left the temporary
            # file behind, still registered for SIGTERM, and the writer open
            self._closed = True
            self._tmp.unlink(missing_ok=True)
            _unwatch_sigterm(self._tmp)
            raise
        self._closed = True
        try:
            # (why) h5py's close leaves the data in the page cache: renamed before it reached
            # the disk, a power loss could leave a truncated file under the final name, and a
            # write error the kernel reports only at fsync (EIO, ENOSPC on a thin volume) was
            # lost, the damaged file committed
            _io.fsync(self._tmp)
            os.replace(self._tmp, self._target)
        except BaseException:
            self._tmp.unlink(missing_ok=True)
            raise
        finally:
            _unwatch_sigterm(self._tmp)
        with contextlib.suppress(OSError):  # the rename itself; some file systems refuse this
            _io.fsync(self._target.parent)
        return self.path

    def abort(self) -> None:
        """Discard the temporary file; the destination is left as it was."""
        if not self._closed:
            self._finalizer.detach()
            try:
                self._f.close()
            finally:
                self._closed = True
                self._tmp.unlink(missing_ok=True)
                _unwatch_sigterm(self._tmp)

    def __enter__(self) -> Writer:
        return self

    def __exit__(self, exc_type, exc, tb) -> None:
        if exc_type is None:
            self.close()
        else:
            self.abort()


def write(
    path: str | os.PathLike[str],
    *,
    fields: Mapping[str, ArrayLike] = {},  # noqa: B006 - read-only default, part of the contract
    static_fields: Mapping[str, ArrayLike] = {},  # noqa: B006
    coords: Mapping[str, ArrayLike] | None = None,
    time: ArrayLike | None = None,
    params: Mapping[str, ArrayLike] | None = None,
    boundary_conditions: Mapping[str, Any] | None = None,
    attrs: Mapping[str, Any] | None = None,
    dtype: Any = np.float32,
    compression: str | None = None,
    overwrite: bool = False,
) -> Path:
    """Write a whole data set in sciml's layout in one call (see :class:`Writer` for streaming).

    Args:
        path: destination ``.h5`` file; its folder must exist. The file appears there only
            once every value has been written and checked (see the module docstring).
        fields: name -> ``(n_samples, n_steps, *spatial)`` time-dependent scalar fields (vector
            fields as separate components, ``u_x``, ``u_y``); the first field (or static field)
            sets ``n_samples`` and the grid shape, and every other must match it. Values must
            be finite.
        static_fields: name -> ``(n_samples, *spatial)``.
        coords: axis -> ``(n_axis,)``, or ``{"points": (n_points, dim)}``; default: index grids
            ``x0, x1, ...`` = ``arange(n)``.
        time: ``(n_steps,)`` strictly increasing, finite; default ``arange(n_steps)`` when
            fields are given.
        params: name -> ``(n_samples, ...)`` per-sample parameters, stored in float64; values
            must be finite.
        boundary_conditions: spatial axis name -> ``"periodic" | "dirichlet" | "neumann" |
            "open"``, or a dict ``{"type": ..., **values}`` whose values are stored beside it.
        attrs: metadata (``pde``, ``units`` = field -> unit, ``generator``,
            ``generator_settings``, ...); dicts and lists are stored as JSON strings. Names of
            the layout's own attributes and of the xarray export's are refused, as by
            :class:`Writer`.
        dtype: storage type of the fields (float32 by default: float64 data is rounded to it;
            pass ``np.float64`` to keep it).
        compression: an h5py compression filter (``"gzip"``, ``"lzf"``) or None.
        overwrite: replace an existing file (atomically, at commit); without it an existing
            ``path`` raises ``FileExistsError``.

    Returns:
        The path of the committed file.
    """
    arrays = {**{f"fields/{k}": v for k, v in fields.items()}}
    arrays.update({f"static_fields/{k}": v for k, v in static_fields.items()})
    if not arrays:
        raise ValueError(f"{path}: give at least one field or static field")
    first = np.asarray(next(iter(arrays.values())))
    n_samples = first.shape[0]
    if fields:
        f0 = np.asarray(next(iter(fields.values())))
        if f0.ndim < 2:
            raise ValueError(f"{path}: fields must be (n_samples, n_steps, *spatial)")
        n_steps, spatial = f0.shape[1], f0.shape[2:]
    else:
        n_steps, spatial = None, first.shape[1:]
    if time is None and n_steps is not None:
        time = np.arange(n_steps, dtype=np.float64)
    if coords is None:
        coords = {f"x{k}": np.arange(s, dtype=np.float64) for k, s in enumerate(spatial)}
    params = {k: np.asarray(v) for k, v in (params or {}).items()}
    for k, v in params.items():
        if v.ndim == 0 or v.shape[0] != n_samples:
            raise DataFormatError(
                path,
                f"got shape {shape_str(v.shape)}, expected (n_samples={n_samples}, ...)",
                key=f"params/{k}",
            )
    with Writer(
        path,
        n_samples=n_samples,
        fields=list(fields),
        static_fields=list(static_fields),
        coords=coords,
        spatial_shape=spatial,
        time=time,
        params={k: v.shape[1:] for k, v in params.items()},
        boundary_conditions=boundary_conditions,
        attrs=attrs,
        dtype=dtype,
        compression=compression,
        overwrite=overwrite,
    ) as w:
        w.write(slice(0, n_samples), fields=fields, static_fields=static_fields, params=params)
    return w.path
