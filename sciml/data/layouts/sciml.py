"""Reader for sciml's own layout (see ``docs/data-format.md``)."""

from __future__ import annotations

from pathlib import Path

import h5py
import numpy as np

from .._errors import DataFormatError
from .._format import LAYOUT_ATTRS, decode_attr, members, str_list
from .._layout import LayoutSpec, Source
from ..validate import _problems

NAME = "sciml"


def detect(f: h5py.File) -> bool:
    return "sciml_format" in f.attrs


def read_spec(f: h5py.File, path: Path) -> LayoutSpec:
    problems = _problems(f, path, scan_values=False)
    if problems:
        raise DataFormatError(path, "; ".join(problems))
    a = f.attrs
    dims = tuple(str_list(a["spatial_dims"]))
    points = str(a.get("grid", "grid")) == "points"
    # (why) a file without spatial axes has no coordinates to hold: validate() takes it without
    # the group, and open() refused it ("a required key is missing")
    coords = {k: np.asarray(v[()]) for k, v in (members(f["coords"]) if "coords" in f else [])}
    spatial = (coords["points"].shape[0],) if points else tuple(coords[d].shape[0] for d in dims)
    space_axes = tuple(f"s{k}" for k in range(len(spatial)))
    fields = {n: Source(f"fields/{n}", ("n", "t", *space_axes)) for n in str_list(a["field_names"])}
    statics = {
        n: Source(f"static_fields/{n}", ("n", *space_axes))
        for n in str_list(a.get("static_field_names", []))
    }
    json_keys = set(str_list(a.get("json_attrs", [])))
    attrs = {k: decode_attr(v, k in json_keys) for k, v in members(a) if k not in LAYOUT_ATTRS}
    attrs["format_version"] = int(a["format_version"])
    # (why) params and boundary_conditions are optional, as the validator has them: a file
    # without the groups passed validate() and was refused here ("a required key is missing")
    bcs = {}
    for axis, g in members(f["boundary_conditions"]) if "boundary_conditions" in f else []:
        entry = {k: decode_attr(v, False) for k, v in members(g.attrs)}
        entry.update({k: np.asarray(d[()]) for k, d in members(g)})
        bcs[axis] = entry["type"] if len(entry) == 1 else entry
    return LayoutSpec(
        layout=NAME,
        n_samples=int(a["n_samples"]),
        n_steps=int(a["n_steps"]) if fields else None,
        spatial_shape=spatial,
        spatial_dims=dims,
        fields=fields,
        static_fields=statics,
        coords=coords,
        time=np.asarray(f["time"][()]) if "time" in f else None,
        params={k: np.asarray(v[()]) for k, v in (members(f["params"]) if "params" in f else [])},
        boundary_conditions=bcs,
        attrs=attrs,
        points=points,
    )
