"""Files in every external layout, written here with h5py / netCDF4 from each layout's published
description (PDEBench README + data-gen / loader code, The Well's docs/data_format.md,
Poseidon's dataset cards), never with sciml's writer; read back exactly through sciml.data."""

from __future__ import annotations

import re

import h5py
import numpy as np
import pytest

import sciml.data as sd
from sciml.data import _handle

RNG = np.random.default_rng(0)


def _r(*shape: int) -> np.ndarray:
    return RNG.standard_normal(shape).astype(np.float32)


# -- PDEBench -----------------------------------------------------------------------------------
def test_pdebench_tensor_1d_with_extra_time_entry(tmp_path):
    # 1D advection / Burgers: tensor (N, T, X), x-coordinate (X,), t-coordinate (T + 1,)
    u, x, t = _r(5, 7, 16), np.linspace(0, 1, 16), np.linspace(0, 2, 8)
    with h5py.File(tmp_path / "1D_Advection_Sols_beta0.1.hdf5", "w") as f:
        f["tensor"], f["x-coordinate"], f["t-coordinate"] = u, x, t
    ds = sd.open(tmp_path / "1D_Advection_Sols_beta0.1.hdf5")
    assert ds.layout == "pdebench" and ds.field_names == ["u"]
    assert (ds.n_samples, ds.n_steps, ds.spatial_shape) == (5, 7, (16,))
    np.testing.assert_array_equal(ds.read(slice(None))[:, :, 0], u)
    np.testing.assert_array_equal(ds.time, t[:7])
    np.testing.assert_array_equal(ds.coords["x"], x)


def test_pdebench_tensor_bad_time_length(tmp_path):
    with h5py.File(tmp_path / "f.h5", "w") as f:
        f["tensor"], f["x-coordinate"], f["t-coordinate"] = (
            _r(2, 7, 4),
            np.arange(4.0),
            np.arange(3.0),
        )
    with pytest.raises(sd.DataFormatError, match=r"f\.h5: key 't-coordinate': has 3 entries"):
        sd.open(tmp_path / "f.h5")


def test_pdebench_cfd_2d(tmp_path):
    # 2D compressible NS: density, pressure, Vx, Vy each (N, T, X, Y)
    vals = {k: _r(3, 4, 8, 6) for k in ("density", "pressure", "Vx", "Vy")}
    with h5py.File(tmp_path / "2D_CFD_Rand.hdf5", "w") as f:
        for k, v in vals.items():
            f[k] = v
        f["x-coordinate"], f["y-coordinate"] = np.linspace(0, 1, 8), np.linspace(0, 1, 6)
        f["t-coordinate"] = np.linspace(0, 1, 5)
    ds = sd.open(tmp_path / "2D_CFD_Rand.hdf5")
    assert ds.layout == "pdebench-cfd"
    assert ds.field_names == ["density", "pressure", "Vx", "Vy"]
    out = ds.read([2, 0])
    for c, k in enumerate(ds.field_names):
        np.testing.assert_array_equal(out[:, :, c], vals[k][[2, 0]])
    xa = ds.to_xarray()
    np.testing.assert_array_equal(xa["Vy"].isel(sample=1, time=2).values, vals["Vy"][1, 2])


def test_pdebench_cfd_with_a_missing_spatial_axis_says_what_shape_it_expected(tmp_path):
    """read_cfd now shares read_tensor's reader: a CFD file whose variables lack an axis that
    the coordinates name said only that the spatial part (8,) did not match the coordinates;
    it now says, as for 'tensor', what shape it expected."""
    with h5py.File(tmp_path / "f.h5", "w") as f:
        f["density"], f["Vx"] = _r(3, 4, 8), _r(3, 4, 8)
        f["x-coordinate"], f["y-coordinate"] = np.arange(8.0), np.arange(6.0)
    with pytest.raises(sd.DataFormatError) as e:
        sd.open(tmp_path / "f.h5")
    assert str(e.value) == (
        f"{tmp_path / 'f.h5'}: key 'density': has shape (3, 4, 8), expected (n_samples, n_steps, "
        "*spatial) with 2 spatial axes (one per *-coordinate dataset)"
    )


def test_pdebench_darcy(tmp_path):
    # 2D Darcy: tensor (N, 1, X, Y) = solution, nu (N, X, Y) = coefficient
    u, nu = _r(4, 1, 8, 8), _r(4, 8, 8)
    with h5py.File(tmp_path / "2D_DarcyFlow_beta1.0.hdf5", "w") as f:
        f["tensor"], f["nu"] = u, nu
        f["x-coordinate"], f["y-coordinate"] = np.linspace(0, 1, 8), np.linspace(0, 1, 8)
    ds = sd.open(tmp_path / "2D_DarcyFlow_beta1.0.hdf5")
    assert ds.layout == "pdebench-darcy" and ds.n_steps is None
    assert ds.static_field_names == ["nu", "u"]
    out = ds.read_static(slice(None))
    np.testing.assert_array_equal(out[:, 0], nu)
    np.testing.assert_array_equal(out[:, 1], u[:, 0])
    item = sd.StaticPairs(ds, inputs=["nu"], targets=["u"])[3]
    np.testing.assert_array_equal(item["input"].numpy(), nu[3][None])
    np.testing.assert_array_equal(item["target"].numpy(), u[3])


def test_pdebench_seed_groups(tmp_path):
    # 2D diffusion-reaction: 0000/data (T, X, Y, C), 0000/grid/{x,y,t}
    data = {f"{s:04d}": _r(6, 8, 4, 2) for s in range(3)}
    x, y, t = np.linspace(0, 1, 8), np.linspace(-1, 1, 4), np.linspace(0, 5, 6)
    with h5py.File(tmp_path / "2D_diff-react_NA_NA.h5", "w") as f:
        for k, v in data.items():
            g = f.create_group(k)
            g["data"], g["grid/x"], g["grid/y"], g["grid/t"] = v, x, y, t
    ds = sd.open(tmp_path / "2D_diff-react_NA_NA.h5")
    assert ds.layout == "pdebench-seed-groups" and ds.field_names == ["c0", "c1"]
    out = ds.read(slice(None))  # (n, t, c, x, y)
    for i, v in enumerate(data.values()):
        np.testing.assert_array_equal(out[i], np.moveaxis(v, -1, 1))
    np.testing.assert_array_equal(ds.time, t)
    np.testing.assert_array_equal(ds.coords["y"], y)
    w = sd.Windows(ds, n_in=2, n_out=1, stride=2, flatten_time=False)[3]  # sample 1, t0 = 2
    np.testing.assert_array_equal(w["input"].numpy(), np.moveaxis(data["0001"][2:4], -1, 1))


def _seed_file(path, names, t=3, nx=4):
    data = {k: _r(t, nx, 1) for k in names}
    with h5py.File(path, "w") as f:
        for k, v in data.items():
            g = f.create_group(k)
            g["data"], g["grid/x"], g["grid/t"] = v, np.arange(nx, dtype=float), np.arange(t * 1.0)
    return data


def test_pdebench_seed_groups_come_in_numeric_seed_order(tmp_path):
    """Sample i is the i-th smallest seed. The groups were sorted as text (h5py's order too):
    '0' .. '11' gave samples 0, 1, 10, 11, 2, ..., and the same seeds named '0000' .. '0011'
    came in another order."""
    plain = _seed_file(tmp_path / "plain.h5", [str(s) for s in range(12)])
    padded = _seed_file(tmp_path / "padded.h5", [f"{s:04d}" for s in (11, 2, 10, 0)])
    out = sd.open(tmp_path / "plain.h5").read(slice(None))[:, :, 0]  # (n, t, x)
    np.testing.assert_array_equal(out, np.stack([plain[str(s)][..., 0] for s in range(12)]))
    out = sd.open(tmp_path / "padded.h5").read([0, 1, 2, 3])[:, :, 0]
    want = [padded[f"{s:04d}"][..., 0] for s in (0, 2, 10, 11)]
    np.testing.assert_array_equal(out, np.stack(want))
    with h5py.File(tmp_path / "padded.h5", "a") as f:  # the key named with its group
        del f["0000/grid/t"]
        f["0000/grid/t"] = np.arange(5.0)
    with pytest.raises(sd.DataFormatError, match=r"key '0000/grid/t': has 5 entries, expected n_"):
        sd.open(tmp_path / "padded.h5")
    _seed_file(tmp_path / "twice.h5", ["0", "1", "01"])
    with pytest.raises(sd.DataFormatError, match="groups '01' and '1' both name seed 1"):
        sd.open(tmp_path / "twice.h5")


