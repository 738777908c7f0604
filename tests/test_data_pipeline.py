"""The data pipeline as a user on another platform meets it: DataLoader workers under spawn and
forkserver (the default start methods of macOS / Windows and of Python 3.14 on Linux), the
rank-sharded sampler against torch's DistributedSampler, streamed normalisation statistics,
splits and the xarray export; every value is checked against the arrays read with h5py."""

from __future__ import annotations

import json
import pickle
import re
import warnings

import h5py
import numpy as np
import pytest
import torch
from torch.utils.data import ConcatDataset, DataLoader, DistributedSampler

import sciml.data as sd

N, T, X, Y = 4, 5, 6, 3


@pytest.fixture(scope="module")
def small(tmp_path_factory):
    """A tiny sciml file (two fields, two static fields) and its arrays as h5py reads them."""
    rng = np.random.default_rng(11)
    path = tmp_path_factory.mktemp("pipeline") / "d.h5"
    sd.write(
        path,
        fields={"u": rng.standard_normal((N, T, X, Y)), "v": rng.standard_normal((N, T, X, Y))},
        static_fields={"a": rng.standard_normal((N, X, Y)), "s": rng.standard_normal((N, X, Y))},
        coords={"x": np.linspace(0, 1, X), "y": np.linspace(-1, 0, Y)},
        time=np.linspace(0, 0.4, T),
    )
    with h5py.File(path) as f:
        ref = {k: f[k][()] for k in ("fields/u", "fields/v", "static_fields/a", "static_fields/s")}
    return path, ref


def _views(path):
    """Three views of one file and, for each item, what it must hold (read with h5py)."""
    ds = sd.open(path)
    return [
        sd.Windows(ds, 2, 1, fields=["v", "u"]),  # items: sample k // 3, start k % 3
        sd.StaticPairs(ds, ["s"], ["a"], samples=[3, 1]),
        sd.SnapshotPairs(ds, 1, -1, inputs=["u"], targets=["v"], lead_time=False),
    ]


def _expected(ref):
    uv = np.stack([ref["fields/v"], ref["fields/u"]], axis=2)  # (N, T, 2, X, Y), v first
    want = []
    for k in range(N * 3):
        s, t0 = divmod(k, 3)
        want.append((uv[s, t0 : t0 + 2].reshape(4, X, Y), uv[s, t0 + 2]))
    for s in (3, 1):
        want.append((ref["static_fields/s"][s][None], ref["static_fields/a"][s][None]))
    for s in range(N):
        want.append((ref["fields/u"][s, 1][None], ref["fields/v"][s, -1][None]))
    return want


def _check_items(items, want):
    assert len(items) == len(want)
    for k, (item, (x, y)) in enumerate(zip(items, want, strict=True)):
        np.testing.assert_array_equal(item["input"].numpy(), x.astype(np.float32), err_msg=k)
        np.testing.assert_array_equal(item["target"].numpy(), y.astype(np.float32), err_msg=k)


# -- DataLoader workers ---------------------------------------------------------------------------
def test_every_view_pickles_without_a_handle_and_reads_the_h5py_values(small):
    """spawn and forkserver pickle the data set into each worker; an open h5py handle cannot be
    pickled (h5py refuses it), so the views drop it and the copy opens its own."""
    path, ref = small
    views = _views(path)
    views.append(sd.PointSamples(views[0].ds, inputs=["a"], targets=["s"], n_points=5, seed=3))
    for v in views:
        _ = v[0]  # the parent's handle is open
        assert v.ds._h5._file is not None
    with pytest.raises(TypeError):
        pickle.dumps(views[0].ds._h5._file)  # what a view carrying its handle would meet
    copies = [pickle.loads(pickle.dumps(v)) for v in views]
    assert all(c.ds._h5._file is None for c in copies)
    _check_items([item for c in copies[:3] for item in c], _expected(ref))
    got = copies[3][2]  # sample 2: the points an independent generator draws for (3, 0, 2)
    pick = np.sort(np.random.default_rng((3, 0, 2)).choice(X * Y, size=5, replace=False))
    np.testing.assert_array_equal(got["target"][:, 0].numpy(),
                                  ref["static_fields/s"][2].reshape(-1)[pick].astype(np.float32))  # fmt: skip


