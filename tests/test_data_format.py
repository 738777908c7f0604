"""sciml's own layout: exact round trips, atomic writes, the validator and error messages."""

from __future__ import annotations

import os
import re
from pathlib import Path

import h5py
import numpy as np
import pytest

import sciml.data as sd

RNG = np.random.default_rng(1)


def _r(*shape: int) -> np.ndarray:
    return RNG.standard_normal(shape).astype(np.float32)


def _small(path, **kw):
    vals = {"u": _r(4, 6, 8, 5), "v": _r(4, 6, 8, 5), "a": _r(4, 8, 5)}
    sd.write(
        path,
        fields={"u": vals["u"], "v": vals["v"]},
        static_fields={"a": vals["a"]},
        coords={"x": np.linspace(0, 1, 8), "y": np.linspace(0, 2, 5)},
        time=np.linspace(0, 0.5, 6),
        params={"nu": np.array([0.1, 0.2, 0.3, 0.4]), "k": np.arange(8.0).reshape(4, 2)},
        boundary_conditions={"x": "periodic", "y": {"type": "dirichlet", "value": 1.5}},
        attrs={
            "pde": "heat",
            "units": {"u": "K", "v": "K"},
            "generator": "sciml.datasets.heat",
            "generator_settings": {"dt": 1e-3, "scheme": "cn"},
        },
        **kw,
    )
    return vals


def test_round_trip_exact(tmp_path):
    vals = _small(tmp_path / "f.h5")
    ds = sd.open(tmp_path / "f.h5")
    assert ds.layout == "sciml" and len(ds) == 4
    assert (ds.n_steps, ds.spatial_shape, ds.spatial_dims) == (6, (8, 5), ("x", "y"))
    out = ds.read(slice(None))
    assert out.dtype == np.float32 and out.flags.c_contiguous and out.shape == (4, 6, 2, 8, 5)
    np.testing.assert_array_equal(out[:, :, 0], vals["u"])
    np.testing.assert_array_equal(out[:, :, 1], vals["v"])
    np.testing.assert_array_equal(ds.read_static([3, 1])[:, 0], vals["a"][[3, 1]])
    # time / space subsampling and channel selection
    np.testing.assert_array_equal(
        ds.read([2], slice(1, 6, 2), ["v"], space=(slice(None, None, 2), slice(1, 4)))[0, :, 0],
        vals["v"][2, 1:6:2, ::2, 1:4],
    )
    np.testing.assert_array_equal(ds.params["k"], np.arange(8.0).reshape(4, 2))
    np.testing.assert_array_equal(ds.time, np.linspace(0, 0.5, 6))
    assert ds.boundary_conditions == {"x": "periodic", "y": {"type": "dirichlet", "value": 1.5}}
    assert ds.attrs["units"] == {"u": "K", "v": "K"}
    assert ds.attrs["generator_settings"] == {"dt": 1e-3, "scheme": "cn"}
    assert ds.attrs["pde"] == "heat" and ds.attrs["format_version"] == 1
    assert sd.validate(tmp_path / "f.h5") == []
    text = sd.describe(tmp_path / "f.h5")
    assert "layout='sciml'" in text and "fields: u, v" in text and "generator_settings" in text


def test_plain_h5py_opens_beside_an_open_dataset(tmp_path):
    """A user's h5py.File(path) in the same process, before or after sciml opened the file,
    reads it (sciml's locking=False made HDF5 refuse either: "file locking flag values don't
    match")."""
    vals = _small(tmp_path / "f.h5")
    ds = sd.open(tmp_path / "f.h5")
    np.testing.assert_array_equal(ds.read([1])[0, :, 0], vals["u"][1])  # sciml holds it open
    with h5py.File(tmp_path / "f.h5", "r") as f:
        np.testing.assert_array_equal(f["fields/u"][1], vals["u"][1])
        other = sd.open(tmp_path / "f.h5")  # and the other way round
        np.testing.assert_array_equal(other.read([2])[0, :, 1], vals["v"][2])
        other.close()
    ds.close()


def test_write_keeps_float64_when_asked_and_compresses(tmp_path):
    """write() had no dtype: float64 data was always rounded to float32 on disk."""
    u = np.random.default_rng(3).standard_normal((2, 3, 8)) * (1 + 1e-12)
    sd.write(tmp_path / "d.h5", fields={"u": u}, dtype=np.float64, compression="gzip")
    sd.write(tmp_path / "s.h5", fields={"u": u})
    with h5py.File(tmp_path / "d.h5", "r") as f, h5py.File(tmp_path / "s.h5", "r") as g:
        assert f["fields/u"].dtype == np.float64 and f["fields/u"].compression == "gzip"
        np.testing.assert_array_equal(f["fields/u"][()], u)
        assert g["fields/u"].dtype == np.float32 and g["fields/u"].compression is None
        np.testing.assert_array_equal(g["fields/u"][()], u.astype(np.float32))


def test_in_memory_matches_lazy(tmp_path):
    _small(tmp_path / "f.h5")
    lazy, mem = sd.open(tmp_path / "f.h5"), sd.open(tmp_path / "f.h5", in_memory=True)
    assert mem.in_memory
    np.testing.assert_array_equal(
        lazy.read([1, 3], slice(0, 6, 5)), mem.read([1, 3], slice(0, 6, 5))
    )
    np.testing.assert_array_equal(lazy.read_static(2, space=2), mem.read_static(2, space=2))


def test_point_cloud(tmp_path):
    pts, u = _r(30, 2), _r(3, 4, 30)
    sd.write(tmp_path / "p.h5", fields={"u": u}, coords={"points": pts})
    ds = sd.open(tmp_path / "p.h5")
    assert ds.is_points and ds.spatial_shape == (30,)
    np.testing.assert_array_equal(ds.read(slice(None))[:, :, 0], u)
    np.testing.assert_array_equal(ds.coords["points"], pts)
    item = sd.PointSamples(ds, inputs=["u"], targets=["u"], n_points=7, in_step=0, out_step=3)[1]
    assert item["x"].shape == (7, 2) and item["target"].shape == (7, 1)
    rows = [int(np.flatnonzero((pts == x).all(1))[0]) for x in item["x"].numpy()]
    np.testing.assert_array_equal(item["target"][:, 0].numpy(), u[1, 3, rows])


def test_point_cloud_coordinates_follow_the_spatial_selection(tmp_path):
    # grid_points ignored `space` on a point cloud: Windows(space=2, with_coords=True) paired
    # 15 values with all 30 points, so "x" named the wrong point for every value but the first
    pts, u = _r(30, 2), _r(3, 4, 30)
    sd.write(tmp_path / "p.h5", fields={"u": u}, coords={"points": pts})
    ds = sd.open(tmp_path / "p.h5")
    for space, keep in ((2, slice(None, None, 2)), ([slice(3, 20, 4)], slice(3, 20, 4))):
        np.testing.assert_array_equal(ds.grid_points(space), pts[keep].astype(np.float32))
        item = sd.Windows(ds, space=space, with_coords=True)[0]
        np.testing.assert_array_equal(item["input"][0].numpy(), u[0, 0, keep])
        np.testing.assert_array_equal(item["x"].numpy(), pts[keep].T.astype(np.float32))
        ps = sd.PointSamples(ds, inputs=["u"], targets=["u"], space=space)[0]
        np.testing.assert_array_equal(ps["x"].numpy(), pts[keep].astype(np.float32))


def test_streaming_writer_and_atomic_replace(tmp_path):
    path = tmp_path / "big.h5"
    old = _small(path)
    u = _r(10, 3, 4)
    with sd.Writer(
        path, n_samples=10, fields=["u"], coords={"x": np.arange(4.0)}, time=[0.0, 1.0, 2.0],
        params={"nu": ()}, overwrite=True,
    ) as w:  # fmt: skip
        for i in range(0, 10, 4):
            w.write(slice(i, min(i + 4, 10)), fields={"u": u[i : i + 4]})
            # until commit the old file is untouched
            np.testing.assert_array_equal(sd.open(path).read(0)[0, :, 0], old["u"][0])
        w.write(slice(0, 10), params={"nu": np.arange(10.0)})
    np.testing.assert_array_equal(sd.open(path).read(slice(None))[:, :, 0], u)
    assert [p.name for p in tmp_path.iterdir()] == ["big.h5"]  # no temp file left


def test_failed_write_keeps_old_file(tmp_path):
    path = tmp_path / "f.h5"
    old = _small(path)
    bad = _r(4, 6, 8, 5)
    bad[2, 3, 1, 1] = np.nan
    with pytest.raises(
        sd.DataFormatError, match=r"key 'fields/u'.*non-finite value nan at sample 2"
    ):
        sd.write(path, fields={"u": bad}, overwrite=True)
    with (
        pytest.raises(sd.DataFormatError, match="not every sample was written"),
        sd.Writer(
            path, n_samples=3, fields=["u"], spatial_shape=(4,), time=[0.0], overwrite=True
        ) as w,
    ):
        w.write(0, fields={"u": _r(1, 1, 4)})
    with (
        pytest.raises(RuntimeError),
        sd.Writer(path, n_samples=1, fields=["u"], spatial_shape=(4,), time=[0.0], overwrite=True),
    ):
        raise RuntimeError("generator crashed")
    np.testing.assert_array_equal(sd.open(path).read(slice(None))[:, :, 0], old["u"])
    assert [p.name for p in tmp_path.iterdir()] == ["f.h5"]
    with pytest.raises(FileExistsError):
        sd.write(path, fields={"u": bad})


def test_interrupted_write_keeps_old_file(tmp_path):
    """A KeyboardInterrupt half-way through streaming samples (Ctrl-C during a long generation)
    leaves the old file whole and no temporary file."""
    path = tmp_path / "f.h5"
    old = _small(path)

    class Interrupting:
        def __array__(self, *args, **kwargs):
            raise KeyboardInterrupt

    with (
        pytest.raises(KeyboardInterrupt),
        sd.Writer(
            path,
            n_samples=4,
            fields=["u"],
            spatial_shape=(8, 5),
            time=np.arange(6.0),
            overwrite=True,
        ) as w,  # fmt: skip
    ):
        w.write(slice(0, 2), fields={"u": _r(2, 6, 8, 5)})
        w.write(slice(2, 4), fields={"u": Interrupting()})
    assert sorted(p.name for p in tmp_path.iterdir()) == ["f.h5"]
    np.testing.assert_array_equal(sd.open(path).read(slice(None))[:, :, 0], old["u"])