@pytest.mark.parametrize(
    ("change", "message"),
    [
        (lambda f: f["2/grid/x"].__setitem__(3, 3.5),
         "key '2/grid/x': differs from '0/grid/x' at flat index 3 (3.5 there, 3.0 in '0')"),
        (lambda f: (f.__delitem__("1/grid/t"), f.__setitem__("1/grid/t", np.arange(4.0))),
         "key '1/grid/t': has shape (4,), expected (3,) like '0/grid/t'"),
        (lambda f: f.__delitem__("1/grid/t"), "group '0' has 'grid/t' and group '1' has none"),
        (lambda f: f.__setitem__("2/grid/y", np.arange(1.0)),
         "group '2' has 'grid/y' and group '0' has none"),
    ],
    ids=["values", "shape", "missing", "extra"],
)  # fmt: skip
def test_pdebench_seed_groups_with_another_grid_than_the_first_group_are_refused(
    tmp_path, change, message
):
    """Only the first seed group's grid/* was read and used for every sample: another group's
    grid (values, length, axes) was silently replaced by it. Refused, naming both groups."""
    p = tmp_path / "seeds.h5"
    data = _seed_file(p, ["0", "1", "2"])
    with h5py.File(p, "a") as f:  # equal values in other bytes are the same grid
        f["1/grid/x"][0] = -0.0
    np.testing.assert_array_equal(sd.open(p).read(2)[0, :, 0], data["2"][..., 0])
    with h5py.File(p, "a") as f:
        change(f)
    with pytest.raises(sd.DataFormatError, match=re.escape(message)):
        sd.open(p)


def _ns_incom_file(path, n=3, t=4, nx=6, ny=5, latest=None):
    """data_gen/src/data_io.py dims_for: velocity (N, T, X, Y, 2), particles (N, T, X, Y, 1),
    force (N, X, Y, 2), t (N, T); h5_for's root attributes config and latestIndex."""
    with h5py.File(path, "w") as f:
        f["velocity"], f["particles"] = _r(n, t, nx, ny, 2), _r(n, t, nx, ny, 1)
        f["force"] = _r(n, nx, ny, 2)
        f["t"] = np.tile(np.arange(1, t + 1) * 0.005, (n, 1)).astype(np.float32)
        f.attrs["config"] = "NU: 0.01\n"
        f.attrs["latestIndex"] = t - 1 if latest is None else latest


def test_pdebench_ns_incom_2d(tmp_path):
    """PDEBench's 2-D incompressible NS files ('velocity', 'particles', 'force', 't') were an
    unknown layout; every array sciml gives equals h5py's read of it."""
    p = tmp_path / "ns_incom_inhom_2d_512-0.h5"
    _ns_incom_file(p)
    ds = sd.open(p)
    assert ds.layout == "pdebench-ns-incom"
    assert ds.field_names == ["velocity_x", "velocity_y", "particles"]
    assert ds.static_field_names == ["force_x", "force_y"]
    assert (ds.n_samples, ds.n_steps, ds.spatial_shape) == (3, 4, (6, 5))
    with h5py.File(p, "r") as f:
        vel, part, force, t = (f[k][()] for k in ("velocity", "particles", "force", "t"))
    out = ds.read([2, 0])  # (n, t, c, x, y)
    np.testing.assert_array_equal(out[:, :, 0], vel[[2, 0], ..., 0])
    np.testing.assert_array_equal(out[:, :, 1], vel[[2, 0], ..., 1])
    np.testing.assert_array_equal(out[:, :, 2], part[[2, 0], ..., 0])
    np.testing.assert_array_equal(ds.read(1, steps=slice(1, 4, 2), fields=["velocity_y"])[0, :, 0],
                                  vel[1, 1:4:2, :, :, 1])  # fmt: skip
    np.testing.assert_array_equal(ds.read_static(slice(None)), np.moveaxis(force, -1, 1))
    np.testing.assert_array_equal(ds.time, t[0])  # one row: every sample has the same stamps
    np.testing.assert_array_equal(ds.coords["x"], [1 / 12, 3 / 12, 5 / 12, 7 / 12, 9 / 12, 11 / 12])
    np.testing.assert_allclose(ds.coords["y"], [0.1, 0.3, 0.5, 0.7, 0.9], rtol=1e-15)
    assert ds.attrs["config"] == "NU: 0.01\n" and sd.validate(p) == []
    w = sd.Windows(ds, n_in=2, n_out=1, static_fields=["force_x"], flatten_time=False)[1]
    np.testing.assert_array_equal(w["target"].numpy()[0, 2], part[0, 3, ..., 0])
    ds.close()
    with h5py.File(p, "a") as f:  # per-sample time stamps, and coordinates in the file
        f["t"][1] *= 2
        f["x-coordinate"], f["y-coordinate"] = np.linspace(0, 2, 6), np.linspace(0, 3, 5)
    ds = sd.open(p)
    np.testing.assert_array_equal(ds.time, t * np.array([[1], [2], [1]], dtype=np.float32))
    np.testing.assert_array_equal(ds.coords["y"], np.linspace(0, 3, 5))


def _replace(key, value):
    def change(f):
        del f[key]
        if value is not None:
            f[key] = value

    return change


@pytest.mark.parametrize(
    ("change", "message"),
    [
        (_replace("force", _r(3, 5, 6, 2)),
         "key 'force': has shape (3, 5, 6, 2), expected (3, 6, 5, 2) from 'velocity' (3, 4, 6, 5, 2)"),
        (_replace("particles", _r(3, 3, 6, 5, 1)),
         "key 'particles': has shape (3, 3, 6, 5, 1), expected (3, 4, 6, 5, 1) from 'velocity'"),
        (_replace("t", _r(3, 5)), "key 't': has shape (3, 5), expected (3, 4)"),
        (_replace("velocity", _r(3, 4, 6, 5, 3)),
         "key 'velocity': has shape (3, 4, 6, 5, 3), expected (N, T, X, Y, 2)"),
        (_replace("force", None), "has no dataset 'force'; a 2-D incompressible Navier-Stokes"),
        (lambda f: f.attrs.__setitem__("latestIndex", 1),  # a run stopped after frame 1
         "root attribute latestIndex=1: frames 2 .. 3 of 'velocity', 'particles' and 't' were "
         "never written"),
    ],
    ids=["force", "particles", "t", "velocity", "no-force", "latestIndex"],
)  # fmt: skip
def test_pdebench_ns_incom_file_that_does_not_fit_is_refused_naming_the_dataset(
    tmp_path, change, message
):
    p = tmp_path / "ns.h5"
    _ns_incom_file(p)
    with h5py.File(p, "a") as f:
        change(f)
    with pytest.raises(sd.DataFormatError, match=re.escape(message)):
        sd.open(p)


# -- The Well -----------------------------------------------------------------------------------
def _flags(ds, sample=True, time=True, dims=(True, True)):
    ds.attrs["sample_varying"], ds.attrs["time_varying"] = sample, time
    ds.attrs["dim_varying"] = np.array(dims)


