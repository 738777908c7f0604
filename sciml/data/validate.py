"""Check a file against sciml's layout and say exactly what is wrong."""

from __future__ import annotations

import os
from pathlib import Path

import h5py
import numpy as np

from ._errors import DataFormatError, shape_str
from ._format import BC_TYPES, FORMAT_NAME, POINT_AXIS, REQUIRED_ATTRS, members, str_list
from ._handle import as_path, open_h5, unreadable_as_format_error


def _problems(f: h5py.File, path: Path, *, scan_values: bool) -> list[str]:
    """Every violation of the sciml layout in ``f``, each naming the key and what was expected."""
    out: list[str] = []
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
    n = int(a["n_samples"])
    dims = str_list(a["spatial_dims"])
    fields = str_list(a["field_names"])
    statics = str_list(a.get("static_field_names", []))
    n_steps = int(a["n_steps"]) if "n_steps" in a else None
    points = str(a.get("grid", "grid")) == "points"

    # Spatial shape: from coordinates, which every sciml file carries.
    spatial: tuple[int, ...] | None = None
    if points:
        if "coords/points" not in f:
            out.append("dataset 'coords/points' is missing (grid='points' needs (n_points, dim))")
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
            elif f[key].ndim != 1:
                out.append(f"dataset '{key}' has shape {shape_str(f[key].shape)}, expected 1-D")
            else:
                shape.append(f[key].shape[0])
        if len(shape) == len(dims):
            spatial = tuple(shape)

    if fields:
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
        present = set(f[group].keys()) if group in f else set()
        for extra in sorted(present - listed):
            out.append(f"dataset '{group}/{extra}' is not listed in the '{group[:-1]}_names' attr")
        for name in names:
            key = f"{group}/{name}"
            if key not in f:
                out.append(f"dataset '{key}' is missing (listed in the root attributes)")
                continue
            ds = f[key]
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
                for i in range(ds.shape[0]):
                    block = ds[i]
                    if not np.isfinite(block).all():
                        bad = tuple(int(b) for b in np.argwhere(~np.isfinite(block))[0])
                        out.append(
                            f"dataset '{key}' has non-finite value {block[bad]} at sample {i}, "
                            f"index {bad}; expected finite values"
                        )
                        break

    check("fields", fields, (n, n_steps or 0), f"n_samples={n}, n_steps={n_steps}")
    check("static_fields", statics, (n,), f"n_samples={n}")
    for name, ds in members(f["params"]) if "params" in f else []:
        if ds.ndim == 0 or ds.shape[0] != n:
            out.append(
                f"dataset 'params/{name}' has shape {shape_str(ds.shape)}, "
                f"expected (n_samples={n}, ...)"
            )
    # not f.get: it turns the KeyError of a damaged group into the default
    bc_group = f["boundary_conditions"] if "boundary_conditions" in f else {}  # noqa: SIM401
    for axis, g in members(bc_group):
        if axis not in dims:
            out.append(f"group 'boundary_conditions/{axis}' is not a spatial axis {dims}")
        t = g.attrs.get("type")
        t = t.decode() if isinstance(t, bytes) else t
        if t not in BC_TYPES:
            out.append(
                f"attribute 'boundary_conditions/{axis}@type' is {t!r}, expected one of {BC_TYPES}"
            )
    return out


def validate(path: str | os.PathLike[str], *, scan_values: bool = True) -> list[str]:
    """All problems of a sciml file, one message each (empty list: the file is valid).

    ``scan_values`` also streams through every field, one sample at a time, looking for NaN/Inf.
    """
    path = as_path(path, "sciml.data.validate")
    with open_h5(path) as f, unreadable_as_format_error(path):
        return [f"{path}: {p}" for p in _problems(f, path, scan_values=scan_values)]


def check(path: str | os.PathLike[str], *, scan_values: bool = True) -> None:
    """Raise :class:`DataFormatError` listing every problem of ``path``; return if it is valid."""
    path = as_path(path, "sciml.data.check")
    problems = validate(path, scan_values=scan_values)
    if problems:
        raise DataFormatError(path, "; ".join(p.split(": ", 1)[1] for p in problems))