def test_pin_memory_on_a_cpu_only_machine_serves_the_same_values(small):
    """pin_memory=True without an accelerator is a no-op (torch warns once that it is)."""
    path, ref = small
    data = ConcatDataset(_views(path))
    loader = DataLoader(data, batch_size=None, num_workers=2, pin_memory=True,
                        multiprocessing_context="fork")  # fmt: skip
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        items = list(loader)
    _check_items(items, _expected(ref))
    if not torch.cuda.is_available():
        assert not items[0]["input"].is_pinned()
        assert all("pin_memory" in str(w.message) for w in caught), [str(w.message) for w in caught]


@pytest.mark.slow  # each start method starts two fresh interpreters that import torch (~10 s)
@pytest.mark.parametrize("context", ["spawn", "forkserver"])
def test_spawn_and_forkserver_workers_serve_the_h5py_values_every_epoch(small, context):
    """Two persistent workers under spawn / forkserver (macOS and Windows start workers by
    spawn), with the parent's handle open first: every item of three views, in order, in two
    epochs, equals the h5py read."""
    path, ref = small
    views = _views(path)
    for v in views:
        _ = v[0]
    loader = DataLoader(ConcatDataset(views), batch_size=None, num_workers=2,
                        multiprocessing_context=context, persistent_workers=True,
                        pin_memory=True)  # fmt: skip
    want = _expected(ref)
    with warnings.catch_warnings():
        warnings.filterwarnings("ignore", message=".*pin_memory.*")
        for _epoch in range(2):
            _check_items(list(loader), want)


# -- ShardedSampler -------------------------------------------------------------------------------
@pytest.mark.parametrize("drop_last", [False, True])
def test_unshuffled_shards_are_those_of_torch_distributed_sampler(drop_last):
    for n in range(14):
        for world in range(1, 6):
            for rank in range(world):
                ref = DistributedSampler(range(n), num_replicas=world, rank=rank,
                                         shuffle=False, drop_last=drop_last)  # fmt: skip
                s = sd.ShardedSampler(n, shuffle=False, rank=rank, world_size=world,
                                      drop_last=drop_last)  # fmt: skip
                assert list(s) == list(ref), (n, world, rank)
                assert len(s) == len(ref) == len(list(s)), (n, world, rank)