def write_well_file(path, n=3, t=6, nx=8, ny=4, extras=True):
    """The example of The Well's docs/data_format.md, D=2, B x T x W x H.

    ``extras`` adds the partly-varying fields of the spec (a field constant in y, one constant
    over samples and time), which WellDataset itself does not broadcast."""
    vals = {
        "density": _r(n, t, nx, ny),
        "tracer": _r(n, t, nx),  # dim_varying [True, False]
        "mask": _r(nx, ny),  # neither sample- nor time-varying -> static
        "velocity": _r(n, t, nx, ny, 2),
        "stress": _r(n, t, nx, ny, 2, 2),
        "gamma_t": _r(t),
    }
    with h5py.File(path, "w") as f:
        f.attrs["simulation_parameters"] = ["Re"]
        f.attrs["Re"] = 100.0
        f.attrs["dataset_name"] = "example"
        f.attrs["grid_type"] = "cartesian"
        f.attrs["n_spatial_dims"] = 2
        f.attrs["n_trajectories"] = n
        d = f.create_group("dimensions")
        d.attrs["spatial_dims"] = ["x", "y"]
        d["time"] = np.linspace(0, 1, t).astype(np.float32)
        d["time"].attrs["sample_varying"] = False
        for k, m in (("x", nx), ("y", ny)):
            d[k] = np.linspace(0, 1, m).astype(np.float32)
            d[k].attrs["sample_varying"], d[k].attrs["time_varying"] = False, False
        b = f.create_group("boundary_conditions")
        for name, dim, kind in (("x_periodic", "x", "PERIODIC"), ("y_wall", "y", "WALL")):
            g = b.create_group(name)
            g.attrs["associated_dims"], g.attrs["associated_fields"] = [dim], []
            g.attrs["bc_type"], g.attrs["sample_varying"], g.attrs["time_varying"] = kind, 0, 0
            g["mask"] = np.zeros(nx if dim == "x" else ny, bool)
            g["values"] = np.zeros(0, np.float32)
        s = f.create_group("scalars")
        s.attrs["field_names"] = ["Re", "gamma_t"]
        s["Re"] = np.array([100.0], np.float32)
        s["Re"].attrs["sample_varying"], s["Re"].attrs["time_varying"] = False, False
        s["gamma_t"] = vals["gamma_t"]
        s["gamma_t"].attrs["sample_varying"], s["gamma_t"].attrs["time_varying"] = False, True
        g0 = f.create_group("t0_fields")
        g0.attrs["field_names"] = ["density", "tracer", "mask"] if extras else ["density"]
        g0["density"] = vals["density"]
        _flags(g0["density"])
        if extras:
            g0["tracer"], g0["mask"] = vals["tracer"], vals["mask"]
            _flags(g0["tracer"], dims=(True, False))
            _flags(g0["mask"], sample=False, time=False)
        g1 = f.create_group("t1_fields")
        g1.attrs["field_names"] = ["velocity"]
        g1["velocity"] = vals["velocity"]
        _flags(g1["velocity"])
        g2 = f.create_group("t2_fields")
        g2.attrs["field_names"] = ["stress"]
        g2["stress"] = vals["stress"]
        _flags(g2["stress"])
        g2["stress"].attrs["symmetric"], g2["stress"].attrs["antisymmetric"] = False, False
    return vals


def test_the_well(tmp_path):
    vals = write_well_file(tmp_path / "example.hdf5")
    ds = sd.open(tmp_path / "example.hdf5")
    assert ds.layout == "the-well" and ds.attrs["pde"] == "example"
    assert ds.field_names == [
        "density", "tracer", "velocity_x", "velocity_y",
        "stress_xx", "stress_xy", "stress_yx", "stress_yy",
    ]  # fmt: skip
    assert ds.static_field_names == ["mask"]
    assert ds.boundary_conditions == {"x": "periodic", "y": "wall"}
    out = ds.read(slice(None))
    np.testing.assert_array_equal(out[:, :, 0], vals["density"])
    np.testing.assert_array_equal(
        out[:, :, 1], np.broadcast_to(vals["tracer"][..., None], out[:, :, 1].shape)
    )
    np.testing.assert_array_equal(out[:, :, 3], vals["velocity"][..., 1])
    np.testing.assert_array_equal(out[:, :, 5], vals["stress"][..., 0, 1])
    np.testing.assert_array_equal(out[:, :, 6], vals["stress"][..., 1, 0])
    np.testing.assert_array_equal(ds.read_static(2)[0, 0], vals["mask"])
    np.testing.assert_array_equal(ds.params["Re"], [100.0] * 3)
    np.testing.assert_array_equal(ds.params["gamma_t"], np.broadcast_to(vals["gamma_t"], (3, 6)))


def test_the_well_matches_welldataset(tmp_path):
    """Independent check: The Well's own loader sees the same window values as ours."""
    well = pytest.importorskip("the_well.data")
    (tmp_path / "train").mkdir()
    vals = write_well_file(tmp_path / "train" / "example.hdf5", extras=False)
    ref = well.WellDataset(
        path=str(tmp_path / "train"), n_steps_input=2, n_steps_output=1,
        use_normalization=False, return_grid=False, boundary_return_type=None,
    )  # fmt: skip
    ds = sd.open(tmp_path / "train" / "example.hdf5")
    ours = sd.Windows(ds, n_in=2, n_out=1, fields=["density", "velocity_x", "velocity_y"])
    assert len(ref) == len(ours)
    for k in (0, 4, len(ours) - 1):
        r = ref[k]["input_fields"].numpy()  # (Ti, X, Y, C): density, velocity, stress
        mine = ours[k]["input"].numpy().reshape(2, 3, 8, 4)
        np.testing.assert_array_equal(mine[:, 0], r[..., 0])
        np.testing.assert_array_equal(np.moveaxis(mine[:, 1:], 1, -1), r[..., 1:3])
    assert vals["density"].shape == (3, 6, 8, 4)


def test_the_well_refuses_two_sources_of_one_channel_name_naming_both(tmp_path):
    # t1_fields/velocity's x component replaced t0_fields/velocity_x silently (read_spec's
    # target[name + suffix]), so the values read under 'velocity_x' were not that dataset's
    p = tmp_path / "w.hdf5"
    vals = write_well_file(p, extras=False)
    vx = _r(3, 6, 8, 4)
    with h5py.File(p, "a") as f:
        f["t0_fields/velocity_x"] = vx
        _flags(f["t0_fields/velocity_x"])
        f["t0_fields"].attrs["field_names"] = ["density", "velocity_x"]
    assert not np.array_equal(vals["velocity"][..., 0], vx)  # the two sources differ
    problem = (
        "channel 'velocity_x' comes from both 't0_fields/velocity_x' and 't1_fields/velocity' "
        "(component x); expected distinct channel names (a tensor field's components are named "
        "<field>_<axes>)"
    )
    with pytest.raises(sd.DataFormatError) as e:
        sd.open(p)
    assert str(e.value) == f"{p}: {problem}"
    assert sd.validate(p) == [f"{p}: {problem}"]
    with h5py.File(p, "a") as f:  # a static (not time-varying) source clashes as well
        del f["t0_fields/velocity_x"]
        f["t0_fields/velocity_x"] = vx[:, 0]
        _flags(f["t0_fields/velocity_x"], time=False)
    with pytest.raises(sd.DataFormatError, match=re.escape(problem)):
        sd.open(p)
    with h5py.File(p, "a") as f:  # renamed, both are read, each from its own dataset
        f.move("t0_fields/velocity_x", "t0_fields/vx")
        f["t0_fields"].attrs["field_names"] = ["density", "vx"]
    ds = sd.open(p)
    np.testing.assert_array_equal(ds.read_static(1)[0, 0], vx[1, 0])
    np.testing.assert_array_equal(ds.read(0)[0, :, ds.field_names.index("velocity_x")],
                                  vals["velocity"][0, ..., 0])  # fmt: skip


