"""Reader for Poseidon-style NetCDF-4 files (camlab-ethz/poseidon dataset cards).

Poseidon's time-dependent data sets (``CE-RP.nc``, ``NS-PwC.nc``, ...) are NetCDF-4, i.e. HDF5,
files holding one main variable -- ``data``, ``solution`` or ``velocity`` -- shaped
``[N, T, C, H, W]``; its scOT loaders read them with h5py. Such a file is detected by that main
variable (5-D, floating point). The single-channel sets (``ACE.nc``, ``Wave-Gauss.nc``,
``Wave-Layer.nc``) store ``solution(sample, time, x, y)`` with no channel axis: a 4-D main
variable is a trajectory when the NetCDF dimension on its axis 1 is ``time``, and its one
channel is the field ``c0``. Each channel becomes a field ``c0``, ``c1``, ...; 4-D variables
``[N, C, H, W]`` beside it (time-independent inputs) become static fields ``{var}_c0``, ...; 3-D
float variables ``[N, H, W]`` of the main variable's N, H and W become one static field named
as the variable: ``Wave-Gauss.nc`` / ``Wave-Layer.nc``'s wave speed ``c``, which scOT's
``wave.Gaussians`` / ``wave.Layer`` stack as a second input channel beside ``solution[i, t]``
(``ds.read_static(i, ["c"])``). 3-D arrays of another sample count or grid are left out.

Its time-independent sets open as static-only data sets (no time axis), detected by the
variables their dataset cards list, names and ranks both (:data:`STATIC_SETS`):

* ``Poisson-Gauss.nc``: ``source`` and ``solution``, each ``[N, H, W]`` -> static fields
  ``source`` and ``solution`` (scOT's ``elliptic.poisson.Gaussians``: source -> solution);
* ``SE-AF.nc``: ``solution`` ``[N, 2, H, W]``, channels (airfoil shape, density) -> static
  fields ``solution_c0``, ``solution_c1`` (scOT's ``fluids.compressible.steady.Airfoil``:
  channel 0 -> channel 1).

``Helmholtz.h5`` (scOT's ``elliptic.Helmholtz``) is no NetCDF file but one HDF5 group per
sample, ``Sample_<i>`` holding ``a`` ``[H, W]``, ``bc`` (one value) and ``u`` ``[H, W]``: it
opens as layout ``poseidon-helmholtz`` (:func:`read_helmholtz`), static fields ``a``, ``bc``
and ``u``. No other Poseidon data set is time-independent.

A 3-D ``[N, H, W]`` variable is one static field named as the variable; a 4-D one gives a field
per channel. The two trailing axes are named ``x`` and ``y`` in stored order. NetCDF
dimension-scale datasets (1-D, no samples) are used as coordinates where their length fits.
"""

from __future__ import annotations

import re
from pathlib import Path

import h5py
import numpy as np
from h5py import h5d, h5g, h5t

from .._errors import DataFormatError, shape_str
from .._format import members
from .._layout import LayoutSpec, Source

NAME = "poseidon-netcdf"
MAIN_VARIABLES = ("data", "solution", "velocity")
# Poseidon's time-independent NetCDF sets: variable -> (rank, channels; None: no channel axis).
STATIC_SETS: dict[str, dict[str, tuple[int, int | None]]] = {
    "Poisson-Gauss": {"source": (3, None), "solution": (3, None)},  # [N, H, W] each
    "SE-AF": {"solution": (4, 2)},  # [N, 2 (airfoil shape, density), H, W]
}


def _variables(f: h5py.File) -> dict[str, h5py.Dataset]:
    return {
        k: v
        for k, v in members(f)
        if isinstance(v, h5py.Dataset) and v.ndim in (4, 5) and v.dtype.kind == "f"
    }


