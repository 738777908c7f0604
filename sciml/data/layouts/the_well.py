"""Reader for The Well's layout (``docs/data_format.md`` of PolymathicAI/the_well).

Root attributes ``n_trajectories``, ``n_spatial_dims``, ``dataset_name``, ``grid_type``,
``simulation_parameters`` (each parameter also a root attribute); groups ``dimensions``
(``@spatial_dims``, ``time``, one coordinate per axis), ``boundary_conditions`` (one group per
boundary, ``@bc_type``, ``@associated_dims``), ``scalars`` and ``t0_fields`` / ``t1_fields`` /
``t2_fields`` (``@field_names``). Each field has flags ``sample_varying``, ``time_varying`` and
``dim_varying`` (one per spatial axis); an axis whose flag is false is not stored (or stored
with length 1, as The Well's ``WellDataset`` tiles it) and is broadcast here. Rank-1 fields
become one channel per component, ``{name}_{axis}``; rank-2 fields ``{name}_{axis}{axis}``.
Fields that do not vary in time become static fields. A coordinate (``dimensions/<axis>``) and a
scalar carry ``sample_varying`` / ``time_varying`` too: stored ``(n?, T?, n_axis)`` and
``(n?, T?)``, their time axis is the time axis.
"""

from __future__ import annotations

import itertools
from pathlib import Path

import h5py
import numpy as np

from .._errors import DataFormatError, shape_str
from .._format import decode_attr, members, str_list
from .._layout import LayoutSpec, Source

NAME = "the-well"


def detect(f: h5py.File) -> bool:
    return "t0_fields" in f and "dimensions" in f


def _flag(obj: h5py.HLObject, name: str, path: Path, key: str) -> bool:
    if name not in obj.attrs:
        raise DataFormatError(path, f"attribute '{name}' is missing (expected a bool)", key=key)
    return bool(obj.attrs[name])


