"""``H5Dataset``: one data set object for every supported HDF5 layout, read lazily.

``open(path)`` detects the layout, reads every attribute, coordinate, time stamp and parameter
once, and returns an :class:`H5Dataset`. Field values are read only when asked for, straight into
one contiguous float32 array, through an HDF5 handle owned by the calling process.
"""

from __future__ import annotations

import builtins
import importlib
import os
from collections.abc import Sequence
from numbers import Integral
from pathlib import Path
from typing import TYPE_CHECKING, Any

import h5py
import numpy as np
from h5py import h5s

from ._errors import DataFormatError, shape_str
from ._handle import (
    Identity,
    LazyH5,
    as_path,
    file_identity,
    open_h5,
    unreadable_as_format_error,
)
from ._layout import LayoutSpec, Source
from .layouts import read_spec


class _LazyModule:
    """A module imported at its first attribute access.

    (why) ``to_xarray``'s annotation ``xr.Dataset`` names xarray, which takes over a second to
    import; imported only under ``TYPE_CHECKING``, ``typing.get_type_hints`` on the method raised
    ``NameError: name 'xr' is not defined``. This stand-in resolves the name when hints are asked
    for, and ``import sciml.data`` still does not import xarray.
    """

    def __init__(self, name: str) -> None:
        self._name = name

    def __getattr__(self, attr: str) -> Any:
        # (why) through __dict__: copy and pickle make the object without __init__ and then ask
        # it for __setstate__; reading self._name there re-entered __getattr__ (RecursionError)
        name = self.__dict__.get("_name")
        if name is None:
            raise AttributeError(attr)
        return getattr(importlib.import_module(name), attr)

    def __repr__(self) -> str:
        return f"<module {self._name!r}, imported on first use>"


if TYPE_CHECKING:
    import xarray as xr
else:
    xr = _LazyModule("xarray")

SampleSel = int | slice | Sequence[int] | np.ndarray
StepSel = int | slice | None
SpaceSel = int | Sequence[int | slice] | None


