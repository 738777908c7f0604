"""Check a data file (sciml's layout, or another that ``open`` reads) and say exactly what is
wrong."""

from __future__ import annotations

import os
from collections.abc import Iterator
from pathlib import Path

import h5py
import numpy as np

from ._errors import DataFormatError, shape_str
from ._format import (
    BC_TYPES,
    FORMAT_NAME,
    FORMAT_VERSION,
    POINT_AXIS,
    REQUIRED_ATTRS,
    members,
    str_list,
)
from ._handle import as_path, open_h5, unreadable_as_format_error


def _wrong_kind(obj: object, key: str, want: type) -> str | None:
    """The problem of ``obj`` at ``key`` when it is not a ``want`` (h5py.Group or h5py.Dataset).

    (why) the checks below and the reader use a group's ``keys`` and a dataset's ``shape``: a
    group where a dataset belongs raised ``AttributeError`` from validate and open alike, or
    passed validate and failed in the reader with h5py's ``TypeError``.
    """
    if isinstance(obj, want):
        return None
    found = "group" if isinstance(obj, h5py.Group) else "dataset"
    if not isinstance(obj, (h5py.Group, h5py.Dataset)):
        found = type(obj).__name__
    expected = "a group" if want is h5py.Group else "a dataset"
    return f"object '{key}' is a {found}, expected {expected}"


def _group(f: h5py.File, key: str, out: list[str]) -> h5py.Group | dict:
    """``f[key]`` when it is a group, ``{}`` (no members) when it is absent or, with the problem
    appended to ``out``, not a group."""
    # not f.get: it turns the KeyError of a damaged group into the default
    if key not in f:
        return {}
    if wrong := _wrong_kind(f[key], key, h5py.Group):
        out.append(wrong)
        return {}
    return f[key]


def _rows(
    ds: h5py.Dataset, key: str, out: list[str], what: str, prefix: str = ""
) -> Iterator[tuple[int | tuple, np.ndarray]]:
    """``(i, ds[i])`` for each row ``i`` of ``ds`` (``((), ds[()])`` for a scalar); a row that
    cannot be read appends its problem to ``out`` and ends the scan of ``ds``.

    (why) a damaged chunk (a flipped byte of compressed data) raised out of the scan, and the
    message named the file only, not the dataset and sample, nor the other datasets' problems.
    """
    for i in range(ds.shape[0]) if ds.ndim else [()]:
        try:
            block = np.asarray(ds[i])
        except (OSError, RuntimeError, ValueError, KeyError) as e:
            out.append(
                f"{prefix}dataset '{key}' cannot be read at {what} {i} ({type(e).__name__}: {e}); "
                "expected an intact HDF5 file -- is it damaged?"
            )
            return
        yield i, block


def _first_non_finite(a: np.ndarray) -> tuple[int, ...] | None:
    """The index of the first nan / inf in ``a`` (``()`` for a scalar), or None."""
    bad = np.argwhere(~np.isfinite(a))
    return tuple(int(b) for b in bad[0]) if len(bad) else None


