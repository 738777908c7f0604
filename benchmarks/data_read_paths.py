"""Strided and multi-channel item reads: sciml's views vs the same selection read with h5py.

A sciml file written by ``sciml.data.write`` (chunked, one chunk per snapshot and field) holding
two fields ``u``, ``v`` of 2 trajectories x 6 steps x N x N float32. Each row times one item of a
view whose selection is not whole snapshots of one field (a strided time step, a pair of steps,
a spatial stride over two fields) against what a user would write without sciml: ``h5py``
slicing the same values out of each field, then stacking them (``sliced``), or reading the whole
snapshots the item spans and slicing them in NumPy (``whole``). All read the file from the page
cache; the time is the best of ``--repeats`` after one warm-up read.

    OMP_NUM_THREADS=1 .venv/bin/python benchmarks/data_read_paths.py

HDF5 copies value by value when the memory selection differs in shape from the file selection;
sciml reads the file selection into a buffer of its own shape first (``_read_hyperslab`` in
``sciml/data/dataset.py``). Writes ``benchmarks/results/data_read_paths.json``.
"""

from __future__ import annotations

import argparse
import json
import platform
import tempfile
import time
from pathlib import Path

import h5py
import numpy as np
import torch

import sciml.data as sd
from sciml._environment import run_environment

HERE = Path(__file__).resolve().parent


def best_of(fn, repeats: int) -> float:
    fn()  # warm-up: handles opened, chunks in HDF5's cache like in an epoch
    times = []
    for _ in range(repeats):
        t0 = time.perf_counter()
        fn()
        times.append(time.perf_counter() - t0)
    return min(times)


def readers(ds, f: h5py.File) -> dict:
    """For each row, (sciml's item, h5py sliced, h5py whole snapshots + NumPy) as callables.

    Every reader returns its values materialised: NumPy slicing with a step (``[::2]``) returns
    a view, and a view left un-copied would time less work than sciml's item, which copies the
    values into tensors of their own (``np.ascontiguousarray`` copies only where the array is a
    strided view)."""
    fu, fv = f["fields/u"], f["fields/v"]
    pairs = sd.AllPairs(ds, samples=[1])
    k_pair = [tuple(p) for p in pairs.pairs].index((0, 5))
    w_dt, w_space = sd.Windows(ds, 2, 1, dt=2), sd.Windows(ds, 1, 1, space=2)
    whole = np.ascontiguousarray
    return {
        "Windows(n_in=2, n_out=1, dt=2): steps 0, 2, 4 of u and v": (
            lambda: w_dt[0],
            lambda: np.stack([fu[0, 0:5:2], fv[0, 0:5:2]], 1),
            lambda: whole(np.stack([fu[0, 0:5], fv[0, 0:5]], 1)[::2]),
        ),
        "AllPairs: steps 0 and 5 of u and v": (
            lambda: pairs[k_pair],
            lambda: np.stack([fu[1, [0, 5]], fv[1, [0, 5]]], 1),
            lambda: whole(np.stack([fu[1, 0:6], fv[1, 0:6]], 1)[[0, 5]]),
        ),
        "Windows(1, 1, space=2): steps 0, 1 of u and v, every 2nd point": (
            lambda: w_space[0],
            lambda: np.stack([fu[0, 0:2, ::2, ::2], fv[0, 0:2, ::2, ::2]], 1),
            lambda: whole(np.stack([fu[0, 0:2], fv[0, 0:2]], 1)[:, :, ::2, ::2]),
        ),
    }


def main() -> None:
    from sciml.cli import HelpFormatter

    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0], formatter_class=HelpFormatter)
    ap.add_argument("--size", type=int, default=256, help="grid points per side")
    ap.add_argument("--repeats", type=int, default=20, help="timed reads per reader (best kept)")
    ap.add_argument("--threads", type=int, default=1, help="torch intra-op threads")
    ap.add_argument(
        "--out", type=Path, default=HERE / "results" / "data_read_paths.json", help="JSON path"
    )
    args = ap.parse_args()
    torch.set_num_threads(args.threads)
    n = args.size
    rng = np.random.default_rng(0)
    u = rng.standard_normal((2, 6, n, n)).astype(np.float32)
    v = rng.standard_normal((2, 6, n, n)).astype(np.float32)
    with tempfile.TemporaryDirectory() as tmp:
        path = sd.write(Path(tmp) / "f.h5", fields={"u": u, "v": v})
        ds = sd.open(path)
        f = h5py.File(path, "r")
        cases = readers(ds, f)
        rows = []
        for name, (ours, sliced, whole) in cases.items():
            item = ours()
            got = np.concatenate([item["input"].numpy(), item["target"].numpy()])
            for other in (sliced, whole):
                want = other()
                assert np.array_equal(got.reshape(want.shape), want), name  # the same values
            t = [best_of(fn, args.repeats) for fn in (ours, sliced, whole)]
            rows.append(
                {"case": name, "sciml_ms": 1e3 * t[0], "h5py_sliced_ms": 1e3 * t[1],
                 "h5py_whole_then_numpy_ms": 1e3 * t[2], "sliced_over_sciml": t[1] / t[0],
                 "whole_over_sciml": t[2] / t[0]}
            )  # fmt: skip
            print(f"{name:64s} sciml {1e3 * t[0]:7.3f} ms | h5py sliced {1e3 * t[1]:7.3f} ms "
                  f"({t[1] / t[0]:5.1f}x) | whole + numpy {1e3 * t[2]:7.3f} ms "
                  f"({t[2] / t[0]:4.1f}x)")  # fmt: skip
        f.close()
        ds.close()
    out = {
        "grid": n,
        "repeats": args.repeats,
        "h5py": h5py.__version__,
        "hdf5": h5py.version.hdf5_version,
        "machine": platform.processor() or platform.machine(),
        "threads": torch.get_num_threads(),
        "environment": run_environment("cpu"),
        "rows": rows,
    }
    args.out.parent.mkdir(parents=True, exist_ok=True)
    args.out.write_text(json.dumps(out, indent=2) + "\n")
    print(f"wrote {args.out}")


if __name__ == "__main__":
    main()