class H5Dataset:
    """A PDE data set in an HDF5 file: samples x time x channels x space.

    Open one with :func:`~sciml.data.open`. Its metadata (``layout``, ``n_samples``, ``n_steps``,
    ``spatial_shape``, ``field_names``, ``coords``, ``time``, ...) are the read-only properties
    below, read from the file when it was opened.

    Attributes:
        path: the file.
        check_finite: whether :meth:`read` / :meth:`read_static` raise
            :class:`~sciml.data.DataFormatError` on NaN or Inf (the ``check_finite`` argument of
            :func:`~sciml.data.open`).
    """

    def __init__(
        self,
        path: str | os.PathLike[str],
        spec: LayoutSpec,
        *,
        in_memory: bool = False,
        check_finite: bool = True,
        identity: Identity | None = None,
    ):
        self.path = Path(path)
        self._spec = spec
        self._h5 = LazyH5(self.path, identity)  # refuses a file changed after `spec` was read
        self.check_finite = check_finite
        self._mem: dict[str, np.ndarray] | None = None
        if in_memory:
            f = self._h5.file
            try:
                with unreadable_as_format_error(self.path):
                    self._mem = {k: f[k][()] for k in spec.all_keys()}
            finally:
                self._h5.close()

    # -- metadata -----------------------------------------------------------------------------
    @property
    def layout(self) -> str:
        """The file's layout: ``"sciml"``, ``"pdebench"``, ``"pdebench-seed-groups"``,
        ``"pdebench-cfd"``, ``"pdebench-darcy"``, ``"pdebench-ns-incom"``, ``"the-well"``,
        ``"poseidon-netcdf"`` or ``"poseidon-helmholtz"``."""
        return self._spec.layout

    @property
    def n_samples(self) -> int:
        """Number of samples (trajectories); ``len(ds)``."""
        return self._spec.n_samples

    @property
    def n_steps(self) -> int | None:
        """Number of time steps; ``None`` for a file with static fields only."""
        return self._spec.n_steps

    @property
    def spatial_shape(self) -> tuple[int, ...]:
        """Grid shape, e.g. ``(nx, ny)``, or ``(n_points,)`` for a point cloud."""
        return self._spec.spatial_shape

    @property
    def spatial_dims(self) -> tuple[str, ...]:
        """Axis names, one per entry of :attr:`spatial_shape`, e.g. ``("x", "y")``."""
        return self._spec.spatial_dims

    @property
    def coords(self) -> dict[str, np.ndarray]:
        """Axis name -> ``(n_axis,)`` coordinates, as stored (``{"points": (n_points, dim)}`` for
        a point cloud); made up where the file stores none: indices ``0, 1, ...`` for a
        PDEBench Darcy file, ``linspace(0, 1, n_axis)`` for a Poseidon one. An axis of The Well
        that varies per sample and / or time step is ``(n_samples, n_axis)``, ``(n_steps,
        n_axis)`` or ``(n_samples, n_steps, n_axis)``, as its flags say. Arrays read when the
        file was opened, shared by every call: do not modify them."""
        return self._spec.coords

    @property
    def time(self) -> np.ndarray | None:
        """``(n_steps,)`` time stamps (``(n_samples, n_steps)`` where they vary per sample), as
        the file stores them (step indices ``0, 1, ...`` for a PDEBench or Poseidon file that
        stores none); ``None`` where the file has no time axis (a sciml file written without
        ``time=``, PDEBench's Darcy files). A file with static fields only may still have one
        (``time=`` given to :func:`~sciml.data.write`, or The Well's time axis), while its
        :attr:`n_steps` is ``None``."""
        return self._spec.time

    @property
    def params(self) -> dict[str, np.ndarray]:
        """Name -> ``(n_samples, ...)`` per-sample parameters (``{}`` where there are none)."""
        return self._spec.params

    @property
    def boundary_conditions(self) -> dict[str, Any]:
        """Spatial axis name -> type string (``"periodic"``, ...) or dict ``{"type": ...,
        **values}``; in a file of The Well, whose boundary groups' masks can give an axis's
        ends different types, the tuple ``(low, high)`` (``("wall", "open")``: a wall at the
        first grid point), and where groups give one end several types, the sorted list of
        them. ``{}`` where the file states none."""
        return self._spec.boundary_conditions

    @property
    def attrs(self) -> dict[str, Any]:
        """The file's metadata (``pde``, ``units``, ``generator``, ``generator_settings``, ...,
        and the layout's own, such as ``format_version``)."""
        return self._spec.attrs

    @property
    def is_points(self) -> bool:
        """Whether the samples live on a point cloud (``spatial_shape == (n_points,)``,
        coordinates in ``coords["points"]``) rather than a grid."""
        return self._spec.points

    @property
    def in_memory(self) -> bool:
        """Whether every field was read into RAM when the file was opened
        (``open(..., in_memory=True)``); :meth:`read` then copies from memory."""
        return self._mem is not None

    @property
    def field_names(self) -> list[str]:
        """Time-dependent channels, in the channel order of :meth:`read` (a new list each
        call; ``[]`` for a file with static fields only)."""
        return list(self._spec.fields)

    @property
    def static_field_names(self) -> list[str]:
        """Time-independent channels, in the channel order of :meth:`read_static` (a new list
        each call)."""
        return list(self._spec.static_fields)

    def __len__(self) -> int:
        return self.n_samples

    def grid_points(self, space: SpaceSel = None) -> np.ndarray:
        """Coordinates of the points ``space`` selects (``None``: every point), ``(*spatial,
        dim)`` float32 (``(n_points, dim)`` for clouds)."""
        sl = self._space(space)
        if self.is_points:
            return np.asarray(self.coords["points"], dtype=np.float32)[sl[0]]
        for d in self.spatial_dims:
            c = np.asarray(self.coords[d])
            if c.ndim and c.size != c.shape[-1]:
                # (why) The Well lets an axis vary per sample ((n, nx)): reshape(-1) made one
                # grid of every sample's points, n times too long
                lead = self._spec.coord_dims.get(d, ("sample", d))[:-1]
                what = " and ".join("time step" if k == "time" else k for k in lead)
                raise ValueError(
                    f"{self.path}: the coordinates of axis '{d}' vary per {what} (shape "
                    f"{shape_str(c.shape)}); grid points (and with_coords, PointSamples) expect "
                    f"one grid for all samples and steps -- read them from coords['{d}']"
                )
        axes = [np.asarray(self.coords[d]).reshape(-1)[s] for d, s in zip(self.spatial_dims, sl)]
        if not axes:  # (why) no spatial axes (an ODE series): one point of 0 coordinates
            return np.zeros((0,), np.float32)
        return np.stack(np.meshgrid(*axes, indexing="ij"), axis=-1).astype(np.float32)

    # -- selections ---------------------------------------------------------------------------
    def _samples(self, samples: SampleSel) -> np.ndarray:
        if isinstance(samples, (int, np.integer)):
            idx = np.array([samples])
        elif isinstance(samples, slice):
            idx = np.arange(*samples.indices(self.n_samples))
        else:
            arr = np.asarray(samples)
            if arr.size and arr.dtype.kind not in "iu":
                # int64 conversion truncated 0.5 to sample 0 and read a mask [True, False, True]
                # as the samples 1, 0, 1
                hint = " (a boolean mask? pass np.flatnonzero(mask))" if arr.dtype == bool else ""
                raise TypeError(
                    f"{self.path}: expected integer sample indices, got {samples!r} of dtype "
                    f"{arr.dtype}{hint}"
                )
            idx = arr.astype(np.int64).reshape(-1)
        idx = np.where(idx < 0, idx + self.n_samples, idx)
        if idx.size and (idx.min() < 0 or idx.max() >= self.n_samples):
            raise IndexError(
                f"{self.path}: sample index {samples!r} is out of range for "
                f"n_samples={self.n_samples}"
            )
        return idx

    def _steps(self, steps: StepSel) -> slice:
        if self.n_steps is None:
            raise ValueError(f"{self.path}: has no time-dependent fields (static only)")
        if steps is None:
            return slice(0, self.n_steps, 1)
        if isinstance(steps, (int, np.integer)):
            s = int(steps) + (self.n_steps if steps < 0 else 0)
            if not 0 <= s < self.n_steps:
                raise IndexError(f"{self.path}: step {steps} out of range n_steps={self.n_steps}")
            return slice(s, s + 1, 1)
        if not isinstance(steps, slice):  # (why) a list or a float failed as AttributeError
            raise TypeError(
                f"{self.path}: expected steps an int, a slice or None, got "
                f"{type(steps).__name__} {steps!r}; read the steps one at a time, or a slice"
            )
        start, stop, step = steps.indices(self.n_steps)
        if step < 1:
            raise ValueError(f"{self.path}: step selection {steps} must have a positive step")
        return slice(start, max(stop, start), step)

    def _space(self, space: SpaceSel) -> tuple[slice, ...]:
        nd = len(self.spatial_shape)
        if space is None:
            return (slice(None),) * nd
        given = space
        space = (space,) * nd if isinstance(space, Integral) else tuple(space)
        if len(space) != nd:
            raise ValueError(
                f"{self.path}: spatial selection {space} has {len(space)} entries, expected {nd}"
            )
        out = tuple(slice(None, None, s) if isinstance(s, Integral) else s for s in space)
        for s in out:
            # HDF5 reads forward only: a zero step failed deep in the read, a negative one
            # with "can't convert negative value to hsize_t"
            ok = isinstance(s, slice) and all(
                v is None or (isinstance(v, Integral) and not isinstance(v, bool))
                for v in (s.start, s.stop, s.step)
            )
            if not ok or (s.step is not None and s.step < 1):
                raise ValueError(
                    f"{self.path}: expected a spatial selection of an int stride >= 1 or one "
                    f"slice per axis with integer bounds and a step >= 1, got {given!r}"
                )
        return out

    def _channels(self, fields: Sequence[str] | None, static: bool) -> list[tuple[str, Source]]:
        table = self._spec.static_fields if static else self._spec.fields
        if isinstance(fields, str):  # (why) list("uv") read the channels 'u' and 'v'
            raise ValueError(
                f"{self.path}: expected fields a list of field names, got the string {fields!r}"
                f" -- pass [{fields!r}]"
            )
        names = list(table) if fields is None else list(fields)
        for n in names:
            if n not in table:
                kind = "static fields" if static else "fields"
                raise KeyError(f"{self.path}: no field '{n}'; {kind} are {list(table)}")
        return [(n, table[n]) for n in names]

    # -- reading ------------------------------------------------------------------------------
    def read(
        self,
        samples: SampleSel,
        steps: StepSel = None,
        fields: Sequence[str] | None = None,
        *,
        space: SpaceSel = None,
    ) -> np.ndarray:
        """Time-dependent fields of some samples.

        Args:
            samples: index, slice or index list.
            steps: step index or slice (``None``: all); a slice step subsamples time.
            fields: channel names (default :attr:`field_names`), in output channel order.
            space: an int stride for every axis, or one slice (or int stride) per spatial axis.

        Returns:
            ``(n, t, c, *spatial)`` float32, C-contiguous.
        """
        return self._read(samples, steps, fields, space, np.float32)

    def _read(self, samples, steps, fields, space, dtype) -> np.ndarray:
        """:meth:`read` into an array of ``dtype`` (HDF5 converts on the fly)."""
        idx, st, sp = self._samples(samples), self._steps(steps), self._space(space)
        chans = self._channels(fields, static=False)
        t = len(range(st.start, st.stop, st.step))
        shape = (idx.size, t, len(chans), *self._out_spatial(sp))
        out = np.empty(shape, dtype=dtype)
        if out.size:
            for k, i in enumerate(idx):
                for c, (_, src) in enumerate(chans):
                    self._read_block(src, int(i), st, sp, out, (k, slice(None), c), timed=True)
            if self.check_finite:
                self._assert_finite(out, idx, chans, st)
        return out

    def read_static(
        self, samples: SampleSel, fields: Sequence[str] | None = None, *, space: SpaceSel = None
    ) -> np.ndarray:
        """Static fields of some samples: ``(n, c, *spatial)`` float32, C-contiguous."""
        return self._read_static(samples, fields, space, np.float32)

    def _read_static(self, samples, fields, space, dtype) -> np.ndarray:
        idx, sp = self._samples(samples), self._space(space)
        chans = self._channels(fields, static=True)
        out = np.empty((idx.size, len(chans), *self._out_spatial(sp)), dtype=dtype)
        if out.size:
            for k, i in enumerate(idx):
                for c, (_, src) in enumerate(chans):
                    self._read_block(src, int(i), None, sp, out, (k, c), timed=False)
            if self.check_finite:
                self._assert_finite(out[:, None], idx, chans, None)
        return out

    def _stored_dtype(self, name: str, static: bool) -> np.dtype:
        """The floating dtype channel ``name`` is stored in (float32 for anything else)."""
        ((_, src),) = self._channels([name], static=static)
        key = src.dataset_key(self._spec.sample_keys[0] if self._spec.sample_keys else None)
        with unreadable_as_format_error(self.path):
            dtype = (self._mem[key] if self._mem is not None else self._h5.dataset(key)).dtype
        return dtype if dtype.kind == "f" else np.dtype(np.float32)

    def _out_spatial(self, sp: tuple[slice, ...]) -> tuple[int, ...]:
        return tuple(len(range(*s.indices(n))) for s, n in zip(sp, self.spatial_shape))

    def _read_block(
        self,
        src: Source,
        i: int,
        steps: slice | None,
        space: tuple[slice, ...],
        out: np.ndarray,
        dest: tuple,
        *,
        timed: bool,
    ) -> None:
        sample_key = self._spec.sample_keys[i] if self._spec.sample_keys else None
        key = src.dataset_key(sample_key)
        sel = src.selection(i, steps, space)
        mask = src.kept_shape_mask(len(space), timed)
        try:
            if all(mask):
                if self._mem is not None:
                    out[dest] = self._mem[key][sel]
                else:
                    split = tuple(a for a, role in enumerate(src.axes) if role == "t")
                    _read_hyperslab(self._h5.dataset(key), sel, out, dest, split)
                return
            src_arr = self._mem[key] if self._mem is not None else self._h5.dataset(key)
            block = src_arr[sel]
            target = out[dest]
            full = [n if keep else 1 for n, keep in zip(target.shape, mask)]
            target[...] = np.broadcast_to(np.asarray(block).reshape(full), target.shape)
        except DataFormatError:
            raise
        except (OSError, ValueError, TypeError, KeyError, RuntimeError) as e:
            raise DataFormatError(
                self.path, f"reading sample {i} failed ({e}); expected a readable array", key=key
            ) from e

    def _assert_finite(self, out: np.ndarray, idx, chans, steps: slice | None) -> None:
        # One vectorised pass; the slow search below runs only when something is wrong.
        if np.isfinite(out).all():
            return
        k, t, c = (int(v) for v in np.argwhere(~np.isfinite(out))[0][:3])
        step = "" if steps is None else f", step {steps.start + t * steps.step}"
        raise DataFormatError(
            self.path,
            f"non-finite value in sample {int(idx[k])}{step}; expected finite values "
            f"(open(..., check_finite=False) to read it anyway)",
            key=chans[c][1].dataset_key(
                self._spec.sample_keys[int(idx[k])] if self._spec.sample_keys else None
            ),
        )

    # -- views --------------------------------------------------------------------------------
    def to_xarray(self) -> xr.Dataset:
        """Every field as an ``xarray.Dataset`` with named dims and coordinates, lazily.

        Fields are ``(sample, time, *spatial_dims)``, static fields ``(sample, *spatial_dims)``;
        only the values that are indexed (``.isel``, ``.sel``, ``.values``) are read. Variables
        keep the file's names (parameters as ``param_<name>``): a field named like a coordinate
        or dimension of the view (``sample``, ``time``, a spatial axis, ``points``) raises a
        ``ValueError`` naming it, since xarray holds one variable per name. A coordinate that
        varies per sample is ``<axis>_per_sample``, one that varies per time step only
        ``<axis>_per_step``; a time-varying parameter (The Well's scalars) is on ``time``. The
        file's attributes keep their names; sciml adds ``sciml_layout``, ``sciml_source`` and (JSON)
        ``sciml_boundary_conditions``, and refuses a file attribute of one of those names.
        """
        from ._xarray import to_xarray

        return to_xarray(self)

    def close(self) -> None:
        """Close this process's HDF5 handle (``with open(path) as ds:`` does on exit).

        The data set stays usable: the next read opens the file again, and refuses it if it
        changed since :func:`open` read its layout.
        """
        self._h5.close()

    def __enter__(self) -> H5Dataset:
        return self

    def __exit__(self, *exc: Any) -> None:
        self.close()

    def __repr__(self) -> str:
        steps = "static" if self.n_steps is None else f"{self.n_steps} steps"
        lines = [
            f"H5Dataset('{self.path}', layout='{self.layout}')",
            f"  {self.n_samples} samples x {steps} x {shape_str(self.spatial_shape)} "
            f"[{', '.join(self.spatial_dims)}]{' (points)' if self.is_points else ''}",
            f"  fields: {', '.join(self.field_names) or '-'}",
            f"  static fields: {', '.join(self.static_field_names) or '-'}",
        ]
        if self.time is not None and np.size(self.time):
            lines.append(f"  time: {float(np.min(self.time)):g} .. {float(np.max(self.time)):g}")
        if self.params:
            ps = ", ".join(f"{k} {shape_str(np.shape(v))}" for k, v in self.params.items())
            lines.append(f"  params: {ps}")
        if self.boundary_conditions:
            lines.append(f"  boundary conditions: {self.boundary_conditions}")
        return "\n".join(lines)