def read_spec(f: h5py.File, path: Path) -> LayoutSpec:
    for attr in ("n_trajectories",):
        if attr not in f.attrs:
            raise DataFormatError(path, f"root attribute '{attr}' is missing")
    n = int(f.attrs["n_trajectories"])
    dims_g = f["dimensions"]
    dims = tuple(str_list(dims_g.attrs.get("spatial_dims")))
    if not dims:
        raise DataFormatError(path, "attribute 'spatial_dims' is missing", key="dimensions")
    for d in (*dims, "time"):
        if d not in dims_g:
            raise DataFormatError(
                path, "is missing (listed in spatial_dims)", key=f"dimensions/{d}"
            )
    coords = {d: np.asarray(dims_g[d][()]) for d in dims}
    spatial = tuple(int(dims_g[d].shape[-1]) for d in dims)
    time = np.asarray(dims_g["time"][()])
    n_steps = int(time.shape[-1])
    coord_dims = {}
    for d in dims:
        c = dims_g[d]
        if "sample_varying" not in c.attrs and "time_varying" not in c.attrs:
            continue  # (why) no flags: read by its shape, as before ((n, n_x) per sample)
        # (why) a time-varying (T, n_x) coordinate was taken for a per-sample one: an export
        # labelled its rows as samples when T == n_trajectories, and failed otherwise
        sample_v, time_v = (bool(c.attrs.get(k, False)) for k in ("sample_varying", "time_varying"))
        lead = ((n,) if sample_v else ()) + ((n_steps,) if time_v else ())
        if c.shape != (*lead, spatial[dims.index(d)]):
            raise DataFormatError(
                path,
                f"has shape {shape_str(c.shape)}, expected "
                f"{shape_str((*lead, spatial[dims.index(d)]))} (sample_varying={sample_v}, "
                f"time_varying={time_v})",
                key=f"dimensions/{d}",
            )
        if lead:
            coord_dims[d] = (*(("sample",) if sample_v else ()), *(("time",) if time_v else ()), d)

    fields: dict[str, Source] = {}
    statics: dict[str, Source] = {}
    origin: dict[str, str] = {}  # channel name -> the dataset (and component) it is read from
    for order, group in enumerate(("t0_fields", "t1_fields", "t2_fields")):
        if group not in f:
            continue
        g = f[group]
        for name in str_list(g.attrs.get("field_names", [])):
            key = f"{group}/{name}"
            if name not in g:
                raise DataFormatError(path, "is missing (listed in field_names)", key=key)
            ds = g[name]
            sample_v = _flag(ds, "sample_varying", path, key)
            time_v = _flag(ds, "time_varying", path, key)
            dim_v = np.asarray(ds.attrs.get("dim_varying", [True] * len(dims)), bool).tolist()
            if len(dim_v) != len(dims):  # (why) a short list raised a bare IndexError below
                raise DataFormatError(
                    path,
                    f"attribute 'dim_varying' is {dim_v}, expected one flag per spatial axis "
                    f"{list(dims)}",
                    key=key,
                )
            roles: list[str | int] = (["n"] if sample_v else []) + (["t"] if time_v else [])
            lead = ([n] if sample_v else []) + ([n_steps] if time_v else [])
            expected = lead + [s for s, v in zip(spatial, dim_v) if v] + [len(dims)] * order
            # (why) an axis a field does not vary along is left out in The Well's spec, but
            # WellDataset tiles such a field over the axis (_pad_axes), which needs it stored
            # with length 1: that file was refused ("has shape (3, 6, 8, 1), expected (3, 6, 8)")
            kept = lead + [s if v else 1 for s, v in zip(spatial, dim_v)] + [len(dims)] * order
            if tuple(ds.shape) == tuple(expected):
                roles += [f"s{k}" for k in range(len(dims)) if dim_v[k]]
            elif tuple(ds.shape) == tuple(kept):
                roles += [f"s{k}" if dim_v[k] else 0 for k in range(len(dims))]
            else:
                also = f" or {shape_str(tuple(kept))}" if kept != expected else ""
                raise DataFormatError(
                    path,
                    f"has shape {shape_str(ds.shape)}, expected {shape_str(tuple(expected))}"
                    f"{also} (sample_varying={sample_v}, time_varying={time_v}, "
                    f"dim_varying={dim_v}, tensor order {order})",
                    key=key,
                )
            target = fields if time_v else statics
            for comp in itertools.product(range(len(dims)), repeat=order):
                suffix = "_" + "".join(dims[c] for c in comp) if order else ""
                src = f"'{key}'" + (f" (component {suffix[1:]})" if order else "")
                if (channel := name + suffix) in origin:
                    # (why) the later source replaced the earlier one silently: t1_fields/velocity's
                    # x component was read as t0_fields/velocity_x
                    raise DataFormatError(
                        path,
                        f"channel {channel!r} comes from both {origin[channel]} and {src}; "
                        "expected distinct channel names (a tensor field's components are named "
                        "<field>_<axes>)",
                    )
                origin[channel] = src
                target[channel] = Source(key, (*roles, *comp))

    attrs = {k: decode_attr(v, False) for k, v in members(f.attrs)}
    if "dataset_name" in attrs:
        attrs["pde"] = attrs["dataset_name"]
    params: dict[str, np.ndarray] = {}
    for p in str_list(f.attrs.get("simulation_parameters", [])):
        if p in f.attrs:
            # (why) not np.full(n, v): an array-valued parameter could not fill one slot each
            v = np.asarray(f.attrs[p])
            params[p] = np.broadcast_to(v, (n, *v.shape)).copy()
    param_dims: dict[str, tuple[str, ...]] = {}
    if "scalars" in f:
        for s in str_list(f["scalars"].attrs.get("field_names", [])):
            ds = f["scalars"][s]
            v = np.asarray(ds[()])
            sample_v = bool(ds.attrs.get("sample_varying", False))
            if not ds.attrs.get("time_varying", False):  # float32(1) in the spec: one value
                v = v.reshape((n,) if sample_v else ())
            else:
                # (why) its axis is the time axis (an xarray export gave it one of its own);
                # WellDataset slices it as scalar[sample?][t0:t1]
                want = ((n,) if sample_v else ()) + (n_steps,)
                if v.shape != want:
                    raise DataFormatError(
                        path,
                        f"has shape {shape_str(v.shape)}, expected {shape_str(want)} "
                        f"(sample_varying={sample_v}, time_varying=True)",
                        key=f"scalars/{s}",
                    )
                param_dims[s] = ("time",)
            if not sample_v:
                v = np.broadcast_to(v, (n, *v.shape)).copy()
            if s in params and not _same(params[s], v):
                # (why) the scalar replaced the root attribute of that name silently (a NaN
                # root 'Re' beside scalars/Re = 100 read as 100)
                raise DataFormatError(
                    path,
                    f"parameter {s!r} comes from both the root attribute {s!r} (listed in "
                    f"simulation_parameters) = {_show(f.attrs[s])} and 'scalars/{s}' = "
                    f"{_show(ds[()])}; expected one value, or distinct names",
                )
            params[s] = v

    bcs = _boundary_conditions(f)
    return LayoutSpec(
        layout=NAME,
        n_samples=n,
        n_steps=n_steps if fields else None,
        spatial_shape=spatial,
        spatial_dims=dims,
        fields=fields,
        static_fields=statics,
        coords=coords,
        time=time,
        params=params,
        param_dims=param_dims,
        coord_dims=coord_dims,
        boundary_conditions=bcs,
        attrs=attrs,
    )


