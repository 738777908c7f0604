"""H5Dataset's metadata properties hold what their docstrings say in each case (the API
reference's only description of them), checked against files written here."""

from __future__ import annotations

import json

import h5py
import numpy as np
import pytest
from test_data_layouts import write_well_file

import sciml.data as sd


def test_time_of_static_only_files(tmp_path):
    # static fields only: n_steps is None, but time is None only where no time axis was stored
    ds = sd.open(sd.write(tmp_path / "a.h5", static_fields={"k": np.ones((2, 4))}))
    assert ds.n_steps is None and ds.time is None
    ds = sd.open(
        sd.write(tmp_path / "b.h5", static_fields={"k": np.ones((2, 4))}, time=[0.0, 0.5, 1.0])
    )
    assert ds.n_steps is None
    np.testing.assert_array_equal(ds.time, [0.0, 0.5, 1.0])


def test_boundary_conditions_of_an_axis_with_two_types(tmp_path):
    # The Well: an axis named by two boundary groups of different types holds the sorted list
    path = tmp_path / "w.hdf5"
    write_well_file(path)
    with h5py.File(path, "a") as f:
        g = f["boundary_conditions"].create_group("x_open")
        g.attrs["associated_dims"], g.attrs["associated_fields"] = ["x"], []
        g.attrs["bc_type"], g.attrs["sample_varying"], g.attrs["time_varying"] = "OPEN", 0, 0
    bcs = sd.open(path).boundary_conditions
    assert bcs["x"] == ["open", "periodic"] and bcs["y"] == "wall"


def test_boundary_types_of_the_well_are_plain_str(tmp_path):
    """An axis with several types held np.str_ (from np.atleast_1d), which compares equal to
    str but is another type (repr "np.str_('open')" under NumPy 2, isinstance checks of
    strict tools); each entry is now a str, equal to the file's bc_type bytes, lower-cased."""
    path = tmp_path / "w.hdf5"
    write_well_file(path)
    with h5py.File(path, "a") as f:
        for name, kind in (("x_open", b"OPEN"), ("x_wall", b"WALL")):  # a third type on x
            g = f["boundary_conditions"].create_group(name)
            g.attrs["associated_dims"], g.attrs["associated_fields"] = ["x"], []
            g.attrs["bc_type"] = np.bytes_(kind)  # fixed-length bytes, as h5py stores b"..."
    with h5py.File(path, "r") as f:  # the reference: the file's own attributes, by h5py
        stored: dict[str, set[bytes]] = {}
        for g in f["boundary_conditions"].values():
            raw = g.attrs["bc_type"]
            raw = raw if isinstance(raw, bytes) else raw.encode()
            for d in g.attrs["associated_dims"]:
                stored.setdefault(str(d), set()).add(raw)
    assert stored == {"x": {b"PERIODIC", b"OPEN", b"WALL"}, "y": {b"WALL"}}
    bcs = sd.open(path).boundary_conditions
    assert bcs["x"] == sorted(b.decode().lower() for b in stored["x"])
    assert bcs["y"] == "wall" and type(bcs["y"]) is str
    assert [type(v) for v in bcs["x"]] == [str, str, str]


def test_coords_of_a_darcy_file_without_coordinates(tmp_path):
    # PDEBench's Darcy layout without x-/y-coordinate datasets: the coordinates are indices
    path = tmp_path / "darcy.hdf5"
    with h5py.File(path, "w") as f:
        f["tensor"] = np.ones((2, 1, 4, 3), np.float32)
        f["nu"] = np.ones((2, 4, 3), np.float32)
    ds = sd.open(path)
    assert ds.layout == "pdebench-darcy" and ds.time is None
    np.testing.assert_array_equal(ds.coords["x"], [0.0, 1.0, 2.0, 3.0])
    np.testing.assert_array_equal(ds.coords["y"], [0.0, 1.0, 2.0])


def test_numpy_values_inside_metadata_round_trip(tmp_path):
    # json.dumps refused numpy scalars and arrays nested in a dict or list
    # ("Object of type float32 is not JSON serializable"), and a numpy array of strings
    u = np.zeros((2, 3, 4), np.float32)
    attrs = {
        "generator_settings": {"dt": np.float32(0.25), "n": np.int64(3), "k": np.arange(2)},
        "names": np.array(["u", "v"]),
        "list": [np.float64(1.5), np.bool_(True)],
    }
    sd.write(tmp_path / "f.h5", fields={"u": u}, attrs=attrs)
    assert sd.open(tmp_path / "f.h5").attrs == {
        "generator_settings": {"dt": 0.25, "n": 3, "k": [0, 1]},
        "names": ["u", "v"],
        "list": [1.5, True],
        "format_version": 1,
    }
    # anything else JSON cannot hold is refused by its attribute name, and no file is left
    with pytest.raises(TypeError, match="attrs\\['bad'\\]"):
        sd.write(tmp_path / "g.h5", fields={"u": u}, attrs={"bad": {"s": {1, 2}}})
    assert sorted(p.name for p in tmp_path.iterdir()) == ["f.h5"]


