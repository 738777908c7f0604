"""Readers for PDEBench's HDF5 layouts.

Following PDEBench's README and data-generation / data-loading code:

* ``pdebench`` -- one scalar field: ``tensor`` ``(N, T, *spatial)`` with ``x-coordinate``
  (``y-``, ``z-``) ``(n_axis,)`` and ``t-coordinate`` ``(T,)`` or ``(T + 1,)``; the extra entry
  (PDEBench stores the final time of the last interval too) is dropped.
* ``pdebench-cfd`` -- compressible Navier-Stokes: one dataset per variable, ``density``,
  ``pressure``, ``Vx`` (``Vy``, ``Vz``), each ``(N, T, *spatial)``, same coordinates.
* ``pdebench-darcy`` -- ``tensor`` ``(N, 1, X, Y)`` is the solution ``u`` and ``nu``
  ``(N, X, Y)`` the coefficient; both become static fields, ``nu`` and ``u``.
* ``pdebench-seed-groups`` -- one group per seed, ``0000/data`` ``(T, *spatial, C)`` with
  ``0000/grid/x`` (``y``, ``z``) and ``0000/grid/t``; channels are named ``c0``, ``c1``, ...;
  samples are the seeds in numeric order (``'2'`` before ``'10'``, as ``'0002'`` before
  ``'0010'``).
"""

from __future__ import annotations

import math
from pathlib import Path

import h5py
import numpy as np

from .._errors import DataFormatError, shape_str
from .._format import members
from .._layout import LayoutSpec, Source

AXES = ("x", "y", "z")
CFD_VARIABLES = ("density", "pressure", "Vx", "Vy", "Vz")


def _coords(f: h5py.Group, path: Path, fmt: str, prefix: str = "") -> dict[str, np.ndarray]:
    coords = {}
    for a in AXES:
        key = prefix + fmt.format(a)
        if key in f:
            coords[a] = np.asarray(f[key][()]).reshape(-1)
    return coords


def _time(f: h5py.Group, path: Path, key: str, n_steps: int) -> np.ndarray:
    if key not in f:
        return np.arange(n_steps, dtype=np.float64)
    t = np.asarray(f[key][()]).reshape(-1)
    if t.shape[0] == n_steps + 1:
        return t[:n_steps]
    if t.shape[0] != n_steps:
        # (why) the full path: a seed group's 'grid/t' was named without its group ('0000/')
        raise DataFormatError(
            path,
            f"has {t.shape[0]} entries, expected n_steps={n_steps} or n_steps + 1",
            key=f[key].name.lstrip("/"),
        )
    return t


def _check_spatial(path: Path, key: str, shape: tuple, lead: int, coords: dict) -> tuple:
    spatial = tuple(shape[lead:])
    expected = tuple(len(c) for c in coords.values())
    if spatial != expected:
        raise DataFormatError(
            path,
            f"has shape {shape_str(shape)}; its spatial part {shape_str(spatial)} does not match "
            f"the coordinates {', '.join(f'{k}-coordinate ({len(v)})' for k, v in coords.items())}",
            key=key,
        )
    return spatial


# -- single `tensor` ---------------------------------------------------------------------------
def detect_tensor(f: h5py.File) -> bool:
    return "tensor" in f and isinstance(f["tensor"], h5py.Dataset) and "nu" not in f


def read_tensor(f: h5py.File, path: Path) -> LayoutSpec:
    return _trajectories(f, path, "pdebench", {"u": "tensor"})


def _trajectories(f: h5py.File, path: Path, layout: str, fields: dict[str, str]) -> LayoutSpec:
    """The spec of ``fields`` (name -> dataset key), datasets ``(N, T, *spatial)`` of one shape
    (the first one's, checked by the caller) on the ``*-coordinate`` axes and ``t-coordinate``.
    """
    key = next(iter(fields.values()))
    shape = f[key].shape
    coords = _coords(f, path, "{}-coordinate")
    if len(shape) != 2 + len(coords):
        raise DataFormatError(
            path,
            f"has shape {shape_str(shape)}, expected (n_samples, n_steps, *spatial) with "
            f"{len(coords)} spatial axes (one per *-coordinate dataset)",
            key=key,
        )
    spatial = _check_spatial(path, key, shape, 2, coords)
    sp = tuple(f"s{k}" for k in range(len(spatial)))
    return LayoutSpec(
        layout=layout,
        n_samples=shape[0],
        n_steps=shape[1],
        spatial_shape=spatial,
        spatial_dims=tuple(coords),
        fields={name: Source(k, ("n", "t", *sp)) for name, k in fields.items()},
        coords=coords,
        time=_time(f, path, "t-coordinate", shape[1]),
        attrs={k: _plain(v) for k, v in members(f.attrs)},
    )