def _same(a: np.ndarray, b: np.ndarray) -> bool:
    """Whether two readings of one parameter agree (NaN agreeing with NaN)."""
    if a.shape != b.shape:
        return False
    try:
        return bool(np.array_equal(a, b, equal_nan=True))
    except TypeError:  # (why) equal_nan cannot test strings
        return bool(np.array_equal(a, b))


def _show(v: object) -> str:
    a = np.asarray(v)
    return repr(a.item()) if a.size == 1 else f"an array of shape {shape_str(a.shape)}"


def _ends(g: h5py.Group, j: int, n_dims: int) -> tuple[bool, bool]:
    """Whether ``g``'s ``mask`` marks the low / high end of its ``j``-th of ``n_dims``
    associated axes (any point of that face; leading sample / time axes of a varying mask
    count too); ``(False, False)`` where it has no boolean mask over those axes."""
    m = g.get("mask") if isinstance(g, h5py.Group) else None
    if not isinstance(m, h5py.Dataset) or m.ndim < n_dims or m.dtype.kind not in "biu":
        return False, False
    mask = np.asarray(m[()]).astype(bool)
    axis = mask.ndim - n_dims + j
    if mask.shape[axis] == 0:
        return False, False
    return bool(mask.take(0, axis=axis).any()), bool(mask.take(-1, axis=axis).any())


def _boundary_conditions(f: h5py.File) -> dict[str, object]:
    """Axis -> boundary type, or ``(low, high)`` where the ends differ.

    (why) one axis can have a wall at one end and be open at the other (two groups whose
    ``mask`` marks one end each, which WellDataset's padding reads per end); that was reported
    as the sorted list ``['open', 'wall']``, which said nothing of where each is. A group
    whose mask marks neither end (or that has none) applies to both ends, as before; an end
    that no group marks is ``'open'``, WellDataset's default. Several types at one end stay
    the sorted list of them.
    """
    ends: dict[str, tuple[set[str], set[str]]] = {}
    # not f.get: it turns the KeyError of a damaged group into the default
    bc_group = f["boundary_conditions"] if "boundary_conditions" in f else {}  # noqa: SIM401
    for _, g in members(bc_group):
        kind = str(decode_attr(g.attrs.get("bc_type", "unknown"), False)).lower()
        dims = str_list(g.attrs.get("associated_dims", []))
        for j, d in enumerate(dims):
            low, high = _ends(g, j, len(dims))
            lo, hi = ends.setdefault(d, (set(), set()))
            if low or not (low or high):
                lo.add(kind)
            if high or not (low or high):
                hi.add(kind)

    def one(kinds: set[str]) -> str | list[str]:
        # (why) a sorted list of str, not of np.str_
        return next(iter(kinds)) if len(kinds) == 1 else sorted(kinds) or "open"

    return {d: one(lo) if lo == hi else (one(lo), one(hi)) for d, (lo, hi) in ends.items()}