def _per_sample_grids(
    f: h5py.File, n: int, spatial: tuple[int, ...], skip: dict
) -> dict[str, h5py.Dataset]:
    """Float ``[N, H, W]`` variables of the main variable's N, H and W (Wave-*'s speed ``c``).

    (why) the wave sets' ``c`` is an input of scOT's wave problems and was dropped, since only
    4-D / 5-D variables were read; a 3-D array of another sample count or grid is some other
    quantity and is left out, as are 1-D dimension scales and integer arrays.
    """
    return {
        k: v
        for k, v in members(f)
        if k not in skip
        and isinstance(v, h5py.Dataset)
        and v.ndim == 3
        and v.dtype.kind == "f"
        and v.shape == (n, *spatial)
    }


def _bare_dimension(v: h5py.Dataset) -> bool:
    # netCDF-4 stores a dimension without a coordinate variable as an empty dimension scale.
    name = v.attrs.get("NAME", b"")
    name = name.decode() if isinstance(name, bytes) else str(name)
    return name.startswith("This is a netCDF dimension but not a netCDF variable")


def _dimension_name(v: h5py.Dataset, axis: int) -> str | None:
    """The NetCDF dimension attached to ``axis`` of ``v`` (its dimension scale), or None."""
    scales = v.dims[axis]
    return scales[0].name.rsplit("/", 1)[-1] if len(scales) else None


def _timed(k: str, v: h5py.Dataset) -> bool:
    """A float trajectory variable: ``[N, T, C, H, W]``, or a main variable ``[N, T, H, W]``.

    (why) Poseidon's ``assemble_data.py`` writes its single-channel sets (``ACE.nc``,
    ``Wave-Gauss.nc``, ``Wave-Layer.nc``) as ``solution(sample, time, x, y)``, with no channel
    axis; such a file is told from SE-AF's ``solution [N, 2, H, W]`` (and from any 4-D array)
    only by the NetCDF dimension ``time`` on its axis 1, so that is what is required.
    """
    if not (isinstance(v, h5py.Dataset) and v.dtype.kind == "f"):
        return False
    return v.ndim == 5 or (v.ndim == 4 and k in MAIN_VARIABLES and _dimension_name(v, 1) == "time")


def _main_variable(f: h5py.File) -> bool:
    return any(_timed(k, f.get(k)) for k in MAIN_VARIABLES)


def _static_set(f: h5py.File) -> str | None:
    """The name of the :data:`STATIC_SETS` entry whose variables ``f`` holds, or None.

    Each listed variable must be a float dataset of the listed rank (and channel count), all of
    one ``[N, ..., H, W]``; other variables are ignored, as beside a main variable.
    """
    for name, wanted in STATIC_SETS.items():
        shapes = []
        for k, (rank, channels) in wanted.items():
            v = f.get(k)
            if not (isinstance(v, h5py.Dataset) and v.ndim == rank and v.dtype.kind == "f"):
                break
            if channels is not None and v.shape[1] != channels:
                break
            shapes.append((v.shape[0], *v.shape[-2:]))
        else:
            if len(set(shapes)) == 1:
                return name
    return None


def detect(f: h5py.File) -> bool:
    """A float ``[N, T, C, H, W]`` variable named ``data``, ``solution`` or ``velocity`` (or
    ``[N, T, H, W]`` on the NetCDF dimension ``time``), or the variables of one of Poseidon's
    time-independent sets (:data:`STATIC_SETS`).

    (why) any NetCDF-4 file with any 4-D or 5-D float variable was taken for Poseidon data (a
    climate file's ``t2m`` ``(time, level, lat, lon)`` opened as four "samples"); the main
    variable, or a static set's names and ranks, is what Poseidon's files have in common.
    """
    return _main_variable(f) or _static_set(f) is not None