def _problems(f: h5py.File, path: Path, *, scan_values: bool) -> list[str]:
    """Every violation of the sciml layout in ``f``, each naming the key and what was expected."""
    out: list[str] = []

    def scan(key: str, ds: h5py.Dataset) -> None:
        for i, block in _rows(ds, key, out, "sample"):
            if (bad := _first_non_finite(block)) is not None:
                out.append(
                    f"dataset '{key}' has non-finite value {block[bad]} at sample {i}, "
                    f"index {bad}; expected finite values"
                )
                break

    a = f.attrs
    for k in REQUIRED_ATTRS:
        if k not in a:
            out.append(f"root attribute '{k}' is missing")
    if out:
        return out
    fmt = a["sciml_format"]
    fmt = fmt.decode() if isinstance(fmt, bytes) else str(fmt)
    if fmt != FORMAT_NAME:
        out.append(f"root attribute 'sciml_format' is {fmt!r}, expected {FORMAT_NAME!r}")
    version = a["format_version"]
    if isinstance(version, np.ndarray) or version != FORMAT_VERSION:
        # (why) only its presence was checked: a file of a newer layout was read as this one
        out.append(
            f"root attribute 'format_version' is {version}, expected {FORMAT_VERSION} (the "
            "layout version this sciml reads; a newer sciml wrote the file?)"
        )
    n = int(a["n_samples"])
    dims = str_list(a["spatial_dims"])
    fields = str_list(a["field_names"])
    statics = str_list(a.get("static_field_names", []))
    n_steps = int(a["n_steps"]) if "n_steps" in a else None
    points = str(a.get("grid", "grid")) == "points"
    # (why) the writer refuses a repeated name, but a file edited later passed validate and
    # open, and Normalizer (keyed by channel name) gave the field the static field's statistics
    names = fields + statics
    for name in sorted({n for n in names if names.count(n) > 1}):
        lists = (("field_names", fields), ("static_field_names", statics))
        where = " and ".join(f"'{k}'" for k, v in lists if name in v)
        out.append(
            f"field name {name!r} is listed {names.count(name)} times, in the root attributes "
            f"{where}; expected each field name once (channels are keyed by name, e.g. by "
            "Normalizer)"
        )

    # Spatial shape: from coordinates, which every sciml file carries.
    spatial: tuple[int, ...] | None = None
    if points:
        if "coords/points" not in f:
            out.append("dataset 'coords/points' is missing (grid='points' needs (n_points, dim))")
        elif wrong := _wrong_kind(f["coords/points"], "coords/points", h5py.Dataset):
            out.append(wrong)
        else:
            spatial = (f["coords/points"].shape[0],)
            if dims != [POINT_AXIS]:
                out.append(f"attribute 'spatial_dims' is {dims}, expected ['{POINT_AXIS}']")
    else:
        shape = []
        for d in dims:
            key = f"coords/{d}"
            if key not in f:
                out.append(f"dataset '{key}' is missing (one 1-D coordinate per spatial axis)")
            elif wrong := _wrong_kind(f[key], key, h5py.Dataset):
                out.append(wrong)
            elif f[key].ndim != 1:
                out.append(f"dataset '{key}' has shape {shape_str(f[key].shape)}, expected 1-D")
            else:
                shape.append(f[key].shape[0])
        if len(shape) == len(dims):
            spatial = tuple(shape)
    for name, obj in members(_group(f, "coords", out)):  # the reader reads every member
        if (wrong := _wrong_kind(obj, f"coords/{name}", h5py.Dataset)) and wrong not in out:
            out.append(wrong)
        elif not wrong:
            # (why) the writer refuses them, but a file edited or damaged later passed validate
            # and open, and its NaN grid points reached a model (with_coords, PointSamples)
            c = np.asarray(obj[()])
            if c.dtype.kind not in "iuf":
                out.append(f"dataset 'coords/{name}' has dtype {c.dtype}, expected numbers")
            elif (bad := _first_non_finite(c)) is not None:
                out.append(
                    f"dataset 'coords/{name}' has non-finite value {c[bad]} at index {bad}; "
                    "expected finite coordinates"
                )

    time_kind = _wrong_kind(f["time"], "time", h5py.Dataset) if "time" in f else None
    if time_kind:  # also in a static-only file: the reader reads any 'time'
        out.append(time_kind)
    elif fields:
        if "time" not in f:
            out.append("dataset 'time' is missing (time-dependent fields need (n_steps,))")
        elif n_steps is None:
            out.append("root attribute 'n_steps' is missing")
        elif f["time"].shape != (n_steps,):
            out.append(
                f"dataset 'time' has shape {shape_str(f['time'].shape)}, "
                f"expected (n_steps={n_steps},)"
            )
        elif not np.isfinite(f["time"][:]).all():
            bad = int(np.flatnonzero(~np.isfinite(f["time"][:]))[0])
            out.append(
                f"dataset 'time' has non-finite value {f['time'][bad]} at step {bad}; "
                "expected finite, strictly increasing time stamps"
            )
        elif n_steps > 1 and np.any(np.diff(f["time"][:]) <= 0):
            out.append("dataset 'time' is not strictly increasing")

    def check(group: str, names: list[str], lead: tuple[int, ...], lead_txt: str) -> None:
        listed = set(names)
        if group in f and (wrong := _wrong_kind(f[group], group, h5py.Group)):
            out.append(wrong)
            return
        present = set(f[group].keys()) if group in f else set()
        for extra in sorted(present - listed):
            out.append(f"dataset '{group}/{extra}' is not listed in the '{group[:-1]}_names' attr")
        for name in names:
            key = f"{group}/{name}"
            if key not in f:
                out.append(f"dataset '{key}' is missing (listed in the root attributes)")
                continue
            ds = f[key]
            if wrong := _wrong_kind(ds, key, h5py.Dataset):
                out.append(wrong)
                continue
            if spatial is not None and ds.shape != (*lead, *spatial):
                out.append(
                    f"dataset '{key}' has shape {shape_str(ds.shape)}, expected "
                    f"({lead_txt}{', ' if spatial else ''}{', '.join(map(str, spatial))})"
                )
                continue
            if ds.dtype.kind != "f":
                out.append(f"dataset '{key}' has dtype {ds.dtype}, expected floating point")
                continue
            if scan_values:
                scan(key, ds)

    check("fields", fields, (n, n_steps or 0), f"n_samples={n}, n_steps={n_steps}")
    check("static_fields", statics, (n,), f"n_samples={n}")
    for name, ds in members(_group(f, "params", out)):
        if wrong := _wrong_kind(ds, f"params/{name}", h5py.Dataset):
            out.append(wrong)
        elif ds.ndim == 0 or ds.shape[0] != n:
            out.append(
                f"dataset 'params/{name}' has shape {shape_str(ds.shape)}, "
                f"expected (n_samples={n}, ...)"
            )
        elif scan_values and ds.dtype.kind in "fc":
            # (why) only fields were scanned: a NaN parameter passed validate and check
            scan(f"params/{name}", ds)
    for axis, g in members(_group(f, "boundary_conditions", out)):
        if wrong := _wrong_kind(g, f"boundary_conditions/{axis}", h5py.Group):
            out.append(wrong)
            continue
        for name, obj in members(g):  # the reader reads each as an array value
            if wrong := _wrong_kind(obj, f"boundary_conditions/{axis}/{name}", h5py.Dataset):
                out.append(wrong)
        if axis not in dims:
            out.append(f"group 'boundary_conditions/{axis}' is not a spatial axis {dims}")
        t = g.attrs.get("type")
        t = t.decode() if isinstance(t, bytes) else t
        if t not in BC_TYPES:
            out.append(
                f"attribute 'boundary_conditions/{axis}@type' is {t!r}, expected one of {BC_TYPES}"
            )
    return out