def test_to_xarray_keeps_the_time_stamps_of_a_static_only_file(tmp_path):
    # a static-only file written with time= (or The Well's time axis) lost its time stamps in
    # to_xarray, and so in a to_netcdf export
    s = np.arange(8.0).reshape(2, 4)
    ds = sd.open(sd.write(tmp_path / "b.h5", static_fields={"k": s}, time=[0.0, 0.5, 1.5]))
    x = ds.to_xarray()
    np.testing.assert_array_equal(x["time"].values, [0.0, 0.5, 1.5])
    assert x["k"].dims == ("sample", "x0")
    np.testing.assert_array_equal(x["k"].values, s)


def test_to_xarray_keeps_which_end_of_an_axis_has_which_boundary_type(tmp_path):
    # JSON has no tuple: the (low, high) pair ('wall', 'open') of The Well came back from the
    # export's boundary_conditions attribute as ['wall', 'open'], the form of several types on
    # the whole axis (x's ['open', 'periodic'] below), so the sides were lost
    pytest.importorskip("netCDF4")
    xr = pytest.importorskip("xarray")
    path = tmp_path / "w.hdf5"
    write_well_file(path, extras=False)
    with h5py.File(path, "a") as f:
        b = f["boundary_conditions"]
        b["y_wall/mask"][...] = [True, False, False, False]  # a wall at y's first point only
        for name, dim, kind, mask in (
            ("y_open", "y", "OPEN", [0, 0, 0, 1]),
            ("x_open", "x", "OPEN", None),
        ):
            g = b.create_group(name)
            g.attrs["associated_dims"], g.attrs["associated_fields"] = [dim], []
            g.attrs["bc_type"], g.attrs["sample_varying"], g.attrs["time_varying"] = kind, 0, 0
            if mask is not None:
                g["mask"] = np.array(mask, bool)
    ds = sd.open(path)
    assert ds.boundary_conditions == {"x": ["open", "periodic"], "y": ("wall", "open")}
    want = {"x": ["open", "periodic"], "y": {"low": "wall", "high": "open"}}
    x = ds.to_xarray()
    assert "sciml_boundary_conditions" in json.loads(x.attrs["json_attrs"])
    assert json.loads(x.attrs["sciml_boundary_conditions"]) == want
    x.to_netcdf(tmp_path / "w.nc")
    with xr.open_dataset(tmp_path / "w.nc") as back:
        assert json.loads(back.attrs["sciml_boundary_conditions"]) == want


def test_to_xarray_keeps_user_attributes_named_like_its_own_metadata(tmp_path):
    # the export wrote layout and source over the user's attributes of those names, and a user
    # attribute boundary_conditions hid the file's boundary conditions; sciml's own are now
    # sciml_layout / sciml_source / sciml_boundary_conditions beside the user's, unchanged
    mine = {"source": "simulation X", "layout": "mine", "boundary_conditions": "my note"}
    p = sd.write(tmp_path / "a.h5", fields={"u": np.ones((2, 3, 4), np.float32)}, attrs=mine,
                 boundary_conditions={"x0": "periodic"})  # fmt: skip
    x = sd.open(p).to_xarray()
    exports = [dict(x.attrs)]
    try:
        import netCDF4  # noqa: F401
    except ImportError:
        pass  # the round trip below needs a netCDF engine
    else:
        import xarray as xr

        x.to_netcdf(tmp_path / "a.nc")
        with xr.open_dataset(tmp_path / "a.nc") as back:
            exports.append(dict(back.attrs))
    for a in exports:
        assert {k: a[k] for k in mine} == mine
        assert (a["sciml_source"], a["sciml_layout"]) == (str(p), "sciml")
        assert json.loads(a["sciml_boundary_conditions"]) == {"x0": "periodic"}
        assert json.loads(a["json_attrs"]) == ["sciml_boundary_conditions"]


@pytest.mark.parametrize("name", ["sciml_source", "sciml_boundary_conditions"])
def test_to_xarray_refuses_a_user_attribute_named_like_its_own_metadata(tmp_path, name):
    # it replaced the user's value without a word. The writer refuses such attrs, so the
    # attribute is put in with h5py, as an older sciml's writer (or an edit) left it
    p = sd.write(tmp_path / "a.h5", fields={"u": np.ones((2, 3, 4))},
                 boundary_conditions={"x0": "periodic"})  # fmt: skip
    with h5py.File(p, "a") as f:
        f.attrs[name] = "mine"
    ds = sd.open(p)
    assert ds.attrs[name] == "mine"
    with pytest.raises(ValueError, match=rf"would replace the file's attribute\(s\) '{name}'"):
        ds.to_xarray()