def _expected(f: h5py.File) -> str:
    sets = "; ".join(
        f"{name}: "
        + ", ".join(
            f"{k} [N, H, W]" if c is None else f"{k} [N, {c}, H, W]" for k, (_, c) in want.items()
        )
        for name, want in STATIC_SETS.items()
    )
    found = {
        k: shape_str(v.shape)
        for k, v in members(f)
        if isinstance(v, h5py.Dataset) and not _bare_dimension(v)
    }
    found = dict(list(found.items())[:12])
    return (
        "expected a float [N, T, C, H, W] variable 'data' / 'solution' / 'velocity' (or "
        "[N, T, H, W] with NetCDF dimension 'time' on axis 1), or the "
        f"float variables of a time-independent Poseidon set ({sets}); found datasets {found}"
    )


def read_spec(f: h5py.File, path: Path) -> LayoutSpec:
    variables = _variables(f)
    timed = {k: v for k, v in variables.items() if _timed(k, v)}
    static = {k: v for k, v in variables.items() if k not in timed}
    if not timed:
        # (why) a static-only file was read from whatever 4-D variables it had; Poisson-Gauss's
        # 3-D source / solution were none, and next() over nothing raised a bare StopIteration
        name = _static_set(f)
        if name is None:
            raise DataFormatError(path, f"is not a Poseidon data set: {_expected(f)}")
        static = {k: f[k] for k in STATIC_SETS[name]}
    ref = next(iter(timed.values()), None) or next(iter(static.values()))
    n, spatial = ref.shape[0], tuple(ref.shape[-2:])
    if timed:
        static.update(_per_sample_grids(f, n, spatial, skip=static))
    fields: dict[str, Source] = {}
    n_steps = None
    for k, v in timed.items():
        if v.shape[0] != n or tuple(v.shape[-2:]) != spatial or v.shape[1] != ref.shape[1]:
            raise DataFormatError(
                path, f"has shape {shape_str(v.shape)}, expected [N={n}, T={ref.shape[1]}, C, "
                f"{spatial[0]}, {spatial[1]}]", key=k,
            )  # fmt: skip
        n_steps = v.shape[1]
        prefix = "c" if len(timed) == 1 else f"{k}_c"
        if v.ndim == 4:  # [N, T, H, W]: one channel, named as a stored [N, T, 1, H, W] one
            fields[f"{prefix}0"] = Source(k, ("n", "t", "s0", "s1"))
            continue
        fields.update(
            {f"{prefix}{c}": Source(k, ("n", "t", c, "s0", "s1")) for c in range(v.shape[2])}
        )
    statics: dict[str, Source] = {}
    for k, v in static.items():
        if v.shape[0] != n or tuple(v.shape[-2:]) != spatial:
            raise DataFormatError(
                path, f"has shape {shape_str(v.shape)}, expected [N={n}, C, {spatial[0]}, "
                f"{spatial[1]}]", key=k,
            )  # fmt: skip
        if v.ndim == 3:
            statics[k] = Source(k, ("n", "s0", "s1"))
        else:
            statics.update(
                {f"{k}_c{c}": Source(k, ("n", c, "s0", "s1")) for c in range(v.shape[1])}
            )

    # NetCDF dimension scales are 1-D datasets; use those whose length fits an axis.
    scales = {
        k: np.asarray(v[()])
        for k, v in members(f)
        if isinstance(v, h5py.Dataset)
        and v.ndim == 1
        and v.dtype.kind in "fiu"
        and not _bare_dimension(v)
    }
    coords = {}
    for axis, size in zip(("x", "y"), spatial):
        c = scales.get(axis)
        coords[axis] = c if c is not None and c.shape[0] == size else np.linspace(0, 1, size)
    time = None
    if n_steps is not None:
        t = scales.get("time")
        time = t if t is not None and t.shape[0] == n_steps else np.arange(n_steps, dtype=float)
    attrs = {
        k: (v.decode() if isinstance(v, bytes) else v.item() if isinstance(v, np.generic) else v)
        for k, v in members(f.attrs)
        if not k.startswith("_")
    }
    return LayoutSpec(
        layout=NAME,
        n_samples=n,
        n_steps=n_steps,
        spatial_shape=spatial,
        spatial_dims=tuple(coords),
        fields=fields,
        static_fields=statics,
        coords=coords,
        time=time,
        attrs=attrs,
    )


