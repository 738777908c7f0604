"""Layout readers: each turns an open HDF5 file into a :class:`~sciml.data._layout.LayoutSpec`.

Detection runs in the order listed; the first reader whose ``detect`` accepts the file wins.
"""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path

import h5py
import numpy as np

from .._errors import DataFormatError
from .._format import decode_attr
from .._handle import unreadable_as_format_error
from .._layout import LayoutSpec
from . import pdebench, poseidon, sciml, the_well

Detector = Callable[[h5py.File], bool]
Reader = Callable[[h5py.File, Path], LayoutSpec]

LAYOUTS: dict[str, tuple[Detector, Reader]] = {
    "sciml": (sciml.detect, sciml.read_spec),
    "the-well": (the_well.detect, the_well.read_spec),
    "pdebench-darcy": (pdebench.detect_darcy, pdebench.read_darcy),
    "pdebench": (pdebench.detect_tensor, pdebench.read_tensor),
    "pdebench-cfd": (pdebench.detect_cfd, pdebench.read_cfd),
    "pdebench-seed-groups": (pdebench.detect_seed_groups, pdebench.read_seed_groups),
    "pdebench-ns-incom": (pdebench.detect_ns_incom, pdebench.read_ns_incom),
    "poseidon-netcdf": (poseidon.detect, poseidon.read_spec),
    "poseidon-helmholtz": (poseidon.detect_helmholtz, poseidon.read_helmholtz),
}

_WHAT_EACH_NEEDS = (
    "sciml: root attribute 'sciml_format'; the-well: groups 't0_fields' and 'dimensions'; "
    "pdebench: dataset 'tensor' (+ 'nu' for Darcy); pdebench-cfd: datasets 'density' and 'Vx'; "
    "pdebench-seed-groups: numbered groups each with 'data'; pdebench-ns-incom: datasets "
    "'velocity' and 'particles'; poseidon-netcdf: a 5-D "
    "[N, T, C, H, W] variable 'data' / 'solution' / 'velocity' (or [N, T, H, W] on NetCDF "
    "dimension 'time'), or a time-independent set's "
    "variables (Poisson-Gauss: 'source' and 'solution' [N, H, W]; SE-AF: 'solution' [N, 2, H, W]); "
    "poseidon-helmholtz: only groups 'Sample_<i>', each with 'a', 'bc' and 'u'"
)


def read_spec(f: h5py.File, path: Path, layout: str | None = None) -> LayoutSpec:
    """Detect the layout of ``f`` (or use ``layout``) and read its description."""
    if layout is not None and layout not in LAYOUTS:
        raise ValueError(f"unknown layout {layout!r}; known: {list(LAYOUTS)}")
    with unreadable_as_format_error(path):
        if layout is not None:
            return _read(LAYOUTS[layout][1], f, path)
        _refuse_an_xarray_export(f, path)
        for detect, reader in LAYOUTS.values():
            if detect(f):
                return _read(reader, f, path)
        keys = sorted(f.keys())[:12]
        attrs = sorted(f.attrs.keys())[:12]
    raise DataFormatError(
        path,
        f"unknown layout: top-level keys {keys}, attributes {attrs}; "
        f"expected one of -- {_WHAT_EACH_NEEDS}",
    )


def _refuse_an_xarray_export(f: h5py.File, path: Path) -> None:
    """Refuse a netCDF file written from :meth:`~sciml.data.H5Dataset.to_xarray`.

    (why) such a file has no layout of its own: one with a field named ``solution``,
    ``data`` or ``velocity`` opened as a Poseidon file, that field renamed ``c0`` and every
    other field, static field and parameter dropped without a word.
    """
    attrs = f.attrs
    # (why) "layout" / "source": the names of exports written before they became sciml_*
    names = next((n for n in (("sciml_layout", "sciml_source"), ("layout", "source"))
                  if n[0] in attrs and n[1] in attrs), None)  # fmt: skip
    if names is None or not _holds_sample_indices(f):
        return
    layout, source = (decode_attr(attrs[k], False) for k in names)
    if layout not in LAYOUTS or not isinstance(source, str):
        return
    raise DataFormatError(
        path,
        f"is an xarray export of a sciml data set (root attributes {names[0]}={layout!r}, "
        f"{names[1]}={source!r}), which sciml.data.open does not read; expected the file it was "
        "exported from -- open that one, read this one with xarray.open_dataset, or write its "
        "variables in sciml's layout with sciml.data.write",
    )


def _holds_sample_indices(f: h5py.File) -> bool:
    """Whether ``f`` has the coordinate variable ``sample`` that every export writes: the
    sample indices, distinct integers >= 0 (``arange(n)``, or a selection of it).

    (why) a top-level ``sample`` of any kind was taken for it: a Poseidon NetCDF file whose
    samples run along the dimension ``sample`` (stored as a float placeholder, no variable)
    with the CF attribute ``source`` and an attribute ``layout`` naming a sciml layout was
    refused as an export.
    """
    # not f.get: it turns the KeyError of a damaged object into the default
    s = f["sample"] if "sample" in f else None  # noqa: SIM401
    if not isinstance(s, h5py.Dataset) or s.ndim != 1 or s.dtype.kind not in "iu":
        return False
    v = s[()]
    return bool((v >= 0).all()) and np.unique(v).size == v.size


def _read(reader: Reader, f: h5py.File, path: Path) -> LayoutSpec:
    try:
        return reader(f, path)
    except DataFormatError:
        raise
    except KeyError as e:
        if "checksum" in str(e):  # h5py's KeyError for a damaged object, not a missing one
            raise
        raise DataFormatError(path, f"a required key is missing ({e})") from e