def _read_hyperslab(
    dset: h5py.Dataset, sel: tuple, out: np.ndarray, dest: tuple, split_axes: tuple[int, ...] = ()
) -> None:
    """Read ``dset[sel]`` into ``out[dest]`` (``dest``: ints and full slices) through HDF5's
    low-level calls; h5py's high-level selection machinery costs more than the read for small
    blocks. ``split_axes``: axes of ``sel`` (time) whose strided selections are read one index
    at a time.
    """
    start, count, stride = [], [], []
    for axis, s in enumerate(sel):
        if isinstance(s, slice):
            a, b, c = s.indices(dset.shape[axis])
            start.append(a)
            count.append(len(range(a, b, c)))
            stride.append(c)
        else:
            start.append(int(s))
            count.append(1)
            stride.append(1)
    # the selected block of `out`, with the file selection's unit axes: a view, never a copy
    _read_into(dset, start, count, stride, out[dest].reshape(count), split_axes)


def _read_into(dset, start, count, stride, target: np.ndarray, split_axes) -> None:
    """One hyperslab read into ``target`` (shaped ``count``).

    HDF5 copies between a file and a memory selection of the same shape chunk by chunk, but
    between shapes that differ it falls back to a general path 10-100x slower: the
    ``(1, t, 1, *spatial)`` block of one channel of a ``(n, t, c, *spatial)`` array against the
    file's ``(1, t, *spatial)`` (a 256^2 window of two steps took 10.7 ms instead of 0.2 ms), or
    a strided file selection against a contiguous buffer (every AllPairs item, ``Windows(dt=2)``,
    ``space=2``). So the memory selection always has the file selection's shape: strided time
    axes are read one step at a time (a step is one chunk or more of sciml's files), strided
    spatial axes as their whole span (no more chunks than a full snapshot; a strided memory
    selection is copied value by value), subsampled in numpy, and a block that is not
    contiguous in ``target`` through a buffer.
    """
    for ax in split_axes:
        if stride[ax] > 1 and count[ax] > 1:
            for k in range(count[ax]):
                one = [start[ax] + k * stride[ax], 1]
                _read_into(
                    dset,
                    start[:ax] + one[:1] + start[ax + 1 :],
                    count[:ax] + one[1:] + count[ax + 1 :],
                    stride,
                    target[(slice(None),) * ax + (slice(k, k + 1),)],
                    split_axes,
                )
            return
    fspace = dset.id.get_space()
    if any(s > 1 and c > 1 for s, c in zip(stride, count)):
        span = tuple((c - 1) * s + 1 for c, s in zip(count, stride))
        fspace.select_hyperslab(tuple(start), span)
        buf = np.empty(span, dtype=target.dtype)
        dset.id.read(h5s.create_simple(span), fspace, buf)
        target[...] = buf[tuple(slice(None, None, s) for s in stride)]
        return
    fspace.select_hyperslab(tuple(start), tuple(count), tuple(stride))
    mspace = h5s.create_simple(tuple(count))
    if target.flags.c_contiguous:
        dset.id.read(mspace, fspace, target)
    else:
        buf = np.empty(count, dtype=target.dtype)
        dset.id.read(mspace, fspace, buf)
        target[...] = buf