def _other_layout(f: h5py.File) -> str | None:
    """The name of the first layout other than sciml's that ``f`` is in, as ``open`` detects."""
    from .layouts import LAYOUTS

    if "sciml_format" in f.attrs:
        return None
    return next((name for name, (detect, _) in LAYOUTS.items() if detect(f)), None)


def _other_layout_problems(f: h5py.File, path: Path, layout: str, scan_values: bool) -> list[str]:
    """The problems of a file in another supported layout (PDEBench, The Well, Poseidon): what
    :func:`~sciml.data.open` refuses in its structure, then non-finite values and coordinates.

    (why) such a file got five "root attribute ... is missing" lines of sciml's layout, and a
    NaN-filled one was found only when a training run read the sample that holds the NaN.
    """
    from .layouts import read_spec

    try:
        spec = read_spec(f, path)  # detected again: it also refuses an xarray export
    except DataFormatError as e:
        return [str(e).removeprefix(f"{path}: ")]
    out = []
    axes = {**spec.coords, **({} if spec.time is None else {"time": spec.time})}
    for name, c in axes.items():
        c = np.asarray(c)
        if c.dtype.kind in "iuf" and (bad := _first_non_finite(c)) is not None:
            out.append(
                f"{layout} file: coordinate '{name}' has non-finite value {c[bad]} at index "
                f"{bad}; expected finite coordinates"
            )
    for key in spec.all_keys() if scan_values else []:
        ds = f[key]
        if ds.dtype.kind not in "fc":  # integer and boolean data cannot hold NaN / inf
            continue
        for i, block in _rows(ds, key, out, "row", prefix=f"{layout} file: "):
            if (bad := _first_non_finite(block)) is not None:
                out.append(
                    f"{layout} file: dataset '{key}' has non-finite value {block[bad]} at index "
                    f"{(i, *bad) if ds.ndim else bad}; expected finite values"
                )
                break
    for name, v in spec.params.items() if scan_values else []:
        # (why) only fields were scanned: a NaN scalar or simulation parameter passed validate
        v = np.asarray(v)
        if v.dtype.kind in "fc" and (bad := _first_non_finite(v)) is not None:
            out.append(
                f"{layout} file: parameter '{name}' has non-finite value {v[bad]} at sample "
                f"{bad[0]}, index {bad[1:]}; expected finite values"
            )
    return out


def validate(path: str | os.PathLike[str], *, scan_values: bool = True) -> list[str]:
    """All problems of a data file, one message each (empty list: the file is valid).

    A file in sciml's layout is checked against it; one in another layout that
    :func:`~sciml.data.open` reads (PDEBench, The Well, Poseidon) is checked as ``open`` reads
    it, plus finite coordinates and time stamps. ``scan_values`` also streams through every
    field, one sample (one row of the stored array) at a time, and every parameter, looking
    for NaN/Inf.
    """
    path = as_path(path, "sciml.data.validate")
    with open_h5(path) as f, unreadable_as_format_error(path):
        if (layout := _other_layout(f)) is not None:
            return [f"{path}: {p}" for p in _other_layout_problems(f, path, layout, scan_values)]
        return [f"{path}: {p}" for p in _problems(f, path, scan_values=scan_values)]


def check(path: str | os.PathLike[str], *, scan_values: bool = True) -> None:
    """Raise :class:`DataFormatError` listing every problem of ``path``; return if it is valid."""
    path = as_path(path, "sciml.data.check")
    problems = validate(path, scan_values=scan_values)
    if problems:
        # (why) not p.split(": ", 1): a path holding ': ' was cut inside itself
        prefix = f"{path}: "
        raise DataFormatError(path, "; ".join(p.removeprefix(prefix) for p in problems))