def test_the_well_reports_each_end_of_an_axis_as_its_boundary_masks_mark_it(tmp_path):
    """An axis with a wall at one end and open at the other (two boundary groups, each mask
    marking one end) was reported as ['open', 'wall'], with no side. It is (low, high) now, as
    WellDataset's padding boundaries read the masks ([n_dims, 2] of WALL=0, OPEN=1,
    PERIODIC=2); an axis with one type at both ends stays that type."""
    well = pytest.importorskip("the_well.data")
    code = {k.name.lower(): k.value for k in well.datasets.BoundaryCondition}
    ny = 4
    cases = {  # y's groups: (bc_type, mask over y) -> what sciml reports for y
        "wall_open": ([("WALL", [1, 0, 0, 0]), ("OPEN", [0, 0, 0, 1])], ("wall", "open")),
        "open_wall": ([("OPEN", [1, 0, 0, 0]), ("WALL", [0, 0, 0, 1])], ("open", "wall")),
        "wall_only_low": ([("WALL", [1, 0, 0, 0])], ("wall", "open")),  # unmarked end: open
        "walls": ([("WALL", [1, 0, 0, 1])], "wall"),
        "wall_periodic": ([("WALL", [1, 0, 0, 0]), ("PERIODIC", [0, 0, 0, 1])],
                          ("wall", "periodic")),
    }  # fmt: skip
    for name, (groups, want) in cases.items():
        folder = tmp_path / name / "train"
        folder.mkdir(parents=True)
        write_well_file(folder / "w.hdf5", ny=ny, extras=False)
        with h5py.File(folder / "w.hdf5", "a") as f:
            del f["boundary_conditions"]
            b = f.create_group("boundary_conditions")
            for k, (kind, mask) in enumerate([("PERIODIC", [1] * 8), *groups]):
                g = b.create_group(f"bc{k}")
                g.attrs["associated_dims"] = ["x"] if k == 0 else ["y"]
                g.attrs["associated_fields"], g.attrs["bc_type"] = [], kind
                g.attrs["sample_varying"], g.attrs["time_varying"] = 0, 0
                g["mask"] = np.array(mask, bool)
                g["values"] = np.zeros(0, np.float32)
        bcs = sd.open(folder / "w.hdf5").boundary_conditions
        assert bcs == {"x": "periodic", "y": want}, name
        ref = well.WellDataset(
            path=str(folder), n_steps_input=1, n_steps_output=1, use_normalization=False,
            return_grid=False, boundary_return_type="padding",
        )[0]["boundary_conditions"]  # fmt: skip
        ends = [(v, v) if isinstance(v, str) else v for v in bcs.values()]
        assert ref.tolist() == [[code[lo], code[hi]] for lo, hi in ends], name


def test_the_well_wrong_shape_names_key(tmp_path):
    write_well_file(tmp_path / "w.hdf5")
    with h5py.File(tmp_path / "w.hdf5", "a") as f:
        del f["t1_fields/velocity"]
        f["t1_fields/velocity"] = _r(3, 6, 8, 4, 3)
        _flags(f["t1_fields/velocity"])
    with pytest.raises(sd.DataFormatError) as e:
        sd.open(tmp_path / "w.hdf5")
    msg = str(e.value)
    assert "w.hdf5: key 't1_fields/velocity'" in msg and "(3, 6, 8, 4, 3)" in msg
    assert "expected (3, 6, 8, 4, 2)" in msg


# -- Poseidon (NetCDF-4) --------------------------------------------------------------------------
def test_poseidon_netcdf(tmp_path):
    netCDF4 = pytest.importorskip("netCDF4")
    data, t = _r(3, 5, 4, 8, 8), np.linspace(0, 1, 5)
    with netCDF4.Dataset(tmp_path / "CE-RP.nc", "w", format="NETCDF4") as nc:
        for name, size in zip(("member", "time", "channel", "x", "y"), data.shape):
            nc.createDimension(name, size)
        nc.createVariable("time", "f8", ("time",))[:] = t
        nc.createVariable("data", "f4", ("member", "time", "channel", "x", "y"))[:] = data
    ds = sd.open(tmp_path / "CE-RP.nc")
    assert ds.layout == "poseidon-netcdf"
    assert ds.field_names == ["c0", "c1", "c2", "c3"]
    np.testing.assert_array_equal(ds.read(slice(None)), data)
    np.testing.assert_array_equal(ds.time, t)
    item = sd.AllPairs(ds)[3]  # sample 0, pair (0, 3)
    np.testing.assert_array_equal(item["input"].numpy(), data[0, 0])
    np.testing.assert_array_equal(item["target"].numpy(), data[0, 3])
    assert item["t"].item() == pytest.approx(t[3] - t[0])


def _poseidon_static_file(path, variables: dict[str, np.ndarray]) -> None:
    """A NetCDF-4 file as Poseidon's time-independent sets ship: dims member[, channel], x, y."""
    netCDF4 = pytest.importorskip("netCDF4")
    with netCDF4.Dataset(path, "w", format="NETCDF4") as nc:
        for k, a in variables.items():
            dims = ("member", "x", "y") if a.ndim == 3 else ("member", f"{k}_channel", "x", "y")
            dims = tuple(
                d if d not in nc.dimensions or len(nc.dimensions[d]) == n else f"{k}_{d}"
                for d, n in zip(dims, a.shape)
            )  # (why) the near misses below have variables of other sizes
            for d, size in zip(dims, a.shape):
                if d not in nc.dimensions:
                    nc.createDimension(d, size)
            nc.createVariable(k, a.dtype.str[1:], dims)[:] = a


def test_poseidon_poisson_gauss_opens_as_static_source_to_solution(tmp_path):
    # Poisson-Gauss.nc: source and solution, each [N, H, W] (dataset card; scOT reads
    # reader["source"][i] -> reader["solution"][i]). Forced, this raised a bare StopIteration
    # (only 4-D / 5-D variables were read); detected, it was an unknown layout.
    source, solution = _r(3, 8, 6), _r(3, 8, 6)
    _poseidon_static_file(tmp_path / "Poisson-Gauss.nc", {"solution": solution, "source": source})
    for layout in (None, "poseidon-netcdf"):
        ds = sd.open(tmp_path / "Poisson-Gauss.nc", layout=layout)
        assert ds.layout == "poseidon-netcdf" and ds.n_steps is None
        assert ds.field_names == [] and ds.static_field_names == ["source", "solution"]
        assert (ds.n_samples, ds.spatial_shape) == (3, (8, 6))
        np.testing.assert_array_equal(ds.read_static(slice(None)), np.stack([source, solution], 1))
        item = sd.StaticPairs(ds, ["source"], ["solution"])[2]
        np.testing.assert_array_equal(item["input"].numpy(), source[2:3])
        np.testing.assert_array_equal(item["target"].numpy(), solution[2:3])
    # the brief's repro: plain h5py datasets, no NetCDF dimensions, layout forced
    with h5py.File(tmp_path / "h.nc", "w") as f:
        f["solution"], f["source"] = solution, source
    ds = sd.open(tmp_path / "h.nc", layout="poseidon-netcdf")
    np.testing.assert_array_equal(ds.read_static([1], ["solution"])[0, 0], solution[1])


def test_poseidon_se_af_opens_as_static_shape_to_density(tmp_path):
    # SE-AF.nc: one variable solution [N, 2, H, W], channels (airfoil shape, density); scOT's
    # steady Airfoil maps solution[i, 0] -> solution[i, 1]
    solution = _r(4, 2, 8, 8)
    _poseidon_static_file(tmp_path / "SE-AF.nc", {"solution": solution})
    ds = sd.open(tmp_path / "SE-AF.nc")
    assert ds.layout == "poseidon-netcdf" and ds.n_steps is None
    assert ds.static_field_names == ["solution_c0", "solution_c1"]
    np.testing.assert_array_equal(ds.read_static(slice(None)), solution)
    item = sd.StaticPairs(ds, ["solution_c0"], ["solution_c1"])[3]
    np.testing.assert_array_equal(item["input"].numpy(), solution[3, 0:1])
    np.testing.assert_array_equal(item["target"].numpy(), solution[3, 1:2])


def test_poseidon_wave_speed_c_is_a_static_field_beside_the_solution(tmp_path):
    # Wave-Gauss / Wave-Layer hold solution and the wave speed c [N, H, W]; scOT's wave problems
    # read c[i] as a second input channel beside solution[i, t1]. c was dropped: only 4-D / 5-D
    # variables were taken as fields.
    solution, c = _r(3, 4, 1, 8, 6), (1500 + 1000 * RNG.random((3, 8, 6))).astype("f4")
    with h5py.File(tmp_path / "Wave-Gauss.nc", "w") as f:
        f["solution"], f["c"] = solution, c
        f["x"], f["y"] = np.linspace(0, 1, 8), np.linspace(0, 1, 6)  # 1-D: coordinates
        f["mask"] = np.ones((3, 8, 6), "i4")  # integer: not a field
        f["c_coarse"] = _r(3, 4, 3)  # another grid: not a field
        f["c_train"] = _r(2, 8, 6)  # another sample count: not a field
    ds = sd.open(tmp_path / "Wave-Gauss.nc")
    assert ds.layout == "poseidon-netcdf" and ds.field_names == ["c0"]
    assert ds.static_field_names == ["c"]
    np.testing.assert_array_equal(ds.read_static(slice(None), ["c"])[:, 0], c)
    np.testing.assert_array_equal(ds.read(slice(None)), solution)
    np.testing.assert_array_equal(ds.coords["x"], np.linspace(0, 1, 8))


