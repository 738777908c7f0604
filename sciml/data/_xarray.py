"""Lazy ``xarray`` view of an :class:`~sciml.data.H5Dataset` (no dask: only what is indexed is read)."""

from __future__ import annotations

import json
from typing import Any

import numpy as np
import xarray as xr
from xarray.backends import BackendArray
from xarray.core import indexing

# (why) a run-time import, not one under TYPE_CHECKING: typing.get_type_hints(to_xarray) raised
# NameError on the annotation. No cycle: dataset.py imports this module only inside to_xarray.
from ._format import EXPORT_ATTRS
from .dataset import H5Dataset


class _LazyChannel(BackendArray):
    """One channel as an array ``(sample, time?, *spatial)`` that reads on indexing, exactly:
    float64 where it is stored in float64 (it was rounded to float32), else float32 (float16
    widens losslessly, and netCDF has no float16 for ``to_netcdf``)."""

    def __init__(self, ds: H5Dataset, name: str, timed: bool):
        self.ds, self.name, self.timed = ds, name, timed
        lead = (ds.n_samples, ds.n_steps) if timed else (ds.n_samples,)
        self.shape = (*lead, *ds.spatial_shape)
        self.dtype = np.promote_types(ds._stored_dtype(name, static=not timed), np.float32)

    def __getitem__(self, key: indexing.ExplicitIndexer) -> np.ndarray:
        return indexing.explicit_indexing_adapter(
            key, self.shape, indexing.IndexingSupport.BASIC, self._getitem
        )

    def _getitem(self, key: tuple) -> np.ndarray:
        # BASIC indexing: every entry is an int or a slice. Ints become length-1 slices, squeezed
        # after the read, so one code path serves both.
        squeeze = tuple(a for a, k in enumerate(key) if isinstance(k, (int, np.integer)))
        sl = [slice(int(k), int(k) + 1) if isinstance(k, (int, np.integer)) else k for k in key]
        samples = sl[0]
        if self.timed:
            out = self.ds._read(samples, sl[1], [self.name], tuple(sl[2:]), self.dtype)[:, :, 0]
        else:
            out = self.ds._read_static(samples, [self.name], tuple(sl[1:]), self.dtype)[:, 0]
        return out.squeeze(axis=squeeze) if squeeze else out


def _netcdf_attr(value: Any) -> tuple[Any, bool]:
    """``value`` as a netCDF-storable attribute; ``True`` in the second slot when JSON-encoded.

    Strings, numbers and 1-D numeric arrays stay as they are; bools (netCDF has no bool
    attribute: ``to_netcdf`` refused the file), dicts, lists and the rest become JSON, as in
    sciml's own files, so ``json.loads`` gives them back (``str()`` gave a Python repr).
    """
    if isinstance(value, (str, int, float, np.integer, np.floating)) and not isinstance(
        value, (bool, np.bool_)
    ):
        return value, False
    if isinstance(value, np.ndarray) and value.dtype.kind in "iuf" and value.ndim <= 1:
        return value, False
    if isinstance(value, np.ndarray):
        value = value.tolist()
    return json.dumps(value, sort_keys=True, default=_json_default), True


def _json_default(value: Any) -> Any:
    # arrays and numpy scalars nested in a dict (a boundary condition's values) became their
    # str(), which json.loads gives back as a string
    if isinstance(value, (np.ndarray, np.generic)):
        return value.tolist()
    return str(value)


def _add(ds, data_vars, what, name, label, var) -> None:
    if name in data_vars:
        # (why) the later one replaced the earlier without a word (a field 'param_a' beside a
        # parameter 'a')
        raise ValueError(
            f"{ds.path}: the xarray view gives the {what[name]} and the {label} one name, "
            f"{name!r}, and holds one variable per name; expected distinct names: read them "
            "with ds.read / ds.params, or rewrite the file with one renamed (sciml.data.write)"
        )
    data_vars[name], what[name] = var, label


def _refuse_coordinate_names(ds, data_vars, what, coords) -> None:
    """A field may not be named like a coordinate or a dimension of the view.

    (why) xarray refused a field ``x`` beside the coordinate ``x`` ("variables {'x'} are found
    in both data_vars and coords") with nothing naming the field or the way out, and a field
    named like a dimension without a coordinate (``point`` in a point cloud) silently became a
    coordinate, gone from ``data_vars``. Nothing is renamed behind the caller's back: the
    names an export writes are the file's.
    """
    taken = set(coords)
    for c in coords.values():
        if isinstance(c, tuple):  # (dims, values); a bare array is its own name's dimension
            taken.update([c[0]] if isinstance(c[0], str) else c[0])
    for var in data_vars.values():
        taken.update(var.dims)
    clash = [n for n in data_vars if n in taken]
    if clash:
        n = clash[0]
        raise ValueError(
            f"{ds.path}: the xarray view cannot hold the {what[n]}: {n!r} is also a "
            f"coordinate or dimension of the view ({sorted(taken)}), and xarray holds one "
            f"variable per name; expected field names other than these. Read it with "
            f"ds.read / ds.read_static / ds.params, or rewrite the file with it renamed, e.g. "
            f"to '{n}_field' (sciml.data.write)"
        )