# -- Darcy ---------------------------------------------------------------------------------------
def detect_darcy(f: h5py.File) -> bool:
    return "tensor" in f and "nu" in f


def read_darcy(f: h5py.File, path: Path) -> LayoutSpec:
    coords = _coords(f, path, "{}-coordinate")
    u, nu = f["tensor"].shape, f["nu"].shape
    if len(u) != 4 or u[1] != 1:
        raise DataFormatError(
            path, f"has shape {shape_str(u)}, expected (N, 1, X, Y)", key="tensor"
        )
    if nu != (u[0], *u[2:]):
        raise DataFormatError(
            path, f"has shape {shape_str(nu)}, expected (N, X, Y) = {shape_str((u[0], *u[2:]))}",
            key="nu",
        )  # fmt: skip
    if coords:
        _check_spatial(path, "nu", nu, 1, coords)
    else:
        coords = {a: np.arange(s, dtype=np.float64) for a, s in zip(AXES, u[2:])}
    return LayoutSpec(
        layout="pdebench-darcy",
        n_samples=u[0],
        n_steps=None,
        spatial_shape=tuple(u[2:]),
        spatial_dims=tuple(coords),
        fields={},
        static_fields={
            "nu": Source("nu", ("n", "s0", "s1")),
            "u": Source("tensor", ("n", 0, "s0", "s1")),
        },
        coords=coords,
        attrs={k: _plain(v) for k, v in members(f.attrs)},
    )


# -- CFD -----------------------------------------------------------------------------------------
def detect_cfd(f: h5py.File) -> bool:
    return "density" in f and "Vx" in f


def read_cfd(f: h5py.File, path: Path) -> LayoutSpec:
    shape = f["density"].shape
    names = [v for v in CFD_VARIABLES if v in f]  # density first
    for v in names:
        if f[v].shape != shape:
            raise DataFormatError(
                path, f"has shape {shape_str(f[v].shape)}, expected {shape_str(shape)} like "
                "'density'", key=v,
            )  # fmt: skip
    return _trajectories(f, path, "pdebench-cfd", {v: v for v in names})


# -- per-seed groups -----------------------------------------------------------------------------
def detect_seed_groups(f: h5py.File) -> bool:
    keys = list(f.keys())
    return bool(keys) and all(
        isinstance(f[k], h5py.Group) and "data" in f[k] and k.isascii() and k.isdigit()
        for k in keys
    )


def _seed_order(f: h5py.File, path: Path) -> list[str]:
    """The seed groups in numeric order: sample ``i`` is the ``i``-th smallest seed.

    (why) not ``sorted(f.keys())`` (h5py's own order too): names sort as text, so the groups
    ``'0'`` .. ``'10'`` gave samples ``0, 1, 10, 2, ...`` and a file of zero-padded names
    (PDEBench's ``'0000'`` ..) put the same seeds elsewhere; two names of one seed (``'1'``
    beside ``'01'``) have no order and are refused.
    """
    seen: dict[int, str] = {}
    for k in f:
        if not (k.isascii() and k.isdigit()):
            raise DataFormatError(
                path, f"has a top-level key {k!r}; expected only seed groups named by numbers"
            )
        if (other := seen.setdefault(int(k), k)) != k:
            raise DataFormatError(
                path,
                f"groups '{other}' and '{k}' both name seed {int(k)}; expected one group per "
                "seed (samples are the seed groups in numeric order)",
            )
    if not seen:
        raise DataFormatError(path, "has no seed groups; expected groups '0000', '0001', ...")
    return [seen[s] for s in sorted(seen)]