def _poseidon_assembled_file(path, variables: dict[str, tuple[tuple[str, ...], np.ndarray]]):
    """A NetCDF-4 file as Poseidon's assemble_data.py writes it: dimensions sample, time,
    [channel,] x, y; no coordinate variables."""
    netCDF4 = pytest.importorskip("netCDF4")
    with netCDF4.Dataset(path, "w", format="NETCDF4") as nc:
        for k, (dims, a) in variables.items():
            for d, size in zip(dims, a.shape):
                if d not in nc.dimensions:
                    nc.createDimension(d, size)
            nc.createVariable(k, "f4", dims)[:] = a


@pytest.mark.parametrize("name", ["ACE", "Wave-Gauss", "Wave-Layer"])
def test_poseidon_single_channel_sets_with_a_4d_solution_open_as_trajectories(tmp_path, name):
    # ACE.nc and Wave-*.nc hold solution(sample, time, x, y), no channel axis (dataset cards;
    # scOT reads solution[i, t1] reshaped to (1, H, W)); not a 5-D variable, so the file was
    # an unknown layout. T = 2 here: the time dimension, not the size, tells it from SE-AF.
    solution, c = _r(3, 2, 8, 6), _r(3, 8, 6)
    variables = {"solution": (("sample", "time", "x", "y"), solution)}
    if name != "ACE":
        variables["c"] = (("sample", "x", "y"), c)
    _poseidon_assembled_file(tmp_path / f"{name}.nc", variables)
    ds = sd.open(tmp_path / f"{name}.nc")
    assert ds.layout == "poseidon-netcdf" and ds.field_names == ["c0"]
    assert (ds.n_samples, ds.n_steps, ds.spatial_shape) == (3, 2, (8, 6))
    np.testing.assert_array_equal(ds.read(slice(None))[:, :, 0], solution)
    np.testing.assert_array_equal(ds.time, [0.0, 1.0])
    item = sd.AllPairs(ds)[7]  # sample 2, pair 1 of (0, 0), (0, 1), (1, 1)
    np.testing.assert_array_equal(item["input"].numpy()[0], solution[2, 0])
    np.testing.assert_array_equal(item["target"].numpy()[0], solution[2, 1])
    if name == "ACE":
        assert ds.static_field_names == []
    else:
        assert ds.static_field_names == ["c"]
        np.testing.assert_array_equal(ds.read_static([1], ["c"])[0, 0], c[1])
    # the same array on a channel dimension is SE-AF's [N, 2, H, W], static
    _poseidon_assembled_file(
        tmp_path / "s.nc", {"solution": (("sample", "channel", "x", "y"), solution)}
    )
    ds = sd.open(tmp_path / "s.nc")
    assert ds.n_steps is None and ds.static_field_names == ["solution_c0", "solution_c1"]


@pytest.mark.parametrize(
    "variables",
    [
        {"source": _r(3, 8, 8)},  # Poisson-Gauss without its solution
        {"source": _r(3, 8, 8), "solution": _r(3, 8, 6)},  # two grids
        {"source": _r(3, 8, 8), "solution": _r(2, 8, 8)},  # two sample counts
        {"solution": _r(3, 3, 8, 8)},  # SE-AF has 2 channels
        {"source": np.ones((3, 8, 8), "i4"), "solution": np.ones((3, 8, 8), "i4")},  # not float
        {"t2m": _r(2, 3, 4, 5)},  # no Poseidon variable at all
    ],
)
def test_a_file_matching_no_poseidon_set_is_an_unknown_layout_never_stopiteration(
    tmp_path, variables
):
    _poseidon_static_file(tmp_path / "f.nc", variables)
    with pytest.raises(sd.DataFormatError, match="unknown layout"):
        sd.open(tmp_path / "f.nc")
    with pytest.raises(sd.DataFormatError, match=r"is not a Poseidon data set: expected .*SE-AF"):
        sd.open(tmp_path / "f.nc", layout="poseidon-netcdf")


def _helmholtz_file(path, n: int = 4, shape=(8, 6), lead=()) -> dict[str, np.ndarray]:
    """Helmholtz.h5 as scOT's elliptic.Helmholtz reads it: Sample_<i>/a, /bc (one value), /u
    (``lead=(1,)``: stored with a leading singleton axis, which scOT's reshape also accepts)."""
    vals = {"a": _r(n, *shape), "bc": RNG.random(n).astype("f4"), "u": _r(n, *shape)}
    with h5py.File(path, "w") as f:
        for i in range(n):
            g = f.create_group(f"Sample_{i}")
            for k, v in vals.items():
                g[k] = v[i].reshape(lead + v[i].shape)
    return vals


@pytest.mark.parametrize("lead", [(), (1,)])
def test_poseidon_helmholtz_sample_groups_open_as_static_a_bc_to_u(tmp_path, lead):
    # Helmholtz.h5 (one group per sample, no NetCDF variables) was an unknown layout
    vals = _helmholtz_file(tmp_path / "Helmholtz.h5", n=12, lead=lead)
    ds = sd.open(tmp_path / "Helmholtz.h5")
    assert ds.layout == "poseidon-helmholtz" and ds.n_steps is None
    assert ds.static_field_names == ["a", "bc", "u"]
    assert (ds.n_samples, ds.spatial_shape) == (12, (8, 6))
    # sample 10 is Sample_10, not the 3rd name in sorted order
    got = ds.read_static([10, 2])
    np.testing.assert_array_equal(got[:, 0], vals["a"][[10, 2]])
    np.testing.assert_array_equal(
        got[:, 1], np.broadcast_to(vals["bc"][[10, 2], None, None], (2, 8, 6))
    )
    np.testing.assert_array_equal(got[:, 2], vals["u"][[10, 2]])
    item = sd.StaticPairs(ds, ["a", "bc"], ["u"])[11]  # scOT: (a - 1, bc) -> normalised u
    np.testing.assert_array_equal(item["input"].numpy()[0], vals["a"][11])
    np.testing.assert_array_equal(item["input"].numpy()[1], np.full((8, 6), vals["bc"][11]))
    np.testing.assert_array_equal(item["target"].numpy()[0], vals["u"][11])


def test_poseidon_helmholtz_reads_one_sample_group_per_index(tmp_path, monkeypatch):
    vals = _helmholtz_file(tmp_path / "Helmholtz.h5", n=6)
    looked_up = []
    real = _handle.LazyH5.dataset

    def counting(self, key):
        looked_up.append(key)
        return real(self, key)

    monkeypatch.setattr(_handle.LazyH5, "dataset", counting)
    ds = sd.open(tmp_path / "Helmholtz.h5")
    assert looked_up == []  # opening reads no sample's values
    got = ds.read_static([4], ["a", "u"])
    assert looked_up == ["Sample_4/a", "Sample_4/u"]
    np.testing.assert_array_equal(got[0], np.stack([vals["a"][4], vals["u"][4]]))