# -- Helmholtz.h5: one group per sample -----------------------------------------------------------
HELMHOLTZ = "poseidon-helmholtz"
# member -> what it holds, as scOT's elliptic.Helmholtz reads Sample_<i>/<member>
HELMHOLTZ_MEMBERS = {
    "a": "[H, W] coefficient",
    "bc": "a scalar boundary value",
    "u": "[H, W] solution",
}
_SAMPLE_GROUP = re.compile(r"Sample_(0|[1-9][0-9]*)")  # scOT reads "Sample_" + str(i)


def detect_helmholtz(f: h5py.File) -> bool:
    """Every top-level member is a ``Sample_<i>`` name and the first of them is a group.

    (why) names only, not the members of every group: ``Helmholtz.h5`` has ~20 000 of them,
    and a group that lacks a member is reported by :func:`read_helmholtz`, naming it.
    """
    keys = list(f.keys())
    return (
        bool(keys)
        and all(_SAMPLE_GROUP.fullmatch(k) for k in keys)
        and isinstance(f.get(keys[0]), h5py.Group)
    )


def _helmholtz_expected() -> str:
    return ", ".join(f"'{k}' ({what})" for k, what in HELMHOLTZ_MEMBERS.items())


def _helmholtz_axes(f: h5py.File, path: Path, key: str, scalar: bool) -> tuple:
    """The :class:`Source` axes of ``key``: ``(s0, s1)`` for ``[H, W]`` (or ``[1, H, W]``), all
    fixed indices for a one-value ``bc``."""
    v = f[key]
    if not (isinstance(v, h5py.Dataset) and v.dtype.kind in "fiu"):
        raise DataFormatError(path, f"is not a numeric dataset; expected {_helmholtz_expected()}",
                              key=key)  # fmt: skip
    if scalar:
        if v.size != 1:
            raise DataFormatError(
                path, f"has shape {shape_str(v.shape)}, expected one value (a scalar)", key=key
            )
        return (0,) * v.ndim
    if v.ndim == 2 or (v.ndim == 3 and v.shape[0] == 1):
        return (0,) * (v.ndim - 2) + ("s0", "s1")
    raise DataFormatError(path, f"has shape {shape_str(v.shape)}, expected [H, W]", key=key)


def _helmholtz_sample(f: h5py.File, path: Path, key: str) -> dict[str, h5py.Dataset]:
    """The members of the group ``key``, each checked as scOT reads it (``[H, W]`` or
    ``[1, H, W]`` ``a`` and ``u`` on one grid, a one-value ``bc``), or a
    :class:`DataFormatError` naming the group or member."""
    group = f[key]
    is_group = isinstance(group, h5py.Group)
    absent = [m for m in HELMHOLTZ_MEMBERS if not is_group or m not in group]
    if absent:
        found = sorted(group.keys()) if is_group else "none (not a group)"
        raise DataFormatError(
            path, f"has members {found}, missing {absent}; expected a group holding "
            f"{_helmholtz_expected()} (Poseidon's Helmholtz.h5)", key=key,
        )  # fmt: skip
    for m in HELMHOLTZ_MEMBERS:
        _helmholtz_axes(f, path, f"{key}/{m}", scalar=m == "bc")
    a, u = group["a"], group["u"]
    if tuple(u.shape[-2:]) != tuple(a.shape[-2:]):
        raise DataFormatError(
            path, f"has shape {shape_str(u.shape)}, expected the grid of 'a' "
            f"{shape_str(a.shape[-2:])}", key=f"{key}/u",
        )  # fmt: skip
    return {m: group[m] for m in HELMHOLTZ_MEMBERS}