@pytest.mark.parametrize("n,world", [(10, 3), (7, 4), (2, 5), (12, 4), (1, 1)])
@pytest.mark.parametrize("drop_last", [False, True])
def test_shuffled_shards_deal_one_permutation_as_distributed_sampler_does(n, world, drop_last):
    """Interleaving the ranks' shards (rank r holds positions r, r + w, ...) gives back one order:
    a permutation of range(n), padded by repeating its head (DistributedSampler's rule) so every
    rank has ceil(n / w) indices, or cut to n - n % w with drop_last. Each rank computes it on
    its own from (seed, epoch); a new epoch gives another order, the same epoch the same one."""
    orders = {}
    for epoch in (0, 1, 0):
        shards = []
        for rank in range(world):
            s = sd.ShardedSampler(n, seed=5, rank=rank, world_size=world, drop_last=drop_last)
            s.set_epoch(epoch)
            shards.append(list(s))
            assert len(s) == len(shards[-1])
        per = n // world if drop_last else -(-n // world)
        assert [len(sh) for sh in shards] == [per] * world
        order = [shards[r][k] for k in range(per) for r in range(world)]
        head = order[: min(n, len(order))]
        assert sorted(head) == sorted(set(head)) and set(head) <= set(range(n))
        if drop_last:
            assert len(order) == n - n % world
        else:
            assert sorted(head) == list(range(n))
            pad = order[n:]
            assert pad == (head * (1 + len(pad) // max(n, 1)))[: len(pad)]
        if epoch in orders:
            assert orders[epoch] == order
        orders[epoch] = order
    if n > 3:
        assert orders[0] != orders[1]


@pytest.mark.parametrize(
    "make,match",
    [
        (lambda: sd.ShardedSampler(-2, world_size=3, rank=0), "expected n an integer >= 0, got -2"),
        (lambda: sd.ShardedSampler(2.5, world_size=3, rank=0), "expected n an integer >= 0"),
        (lambda: sd.ShardedSampler(5, seed=-1, world_size=1, rank=0), "expected seed an integer"),
        (lambda: sd.ShardedSampler(5, world_size=1, rank=0).set_epoch(-1), "expected epoch an"),
    ],
)
def test_sharded_sampler_refuses_negative_or_fractional_counts(make, match):
    """n=-2 gave the index list [0] and n=2.5 was truncated to 2; a negative seed failed inside
    numpy with 'expected non-negative integer' only when iterated."""
    with pytest.raises(ValueError, match=match):
        make()


# -- Normalizer -----------------------------------------------------------------------------------
@pytest.mark.parametrize("dtype", [np.float32, np.float64])
def test_streamed_statistics_of_large_offsets_match_numpy_in_float64(tmp_path, monkeypatch, dtype):
    """Values ~1e4 with std 1e-2 (a naive float64 sum of squares loses ~1e-4 of the std here),
    fitted a few steps at a time: mean and std equal numpy's float64 statistics of the arrays as
    h5py reads them. A float64 file was fitted on its values rounded to float32: the mean of u
    was 7.6e-6 off and its std 4.4e-4 (relative). A constant channel is centred only (std 1)."""
    rng = np.random.default_rng(4)
    u = (1e4 + 1e-2 * rng.standard_normal((30, 7, 5))).astype(dtype)
    v = (-3e4 + 5e-2 * rng.standard_normal((30, 7, 5))).astype(dtype)
    c = np.full((30, 7, 5), 1e4, dtype)
    a = (2e4 + 1e-2 * rng.standard_normal((30, 5))).astype(dtype)
    path = sd.write(tmp_path / "big.h5", fields={"u": u, "v": v, "c": c}, static_fields={"a": a},
                    dtype=dtype)  # fmt: skip
    monkeypatch.setattr("sciml.data.normalize._BLOCK_BYTES", 2 * 3 * 5 * 8)  # 1-2 steps a block
    norm = sd.Normalizer.fit(sd.open(path))
    with h5py.File(path) as f:
        assert f["fields/u"].dtype == dtype
        ref = {k: f[f"fields/{k}"][()].astype(np.float64) for k in "uvc"}
        ref["a"] = f["static_fields/a"][()].astype(np.float64)
    for k in "uva":
        assert norm.mean[k] == pytest.approx(ref[k].mean(), rel=1e-14, abs=0), k
        assert norm.std[k] == pytest.approx(ref[k].std(), rel=1e-9, abs=0), k
    assert (norm.mean["c"], norm.std["c"]) == (1e4, 1.0)
    enc = norm.encode(torch.from_numpy(np.stack([u, v, c], axis=2)[:2]), ["u", "v", "c"])
    assert torch.isfinite(enc).all() and enc[:, :, 2].abs().max().item() == 0.0


def test_non_finite_values_are_refused_by_fit_even_with_check_finite_off(tmp_path):
    """A file opened with check_finite=False (a PDEBench file with a NaN in one trajectory) gave
    the channel a NaN mean and std 1, so every encoded value was NaN, silently."""
    rng = np.random.default_rng(6)
    u, w = rng.standard_normal((3, 4, 5)), rng.standard_normal((3, 4, 5))
    path = sd.write(tmp_path / "nan.h5", fields={"u": u, "w": w}, static_fields={"a": u[:, 0]})
    with h5py.File(path, "a") as f:
        f["fields/u"][1, 2, 3] = np.nan
        f["static_fields/a"][2, 1] = np.inf
    with pytest.raises(sd.DataFormatError, match="non-finite value in sample 1, step 2"):
        sd.Normalizer.fit(sd.open(path))
    ds = sd.open(path, check_finite=False)
    with pytest.raises(ValueError, match=r"got nan in channel 'u' \(sample 1, step 2; the file"):
        sd.Normalizer.fit(ds, static_fields=[])
    with pytest.raises(ValueError, match=r"got inf in channel 'a' \(sample 2; the file"):
        sd.Normalizer.fit(ds, fields=[])
    clean = sd.Normalizer.fit(ds, fields=["w"], static_fields=[])
    ref = w.astype(np.float32).astype(np.float64)
    assert clean.mean["w"] == pytest.approx(ref.mean(), rel=1e-14)
    assert clean.std["w"] == pytest.approx(ref.std(), rel=1e-12)
    bad_u = sd.Normalizer.fit(ds, samples=[0, 2], fields=["u"], static_fields=[])
    assert bad_u.mean["u"] == pytest.approx(u[[0, 2]].astype(np.float32).mean(dtype=np.float64))


@pytest.mark.parametrize(
    "mean,std,what", [(0.0, 0.0, "std['u']=0.0"), (float("nan"), 1.0, "mean['u']=nan"),
                      (1.0, float("inf"), "std['u']=inf"), (1.0, -2.0, "std['u']=-2.0")],
)  # fmt: skip
def test_normalizer_refuses_statistics_that_encode_to_inf_or_nan(tmp_path, mean, std, what):
    """Normalizer.load of a JSON file holding std 0 (hand-edited) or NaN (json writes NaN) gave
    inf / NaN for every encoded value."""
    expected = "expected a finite mean and a finite std > 0 per channel, got " + re.escape(what)
    with pytest.raises(ValueError, match=expected):
        sd.Normalizer({"u": mean}, {"u": std}, n_spatial=1)
    path = tmp_path / "n.json"
    path.write_text(json.dumps({"mean": {"u": mean}, "std": {"u": std}, "n_spatial": 1}))
    with pytest.raises(ValueError, match="expected a finite mean and a finite std > 0"):
        sd.Normalizer.load(path)


# -- splits ---------------------------------------------------------------------------------------
def test_split_is_a_function_of_n_sizes_and_seed():
    """Disjoint, covering, sorted parts, the same for the same arguments; the shuffle is
    numpy's default_rng(seed).permutation(n), cut 80 / 10 / 10."""
    a, b = sd.split(50, seed=3), sd.split(50, seed=3)
    assert a == b and a != sd.split(50, seed=4)
    perm = np.random.default_rng(3).permutation(50)
    assert a.train == tuple(sorted(perm[:40])) and a.val == tuple(sorted(perm[40:45]))
    assert a.test == tuple(sorted(perm[45:]))
    assert sorted(a.train + a.val + a.test) == list(range(50))


@pytest.mark.parametrize(
    "parts,match",
    [
        ({"train": [0, 1, 2], "val": [3], "test": [2, 4]}, "got sample 2 in train and in test"),
        ({"train": [0, 1, 1], "val": [3], "test": [4]}, "got sample 1 in train and in train"),
        ({"train": [0, 1], "val": [3], "test": [5]}, r"test indices in \[0, n=5\), got 5"),
        ({"train": [-1, 1], "val": [3], "test": [4]}, r"train indices in \[0, n=5\), got -1"),
    ],
)
def test_a_split_whose_parts_overlap_or_leave_the_file_is_refused(tmp_path, parts, match):
    """Split.load took a splits.json whose test part overlapped train (a trajectory leak), or
    named samples the file does not have, as it was."""
    path = tmp_path / "splits.json"
    path.write_text(json.dumps({"n": 5, "seed": 0, **parts}))
    with pytest.raises(ValueError, match=match):
        sd.Split.load(path)


# -- xarray ---------------------------------------------------------------------------------------
def test_xarray_of_a_point_cloud_matches_the_file(tmp_path):
    """Values, point coordinates, time, parameters, units and attributes of a point-cloud file
    equal what h5py reads; through netCDF too where netCDF4 is installed."""
    rng = np.random.default_rng(8)
    pts, u = rng.uniform(size=(7, 2)), rng.standard_normal((2, 3, 7))
    path = sd.write(tmp_path / "p.h5", fields={"u": u}, coords={"points": pts},
                    time=[0.0, 0.5, 1.5], params={"nu": np.array([0.1, 0.2])},
                    attrs={"units": {"u": "m"}, "pde": "heat"})  # fmt: skip
    with h5py.File(path) as f:
        raw = {k: f[k][()] for k in ("fields/u", "coords/points", "time", "params/nu")}
        pde, units = f.attrs["pde"], json.loads(f.attrs["units"])
    xa = sd.open(path).to_xarray()
    datasets = [xa]
    try:
        import netCDF4  # noqa: F401
    except ImportError:
        pass  # the round trip below needs a netCDF engine
    else:
        import xarray as xr

        xa.to_netcdf(tmp_path / "p.nc")
        datasets.append(xr.open_dataset(tmp_path / "p.nc").load())
    for d in datasets:
        assert d["u"].dims == ("sample", "time", "point")
        np.testing.assert_array_equal(d["u"].values, raw["fields/u"])
        np.testing.assert_array_equal(d["points"].values, raw["coords/points"])
        np.testing.assert_array_equal(d["time"].values, raw["time"])
        np.testing.assert_array_equal(d["param_nu"].values, raw["params/nu"])
        assert d["u"].attrs["units"] == units["u"] == "m"
        assert d.attrs["pde"] == pde and json.loads(d.attrs["units"]) == units
        assert "sciml_boundary_conditions" not in d.attrs  # the file has none


def test_a_split_of_numpy_integers_saves_and_loads(tmp_path):
    # split(n, seed=np.int64(3)) and a Split of numpy index arrays (np.flatnonzero(mask)) could
    # not be saved: "Object of type int64 is not JSON serializable"
    sp = sd.split(np.int64(10), seed=np.int64(3))
    assert sd.Split.load(sp.save(tmp_path / "a.json")) == sd.split(10, seed=3)
    mask = np.array([True, False, True, False, False])
    own = sd.Split(np.flatnonzero(mask), np.array([1]), (np.int64(4),), n=np.int64(5))
    back = sd.Split.load(own.save(tmp_path / "b.json"))
    assert (back.train, back.val, back.test, back.n) == ((0, 2), (1,), (4,), 5)
    assert back == own
    with pytest.raises(TypeError, match="expected integer sample indices"):
        sd.Split((0.5,), (), (), n=2)


def test_loading_the_other_json_file_says_which_file_was_expected(tmp_path):
    # Normalizer.load of a splits.json raised KeyError: 'mean', Split.load of a normaliser file
    # KeyError: 'train', and a JSON list "list indices must be integers or slices, not str"
    split_file = sd.split(10, seed=0).save(tmp_path / "splits.json")
    norm = sd.Normalizer({"u": 1.5}, {"u": 2.0}, n_spatial=1)
    norm_file = norm.save(tmp_path / "normalizer.json")
    (tmp_path / "list.json").write_text("[1, 2]")
    for load, path, keys in (
        (sd.Normalizer.load, split_file, "'mean', 'n_spatial', 'std'"),
        (sd.Split.load, norm_file, "'n', 'test', 'train', 'val'"),
        (sd.Normalizer.load, tmp_path / "list.json", "'mean', 'n_spatial', 'std'"),
        (sd.Split.load, tmp_path / "list.json", "'n', 'test', 'train', 'val'"),
    ):
        with pytest.raises(
            ValueError, match=re.escape(f"{path}: expected a JSON object with keys {keys}")
        ):
            load(path)
    back = sd.Normalizer.load(norm_file)
    assert (back.mean, back.std, back.n_spatial) == ({"u": 1.5}, {"u": 2.0}, 1)
    assert sd.Split.load(split_file) == sd.split(10, seed=0)