def test_writer_shape_error_names_key(tmp_path):
    with (
        pytest.raises(sd.DataFormatError) as e,
        sd.Writer(
            tmp_path / "f.h5", n_samples=4, fields=["u"], spatial_shape=(32,), time=np.arange(11.0)
        ) as w,
    ):
        w.write(slice(0, 4), fields={"u": np.zeros((4, 10, 32), np.float32)})
    assert str(e.value) == (
        f"{tmp_path / 'f.h5'}: key 'fields/u': got shape (4, 10, 32) for samples [0:4], "
        "expected (4, 11, 32)"
    )


def test_validator_lists_every_problem(tmp_path):
    path = tmp_path / "f.h5"
    _small(path)
    with h5py.File(path, "a") as f:
        del f["fields/v"]
        f["fields/v"] = np.zeros((4, 5, 8, 5), np.float32)  # one step short
        del f["coords/y"]
        f["static_fields/a"][1, 2, 3] = np.inf
        f["boundary_conditions/x"].attrs["type"] = "sticky"
    problems = sd.validate(path)
    assert any("dataset 'coords/y' is missing" in p for p in problems)
    assert any("attribute 'boundary_conditions/x@type' is 'sticky'" in p for p in problems)
    with h5py.File(path, "a") as f:
        f["coords/y"] = np.linspace(0, 2, 5)
    problems = sd.validate(path)
    assert (
        f"{path}: dataset 'fields/v' has shape (4, 5, 8, 5), expected (n_samples=4, n_steps=6, 8, 5)"
        in problems
    )
    assert any(
        "'static_fields/a' has non-finite value inf at sample 1, index (2, 3)" in p
        for p in problems
    )
    with pytest.raises(sd.DataFormatError, match="fields/v"):
        sd.open(path)


def test_nan_on_read_names_file_key_sample_step(tmp_path):
    path = tmp_path / "f.h5"
    _small(path)
    with h5py.File(path, "a") as f:
        f["fields/v"][3, 4, 0, 0] = np.nan
    ds = sd.open(path)
    ds.read(3, slice(0, 4))  # clean steps read fine
    with pytest.raises(sd.DataFormatError) as e:
        ds.read([0, 3], slice(2, 6))
    assert str(e.value).startswith(f"{path}: key 'fields/v': non-finite value in sample 3, step 4")
    assert np.isnan(sd.open(path, check_finite=False).read(3, 4)[0, 0, 1, 0, 0])