def _helmholtz_shapes(f: h5py.File, key: str) -> dict[str, tuple[int, ...]] | None:
    """Shape of each member of the group ``key`` from its metadata (no values are read), or
    ``None`` when one is missing, is no dataset or not numeric (:func:`_helmholtz_sample`
    then says which). Low-level calls: ``Helmholtz.h5`` has ~20 000 groups (~0.15 ms of CPU
    each here, ~3 s for the file; h5py's high-level objects took several times longer)."""
    try:
        gid = h5g.open(f.id, key.encode())
        shapes = {}
        for m in HELMHOLTZ_MEMBERS:
            dset = h5d.open(gid, m.encode())
            if dset.get_type().get_class() not in (h5t.FLOAT, h5t.INTEGER):
                return None
            shapes[m] = tuple(dset.shape)
    except (KeyError, ValueError):  # h5py's errors for a missing object or one of another kind
        return None
    return shapes


def read_helmholtz(f: h5py.File, path: Path) -> LayoutSpec:
    """``Helmholtz.h5``: groups ``Sample_0`` ... ``Sample_{N-1}``, each ``a``, ``bc``, ``u``.

    Static fields ``a``, ``bc`` (broadcast over the grid, as scOT's ``bc * ones_like(a)``) and
    ``u``; sample ``i`` is the group ``Sample_i``, read only when indexed. Every group is
    checked here from the file's metadata, without reading values: it must hold ``a``,
    ``bc`` and ``u`` as numeric datasets of ``Sample_0``'s shapes. (why) only ``Sample_0``
    was: a later sample whose ``u`` was stored transposed (``[W, H]``) was read as a scrambled
    ``[H, W]`` grid without an error, and a missing or misshapen member failed only when its
    sample was read, deep in an epoch (a group in place of a member with an AttributeError).
    """
    names = list(f.keys())
    other = [k for k in names if not _SAMPLE_GROUP.fullmatch(k)]
    if not names or other:
        raise DataFormatError(
            path, f"has top-level members {other[:12] if other else []}; expected only groups "
            "Sample_0 ... Sample_<N-1> (Poseidon's Helmholtz.h5)",
        )  # fmt: skip
    index = {int(k[len("Sample_") :]): k for k in names}
    n, last = len(index), max(index)
    if n != last + 1:
        gap = min(set(range(last + 1)) - set(index))
        raise DataFormatError(
            path, f"has no 'Sample_{gap}' among Sample_0 ... Sample_{last}; expected one group "
            "per sample, without gaps (scOT reads sample i from 'Sample_i')",
        )  # fmt: skip
    keys = [index[i] for i in range(n)]
    first = _helmholtz_sample(f, path, keys[0])
    axes = {
        m: _helmholtz_axes(f, path, f"{keys[0]}/{m}", scalar=m == "bc") for m in HELMHOLTZ_MEMBERS
    }
    want = {m: tuple(d.shape) for m, d in first.items()}
    for key in keys[1:]:
        got = _helmholtz_shapes(f, key)
        if got == want:
            continue
        # something is missing, of another kind or shape: the checks of Sample_0 name it first
        got = {m: tuple(d.shape) for m, d in _helmholtz_sample(f, path, key).items()}
        bad = next((m for m in HELMHOLTZ_MEMBERS if got[m] != want[m]), None)
        if bad is not None:
            raise DataFormatError(
                path, f"has shape {shape_str(got[bad])}, expected {shape_str(want[bad])} as in "
                f"'{keys[0]}/{bad}' (every sample is read with the first one's layout)",
                key=f"{key}/{bad}",
            )  # fmt: skip
    spatial = tuple(first["a"].shape[-2:])
    return LayoutSpec(
        layout=HELMHOLTZ,
        n_samples=n,
        n_steps=None,
        spatial_shape=spatial,
        spatial_dims=("x", "y"),
        fields={},
        static_fields={m: Source(f"{{sample}}/{m}", axes[m]) for m in HELMHOLTZ_MEMBERS},
        coords={d: np.linspace(0, 1, s) for d, s in zip(("x", "y"), spatial)},
        sample_keys=keys,
    )