def read_seed_groups(f: h5py.File, path: Path) -> LayoutSpec:
    seeds = _seed_order(f, path)
    first = f[seeds[0]]
    shape = first["data"].shape
    coords = _coords(first, path, "grid/{}")
    if len(shape) != 2 + len(coords):
        raise DataFormatError(
            path, f"has shape {shape_str(shape)}, expected (n_steps, *spatial, channels) with "
            f"{len(coords)} spatial axes (one per grid/* dataset)", key=f"{seeds[0]}/data",
        )  # fmt: skip
    spatial = _check_spatial(path, f"{seeds[0]}/data", shape[:-1], 1, coords)
    for s in seeds[1:]:
        # (why) low-level: a high-level Dataset per seed is slow for 10 000-seed files
        if (got := h5py.h5d.open(f.id, f"{s}/data".encode()).shape) != shape:
            raise DataFormatError(
                path, f"has shape {shape_str(got)}, expected {shape_str(shape)} "
                f"like '{seeds[0]}/data'", key=f"{s}/data",
            )  # fmt: skip
    time = _time(first, path, "grid/t", shape[0])  # (why) the first group's own faults first
    _check_seed_grids(f, path, seeds)
    sp = tuple(f"s{k}" for k in range(len(spatial)))
    return LayoutSpec(
        layout="pdebench-seed-groups",
        n_samples=len(seeds),
        n_steps=shape[0],
        spatial_shape=spatial,
        spatial_dims=tuple(coords),
        fields={f"c{c}": Source("{sample}/data", ("t", *sp, c)) for c in range(shape[-1])},
        coords=coords,
        time=time,
        attrs={k: _plain(v) for k, v in members(f.attrs)},
        sample_keys=seeds,
    )


# -- 2-D incompressible Navier-Stokes -------------------------------------------------------------
def detect_ns_incom(f: h5py.File) -> bool:
    return all(k in f and isinstance(f[k], h5py.Dataset) for k in ("velocity", "particles"))


def read_ns_incom(f: h5py.File, path: Path) -> LayoutSpec:
    """PDEBench's ``ns_incom_inhom_2d`` files, as ``data_io.h5_for`` / ``dims_for`` lay them out.

    Arrays are phiflow's ``numpy(order=batch, x, y, vector)`` of fields resampled onto the cell
    centres (``to_centre_grid``), so axis 2 is x, axis 3 is y and component 0 the x-velocity.
    Without ``x-coordinate`` / ``y-coordinate`` datasets (the published files have none) the
    coordinates are the cell centres of the unit square, ``(i + 1/2) / n``: the configured
    ``domain_size: [1, 1]`` of ``ns_incomp.yaml``.
    """
    for k in ("velocity", "particles", "force", "t"):
        if k not in f or not isinstance(f[k], h5py.Dataset):
            raise DataFormatError(
                path,
                f"has no dataset '{k}'; a 2-D incompressible Navier-Stokes file holds "
                "'velocity' (N, T, X, Y, 2), 'particles' (N, T, X, Y, 1), 'force' (N, X, Y, 2) "
                "and 't' (N, T)",
            )
    vel = f["velocity"].shape
    if len(vel) != 5 or vel[-1] != 2:
        raise DataFormatError(
            path, f"has shape {shape_str(vel)}, expected (N, T, X, Y, 2)", key="velocity"
        )
    n, n_steps, *spatial = vel[:4]
    expected = {
        "particles": (n, n_steps, *spatial, 1),
        "force": (n, *spatial, 2),
        "t": (n, n_steps),
    }
    for k, want in expected.items():
        if f[k].shape != want:
            raise DataFormatError(
                path,
                f"has shape {shape_str(f[k].shape)}, expected {shape_str(want)} from 'velocity' "
                f"{shape_str(vel)}",
                key=k,
            )
    # (why) h5_for creates every dataset at full size and _store fills one frame at a time,
    # recording it in latestIndex: frames past it of an interrupted run are zeros, not data
    last = f.attrs.get("latestIndex")
    if last is not None and int(last) < n_steps - 1:
        raise DataFormatError(
            path,
            f"root attribute latestIndex={int(last)}: frames {int(last) + 1} .. {n_steps - 1} of "
            f"'velocity', 'particles' and 't' were never written (a simulation stopped early); "
            f"expected latestIndex={n_steps - 1} for {n_steps} frames",
        )
    coords = _coords(f, path, "{}-coordinate")
    if coords:
        if len(coords) != 2:
            raise DataFormatError(
                path, f"has coordinates for {list(coords)} only; expected 'x-coordinate' and "
                "'y-coordinate' (or neither: the unit square)",
            )  # fmt: skip
        _check_spatial(path, "velocity", vel[:4], 2, coords)
    else:
        coords = {a: (np.arange(s) + 0.5) / s for a, s in zip(AXES, spatial)}
    t = np.asarray(f["t"][()], dtype=np.float64)
    # (why) one row where every sample shares its time stamps (PDEBench's fixed DT), as other
    # layouts give them; per-sample rows (n, T) otherwise
    time = t[0] if (t == t[:1]).all() else t
    return LayoutSpec(
        layout="pdebench-ns-incom",
        n_samples=n,
        n_steps=n_steps,
        spatial_shape=tuple(spatial),
        spatial_dims=("x", "y"),
        fields={
            "velocity_x": Source("velocity", ("n", "t", "s0", "s1", 0)),
            "velocity_y": Source("velocity", ("n", "t", "s0", "s1", 1)),
            "particles": Source("particles", ("n", "t", "s0", "s1", 0)),
        },
        static_fields={
            "force_x": Source("force", ("n", "s0", "s1", 0)),
            "force_y": Source("force", ("n", "s0", "s1", 1)),
        },
        coords=coords,
        time=time,
        attrs={k: _plain(v) for k, v in members(f.attrs)},
    )