def test_missing_unknown_truncated(tmp_path):
    with pytest.raises(sd.DataFormatError, match="no such file"):
        sd.open(tmp_path / "nope.h5")
    with h5py.File(tmp_path / "other.h5", "w") as f:
        f["something"] = np.zeros(3)
    with pytest.raises(
        sd.DataFormatError,
        match=r"other\.h5: unknown layout: top-level keys \['something'\].*expected one of",
    ):
        sd.open(tmp_path / "other.h5")
    _small(tmp_path / "f.h5")
    with h5py.File(tmp_path / "f.h5", "a") as f:
        del f["static_fields/a"]
    with pytest.raises(sd.DataFormatError, match="dataset 'static_fields/a' is missing"):
        sd.open(tmp_path / "f.h5")
    _small(tmp_path / "g.h5")
    data = (tmp_path / "g.h5").read_bytes()
    (tmp_path / "g.h5").write_bytes(data[: len(data) // 2])
    with pytest.raises(
        sd.DataFormatError, match=r"g\.h5: cannot be opened as HDF5.*truncated"
    ) as e:
        sd.open(tmp_path / "g.h5")
    # the size expected is the whole file's, the size found the half left (the message gave the
    # half as the size expected)
    assert (
        f"expected a complete HDF5 file of {len(data)} bytes, found {len(data) // 2} bytes"
        in str(e.value)
    )
    with pytest.raises(KeyError, match="no field 'w'"):
        _small(tmp_path / "h.h5")
        sd.open(tmp_path / "h.h5").read(0, fields=["w"])


def test_unopenable_file_without_a_stored_size(tmp_path, monkeypatch):
    """The size expected is parsed from HDF5's own error text ("stored_eof = N"), which other
    HDF5 versions or other failures word differently: without it the message still says what was
    found and raises a DataFormatError, not an error of the parse."""
    from sciml.data import _handle

    # a truncated file whose error names no stored size (as an HDF5 that words it otherwise)
    _small(tmp_path / "g.h5")
    data = (tmp_path / "g.h5").read_bytes()
    (tmp_path / "g.h5").write_bytes(data[:1000])

    def refuse(*args, **kwargs):
        raise OSError("Unable to open file (truncated file: eof = 1000)")

    monkeypatch.setattr(_handle.h5py, "File", refuse)
    with pytest.raises(sd.DataFormatError, match="truncated file: eof = 1000") as e:
        _handle.open_h5(tmp_path / "g.h5")
    assert "expected a complete HDF5 file, found 1000 bytes -- is it truncated" in str(e.value)
    assert isinstance(e.value.__cause__, OSError)


def test_directory_foreign_file_and_short_file_each_get_their_own_message(tmp_path):
    """A directory and a file of another format were reported as "expected a complete HDF5
    file, found N bytes -- is it truncated?"; each now says what it is. A file shorter than
    HDF5's 8-byte signature (or empty) is still reported as truncated."""
    folder = tmp_path / "run.h5"
    folder.mkdir()
    with pytest.raises(sd.DataFormatError, match=r"run\.h5: is a directory; expected an HDF5"):
        sd.open(folder)

    junk = tmp_path / "junk.h5"
    junk.write_bytes(b"not an HDF5 file" * 10)  # 160 bytes; HDF5: 'file signature not found'
    with pytest.raises(
        sd.DataFormatError, match=r"junk\.h5: not an HDF5 file \(signature not"
    ) as e:
        sd.open(junk)
    assert "its 160 bytes start with b'not an H', not b'\\x89HDF\\r\\n\\x1a\\n'" in str(e.value)
    assert "truncated" not in str(e.value)

    netcdf3 = tmp_path / "classic.nc"
    netcdf3.write_bytes(b"CDF\x01" + bytes(60))
    with pytest.raises(sd.DataFormatError, match=r"start with b'CDF\\x01\\x00.*NetCDF-3"):
        sd.open(netcdf3)

    _small(tmp_path / "g.h5")
    data = (tmp_path / "g.h5").read_bytes()
    for n in (0, 4):  # HDF5 says 'signature not found' here too: the file was cut short
        (tmp_path / "g.h5").write_bytes(data[:n])
        with pytest.raises(sd.DataFormatError) as e:
            sd.open(tmp_path / "g.h5")
        assert f"expected a complete HDF5 file, found {n} bytes -- is it truncated" in str(e.value)


def test_file_without_read_permission_is_named_so(tmp_path):
    """A file the user may not read was reported as truncated; it is now named unreadable."""
    path = tmp_path / "g.h5"
    _small(path)
    path.chmod(0)
    try:
        try:
            open(path, "rb").close()
        except PermissionError:
            pass
        else:  # root (or CAP_DAC_OVERRIDE) reads it anyway
            pytest.skip("this user can read a file of mode 000 (root)")
        with pytest.raises(sd.DataFormatError, match=r"g\.h5: cannot be read: permission denied"):
            sd.open(path)
    finally:
        path.chmod(0o644)


def test_small_snapshots_are_grouped_into_chunks_of_at_least_16_kib(tmp_path):
    """One value per chunk made a 15,000-sample scalar-series file unreadable in practice; the
    chunks now group steps, then samples, and the values still round-trip exactly."""
    from sciml.data.writer import MIN_CHUNK_BYTES, chunk_shape

    assert chunk_shape(10, 3, (1024, 1024), 4) == (1, 1, 1024, 1024)  # big: one snapshot
    assert chunk_shape(10, 100, (32, 32), 4) == (1, 4, 32, 32)  # 4 KiB snapshots: 4 steps
    assert chunk_shape(15000, 192, (), 4) == (22, 192)  # a series of 768 B: 22 samples
    assert chunk_shape(5, 192, (), 4) == (5, 192)  # never larger than the dataset
    assert chunk_shape(100, None, (8,), 4) == (100, 8)  # static fields
    u, a = _r(300, 50, 3), _r(300, 3)
    path = tmp_path / "series.h5"
    with sd.Writer(
        path, n_samples=300, fields=["u"], static_fields=["a"], spatial_shape=(3,),
        time=np.arange(50.0),
    ) as w:  # fmt: skip
        for i in range(0, 300, 7):  # slices that cut across chunks
            w.write(
                slice(i, min(i + 7, 300)),
                fields={"u": u[i : i + 7]},
                static_fields={"a": a[i : i + 7]},
            )
    with h5py.File(path) as f:
        for key in ("fields/u", "static_fields/a"):
            chunk = f[key].chunks
            assert np.prod(chunk) * 4 >= MIN_CHUNK_BYTES or chunk[0] == 300
    np.testing.assert_array_equal(sd.open(path).read(slice(None))[:, :, 0], u)


def test_damaged_metadata_is_a_data_format_error_naming_the_file(tmp_path):
    """A flipped byte in an object header or a damaged JSON attribute escaped sd.open and
    sd.validate as h5py's RuntimeError / KeyError ("incorrect metadata checksum") or a
    JSONDecodeError, naming no file; they are DataFormatErrors, and so SciMLErrors."""
    from sciml.errors import SciMLError

    _small(tmp_path / "f.h5")
    good = (tmp_path / "f.h5").read_bytes()
    for name in (b"sciml_format", b"coords", b"boundary_conditions"):
        damaged = bytearray(good)
        damaged[good.find(name) + 1] ^= 0x20  # inside a checksummed object header
        path = tmp_path / f"bad_{name.decode()}.h5"
        path.write_bytes(bytes(damaged))
        for fn in (sd.open, sd.validate, lambda p: sd.open(p, in_memory=True)):
            with pytest.raises(SciMLError) as e:
                fn(path)
            assert isinstance(e.value, sd.DataFormatError)
            assert str(e.value).startswith(f"{path}: ")
            assert "checksum" in str(e.value) and "expected an intact HDF5" in str(e.value)
    _small(tmp_path / "j.h5")
    with h5py.File(tmp_path / "j.h5", "a") as f:
        f.attrs["generator_settings"] = '{"dt": 0.001, "scheme" "cn"}'  # a damaged JSON attr
    with pytest.raises(sd.DataFormatError, match=r"j\.h5: cannot be read \(JSONDecodeError"):
        sd.open(tmp_path / "j.h5")
    assert issubclass(sd.DataFormatError, ValueError)  # what callers caught before


def test_a_failed_commit_leaves_no_temporary_file(tmp_path):
    """Writing onto a folder failed in os.replace at commit, after every sample was written,
    and left the whole temporary file ('dir.h5.tmp<pid>-<hex>') beside it."""
    (tmp_path / "dir.h5").mkdir()
    with pytest.raises(IsADirectoryError, match=r"dir\.h5: is a folder; expected the path of a"):
        sd.write(tmp_path / "dir.h5", fields={"u": _r(2, 3, 4)}, overwrite=True)
    assert sorted(p.name for p in tmp_path.iterdir()) == ["dir.h5"]
    # the folder appears while the file is being written: the commit fails, nothing is left
    w = sd.Writer(tmp_path / "late.h5", n_samples=1, fields=["u"], spatial_shape=(4,), time=[0.0])
    w.write(0, fields={"u": _r(1, 1, 4)})
    (tmp_path / "late.h5").mkdir()
    with pytest.raises(OSError):
        w.close()
    assert sorted(p.name for p in tmp_path.iterdir()) == ["dir.h5", "late.h5"]
    assert (tmp_path / "late.h5").is_dir() and not any((tmp_path / "late.h5").iterdir())


def _h5_attrs(path):
    """The file's own attributes, decoded independently of sciml (h5py + json)."""
    import json

    with h5py.File(path) as f:
        a = dict(f.attrs)
    json_keys = [k.decode() if isinstance(k, bytes) else str(k) for k in a["json_attrs"]]
    out = {}
    for k, v in a.items():
        if k in ("sciml_format", "n_samples", "n_steps", "spatial_dims", "grid", "field_names",
                 "static_field_names", "json_attrs"):  # fmt: skip
            continue
        v = v.decode() if isinstance(v, bytes) else v
        out[k] = json.loads(v) if k in json_keys else v
    with h5py.File(path) as f:  # one group per axis: @type, other scalars, array datasets
        bcs = {}
        for axis, g in f["boundary_conditions"].items():
            entry = {k: v.decode() if isinstance(v, bytes) else np.asarray(v).tolist()
                     for k, v in g.attrs.items()}  # fmt: skip
            entry.update({k: d[()].tolist() for k, d in g.items()})
            bcs[axis] = entry["type"] if len(entry) == 1 else entry
    if bcs:
        out["sciml_boundary_conditions"] = bcs
    return out


def test_xarray_attributes_survive_netcdf_exactly(tmp_path):
    """to_xarray stored dict and list attributes as str() (a Python repr json cannot read) and
    kept bools, which to_netcdf refuses ("illegal data type for attribute"); they are JSON,
    listed in the 'json_attrs' attribute, and come back equal after a netCDF round trip."""
    import json

    import xarray as xr

    from sciml.data.generators import generate

    path = generate(
        "navier_stokes", n=2, resolution=16, out=tmp_path / "ns.h5", T=0.5, record_steps=1
    )
    extra = tmp_path / "extra.h5"
    with sd.Writer(extra, n_samples=1, fields=["u"], spatial_shape=(3,), time=[0.0],
                   attrs={"flag": True, "sizes": [1, 2], "nested": {"a": [1.5, None]},
                          "k": np.arange(3.0), "units": {"u": "m/s"}},
                   boundary_conditions={"x0": {"type": "dirichlet", "value": np.array([0.5, 2.0]),
                                               "scale": 3}}) as w:  # fmt: skip
        w.write(0, fields={"u": _r(1, 1, 3)})
    for p in (path, extra):
        xa = sd.open(p).to_xarray()
        xa.to_netcdf(tmp_path / "x.nc")
        with xr.open_dataset(tmp_path / "x.nc") as back:
            attrs = dict(back.attrs)
        json_keys = json.loads(attrs.pop("json_attrs"))
        got = {k: json.loads(v) if k in json_keys else v for k, v in attrs.items()}
        want = _h5_attrs(p)
        assert got.pop("sciml_source") == str(p) and got.pop("sciml_layout") == "sciml"
        assert got.keys() == want.keys()
        for k, v in want.items():
            np.testing.assert_array_equal(got[k], v, err_msg=k)
            assert np.asarray(got[k]).dtype.kind == np.asarray(v).dtype.kind, k
    assert got["flag"] is True and got["nested"] == {"a": [1.5, None]}
    # the boundary conditions, kept in a group of the file, are exported too (they were dropped;
    # an array value inside one became its str())
    assert got["sciml_boundary_conditions"] == {
        "x0": {"type": "dirichlet", "value": [0.5, 2.0], "scale": 3}
    }


@pytest.mark.parametrize("dtype", [np.float16, np.float32, np.float64])
def test_xarray_values_coords_and_dtypes_survive_netcdf_exactly(tmp_path, dtype):
    """to_xarray read every field as float32: a float64 file came out rounded (1 + 1e-12 -> 1).
    Fields are float64 where stored so, float32 otherwise (float16 widens exactly; netCDF has no
    float16); values, coordinates and time equal h5py's, before and after to_netcdf."""
    import xarray as xr

    rng = np.random.default_rng(3)
    u = 1 + rng.standard_normal((3, 4, 5, 2)) * (1e-3 if dtype == np.float16 else 1e-12)
    a = rng.standard_normal((3, 5, 2)) * (1e3 if dtype == np.float16 else 1e5)
    path = tmp_path / "d.h5"
    with sd.Writer(path, n_samples=3, fields=["u"], static_fields=["a"], dtype=dtype,
                   coords={"x": np.linspace(0, 1, 5), "y": np.array([0.1, 0.3])},
                   time=np.array([0.0, 0.25, 0.5, 1.0]), params={"nu": ()}) as w:  # fmt: skip
        w.write(slice(0, 3), fields={"u": u.astype(dtype)}, static_fields={"a": a.astype(dtype)},
                params={"nu": np.array([0.1, 0.2, 0.3])})  # fmt: skip
    with h5py.File(path) as f:
        raw = {k: f[k][()] for k in ("fields/u", "static_fields/a", "coords/x", "coords/y",
                                     "time", "params/nu")}  # fmt: skip
    want = np.float64 if dtype == np.float64 else np.float32
    assert raw["fields/u"].dtype == dtype
    xa = sd.open(path).to_xarray()
    xa.to_netcdf(tmp_path / "d.nc")
    with xr.open_dataset(tmp_path / "d.nc") as back:
        for d in (xa, back.load()):
            for name, key in (("u", "fields/u"), ("a", "static_fields/a")):
                assert d[name].dtype == want
                np.testing.assert_array_equal(d[name].values, raw[key].astype(want))
            np.testing.assert_array_equal(d["u"].isel(sample=2, time=1, y=1).values,
                                          raw["fields/u"][2, 1, :, 1].astype(want))  # fmt: skip
            for name, key in (("x", "coords/x"), ("y", "coords/y"), ("time", "time"),
                              ("param_nu", "params/nu")):  # fmt: skip
                assert d[name].dtype == raw[key].dtype
                np.testing.assert_array_equal(d[name].values, raw[key])
    if dtype == np.float64:
        assert not np.array_equal(raw["fields/u"].astype(np.float32), raw["fields/u"])


def test_values_that_overflow_the_storage_dtype_are_refused_at_write(tmp_path):
    """float64 values past float32's range (or float32 past float16's) were written as inf: the
    commit succeeded, the old file was replaced, and the new one failed on its first read."""
    path = tmp_path / "f.h5"
    old = _small(path)
    u = _r(4, 6, 8, 5).astype(np.float64)
    u[3, 2, 1, 4] = 1e39
    with pytest.raises(sd.DataFormatError, match=r"key 'fields/u': value 1e\+39 at sample 3, "
                       r"index \(2, 1, 4\) overflows the storage dtype float32"):  # fmt: skip
        sd.write(path, fields={"u": u}, overwrite=True)
    np.testing.assert_array_equal(sd.open(path).read(slice(None))[:, :, 0], old["u"])
    with (
        pytest.raises(sd.DataFormatError, match=r"'static_fields/a': value 70000\.0 at sample 1"),
        sd.Writer(
            path,
            n_samples=2,
            static_fields=["a"],
            spatial_shape=(3,),
            dtype=np.float16,
            overwrite=True,
        ) as w,  # fmt: skip
    ):
        w.write(slice(0, 2), static_fields={"a": np.array([[1, 2, 3], [4, 7e4, 6]], np.float32)})
    assert sorted(p.name for p in tmp_path.iterdir()) == ["f.h5"]
    # the same values in float64 storage are kept exactly
    with sd.Writer(tmp_path / "g.h5", n_samples=4, fields=["u"], spatial_shape=(8, 5),
                   time=np.arange(6.0), dtype=np.float64) as w:  # fmt: skip
        w.write(slice(0, 4), fields={"u": u})
    with h5py.File(tmp_path / "g.h5") as f:
        np.testing.assert_array_equal(f["fields/u"][()], u)


def test_a_folder_that_cannot_be_written_is_named(tmp_path):
    """h5py's error named only 'NAME.tmp<pid>-<hex>' in its own words; the error names the
    destination and the folder, keeps the OSError type and errno, and nothing is left behind."""
    import os
    import stat

    folder = tmp_path / "ro"
    folder.mkdir()
    folder.chmod(stat.S_IRUSR | stat.S_IXUSR)
    try:
        if os.access(folder, os.W_OK):  # root writes anywhere: sysfs refuses even root
            folder = Path("/sys")
            try:
                (folder / "sciml-probe").touch()
            except OSError:
                pass
            else:
                (folder / "sciml-probe").unlink()
                pytest.skip("no folder this user cannot write to")
        with pytest.raises(PermissionError) as e:
            sd.write(folder / "f.h5", fields={"u": _r(1, 2, 3)})
        assert e.value.errno == 13
        assert str(e.value).startswith(f"[Errno 13] {folder / 'f.h5'}: cannot create its ")
        assert f"in {folder} (" in str(e.value) and "expected a folder you can write to" in str(
            e.value
        )
        assert not list(folder.glob("f.h5*"))
    finally:
        (tmp_path / "ro").chmod(stat.S_IRWXU)


_SIGTERM_CHILD = """
import signal, sys, time
import numpy as np
import sciml.data as sd

path, mode = sys.argv[1], sys.argv[2]
if mode == "user-exit":
    def handler(signum, frame):
        print("user handler", flush=True)
        sys.exit(3)
    signal.signal(signal.SIGTERM, handler)
elif mode == "user-log":
    seen = []
    def handler(signum, frame):
        seen.append(signum)
    signal.signal(signal.SIGTERM, handler)
before = signal.getsignal(signal.SIGTERM)
with sd.Writer(path, n_samples=2, fields=["u"], spatial_shape=(8, 5), time=np.arange(6.0),
               overwrite=True) as w:
    w.write(0, fields={"u": np.full((1, 6, 8, 5), 7.0)})
    print("ready", flush=True)
    for _ in range(600):  # until the parent's SIGTERM arrives (or 60 s)
        time.sleep(0.1)
        if mode == "user-log" and seen:
            break
    w.write(1, fields={"u": np.full((1, 6, 8, 5), 7.0)})
assert signal.getsignal(signal.SIGTERM) is before, "the previous handler was not restored"
print("committed", flush=True)
"""


@pytest.mark.parametrize(
    "mode",  # each child imports torch (2-10 s): the user-handler cases run with the slow tests
    [
        "default",
        pytest.param("user-exit", marks=pytest.mark.slow),
        pytest.param("user-log", marks=pytest.mark.slow),
    ],
)
def test_sigterm_during_a_write_leaves_no_temporary_file(tmp_path, mode, blocked_child):
    """A SIGTERM (kill, a scheduler's time limit) in the middle of a write killed the process
    without unwinding it, leaving the whole 'f.h5.tmp<pid>-<hex>' beside the old file. Now the
    temporary file goes and the old file stays; the process still dies of SIGTERM; a handler of
    the user's own is called instead and decides (sys.exit: the write is aborted; returning:
    the write goes on and commits), and is back in place after the write."""
    import signal

    path = tmp_path / "f.h5"
    old = _small(path)
    child, _ = blocked_child(_SIGTERM_CHILD, path, mode)
    tmp = [p.name for p in tmp_path.iterdir() if p.name != "f.h5"]
    assert len(tmp) == 1 and tmp[0].startswith("f.h5.tmp")  # mid-write
    child.send_signal(signal.SIGTERM)
    out, err = child.communicate(timeout=60)
    expected_rc = {"default": -signal.SIGTERM, "user-exit": 3, "user-log": 0}[mode]
    assert child.returncode == expected_rc, err
    assert sorted(p.name for p in tmp_path.iterdir()) == ["f.h5"]
    got = sd.open(path).read(slice(None))[:, :, 0]
    if mode == "user-log":
        assert "committed" in out
        np.testing.assert_array_equal(got, np.full((2, 6, 8, 5), 7.0, np.float32))
    else:
        assert "committed" not in out
        np.testing.assert_array_equal(got, old["u"])


def test_writer_restores_the_sigterm_handler_and_leaves_other_threads_alone(tmp_path):
    """The writer's SIGTERM handler is installed from the main thread only (signal.signal
    raises elsewhere) and the previous one is back after the last open writer closes."""
    import signal
    import threading

    from sciml.data import writer as wr

    before = signal.getsignal(signal.SIGTERM)
    a = sd.Writer(tmp_path / "a.h5", n_samples=1, fields=["u"], spatial_shape=(4,), time=[0.0])
    b = sd.Writer(tmp_path / "b.h5", n_samples=1, fields=["u"], spatial_shape=(4,), time=[0.0])
    assert signal.getsignal(signal.SIGTERM) is wr._on_sigterm
    a.write(0, fields={"u": _r(1, 1, 4)})
    a.close()
    assert signal.getsignal(signal.SIGTERM) is wr._on_sigterm  # b is still open
    b.abort()
    assert signal.getsignal(signal.SIGTERM) is before
    errors = []

    def in_thread():
        try:
            with sd.Writer(
                tmp_path / "c.h5", n_samples=1, fields=["u"], spatial_shape=(4,), time=[0.0]
            ) as w:
                w.write(0, fields={"u": _r(1, 1, 4)})
                assert signal.getsignal(signal.SIGTERM) is before
        except BaseException as e:  # noqa: BLE001 - reported below
            errors.append(e)

    t = threading.Thread(target=in_thread)
    t.start()
    t.join()
    assert not errors and signal.getsignal(signal.SIGTERM) is before
    assert sorted(p.name for p in tmp_path.iterdir()) == ["a.h5", "c.h5"]


def test_a_damaged_member_is_named_damaged_and_sciml_bugs_are_not(tmp_path, monkeypatch):
    """h5py's group.items() turns the KeyError of a damaged member into None: a damaged
    'params/nu' or 'boundary_conditions/y' header was reported as "AttributeError: 'NoneType'
    object has no attribute 'ndim'" (or as a missing key), because TypeError and AttributeError
    were taken for damage. Now the checksum error is reported, and a TypeError raised by a
    reader (a bug in sciml, not in the file) reaches the caller as itself."""
    from sciml.data import layouts

    _small(tmp_path / "f.h5")
    good = (tmp_path / "f.h5").read_bytes()
    with h5py.File(tmp_path / "f.h5") as f:
        headers = {
            k: h5py.h5o.get_info(f[k].id).addr for k in ("params/nu", "boundary_conditions/y")
        }
    for key, addr in headers.items():
        assert good[addr : addr + 4] == b"OHDR"  # a version-2 object header, checksummed
        damaged = bytearray(good)
        damaged[addr + 8] ^= 0x20
        path = tmp_path / f"bad_{key.replace('/', '_')}.h5"
        path.write_bytes(bytes(damaged))
        for fn in (sd.open, sd.validate):
            with pytest.raises(sd.DataFormatError) as e:
                fn(path)
            msg = str(e.value)
            assert msg.startswith(f"{path}: cannot be read (KeyError: "), msg
            assert "checksum" in msg and "expected an intact HDF5" in msg

    def buggy_reader(f, path):
        raise TypeError("unsupported operand type(s) for +: 'int' and 'str'")

    monkeypatch.setitem(layouts.LAYOUTS, "sciml", (layouts.sciml.detect, buggy_reader))
    with pytest.raises(TypeError, match="unsupported operand"):
        sd.open(tmp_path / "f.h5")


def test_non_finite_time_stamps_are_refused(tmp_path):
    """NaN compares False, so time=[0, nan, 2] passed the 'strictly increasing' checks of the
    writer and the validator, and every lead time touching step 1 was NaN."""
    with pytest.raises(ValueError, match=r"expected finite time stamps, got \[0.0, nan, 2.0\]"):
        sd.write(tmp_path / "w.h5", fields={"u": _r(2, 3, 4)}, time=[0.0, np.nan, 2.0])
    assert not any(tmp_path.iterdir())
    _small(tmp_path / "f.h5")
    with h5py.File(tmp_path / "f.h5", "a") as f:
        f["time"][4] = np.inf
    problems = sd.validate(tmp_path / "f.h5")
    assert problems == [f"{tmp_path / 'f.h5'}: dataset 'time' has non-finite value inf at step "
                        "4; expected finite, strictly increasing time stamps"]  # fmt: skip
    with pytest.raises(sd.DataFormatError, match="non-finite value inf at step 4"):
        sd.open(tmp_path / "f.h5")


def test_writer_interrupted_while_creating_its_file_leaves_no_sigterm_registration(
    tmp_path, monkeypatch
):
    """The temporary file is registered for SIGTERM before h5py creates it; an error other than
    an OSError there (Ctrl-C) left it registered, so sciml's handler stayed installed in place
    of the previous one for the rest of the process."""
    import signal

    from sciml import _io
    from sciml.data import writer as wr

    def interrupted(path, *args, **kwargs):
        open(path, "wb").close()  # h5py had made the file
        raise KeyboardInterrupt

    before = signal.getsignal(signal.SIGTERM)
    monkeypatch.setattr(wr.h5py, "File", interrupted)
    with pytest.raises(KeyboardInterrupt):
        sd.Writer(tmp_path / "a.h5", n_samples=1, fields=["u"], spatial_shape=(4,), time=[0.0])
    assert not _io._live_tmp
    assert signal.getsignal(signal.SIGTERM) is before
    assert list(tmp_path.iterdir()) == []


def test_metadata_cannot_overwrite_the_layout_attributes(tmp_path):
    # attrs were written over the layout's own root attributes: attrs={"n_samples": 99} committed
    # a file that open() refused; attrs={"json_attrs": [...]} was silently replaced by the
    # layout's list; now they are refused before any file is made
    u = _r(2, 3, 4)
    for key, value in (("n_samples", 99), ("json_attrs", ["pde"]), ("spatial_dims", ["q"])):
        with pytest.raises(ValueError, match=f"'{key}'"):
            sd.write(tmp_path / "a.h5", fields={"u": u}, attrs={key: value, "pde": {"a": 1}})
        assert not (tmp_path / "a.h5").exists()
        assert list(tmp_path.iterdir()) == []  # no temporary file left either
    # what open() reports as attrs writes back: the format version is the writer's own
    sd.write(tmp_path / "b.h5", fields={"u": u}, attrs={"pde": {"a": 1}})
    attrs = sd.open(tmp_path / "b.h5").attrs
    assert attrs == {"pde": {"a": 1}, "format_version": 1}
    sd.write(tmp_path / "c.h5", fields={"u": u}, attrs=attrs)
    assert sd.open(tmp_path / "c.h5").attrs == attrs
    with pytest.raises(ValueError, match="'format_version'"):
        sd.write(tmp_path / "d.h5", fields={"u": u}, attrs={"format_version": 2})


def test_metadata_named_like_the_xarray_exports_attributes_is_refused_when_writing(tmp_path):
    # sd.write committed attrs={"sciml_source": ...}; only to_xarray refused the file later
    # ("would replace the file's attribute(s) 'sciml_source'"). Refused now, before any file
    u = _r(2, 3, 4)
    for name in ("sciml_layout", "sciml_source", "sciml_boundary_conditions"):
        message = (
            f"{tmp_path / 'a.h5'}: expected metadata names other than ['sciml_layout', "
            "'sciml_source', 'sciml_boundary_conditions'], which H5Dataset.to_xarray adds beside "
            f"the file's attributes, got attrs '{name}'; rename them (e.g. 'my_source')"
        )
        with pytest.raises(ValueError, match=re.escape(message)):
            sd.write(tmp_path / "a.h5", fields={"u": u}, attrs={"pde": "heat", name: "mine"})
        with pytest.raises(ValueError, match=re.escape(message)):
            sd.Writer(tmp_path / "a.h5", n_samples=2, fields=["u"], spatial_shape=(4,),
                      time=[0.0, 1.0, 2.0], attrs={name: "mine"})  # fmt: skip
        assert list(tmp_path.iterdir()) == []  # no file, no temporary file
    # names that only start like them are the user's, and the export keeps them
    p = sd.write(tmp_path / "b.h5", fields={"u": u}, attrs={"sciml_sources": "x", "source": "y"})
    x = sd.open(p).to_xarray()
    assert (x.attrs["sciml_sources"], x.attrs["source"], x.attrs["sciml_source"]) == (
        "x", "y", str(p))  # fmt: skip


def test_another_format_version_in_metadata_is_refused_by_name(tmp_path):
    # a format_version other than the writer's (the attrs of a file in another version of the
    # format) was refused with the generic "rename them (e.g. 'source_n_samples')"; the message
    # now says what the writer expects and to drop it
    u = _r(2, 3, 4)
    for bad in (2, 0, "1", 1.0, True, [1]):
        with pytest.raises(
            ValueError,
            match=rf"expected attrs\['format_version'\] absent or this writer's 1, got "
            rf"{re.escape(repr(bad))}: .*drop it from attrs",
        ):
            sd.write(tmp_path / "d.h5", fields={"u": u}, attrs={"format_version": bad, "p": 1})
        assert list(tmp_path.iterdir()) == []
    # the writer's own version, as h5py, netCDF or a plain int gives it: written as the writer's
    for same in (1, np.int64(1), np.int32(1)):
        sd.write(tmp_path / "e.h5", fields={"u": u}, attrs={"format_version": same, "p": 3})
        with h5py.File(tmp_path / "e.h5") as f:
            assert int(f.attrs["format_version"]) == 1
        assert sd.open(tmp_path / "e.h5").attrs == {"p": 3, "format_version": 1}
        (tmp_path / "e.h5").unlink()


def test_foreign_and_unreadable_files_are_told_apart_whatever_h5py_says(tmp_path, monkeypatch):
    """The messages were chosen from HDF5's wording ('signature not found') and h5py's
    PermissionError; an HDF5 / h5py that words or types the error otherwise got the truncated
    message for a file of another format or one this user cannot read. They are now decided
    from the file: HDF5's signature at none of 0, 512, 1024, ... and os.access."""
    from sciml.data import _handle

    def fail(path, *args, **kwargs):
        raise OSError("Unable to open file (bad superblock)")  # another wording, plain OSError

    monkeypatch.setattr(_handle.h5py, "File", fail)
    junk = tmp_path / "junk.h5"
    junk.write_bytes(b"not an HDF5 file" * 100)  # 1600 bytes: offsets 0, 512, 1024 searched
    with pytest.raises(sd.DataFormatError, match=r"junk\.h5: not an HDF5 file") as e:
        sd.open(junk)
    assert "its 1600 bytes start with b'not an H'" in str(e.value)
    # the signature after a 1024-byte user block: an HDF5 file, so the truncated message
    shifted = tmp_path / "shifted.h5"
    shifted.write_bytes(bytes(1024) + b"\x89HDF\r\n\x1a\n" + bytes(100))
    with pytest.raises(sd.DataFormatError, match=r"expected a complete HDF5 file, found 1132"):
        sd.open(shifted)
    # a plain OSError on a file os.access says this user cannot read
    monkeypatch.setattr(_handle.os, "access", lambda p, mode: Path(p) != shifted)
    with pytest.raises(sd.DataFormatError, match=r"shifted\.h5: cannot be read: permission"):
        sd.open(shifted)
    with pytest.raises(sd.DataFormatError, match=r"junk\.h5: not an HDF5 file"):
        sd.open(junk)


def test_a_file_like_object_is_refused_by_name(tmp_path):
    """h5py opens file-like objects, and sciml.data.open raised TypeError "expected str, bytes
    or os.PathLike object, not BytesIO" from Path(); sciml reopens the file by its path in every
    worker, so it refuses one, saying what it needs and what to pass instead."""
    import io

    vals = _small(tmp_path / "f.h5")
    data = (tmp_path / "f.h5").read_bytes()
    # the bytes are a readable HDF5 file (h5py itself, the independent reader): the refusal is
    # about the kind of object, not its contents
    with h5py.File(io.BytesIO(data), "r") as f:
        np.testing.assert_array_equal(f["fields/u"][()], vals["u"])
    for fn in (sd.open, sd.describe, sd.validate, sd.check):
        name = f"sciml.data.{fn.__name__}"
        with pytest.raises(TypeError) as e:
            fn(io.BytesIO(data))
        assert str(e.value).startswith(
            f"{name}: expected the path (str or os.PathLike) of an HDF5 file, got a file-like "
            "BytesIO"
        )
        assert "write its bytes to a file" in str(e.value)
        with open(tmp_path / "f.h5", "rb") as handle, pytest.raises(TypeError) as e:
            fn(handle)
        assert "got a file-like BufferedReader" in str(e.value)
        assert f"pass the path it was opened from ({str(tmp_path / 'f.h5')!r})" in str(e.value)
    with pytest.raises(TypeError, match=r"got bytes b'f\.h5' -- decode it \(os\.fsdecode"):
        sd.open(b"f.h5")
    # and the path of the same bytes reads the same values
    np.testing.assert_array_equal(
        sd.open(str(tmp_path / "f.h5")).read(slice(None), fields=["u"])[:, :, 0], vals["u"]
    )


def test_field_names_the_layout_cannot_hold_are_refused_before_any_file_is_made(tmp_path):
    # a name with '/' committed a file that open() refused ("dataset 'fields/a' is not listed");
    # '' and '.' failed inside h5py ("expected bytes, str found", "name already exists"), as did
    # a name given twice; a name in both fields and static_fields was written, and
    # Normalizer.fit then gave the time-dependent field the static field's statistics
    u, a = _r(2, 3, 4), _r(2, 4)
    cases = (
        ({"fields": {"a/b": u}}, "'a/b'"),
        ({"fields": {"": u}}, "''"),
        ({"fields": {".": u}}, "'.'"),
        ({"fields": {"u": u}, "static_fields": {"u": a}}, "'u'"),
    )
    for kw, name in cases:
        with pytest.raises(ValueError, match=f"got {re.escape(name)}"):
            sd.write(tmp_path / "f.h5", **kw)
        assert list(tmp_path.iterdir()) == []  # neither the file nor a temporary one
    with pytest.raises(ValueError, match="got 'u' twice"):
        sd.Writer(
            tmp_path / "f.h5", n_samples=2, fields=["u", "u"], spatial_shape=(4,), time=[0, 1]
        )
    assert list(tmp_path.iterdir()) == []
    # names HDF5 takes as they are still round-trip
    sd.write(tmp_path / "g.h5", fields={"u x": u, "ü": 2 * u}, static_fields={"a.b": a})
    ds = sd.open(tmp_path / "g.h5")
    assert ds.field_names == ["u x", "ü"] and ds.static_field_names == ["a.b"]
    np.testing.assert_array_equal(ds.read(slice(None), fields=["ü"])[:, :, 0], 2 * u)
    np.testing.assert_array_equal(ds.read_static(slice(None))[:, 0], a)


def test_a_storage_dtype_open_refuses_is_refused_by_the_writer(tmp_path):
    # dtype=np.int32 committed a file that open() then refused ("has dtype int32, expected
    # floating point"), after the whole data set had been written
    u = _r(2, 3, 4)
    for dtype in (np.int32, np.complex64, bool):
        with pytest.raises(ValueError, match=f"got {np.dtype(dtype)}"):
            sd.write(tmp_path / "f.h5", fields={"u": u}, dtype=dtype)
        assert list(tmp_path.iterdir()) == []
    sd.write(tmp_path / "h.h5", fields={"u": u}, dtype=np.float16)
    ds = sd.open(tmp_path / "h.h5")
    np.testing.assert_array_equal(ds.read(slice(None))[:, :, 0], u.astype(np.float16))


def test_complex_values_are_refused_not_cut_to_their_real_part(tmp_path):
    # complex fields (an FFT-space solution) were stored as their real part, with only numpy's
    # ComplexWarning to say so; params too
    u = _r(2, 3, 4)
    z = u + 1j * _r(2, 3, 4)
    for kw, key in (
        ({"fields": {"u": z}}, "fields/u"),
        ({"fields": {"u": u}, "static_fields": {"a": z[:, 0]}}, "static_fields/a"),
        ({"fields": {"u": u}, "params": {"k": z[:, 0, 0]}}, "params/k"),
    ):
        with pytest.raises(sd.DataFormatError, match=f"key '{key}': expected real values"):
            sd.write(tmp_path / "f.h5", **kw)
        assert list(tmp_path.iterdir()) == []
    # a complex array whose imaginary part is exactly 0 is refused too: the dtype says complex
    with pytest.raises(sd.DataFormatError, match="expected real values"):
        sd.write(tmp_path / "f.h5", fields={"u": u.astype(np.complex64)})


def _remade(f: h5py.File, key: str, as_group: bool) -> None:
    del f[key]
    if as_group:
        f.create_group(key)
    else:
        f[key] = np.ones(3)


@pytest.mark.parametrize(
    ("change", "problem"),
    [
        (lambda f: _remade(f, "fields/u", True), "'fields/u' is a group, expected a dataset"),
        (lambda f: _remade(f, "static_fields/a", True), "'static_fields/a' is a group"),
        (lambda f: _remade(f, "coords/x", True), "'coords/x' is a group, expected a dataset"),
        (lambda f: f["coords"].create_group("extra"), "'coords/extra' is a group"),
        (lambda f: _remade(f, "time", True), "'time' is a group, expected a dataset"),
        (lambda f: f["params"].create_group("sub"), "'params/sub' is a group, expected a dataset"),
        (lambda f: _remade(f, "fields", False), "'fields' is a dataset, expected a group"),
        (lambda f: _remade(f, "params", False), "'params' is a dataset, expected a group"),
        (lambda f: _remade(f, "boundary_conditions", False), "'boundary_conditions' is a dataset"),
        (
            lambda f: f["boundary_conditions/y"].create_group("sub"),
            "'boundary_conditions/y/sub' is a group, expected a dataset",
        ),
    ],
)
def test_a_group_where_a_dataset_belongs_is_a_problem_not_a_crash(tmp_path, change, problem):
    # validate() and open() raised AttributeError ("'Group' object has no attribute 'shape'")
    # or TypeError from h5py, or open() failed after validate() called the file valid
    path = tmp_path / "f.h5"
    _small(path)
    with h5py.File(path, "a") as f:
        change(f)
    assert any(problem in p for p in sd.validate(path)), sd.validate(path)
    with pytest.raises(sd.DataFormatError, match=re.escape(problem)):
        sd.open(path)


def test_a_file_validate_accepts_without_params_or_boundary_groups_opens(tmp_path):
    # validate() called a file without the (empty) params / boundary_conditions groups valid,
    # as one written by another tool may be, and open() refused it: "a required key is missing"
    path = tmp_path / "f.h5"
    u = _r(3, 4, 5)
    sd.write(path, fields={"u": u})
    with h5py.File(path, "a") as f:
        del f["params"], f["boundary_conditions"], f["static_fields"]
    assert sd.validate(path) == []
    ds = sd.open(path)
    assert ds.params == {} and ds.boundary_conditions == {}
    np.testing.assert_array_equal(ds.read([2, 0])[:, :, 0], u[[2, 0]])


def test_a_bare_string_is_not_read_as_a_list_of_one_letter_fields(tmp_path):
    # read(fields="uv") read the channels 'u' and 'v' (list("uv")), as did Normalizer.fit
    path = tmp_path / "f.h5"
    vals = _small(path)
    ds = sd.open(path)
    calls = (
        lambda: ds.read(0, fields="uv"),
        lambda: ds.read_static(0, fields="a"),
        lambda: sd.Normalizer.fit(ds, fields="uv"),
        lambda: sd.Normalizer.fit(ds, static_fields="a"),
    )
    for call in calls:
        with pytest.raises(ValueError, match="got the string '(uv|a)'"):
            call()
    np.testing.assert_array_equal(ds.read(0, fields=["v", "u"])[0, :, 0], vals["v"][0])
    stats = sd.Normalizer.fit(ds, fields=["u"], static_fields=[])
    assert stats.names == ["u"] and stats.mean["u"] == pytest.approx(vals["u"].mean(), abs=1e-6)


def test_writer_takes_numpy_and_negative_sample_indices(tmp_path):
    # w.write(np.int64(i), ...) (a loop over np.arange) raised AttributeError ("'numpy.int64'
    # object has no attribute 'start'"), w.write(-1, ...) "got slice(-1, 0, None)"
    u = _r(3, 4, 5)
    path = tmp_path / "f.h5"
    kw = {"n_samples": 3, "fields": ["u"], "time": np.arange(4.0), "spatial_shape": (5,)}
    with sd.Writer(path, **kw) as w:
        for i in np.arange(2):
            w.write(i, fields={"u": u[i : i + 1]})
        w.write(-1, fields={"u": u[2:]})
    np.testing.assert_array_equal(sd.open(path).read(slice(None))[:, :, 0], u)
    with sd.Writer(tmp_path / "g.h5", **kw) as w:
        for bad in (3, -4):
            with pytest.raises(IndexError, match=f"sample {bad} is out of range for n_samples=3"):
                w.write(bad, fields={"u": u[:1]})
        with pytest.raises(TypeError, match="expected samples an int, a slice or a range"):
            w.write(np.arange(3), fields={"u": u})
        w.abort()
    assert sorted(p.name for p in tmp_path.iterdir()) == ["f.h5"]


def test_a_file_that_fails_to_close_leaves_no_temporary_file(tmp_path):
    # HDF5 writes the rest of its metadata when the file is closed; a failure there (a full
    # disk: ENOSPC) left the whole temporary file beside the destination, still registered
    # for SIGTERM, and the writer open
    import sciml._io as sio

    w = sd.Writer(tmp_path / "f.h5", n_samples=1, fields=["u"], spatial_shape=(4,), time=[0.0])
    w.write(0, fields={"u": _r(1, 1, 4)})
    tmp, close = w._tmp, w._f.close

    def full_disk():
        close()
        raise OSError(28, "No space left on device")

    w._f.close = full_disk
    with pytest.raises(OSError, match="No space left"), w:
        pass
    assert list(tmp_path.iterdir()) == []
    assert tmp not in sio._live_tmp
    with pytest.raises(RuntimeError, match="writer is closed"):
        w.write(0, fields={"u": _r(1, 1, 4)})


def test_writer_refuses_sample_counts_and_grid_sizes_that_are_not_positive_integers(tmp_path):
    # n_samples=2.5 and spatial_shape=(2.5,) were truncated to 2 silently; n_samples 0 or -1
    # failed inside h5py ("Chunk shape must not be greater than data shape")
    kw = {"fields": ["u"], "time": [0.0, 1.0]}
    for n, shape, what in (
        (2.5, (3,), "n_samples an integer >= 1, got 2.5"),
        (0, (3,), "n_samples an integer >= 1, got 0"),
        (-1, (3,), "n_samples an integer >= 1, got -1"),
        (True, (3,), "n_samples an integer >= 1, got True"),
        (2, (2.5,), "spatial_shape integers >= 1, got (2.5,)"),
        (2, (3, 0), "spatial_shape integers >= 1, got (3, 0)"),
    ):
        with pytest.raises(ValueError, match=re.escape(what)):
            sd.Writer(tmp_path / "f.h5", n_samples=n, spatial_shape=shape, **kw)
        assert list(tmp_path.iterdir()) == []
    with pytest.raises(ValueError, match=re.escape("n_samples an integer >= 1, got 0")):
        sd.write(tmp_path / "f.h5", fields={"u": np.zeros((0, 2, 3))})
    with sd.Writer(
        tmp_path / "g.h5", n_samples=np.int64(2), spatial_shape=(np.int64(3),), **kw
    ) as w:
        w.write(slice(0, 2), fields={"u": np.ones((2, 2, 3))})
    ds = sd.open(tmp_path / "g.h5")
    assert (len(ds), ds.spatial_shape) == (2, (3,))
    np.testing.assert_array_equal(ds.read(slice(None)), np.ones((2, 2, 1, 3), np.float32))


def test_a_step_selection_of_another_type_is_refused_by_name(tmp_path):
    # read(0, [0, 2]) and read(0, 1.0) raised AttributeError ("'list' object has no attribute
    # 'indices'")
    path = tmp_path / "f.h5"
    vals = _small(path)
    ds = sd.open(path)
    for steps in ([0, 2], 1.0, np.array([1, 2])):
        with pytest.raises(TypeError, match="expected steps an int, a slice or None, got"):
            ds.read(0, steps)
    np.testing.assert_array_equal(ds.read(0, np.int64(-1), ["u"])[0, 0, 0], vals["u"][0, -1])
    np.testing.assert_array_equal(ds.read(1, slice(1, None, 2), ["v"])[0, :, 0], vals["v"][1, 1::2])


def test_a_file_another_writer_holds_is_not_called_truncated(tmp_path):
    # a file held open for writing (h5py.File(path, "a") in another session: HDF5's exclusive
    # lock) was reported as "expected a complete HDF5 file, found 10145 bytes -- is it
    # truncated (interrupted download or write)?"
    fcntl = pytest.importorskip("fcntl")
    path = tmp_path / "f.h5"
    vals = _small(path)
    if os.environ.get("HDF5_USE_FILE_LOCKING", "").upper() == "FALSE":
        pytest.skip("HDF5 file locking is off here")
    with open(path, "rb") as held:
        fcntl.flock(held.fileno(), fcntl.LOCK_EX | fcntl.LOCK_NB)  # what an HDF5 writer holds
        for call in (sd.open, sd.validate):
            with pytest.raises(sd.DataFormatError, match="open for writing") as e:
                call(path)
            assert "truncated" not in str(e.value)
    np.testing.assert_array_equal(sd.open(path).read(0, fields=["u"])[0, :, 0], vals["u"][0])


def test_time_stamps_of_a_static_file_are_checked_like_any(tmp_path):
    # with static fields only, time=1.0 raised IndexError ("tuple index out of range") and a
    # (2, 2) time was called "not strictly increasing"
    s = _r(2, 3)
    for time, what in ((1.0, "got shape ()"), (np.ones((2, 2)), "got shape (2, 2)")):
        with pytest.raises(
            ValueError, match=re.escape(f"expected time of shape (n_steps,), {what}")
        ):
            sd.write(tmp_path / "f.h5", static_fields={"s": s}, time=time)
        assert list(tmp_path.iterdir()) == []
    ds = sd.open(sd.write(tmp_path / "g.h5", static_fields={"s": s}, time=[0.5]))
    np.testing.assert_array_equal(ds.time, [0.5])
    np.testing.assert_array_equal(ds.read_static(slice(None))[:, 0], s)


def test_coordinates_must_be_finite_numbers(tmp_path):
    # string coordinates failed inside h5py ("No conversion path for dtype: dtype('<U1')"), and
    # NaN / inf coordinates were written, to reach a model as NaN grid points (with_coords)
    u = _r(2, 2, 3)
    for coords, what in (
        ({"x": ["a", "b", "c"]}, "coords['x']"),
        ({"x": [0.0, np.nan, 1.0]}, "coords['x']"),
        ({"points": np.array([[0.0, 1.0], [np.inf, 0.0], [1.0, 1.0]])}, "coords['points']"),
    ):
        with pytest.raises(ValueError, match=re.escape(f"{what}: expected finite numbers")):
            sd.write(tmp_path / "f.h5", fields={"u": u}, coords=coords)
        assert list(tmp_path.iterdir()) == []
    ds = sd.open(sd.write(tmp_path / "g.h5", fields={"u": u}, coords={"x": np.array([0, 2, 5])}))
    np.testing.assert_array_equal(ds.coords["x"], [0, 2, 5])


def test_check_names_each_problem_once_in_a_folder_whose_name_holds_a_colon(tmp_path):
    # check() cut each of validate()'s messages at the first ': ', which was inside the path
    # ('/d/run: 2/f.h5'): the message then repeated the end of the path before the problem
    folder = tmp_path / "run: 2"
    folder.mkdir()
    path = folder / "f.h5"
    _small(path)
    with h5py.File(path, "a") as f:
        f["boundary_conditions/x"].attrs["type"] = "sticky"
    (problem,) = sd.validate(path)
    assert problem.startswith(f"{path}: attribute 'boundary_conditions/x@type' is 'sticky'")
    with pytest.raises(sd.DataFormatError) as e:
        sd.check(path)
    assert str(e.value) == problem


def test_fields_without_a_time_step_are_refused_by_name(tmp_path):
    # fields of 0 steps (time=[]) failed inside h5py: "Chunk shape must not be greater than data
    # shape in any dimension. (2, 1, 3) is not compatible with (2, 0, 3)"
    with pytest.raises(ValueError, match=re.escape("expected at least one time step, got time=[]")):
        sd.write(tmp_path / "f.h5", fields={"u": np.zeros((2, 0, 3))})
    with pytest.raises(ValueError, match="expected at least one time step"):
        sd.Writer(tmp_path / "g.h5", n_samples=2, fields=["u"], time=[], spatial_shape=(3,))
    assert list(tmp_path.iterdir()) == []
    u = _r(2, 1, 3)  # one step is a time series still
    np.testing.assert_array_equal(
        sd.open(sd.write(tmp_path / "h.h5", fields={"u": u})).read(1)[0, :, 0], u[1]
    )


def test_boundary_values_hdf5_cannot_store_are_refused_by_name(tmp_path):
    # a dict or a list of strings as a boundary value failed inside h5py ("Object dtype
    # dtype('O') has no native HDF5 equivalent", "No conversion path for dtype('<U4')")
    u = _r(2, 2, 3)
    for value in ({"left": 1.0}, ["wall", "open"]):
        bc = {"x0": {"type": "dirichlet", "value": value}}
        with pytest.raises(ValueError, match=re.escape("boundary_conditions['x0']['value']")):
            sd.write(tmp_path / "f.h5", fields={"u": u}, boundary_conditions=bc)
        assert list(tmp_path.iterdir()) == []
    bc = {"x0": {"type": "dirichlet", "value": [1.0, 2.5], "side": "left", "k": 3}}
    got = sd.open(sd.write(tmp_path / "g.h5", fields={"u": u}, boundary_conditions=bc))
    entry = got.boundary_conditions["x0"]
    assert (entry["type"], entry["side"], entry["k"]) == ("dirichlet", "left", 3)
    np.testing.assert_array_equal(entry["value"], [1.0, 2.5])


def test_a_group_named_time_in_a_static_only_file_is_a_problem(tmp_path):
    # the time check ran only for files with time-dependent fields: a static-only file whose
    # 'time' was a group passed validate() and open() failed with h5py's TypeError
    path = tmp_path / "f.h5"
    sd.write(path, static_fields={"s": _r(2, 3)}, time=[0.0, 1.0])
    with h5py.File(path, "a") as f:
        del f["time"]
        f.create_group("time")
    problem = "object 'time' is a group, expected a dataset"
    assert sd.validate(path) == [f"{path}: {problem}"]
    with pytest.raises(sd.DataFormatError, match=re.escape(problem)):
        sd.open(path)


def test_a_series_without_spatial_axes_needs_no_coords_group(tmp_path):
    # a file without spatial axes and without the (then empty) coords group passed validate()
    # and open() refused it: "a required key is missing (... 'coords' doesn't exist)"
    path = tmp_path / "ode.h5"
    a = _r(3, 5)
    sd.write(path, fields={"a": a})
    with h5py.File(path, "a") as f:
        del f["coords"]
    assert sd.validate(path) == []
    ds = sd.open(path)
    assert ds.coords == {} and ds.spatial_shape == ()
    np.testing.assert_array_equal(ds.read(slice(None))[:, :, 0], a)


def test_a_file_of_another_format_version_is_refused_by_name(tmp_path):
    # format_version was only required to exist: a file claiming version 2 (a newer layout)
    # was read as version 1 without a word
    path = tmp_path / "f.h5"
    vals = _small(path)
    with h5py.File(path, "a") as f:
        f.attrs["format_version"] = 2
    problem = "root attribute 'format_version' is 2, expected 1"
    assert any(problem in p for p in sd.validate(path))
    with pytest.raises(sd.DataFormatError, match=problem):
        sd.open(path)
    with h5py.File(path, "a") as f:
        f.attrs["format_version"] = np.int32(1)
    np.testing.assert_array_equal(sd.open(path).read(0, fields=["u"])[0, :, 0], vals["u"][0])


def test_overwriting_through_a_symlink_writes_the_file_it_points_to(tmp_path):
    # os.replace(tmp, "link.h5") put a regular file where the link was: the link was gone and
    # the file it pointed to kept the old data, unlike cp or an in-place h5py write
    (tmp_path / "data").mkdir()
    target, link = tmp_path / "data" / "d.h5", tmp_path / "link.h5"
    sd.write(target, fields={"u": np.zeros((2, 3, 4), np.float32)})
    link.symlink_to(target)
    new = _r(2, 3, 4)
    assert sd.write(link, fields={"u": new}, overwrite=True) == link
    assert link.is_symlink() and link.resolve() == target.resolve()
    np.testing.assert_array_equal(sd.open(target).read(slice(None))[:, :, 0], new)
    # no temporary file was left, neither beside the link nor beside its target
    assert sorted(p.name for p in tmp_path.iterdir()) == ["data", "link.h5"]
    assert [p.name for p in (tmp_path / "data").iterdir()] == ["d.h5"]
    # a link to a file that does not exist yet: the file is made where it points
    dangling = tmp_path / "new.h5"
    dangling.symlink_to(tmp_path / "data" / "made.h5")
    sd.write(dangling, fields={"u": new})
    assert dangling.is_symlink()
    np.testing.assert_array_equal(
        sd.open(tmp_path / "data" / "made.h5").read(slice(None))[:, :, 0], new
    )


def test_the_temporary_file_is_made_beside_the_target_of_a_symlink(tmp_path, monkeypatch):
    # (why) beside the link, os.replace onto a target on another file system is no rename
    (tmp_path / "data").mkdir()
    target, link = tmp_path / "data" / "d.h5", tmp_path / "link.h5"
    link.symlink_to(target)
    made = []
    real = sd.writer.h5py.File

    def recording(name, *a, **kw):
        made.append(Path(name))
        return real(name, *a, **kw)

    monkeypatch.setattr(sd.writer.h5py, "File", recording)
    w = sd.Writer(link, n_samples=1, fields=["u"], spatial_shape=(4,), time=[0.0])
    assert [p.parent for p in made] == [tmp_path / "data"]
    assert made[0].name.startswith("d.h5.tmp")
    w.abort()
    assert not made[0].exists() and not target.exists() and link.is_symlink()


@pytest.mark.parametrize("existing", [False, True])
def test_a_writer_dropped_unclosed_removes_its_temporary_file(tmp_path, existing):
    # a Writer made without `with` whose close() was never reached (an exception between)
    # left 'f.h5.tmp<pid>-<hex>' as large as the data, and its SIGTERM registration, behind
    import gc

    path = tmp_path / "f.h5"
    old = _r(2, 3, 4)
    if existing:
        sd.write(path, fields={"u": old})
    w = sd.Writer(path, n_samples=2, fields=["u"], spatial_shape=(4,), time=[0.0, 1.0, 2.0],
                  overwrite=existing)  # fmt: skip
    w.write(slice(0, 2), fields={"u": _r(2, 3, 4)})  # complete, but never committed
    tmp = w._tmp
    assert tmp.exists() and tmp in sd.writer._io._live_tmp
    with pytest.warns(ResourceWarning, match="never closed"):
        del w
        gc.collect()
    assert not tmp.exists() and tmp not in sd.writer._io._live_tmp
    assert [p.name for p in tmp_path.iterdir()] == (["f.h5"] if existing else [])
    if existing:  # the old file is untouched, not replaced by the unclosed writer's
        np.testing.assert_array_equal(sd.open(path).read(slice(None))[:, :, 0], old)


def test_a_closed_or_aborted_writer_is_not_finalised_again(tmp_path):
    import gc
    import warnings

    path = tmp_path / "f.h5"
    u = _r(1, 1, 4)
    with warnings.catch_warnings():
        warnings.simplefilter("error", ResourceWarning)
        w = sd.Writer(path, n_samples=1, fields=["u"], spatial_shape=(4,), time=[0.0])
        w.write(0, fields={"u": u})
        w.close()
        del w
        a = sd.Writer(tmp_path / "g.h5", n_samples=1, fields=["u"], spatial_shape=(4,), time=[0.0])
        a.abort()
        del a
        gc.collect()
    assert [p.name for p in tmp_path.iterdir()] == ["f.h5"]
    np.testing.assert_array_equal(sd.open(path).read(0)[0, :, 0], u[0])


@pytest.mark.parametrize(
    "name, coords",
    [
        ("x", {"x": np.arange(4.0)}),
        ("time", {"x": np.arange(4.0)}),
        ("sample", {"x": np.arange(4.0)}),
        ("points", {"points": np.arange(8.0).reshape(4, 2)}),
        # no coordinate of that name: xarray made the field a coordinate, gone from data_vars
        ("point", {"points": np.arange(8.0).reshape(4, 2)}),
    ],
)
def test_a_field_named_like_a_coordinate_of_the_xarray_view_is_refused_by_name(
    tmp_path, name, coords
):
    # xarray's "variables {'x'} are found in both data_vars and coords" named no field
    u = _r(2, 3, 4)
    ds = sd.open(sd.write(tmp_path / "f.h5", fields={name: u}, coords=coords))
    with pytest.raises(ValueError, match=rf"cannot hold the field '{name}': '{name}' is also a"):
        ds.to_xarray()
    np.testing.assert_array_equal(ds.read(slice(None))[:, :, 0], u)  # still readable


def test_a_field_and_a_parameter_of_one_xarray_name_are_refused(tmp_path):
    # the parameter 'a' (exported as 'param_a') replaced the field 'param_a' without a word
    u = _r(2, 3, 4)
    ds = sd.open(sd.write(tmp_path / "f.h5", fields={"param_a": u}, params={"a": [1.0, 2.0]}))
    with pytest.raises(ValueError, match="field 'param_a' and the parameter 'a'"):
        ds.to_xarray()
    # names that do not clash are exported as they are
    ds = sd.open(sd.write(tmp_path / "g.h5", static_fields={"time": u[:, 0]}))
    np.testing.assert_array_equal(ds.to_xarray()["time"].values, u[:, 0])


def test_the_writer_flushes_its_file_to_disk_before_the_rename(tmp_path, monkeypatch):
    """The writer renamed its temporary file over the destination right after h5py's close, its
    data still in the page cache: a power loss could leave a truncated file under the final
    name, and a write error the kernel reports only at fsync was lost. The file is fsynced
    before the rename (its folder after it), and an fsync error keeps the old file."""
    import errno

    path = tmp_path / "f.h5"
    old = _small(path)
    events = []
    real_fsync, real_replace = os.fsync, os.replace

    def fsync(fd):
        events.append(("fsync", os.fstat(fd).st_ino))
        return real_fsync(fd)

    def replace(src, dst):
        events.append(("replace", os.stat(src).st_ino))
        return real_replace(src, dst)

    monkeypatch.setattr(os, "fsync", fsync)
    monkeypatch.setattr(os, "replace", replace)
    u = _r(2, 3, 4)
    sd.write(path, fields={"u": u}, overwrite=True)
    new = os.stat(path).st_ino
    assert events == [("fsync", new), ("replace", new), ("fsync", os.stat(tmp_path).st_ino)]
    np.testing.assert_array_equal(sd.open(path).read(slice(None))[:, :, 0], u)

    def failing(fd):
        raise OSError(errno.EIO, "Input/output error")

    monkeypatch.setattr(os, "fsync", failing)
    with pytest.raises(OSError, match="Input/output error"):
        sd.write(path, fields={"u": old["u"]}, overwrite=True)
    np.testing.assert_array_equal(sd.open(path).read(slice(None))[:, :, 0], u)  # kept
    assert [p.name for p in tmp_path.iterdir()] == ["f.h5"]  # no temporary file left


def test_validate_and_open_refuse_non_finite_coordinates_naming_the_dataset(tmp_path):
    # the writer refuses NaN coordinates, but a file changed after it was written passed
    # validate() and open(): its NaN grid point reached a model through with_coords
    u = _r(2, 3, 4, 5)
    path = sd.write(
        tmp_path / "f.h5", fields={"u": u}, coords={"x": np.arange(4.0), "y": np.arange(5.0)}
    )
    with h5py.File(path, "a") as f:
        f["coords/y"][3] = np.nan
    assert sd.validate(path, scan_values=False) == [
        f"{path}: dataset 'coords/y' has non-finite value nan at index (3,); expected finite "
        "coordinates"
    ]
    with pytest.raises(
        sd.DataFormatError, match=r"f\.h5: dataset 'coords/y' has non-finite value nan"
    ):
        sd.open(path)
    pts = np.array([[0.0, 0.0], [1.0, 0.0], [0.0, 1.0]])
    path = sd.write(tmp_path / "p.h5", fields={"u": _r(2, 3, 3)}, coords={"points": pts})
    with h5py.File(path, "a") as f:
        f["coords/points"][2, 1] = -np.inf
    (problem,) = sd.validate(path)
    assert problem.endswith(
        "dataset 'coords/points' has non-finite value -inf at index (2, 1); "
        "expected finite coordinates"
    )
    with h5py.File(path, "a") as f:
        f["coords/points"][2, 1] = 1.0
    assert sd.validate(path) == []
    np.testing.assert_array_equal(sd.open(path).coords["points"], pts)


def test_validate_names_the_dataset_of_a_damaged_chunk_and_goes_on(tmp_path):
    # a chunk whose compressed bytes are damaged raised out of the value scan: 'f.h5: cannot
    # be read (OSError: ...)', naming neither the dataset nor the NaN of the next one
    u = _r(3, 4, 64)
    path = sd.write(
        tmp_path / "f.h5", fields={"u": u}, static_fields={"c": u[:, 0]}, compression="gzip"
    )
    with h5py.File(path, "a") as f:
        f["static_fields/c"][2, 7] = np.nan
        info = f["fields/u"].id.get_chunk_info(0)
    raw = bytearray(path.read_bytes())
    raw[info.byte_offset + 16 : info.byte_offset + 48] = bytes(32)  # inside the deflate stream
    path.write_bytes(bytes(raw))
    problems = sd.validate(path)
    assert len(problems) == 2
    assert problems[0].startswith(f"{path}: dataset 'fields/u' cannot be read at sample 0 (OSError")
    assert problems[0].endswith("expected an intact HDF5 file -- is it damaged?")
    assert problems[1] == (
        f"{path}: dataset 'static_fields/c' has non-finite value nan at sample 2, index (7,); "
        "expected finite values"
    )
    with pytest.raises(sd.DataFormatError, match="fields/u.*damaged.*static_fields/c.*nan"):
        sd.check(path)


def test_a_boundary_condition_that_is_no_string_or_dict_is_refused_naming_the_axis(tmp_path):
    # The Well's (low, high) pair, given to the writer, failed inside dict() with "dictionary
    # update sequence element #0 has length 9; 2 is required", naming neither axis nor value
    u = _r(2, 3, 4)
    for bc in (("dirichlet", "neumann"), ["periodic"], 3):
        message = (
            f"boundary_conditions['x0']: expected a type string ('periodic', 'dirichlet', "
            f"'neumann', 'open') or a dict {{'type': ..., **values}}, got {type(bc).__name__} "
            f"{bc!r}; sciml's layout holds one type per axis"
        )
        with pytest.raises(ValueError, match=re.escape(message)):
            sd.write(tmp_path / "a.h5", fields={"u": u}, boundary_conditions={"x0": bc})
        assert list(tmp_path.iterdir()) == []
    p = sd.write(tmp_path / "a.h5", fields={"u": u},
                 boundary_conditions={"x0": {"type": "dirichlet", "value": 0.5}})  # fmt: skip
    assert sd.open(p).boundary_conditions == {"x0": {"type": "dirichlet", "value": 0.5}}


def test_parameters_must_be_finite_when_written_and_validate_reports_a_nan_one(tmp_path):
    # the writer took NaN / inf parameters (only fields had to be finite), and validate,
    # check and `sciml data validate` scanned fields only: the file below passed as valid
    u = _r(3, 2, 4)
    nu, force = np.array([0.1, np.nan, 0.3]), np.array([[1.0, 2.0], [3.0, 4.0], [5.0, np.inf]])
    with pytest.raises(sd.DataFormatError) as e:
        sd.write(tmp_path / "a.h5", fields={"u": u}, params={"nu": nu})
    assert str(e.value) == (
        f"{tmp_path / 'a.h5'}: key 'params/nu': non-finite value nan at sample 1, index (); "
        "expected finite values"
    )
    with sd.Writer(tmp_path / "a.h5", n_samples=3, fields=["u"], spatial_shape=(4,),
                   time=[0.0, 1.0], params={"force": (2,)}) as w:  # fmt: skip
        w.write(slice(0, 3), fields={"u": u})
        with pytest.raises(sd.DataFormatError, match=r"'params/force': non-finite value inf at "
                           r"sample 2, index \(1,\)"):  # fmt: skip
            w.write(slice(1, 3), params={"force": force[1:]})
        w.write(slice(0, 3), params={"force": np.nan_to_num(force, posinf=6.0)})
    assert list(tmp_path.iterdir()) == [tmp_path / "a.h5"]  # committed, without the inf
    np.testing.assert_array_equal(sd.open(tmp_path / "a.h5").params["force"][2], [5.0, 6.0])
    p = sd.write(tmp_path / "b.h5", fields={"u": u},
                 params={"nu": np.nan_to_num(nu), "force": force[:, :1]})  # fmt: skip
    assert sd.validate(p) == []
    with h5py.File(p, "a") as f:  # as another writer (or an edit) leaves them
        f["params/nu"][1] = np.nan
        f["params/force"][2, 0] = -np.inf
    want = [
        f"{p}: dataset 'params/force' has non-finite value -inf at sample 2, index (0,); "
        "expected finite values",
        f"{p}: dataset 'params/nu' has non-finite value nan at sample 1, index (); expected "
        "finite values",
    ]
    assert sd.validate(p) == want
    with pytest.raises(sd.DataFormatError, match=re.escape(want[1].removeprefix(f"{p}: "))):
        sd.check(p)
    assert sd.validate(p, scan_values=False) == []  # a structure check, as open runs it
    np.testing.assert_array_equal(sd.open(p).params["nu"], [0.1, np.nan, 0.3])


def test_validate_and_open_refuse_a_name_in_both_fields_and_static_fields(tmp_path):
    # the writer refuses it, but a file edited later (static c renamed u) passed validate() and
    # open(), and Normalizer (keyed by name) gave field u the static field's statistics
    path = sd.write(
        tmp_path / "f.h5",
        fields={"u": _r(2, 3, 4)},
        static_fields={"c": _r(2, 4)},
        coords={"x": np.arange(4.0)},
    )
    assert sd.validate(path) == []
    with h5py.File(path, "a") as f:
        f.move("static_fields/c", "static_fields/u")
        f.attrs["static_field_names"] = ["u"]
    problem = (
        "field name 'u' is listed 2 times, in the root attributes 'field_names' and "
        "'static_field_names'; expected each field name once (channels are keyed by name, e.g. "
        "by Normalizer)"
    )
    assert sd.validate(path) == [f"{path}: {problem}"]
    with pytest.raises(sd.DataFormatError) as e:
        sd.open(path)
    assert str(e.value) == f"{path}: {problem}"
    with h5py.File(path, "a") as f:  # one list naming it twice: the same words
        f.attrs["static_field_names"] = []
        del f["static_fields/u"]
        f.attrs["field_names"] = ["u", "u"]
    once = problem.replace(" and 'static_field_names'", "")
    assert sd.validate(path) == [f"{path}: {once}"]