@pytest.mark.parametrize(
    "removed, added, message",
    [
        ("Sample_0/bc", {}, r"key 'Sample_0'.*missing \['bc'\]; expected .*'bc' \(a scalar"),
        (
            "Sample_2",
            {},
            r"no 'Sample_2' among Sample_0 \.\.\. Sample_3; expected one group per sample",
        ),
        ("Sample_0/bc", {"Sample_0/bc": np.ones(3)}, r"key 'Sample_0/bc'.*expected one value"),
        (None, {"Sample_0/u": np.ones((8, 5))}, r"key 'Sample_0/u'.*expected the grid of 'a'"),
        (None, {"grid": np.ones(3)}, r"top-level members \['grid'\]; expected only groups"),
    ],
)
def test_a_helmholtz_file_without_what_scot_reads_names_it(tmp_path, removed, added, message):
    _helmholtz_file(tmp_path / "Helmholtz.h5")
    with h5py.File(tmp_path / "Helmholtz.h5", "a") as f:
        if removed:
            del f[removed]
        for k, v in added.items():
            if k in f:
                del f[k]
            f[k] = v
    with pytest.raises(sd.DataFormatError, match=message):
        sd.open(tmp_path / "Helmholtz.h5", layout="poseidon-helmholtz")
    if added.keys() != {"grid"}:  # detected as Helmholtz.h5 by its group names
        with pytest.raises(sd.DataFormatError, match=message):
            sd.open(tmp_path / "Helmholtz.h5")


def _replace(key, make):
    """A change to a Helmholtz.h5: ``key`` replaced by ``make(old value)`` (``None``: removed)."""

    def change(f):
        old = f[key][()] if isinstance(f[key], h5py.Dataset) else None
        del f[key]
        new = make(old)
        if isinstance(new, str):
            f.create_group(key)
        elif new is not None:
            f[key] = new

    return change


def _transpose_sample(f, i=2):
    for m in ("a", "u"):
        v = f[f"Sample_{i}/{m}"][()]
        del f[f"Sample_{i}/{m}"]
        f[f"Sample_{i}/{m}"] = v.T.copy()


@pytest.mark.parametrize(
    "change, message",
    [
        (_replace("Sample_3/u", lambda v: None), r"key 'Sample_3': has members \['a', 'bc'\], missing \['u'\]"),
        # a sample stored [W, H] was read as a scrambled [H, W] grid without an error
        (_transpose_sample, r"key 'Sample_2/a': has shape \(6, 8\), expected \(8, 6\) as in 'Sample_0/a'"),
        (_replace("Sample_2/u", lambda v: v.T.copy()), r"key 'Sample_2/u': has shape \(6, 8\), expected the grid of 'a' \(8, 6\)"),
        (_replace("Sample_1/bc", lambda v: np.ones(2, "f4")), r"key 'Sample_1/bc': has shape \(2,\), expected one value"),
        (_replace("Sample_2/bc", lambda v: np.ones(1, "f4")), r"key 'Sample_2/bc': has shape \(1,\), expected \(\) as in"),
        (_replace("Sample_3/a", lambda v: v[None]), r"key 'Sample_3/a': has shape \(1, 8, 6\), expected \(8, 6\) as in"),
        (_replace("Sample_2/a", lambda v: "group"), r"key 'Sample_2/a': is not a numeric dataset"),  # was AttributeError
        (_replace("Sample_1/u", lambda v: np.array([b"x"] * 48).reshape(8, 6)), r"key 'Sample_1/u': is not a numeric"),
        (_replace("Sample_3", lambda v: np.zeros(3)), r"key 'Sample_3': has members none \(not a group\)"),
    ],
)  # fmt: skip
def test_a_helmholtz_file_is_checked_in_every_sample_group_when_opened(tmp_path, change, message):
    """Only Sample_0 was checked when the file was opened: a later sample with a missing member
    failed only when read, one stored transposed was read as a scrambled grid without an
    error, a group in place of a member raised AttributeError. Every group's members, shapes
    and types are checked from the file's metadata now, and the first bad one is named."""
    path = tmp_path / "Helmholtz.h5"
    vals = _helmholtz_file(path)
    np.testing.assert_array_equal(sd.open(path).read_static([3])[0, 2], vals["u"][3])  # good
    with h5py.File(path, "a") as f:
        change(f)
    for kwargs in ({}, {"layout": "poseidon-helmholtz"}, {"in_memory": True}):
        with pytest.raises(sd.DataFormatError, match=message):
            sd.open(path, **kwargs)


# -- lazy xarray ----------------------------------------------------------------------------------
def test_to_xarray_is_lazy(tmp_path, monkeypatch):
    vals = write_well_file(tmp_path / "example.hdf5")
    ds = sd.open(tmp_path / "example.hdf5")
    calls = []
    real = sd.H5Dataset._read  # what read() and the xarray view read through

    def counting(self, samples, steps, fields, space, dtype):
        out = real(self, samples, steps, fields, space, dtype)
        calls.append(out.size)
        return out

    monkeypatch.setattr(sd.H5Dataset, "_read", counting)
    xa = ds.to_xarray()
    assert calls == []  # building the Dataset reads no field values
    assert xa["velocity_y"].dims == ("sample", "time", "x", "y")
    v = xa["velocity_y"].isel(sample=2, time=slice(1, 3), y=1).values
    np.testing.assert_array_equal(v, vals["velocity"][2, 1:3, :, 1, 1])
    assert calls == [2 * 8]  # exactly the 16 indexed values were read
    np.testing.assert_array_equal(xa["x"].values, np.linspace(0, 1, 8).astype(np.float32))


def test_coordinates_that_vary_per_sample_are_not_flattened_into_one_grid(tmp_path):
    # The Well lets a dimension vary per sample (dimensions/x (n, nx), sample_varying): the
    # grid points were built from the flattened (n * nx,) array, and Windows(with_coords=True)
    # gave "x" of shape (2, 24, 4) beside an input of (C, 8, 4)
    path = tmp_path / "w.hdf5"
    vals = write_well_file(path, n=3, t=6, nx=8, ny=4, extras=False)
    ds = sd.open(path)
    xx, yy = np.meshgrid(ds.coords["x"], ds.coords["y"], indexing="ij")
    np.testing.assert_array_equal(ds.grid_points(), np.stack([xx, yy], -1))
    with h5py.File(path, "a") as f:
        del f["dimensions/x"]
        f["dimensions/x"] = np.stack([np.linspace(0, 1 + i, 8) for i in range(3)])
        f["dimensions/x"].attrs["sample_varying"] = True
    ds = sd.open(path)
    with pytest.raises(
        ValueError, match=r"coordinates of axis 'x' vary per sample \(shape \(3, 8\)\)"
    ):
        ds.grid_points()
    with pytest.raises(ValueError, match="vary per sample"):
        sd.Windows(ds, with_coords=True)
    item = sd.Windows(ds, 2, 1)[4]  # sample 1, start 0: still read
    np.testing.assert_array_equal(item["input"].numpy()[0], vals["density"][1, 0])


def _replace_coordinate(path, values, sample, time):
    with h5py.File(path, "a") as f:
        del f["dimensions/x"]
        f["dimensions/x"] = values
        f["dimensions/x"].attrs["sample_varying"] = sample
        f["dimensions/x"].attrs["time_varying"] = time


