"""Names fixed by sciml's own HDF5 layout (documented in ``docs/data-format.md``)."""

from __future__ import annotations

import json
from typing import Any

import numpy as np

FORMAT_NAME = "sciml-pde"
FORMAT_VERSION = 1
BC_TYPES = ("periodic", "dirichlet", "neumann", "open")
POINT_AXIS = "point"

# Root attributes every sciml file carries (validator checks them).
REQUIRED_ATTRS = ("sciml_format", "format_version", "n_samples", "field_names", "spatial_dims")

# Root attributes the layout itself writes: metadata (``attrs=``) cannot use these names.
LAYOUT_ATTRS = frozenset({*REQUIRED_ATTRS, "n_steps", "grid", "static_field_names", "json_attrs"})

# Root attributes ``H5Dataset.to_xarray`` adds beside a file's own (with ``json_attrs``): the
# writer refuses them as metadata names too, since the export would refuse such a file.
EXPORT_ATTRS = ("sciml_layout", "sciml_source", "sciml_boundary_conditions")


def encode_attr(value: Any) -> tuple[Any, bool]:
    """An attribute value HDF5 can store; ``True`` in the second slot when it was JSON-encoded."""
    if isinstance(value, (str, bool, int, float, np.integer, np.floating)):
        return value, False
    if isinstance(value, np.ndarray) and value.dtype.kind in "biuf":
        return value, False
    return json.dumps(value, sort_keys=True, default=_numpy_to_json), True


def _numpy_to_json(value: Any) -> Any:
    # (why) numpy scalars and arrays nested in a dict or list (generator settings taken from
    # arrays), and numpy string arrays, made json.dumps raise "not JSON serializable"
    if isinstance(value, (np.ndarray, np.generic)):
        return value.tolist()
    raise TypeError(f"got {type(value).__name__} {value!r}, which JSON cannot hold")


def decode_attr(value: Any, is_json: bool) -> Any:
    if isinstance(value, bytes):
        value = value.decode()
    if is_json:
        return json.loads(value)
    if isinstance(value, np.generic):
        return value.item()
    if isinstance(value, np.ndarray) and value.dtype.kind in "OSU":
        return [v.decode() if isinstance(v, bytes) else str(v) for v in value.tolist()]
    return value


def members(mapping: Any) -> list[tuple[str, Any]]:
    """``(name, object)`` of every member of an h5py group or attribute set.

    h5py's ``items()`` / ``values()`` look members up with ``get``, which turns the ``KeyError``
    of a damaged object header ("incorrect metadata checksum") into ``None``: a damaged file then
    failed later as ``'NoneType' object has no attribute ...``, or lost the member silently. The
    ``KeyError`` is kept here, for :func:`~sciml.data._handle.unreadable_as_format_error`.
    """
    return [(k, mapping[k]) for k in mapping]


def str_list(value: Any) -> list[str]:
    """HDF5 string-array attributes come back as bytes or numpy objects; make them ``list[str]``."""
    if value is None:
        return []
    if isinstance(value, (str, bytes)):
        value = [value]
    return [v.decode() if isinstance(v, bytes) else str(v) for v in np.asarray(value).tolist()]