# (why) a grid of more entries than this is compared by shape only: PDEBench's are 1-D
# (128 .. 1024 points), so every published file has its values compared
_GRID_VALUES_UP_TO = 1 << 16


def _check_seed_grids(f: h5py.File, path: Path, seeds: list[str]) -> None:
    """Every seed group's ``grid/*`` is the first group's, which the spec uses for all samples.

    (why) low-level ``h5g`` / ``h5d`` calls and a byte comparison: high-level ``Dataset``
    objects, path look-ups and numpy comparisons made opening a 10 000-seed file (1-D
    diffusion-sorption) several times slower; the details are worked out only for a mismatch.
    """
    first = seeds[0]
    ref = _grids(f, first)
    # (why) the shapes, and the values in the first group's numeric type as bytes (None for a
    # large or non-numeric grid: shape only), worked out once
    shapes = {a: d.shape for a, d in ref.items()}
    want = {a: _grid_bytes(d, shapes[a], d.dtype) for a, d in ref.items()}
    for s in seeds[1:]:
        grids = _grids(f, s)
        if grids.keys() != ref.keys():
            odd = sorted(set(grids) ^ set(ref))[0]
            has, lacks = (s, first) if odd in grids else (first, s)
            raise DataFormatError(
                path,
                f"group '{has}' has 'grid/{odd}' and group '{lacks}' has none; expected the same "
                "grid in every seed group (the first group's is used for all samples)",
            )
        for a, d in grids.items():
            if (shape := d.shape) != shapes[a]:
                raise DataFormatError(
                    path, f"has shape {shape_str(shape)}, expected {shape_str(shapes[a])} "
                    f"like '{first}/grid/{a}' (the first group's grid is used for all samples)",
                    key=f"{s}/grid/{a}",
                )  # fmt: skip
            if (w := want[a]) is None or _grid_bytes(d, shape, w[0]) == w:
                continue
            # (why) bytes can differ for equal values (-0.0 and 0.0, NaN payloads)
            got, exp = _grid_values(d), _grid_values(ref[a])
            same = (got == exp) | (np.isnan(got) & np.isnan(exp))
            if not same.all():
                i = int(np.flatnonzero(~same)[0])
                raise DataFormatError(
                    path,
                    f"differs from '{first}/grid/{a}' at flat index {i} "
                    f"({float(got.flat[i])!r} there, {float(exp.flat[i])!r} in '{first}'); "
                    "expected the same grid in every seed group (the first group's is used for "
                    "all samples)",
                    key=f"{s}/grid/{a}",
                )


def _grids(f: h5py.File, seed: str) -> dict[str, h5py.h5d.DatasetID]:
    """The ``grid/x`` .. ``grid/t`` datasets of one seed group, by axis name."""
    try:
        g = h5py.h5g.open(f.id, f"{seed}/grid".encode())
    except KeyError:
        return {}
    names = set(g)
    return {a: h5py.h5d.open(g, a.encode()) for a in (*AXES, "t") if a.encode() in names}


def _grid_bytes(d: h5py.h5d.DatasetID, shape: tuple, dtype: np.dtype) -> tuple | None:
    """``(dtype, values as bytes of dtype)``; ``None`` for a grid not compared by value."""
    if math.prod(shape) > _GRID_VALUES_UP_TO or dtype.kind not in "fiu":
        return None
    out = np.empty(shape, dtype=dtype)
    d.read(h5py.h5s.ALL, h5py.h5s.ALL, out)
    return dtype, out.tobytes()


def _grid_values(d: h5py.h5d.DatasetID) -> np.ndarray:
    out = np.empty(d.shape, dtype=np.float64)
    d.read(h5py.h5s.ALL, h5py.h5s.ALL, out)
    return out


def _plain(v):
    if isinstance(v, bytes):
        return v.decode()
    return v.item() if isinstance(v, np.generic) else v