def test_the_wells_time_varying_coordinates_and_scalars_are_on_the_time_axis(tmp_path):
    # a time-varying coordinate (T, nx) was taken for a per-sample one: to_xarray labelled its
    # rows as samples (T == n_trajectories, below) or failed in xarray ("conflicting sizes for
    # dimension 'sample'"); a time-varying scalar got a dim of its own, not 'time'
    pytest.importorskip("xarray")
    for n in (6, 3):  # T == n, T != n
        path = tmp_path / f"w{n}.hdf5"
        vals = write_well_file(path, n=n, t=6, nx=8, ny=4, extras=False)
        x_t = np.stack([np.linspace(0, 1 + k, 8) for k in range(6)]).astype(np.float32)
        _replace_coordinate(path, x_t, sample=False, time=True)
        ds = sd.open(path)
        np.testing.assert_array_equal(ds.coords["x"], x_t)
        xa = ds.to_xarray()
        assert "x_per_sample" not in xa.coords and xa["x_per_step"].dims == ("time", "x")
        np.testing.assert_array_equal(xa["x_per_step"].sel(time=ds.time[4]).values, x_t[4])
        assert xa["param_gamma_t"].dims == ("sample", "time")
        for i in range(n):  # every sample holds the stored series, step by step
            np.testing.assert_array_equal(xa["param_gamma_t"][i].values, vals["gamma_t"])
        np.testing.assert_array_equal(
            xa["param_gamma_t"].sel(time=ds.time[2]).values, [vals["gamma_t"][2]] * n
        )
        assert xa["param_Re"].dims == ("sample",)  # a scalar that does not vary in time
        np.testing.assert_array_equal(xa["param_Re"].values, [100.0] * n)
        with pytest.raises(ValueError, match=r"axis 'x' vary per time step \(shape \(6, 8\)\)"):
            ds.grid_points()
        ds.close()
    # varying per sample and time step: (n, T, nx)
    x_nt = np.stack([x_t * (1 + i) for i in range(3)])
    _replace_coordinate(path, x_nt, sample=True, time=True)
    with sd.open(path) as ds:
        xa = ds.to_xarray()
        assert xa["x_per_sample"].dims == ("sample", "time", "x")
        np.testing.assert_array_equal(xa["x_per_sample"].isel(sample=2, time=5).values, x_nt[2, 5])
        with pytest.raises(ValueError, match="vary per sample and time step"):
            ds.grid_points()
    # a shape that is not what the flags say is refused naming the key, as fields are
    _replace_coordinate(path, x_t, sample=True, time=False)
    with pytest.raises(sd.DataFormatError) as e:
        sd.open(path)
    assert str(e.value) == (
        f"{path}: key 'dimensions/x': has shape (6, 8), expected (3, 8) (sample_varying=True, "
        "time_varying=False)"
    )
    _replace_coordinate(path, x_t[0], sample=False, time=False)
    sd.open(path).close()
    with h5py.File(path, "a") as f:
        del f["scalars/gamma_t"]
        f["scalars/gamma_t"] = vals["gamma_t"][:5]
        f["scalars/gamma_t"].attrs["sample_varying"] = False
        f["scalars/gamma_t"].attrs["time_varying"] = True
    with pytest.raises(sd.DataFormatError) as e:
        sd.open(path)
    assert str(e.value) == (
        f"{path}: key 'scalars/gamma_t': has shape (5,), expected (6,) (sample_varying=False, "
        "time_varying=True)"
    )


def test_the_well_array_valued_simulation_parameter_is_one_row_per_sample(tmp_path):
    # an array-valued simulation parameter (f.attrs['L'] = [1, 2]) was reported as a damaged
    # file ("could not broadcast input array from shape (2,) into shape (3,)")
    path = tmp_path / "w.hdf5"
    write_well_file(path)
    with h5py.File(path, "a") as f:
        f.attrs["simulation_parameters"] = ["Re", "L"]
        f.attrs["L"] = np.array([1.0, 2.5])
    params = sd.open(path).params
    np.testing.assert_array_equal(params["L"], [[1.0, 2.5]] * 3)
    np.testing.assert_array_equal(params["Re"], [100.0] * 3)


def test_the_well_dim_varying_of_the_wrong_length_names_the_field(tmp_path):
    # dim_varying with one flag for a 2-D file raised a bare IndexError ("list index out of
    # range") from open()
    path = tmp_path / "w.hdf5"
    write_well_file(path)
    with h5py.File(path, "a") as f:
        f["t0_fields/density"].attrs["dim_varying"] = np.array([True])
    with pytest.raises(
        sd.DataFormatError, match=r"key 't0_fields/density': attribute 'dim_varying'"
    ):
        sd.open(path)


@pytest.mark.parametrize(
    "name, dims",
    [
        ("t2m", ("time", "level", "lat", "lon")),  # a climate file: 4-D, no main variable
        ("vorticity", ("member", "time", "channel", "x", "y")),  # 5-D, but not a main name
    ],
)
def test_a_netcdf_file_without_poseidons_main_variable_is_an_unknown_layout(tmp_path, name, dims):
    # any NetCDF-4 file with any 4-D or 5-D float variable was read as 'poseidon-netcdf'
    xr = pytest.importorskip("xarray")
    pytest.importorskip("netCDF4")
    a = _r(*(2, 3, 4, 5, 6)[: len(dims)])
    xr.Dataset({name: (dims, a)}).to_netcdf(tmp_path / "f.nc", engine="netcdf4")
    with pytest.raises(sd.DataFormatError, match=r"unknown layout: top-level keys .*" + name):
        sd.open(tmp_path / "f.nc")
    # the same values under Poseidon's main name, [N, T, C, H, W], are Poseidon data
    if len(dims) == 5:
        xr.Dataset({"velocity": (dims, a)}).to_netcdf(tmp_path / "g.nc", engine="netcdf4")
        ds = sd.open(tmp_path / "g.nc")
        assert ds.layout == "poseidon-netcdf" and ds.field_names == ["c0", "c1", "c2", "c3"]
        np.testing.assert_array_equal(ds.read(slice(None)), a)


def test_validate_checks_an_external_layout_as_open_reads_it_and_finds_nan(tmp_path):
    """validate() gave a file of another layout the five missing root attributes of sciml's
    layout, and its NaN were found only when a run read them; it now checks such a file as
    open() reads it and names the dataset and the index of the first NaN / inf in each."""
    cfd = tmp_path / "2D_CFD.hdf5"
    vals = {k: _r(3, 4, 8, 6) for k in ("density", "pressure", "Vx", "Vy")}
    with h5py.File(cfd, "w") as f:
        for k, v in vals.items():
            f[k] = v
        f["x-coordinate"], f["y-coordinate"] = np.linspace(0, 1, 8), np.linspace(0, 1, 6)
        f["t-coordinate"] = np.linspace(0, 1, 5)
    assert sd.validate(cfd) == []
    with h5py.File(cfd, "a") as f:
        f["Vx"][2, 1, 5, 0] = np.nan
        f["pressure"][1, 3, 0, 2] = -np.inf
        f["y-coordinate"][4] = np.nan
    assert sd.validate(cfd) == [
        f"{cfd}: pdebench-cfd file: coordinate 'y' has non-finite value nan at index (4,); "
        "expected finite coordinates",
        f"{cfd}: pdebench-cfd file: dataset 'pressure' has non-finite value -inf at index "
        "(1, 3, 0, 2); expected finite values",
        f"{cfd}: pdebench-cfd file: dataset 'Vx' has non-finite value nan at index (2, 1, 5, 0); "
        "expected finite values",
    ]
    assert len(sd.validate(cfd, scan_values=False)) == 1  # the coordinate only
    seeds = tmp_path / "seeds.h5"
    _seed_file(seeds, ["0", "1", "2"])
    with h5py.File(seeds, "a") as f:
        f["2/data"][1, 3, 0] = np.inf
    assert sd.validate(seeds) == [
        f"{seeds}: pdebench-seed-groups file: dataset '2/data' has non-finite value inf at index "
        "(1, 3, 0); expected finite values"
    ]
    well = tmp_path / "well.hdf5"
    write_well_file(well)
    assert sd.validate(well) == []
    with h5py.File(well, "a") as f:
        f["t1_fields/velocity"][1, 2, 3, 0, 1] = np.nan
    (problem,) = sd.validate(well)
    assert problem == (
        f"{well}: the-well file: dataset 't1_fields/velocity' has non-finite value nan at index "
        "(1, 2, 3, 0, 1); expected finite values"
    )
    with pytest.raises(sd.DataFormatError, match=re.escape(problem.removeprefix(f"{well}: "))):
        sd.check(well)
    with h5py.File(well, "a") as f:  # what open() refuses, in open()'s words
        del f["t1_fields/velocity"]
        f["t1_fields/velocity"] = _r(3, 6, 8, 4, 3)
        _flags(f["t1_fields/velocity"])
    (problem,) = sd.validate(well)
    with pytest.raises(sd.DataFormatError) as e:
        sd.open(well)
    assert problem == str(e.value) and "key 't1_fields/velocity'" in problem