# (why) sciml's own metadata of the export, under names a user's attributes rarely take: under
# "layout", "source" and "boundary_conditions" it replaced a user's attribute of that name, or
# (boundary_conditions) the user's attribute hid the file's boundary conditions, without a word
_OWN_ATTRS = (*EXPORT_ATTRS, "json_attrs")


def to_xarray(ds: H5Dataset) -> xr.Dataset:
    dims = tuple(ds.spatial_dims)
    coords: dict[str, object] = {"sample": np.arange(ds.n_samples)}
    if ds.is_points:
        coords["points"] = (("point", "dim"), np.asarray(ds.coords["points"]))
    else:
        for d in dims:
            c = np.asarray(ds.coords[d])
            if c.ndim == 1:
                coords[d] = (d, c)
            else:  # varies per sample and / or time step: not an index coordinate
                c_dims = ds._spec.coord_dims.get(d, ("sample", d))
                name = f"{d}_per_sample" if "sample" in c_dims else f"{d}_per_step"
                coords[name] = (c_dims, c)
    if ds.time is not None:  # (why) also a static-only file's: an export dropped them
        t = np.asarray(ds.time)
        if t.ndim == 1:
            coords["time"] = ("time", t)
        else:
            coords["time_per_sample"] = (("sample", "time"), t)
    data_vars: dict[str, xr.Variable] = {}
    what: dict[str, str] = {}  # variable name -> what it holds, for the error below
    units = ds.attrs.get("units") if isinstance(ds.attrs.get("units"), dict) else {}
    for name in ds.field_names:
        arr = indexing.LazilyIndexedArray(_LazyChannel(ds, name, timed=True))
        attrs = {"units": units[name]} if name in units else {}
        _add(ds, data_vars, what, name, f"field {name!r}",
             xr.Variable(("sample", "time", *dims), arr, attrs=attrs))  # fmt: skip
    for name in ds.static_field_names:
        arr = indexing.LazilyIndexedArray(_LazyChannel(ds, name, timed=False))
        attrs = {"units": units[name]} if name in units else {}
        _add(ds, data_vars, what, name, f"static field {name!r}",
             xr.Variable(("sample", *dims), arr, attrs=attrs))  # fmt: skip
    for name, v in ds.params.items():
        v = np.asarray(v)
        # (why) a time-varying scalar of The Well got a dim of its own, not "time"
        extra = ds._spec.param_dims.get(name) or tuple(f"{name}_dim{k}" for k in range(1, v.ndim))
        _add(ds, data_vars, what, f"param_{name}", f"parameter {name!r} (as 'param_{name}')",
             xr.Variable(("sample", *extra), v))  # fmt: skip
    _refuse_coordinate_names(ds, data_vars, what, coords)
    clash = sorted(set(ds.attrs) & set(_OWN_ATTRS))
    if clash:
        raise ValueError(
            f"{ds.path}: the xarray view writes its own attributes {list(_OWN_ATTRS)} and "
            f"would replace the file's attribute(s) {', '.join(map(repr, clash))}; expected "
            "attribute names other than these: read them with ds.attrs, or rewrite the file "
            "with them renamed (sciml.data.write)"
        )
    attrs, json_keys = {}, []
    for k, v in ds.attrs.items():
        attrs[k], is_json = _netcdf_attr(v)
        if is_json:
            json_keys.append(k)
    if ds.boundary_conditions:
        # kept in the file beside the attributes; a netCDF export dropped them
        # (why) JSON has no tuple: a (low, high) pair came back as a list, read as the several
        # types of one axis; {"low": ..., "high": ...} keeps the sides (a dict BC has "type")
        bcs = {
            axis: {"low": bc[0], "high": bc[1]} if isinstance(bc, tuple) else bc
            for axis, bc in ds.boundary_conditions.items()
        }
        attrs["sciml_boundary_conditions"] = _netcdf_attr(bcs)[0]
        json_keys.append("sciml_boundary_conditions")
    attrs.update(sciml_layout=ds.layout, sciml_source=str(ds.path))
    if json_keys:  # which attributes to json.loads; itself JSON, since netCDF reads a
        attrs["json_attrs"] = json.dumps(json_keys)  # one-string list back as a bare string
    return xr.Dataset(data_vars, coords=coords, attrs=attrs)