def open(  # noqa: A001 - the public name is sciml.data.open
    path: str | os.PathLike[str],
    *,
    in_memory: bool = False,
    layout: str | None = None,
    check_finite: bool = True,
) -> H5Dataset:
    """Open a PDE data set in any supported layout.

    Args:
        path: HDF5 (or NetCDF-4) file.
        in_memory: read every field into RAM now (small files; fastest epochs).
        layout: skip detection and use this layout.
        check_finite: raise :class:`DataFormatError` when a read meets NaN or Inf.

    A file-like object (``io.BytesIO``, an open file), which h5py itself accepts, is refused
    with a ``TypeError``: each process opens the file again by its path.
    """
    path = as_path(path, "sciml.data.open")
    with open_h5(path) as f:
        # (why) of the file opened, not of the path: a replace in between would pair the new
        # file's identity with the old file's layout
        identity = file_identity(f.id.get_vfd_handle())
        spec = read_spec(f, path, layout)
    return H5Dataset(path, spec, in_memory=in_memory, check_finite=check_finite, identity=identity)


def describe(path: str | os.PathLike[str]) -> str:
    """A multi-line summary of a file (layout, shapes, fields, attributes) for ``sciml info``."""
    ds = open(as_path(path, "sciml.data.describe"))
    lines = [repr(ds)]
    for k, v in ds.coords.items():
        v = np.asarray(v)
        rng = f" in [{v.min():g}, {v.max():g}]" if v.size and v.dtype.kind in "fiu" else ""
        lines.append(f"  coord {k}: {shape_str(v.shape)}{rng}")
    for k, v in ds.attrs.items():
        text = builtins.repr(v)
        lines.append(f"  attr {k}: {text if len(text) < 120 else text[:117] + '...'}")
    return "\n".join(lines)