def test_the_well_refuses_a_scalar_that_disagrees_with_the_root_parameter_of_its_name(tmp_path):
    # the scalar replaced the root attribute silently: a NaN root 'Re' read as scalars/Re = 100
    well = tmp_path / "well.hdf5"
    write_well_file(well, extras=False)
    ds = sd.open(well)  # root Re = 100.0 (float64) and scalars/Re = [100.0] (float32) agree
    np.testing.assert_array_equal(ds.params["Re"], [100.0] * 3)
    for root, shown in ((np.nan, "nan"), (101.0, "101.0")):
        with h5py.File(well, "a") as f:
            f.attrs["Re"] = root
        want = (
            f"{well}: parameter 'Re' comes from both the root attribute 'Re' "
            f"(listed in simulation_parameters) = {shown} and 'scalars/Re' = 100.0; expected "
            "one value, or distinct names"
        )
        with pytest.raises(sd.DataFormatError) as e:
            sd.open(well)
        assert str(e.value) == want
        assert sd.validate(well) == [want]
    with h5py.File(well, "a") as f:  # distinct names: each reads its own value
        f.attrs["simulation_parameters"] = ["Re_root"]
        f.attrs["Re_root"] = 101.0
    ds = sd.open(well)
    np.testing.assert_array_equal(ds.params["Re"], [100.0] * 3)
    np.testing.assert_array_equal(ds.params["Re_root"], [101.0] * 3)


def test_validate_finds_nan_in_the_wells_scalars_and_simulation_parameters(tmp_path):
    # validate scanned the fields only: a NaN scalar (a parameter of ds.params) passed it
    well = tmp_path / "well.hdf5"
    vals = write_well_file(well, extras=False)
    with h5py.File(well, "a") as f:
        f["scalars/gamma_t"][4] = np.inf  # time-varying, not sample-varying: every sample
        f["scalars/Re"][0] = np.nan  # neither sample- nor time-varying: one value for all
        f.attrs["Re"] = np.nan  # the root parameter of that name agrees (else a clash)
    ds = sd.open(well)  # a structure check: values are scanned by validate only
    g = vals["gamma_t"]
    np.testing.assert_array_equal(ds.params["gamma_t"][1, 3:], [g[3], np.inf, g[5]])
    np.testing.assert_array_equal(ds.params["Re"], [np.nan] * 3)
    assert sd.validate(well) == [
        f"{well}: the-well file: parameter 'Re' has non-finite value nan at sample 0, index (); "
        "expected finite values",
        f"{well}: the-well file: parameter 'gamma_t' has non-finite value inf at sample 0, "
        "index (4,); expected finite values",
    ]
    assert sd.validate(well, scan_values=False) == []


def test_the_well_field_stored_with_a_length_one_axis_reads_as_welldataset_tiles_it(tmp_path):
    """A field constant along y stored (n, t, nx, 1), the storage WellDataset's _pad_axes tiles
    over y, was refused ('has shape (3, 6, 8, 1), expected (3, 6, 8)'); the spec's (n, t, nx)
    still reads, and both broadcast over y as WellDataset does."""
    well = pytest.importorskip("the_well.data")
    (tmp_path / "train").mkdir()
    path = tmp_path / "train" / "example.hdf5"
    vals = write_well_file(path, extras=False)
    tracer = _r(3, 6, 8, 1)
    with h5py.File(path, "a") as f:
        g0 = f["t0_fields"]
        g0.attrs["field_names"] = ["density", "tracer"]
        g0["tracer"] = tracer
        _flags(g0["tracer"], dims=(True, False))
    ds = sd.open(path)
    assert ds.field_names[:2] == ["density", "tracer"]
    out = ds.read([2, 0], slice(1, 6, 2))[:, :, 1]  # (n, t, x, y)
    want = np.broadcast_to(tracer[[2, 0]][:, 1:6:2], (2, 3, 8, 4))
    np.testing.assert_array_equal(out, want)
    ours = sd.Windows(ds, n_in=2, n_out=1, fields=["density", "tracer"], flatten_time=False)
    mine = {k: ours[k]["input"].numpy() for k in (0, 5, len(ours) - 1)}  # (Ti, C, X, Y)
    ds.close()  # (why) HDF5 refuses a second open of the file with other flags
    ref = well.WellDataset(
        path=str(tmp_path / "train"), n_steps_input=2, n_steps_output=1,
        use_normalization=False, return_grid=False, boundary_return_type=None,
    )  # fmt: skip
    assert len(ref) == len(ours)
    for k, m in mine.items():
        r = ref[k]["input_fields"].numpy()  # (Ti, X, Y, C): density, tracer, velocity, stress
        np.testing.assert_array_equal(np.moveaxis(m, 1, -1), r[..., :2])
    assert vals["density"].shape == (3, 6, 8, 4)
    with h5py.File(path, "a") as f:  # the spec's storage: the axis left out
        del f["t0_fields/tracer"]
        f["t0_fields/tracer"] = tracer[..., 0]
        _flags(f["t0_fields/tracer"], dims=(True, False))
    np.testing.assert_array_equal(sd.open(path).read([2, 0], slice(1, 6, 2))[:, :, 1], want)


def test_an_xarray_export_is_refused_not_read_as_a_poseidon_file(tmp_path):
    """A netCDF file written from to_xarray() with a field named 'solution' opened as a
    Poseidon file: 'solution' became 'c0' and the field 'v' was dropped without a word."""
    pytest.importorskip("netCDF4")
    u = _r(3, 4, 8, 5)
    src = sd.write(
        tmp_path / "f.h5", fields={"solution": u, "v": 2 * u}, static_fields={"a": u[:, 0]}
    )
    xa = sd.open(src).to_xarray()
    xa.to_netcdf(tmp_path / "f.nc")
    xr = pytest.importorskip("xarray")
    with xr.open_dataset(tmp_path / "f.nc") as back:  # the export itself holds the values
        np.testing.assert_array_equal(back["v"].values, 2 * u)
        np.testing.assert_array_equal(back["a"].values, u[:, 0])
    message = (
        f"{tmp_path / 'f.nc'}: is an xarray export of a sciml data set (root attributes "
        f"sciml_layout='sciml', sciml_source='{src}'), which sciml.data.open does not read"
    )
    with pytest.raises(sd.DataFormatError, match=re.escape(message)):
        sd.open(tmp_path / "f.nc")
    (problem,) = sd.validate(tmp_path / "f.nc")
    assert problem.startswith(message)
    # an export written before the attributes were sciml_layout / sciml_source is refused too
    with h5py.File(tmp_path / "f.nc", "a") as f:
        for k in ("layout", "source"):
            f.attrs[k] = f.attrs[f"sciml_{k}"]
            del f.attrs[f"sciml_{k}"]
    message = message.replace("sciml_layout=", "layout=").replace("sciml_source=", "source=")
    with pytest.raises(sd.DataFormatError, match=re.escape(message)):
        sd.open(tmp_path / "f.nc")
    # an export of a selection of samples keeps their indices, and is refused as well
    xa.isel(sample=[2, 0]).to_netcdf(tmp_path / "g.nc")
    with pytest.raises(sd.DataFormatError, match="is an xarray export of a sciml data set"):
        sd.open(tmp_path / "g.nc")


def test_a_netcdf_file_with_a_sample_dimension_and_source_attribute_is_no_export(tmp_path):
    # any file with root attributes layout (a layout's name) and source and a top-level
    # 'sample' was refused as an xarray export: here a Poseidon file whose samples run along
    # the NetCDF dimension 'sample' (a float placeholder in HDF5, not a variable), with CF's
    # 'source'. An export's 'sample' is its integer coordinate variable of sample indices
    netCDF4 = pytest.importorskip("netCDF4")
    data = _r(3, 4, 2, 8, 6)
    for k, sample_values in enumerate((None, np.array([0.5, 1.5, 2.5]), np.array([0, 0, 1]))):
        path = tmp_path / f"CE-RP-{k}.nc"
        with netCDF4.Dataset(path, "w", format="NETCDF4") as nc:
            for name, size in zip(("sample", "time", "channel", "x", "y"), data.shape):
                nc.createDimension(name, size)
            if sample_values is not None:  # a coordinate variable, but no sample indices
                nc.createVariable("sample", sample_values.dtype.str[1:], ("sample",))[:] = (
                    sample_values
                )
            nc.createVariable("data", "f4", ("sample", "time", "channel", "x", "y"))[:] = data
            nc.source, nc.layout = "CFD run 3", "poseidon-netcdf"
        ds = sd.open(path)
        assert ds.layout == "poseidon-netcdf" and ds.field_names == ["c0", "c1"]
        np.testing.assert_array_equal(ds.read(slice(None)), data)
        assert sd.validate(path) == []
