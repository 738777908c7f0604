"""The benchmark scripts run end to end at their smallest settings, as a user would start them.

Each script runs in a subprocess (one thread) in ``tmp_path`` and writes its JSON there (never
into ``benchmarks/results``); the JSON must parse and hold finite numbers for the keys the script
reports. Where a run is paired against an independent implementation in the same process, the
pairing is held to a number too: sciml's and neuraloperator's spectral layers give the same
output for the same weights, DeepXDE and sciml start from the same weights and, with the same
Adam, end at the same error, every linear solver reaches its tolerance, and the generating ODE of
the latent tasks scores below the models. The numbers themselves (speed-ups, errors after a
training step or two) are not judged: the benchmark's own runs are.

Each script's ``--help`` (and each tool's in ``tools/``) is read in-process, without running it.

``spectral_kernels`` needs a CUDA GPU: without one it must stop with a message that says so.
``data_loading`` (six subprocesses, ~11 s at ``--small --batches 1``) and the PROSE-scored run of
``prose_classical`` (~12 s) are ``slow``; so are two of ``deeponet_accuracy``'s four problems
(~4 s each), to keep the default run near a minute on one core: the other two cover the data-
driven and the physics-informed paths.
"""

from __future__ import annotations

import importlib.util
import json
import math
import os
import subprocess
import sys
from pathlib import Path

import pytest
import torch
from _help import check_every_option_has_a_meaning_and_a_default, record_parsers

BENCHMARKS = Path(__file__).resolve().parents[1] / "benchmarks"
DEEPXDE_DATA = BENCHMARKS.parents[1] / "shared" / "reference-data" / "deepxde-antiderivative"


def bench_env(extra: dict | None = None) -> dict:
    """The environment a benchmark runs in: this one, one thread, and ``extra``."""
    return {**os.environ, "OMP_NUM_THREADS": "1", "MKL_NUM_THREADS": "1", **(extra or {})}


def run_benchmark(name: str, *args: str, cwd: Path, check: bool = True, env: dict | None = None):
    env = bench_env(env)
    proc = subprocess.run(
        [sys.executable, str(BENCHMARKS / f"{name}.py"), *args],
        cwd=cwd, env=env, capture_output=True, text=True, timeout=600,
    )  # fmt: skip
    if check:
        assert proc.returncode == 0, f"{name} failed:\n{proc.stdout[-2000:]}\n{proc.stderr[-4000:]}"
    return proc


def _refuse_constant(name: str):
    raise ValueError(f"non-standard JSON constant {name}")


def finite(x, positive: bool = False) -> bool:
    ok = isinstance(x, (int, float)) and not isinstance(x, bool) and math.isfinite(x)
    return ok and (x > 0 if positive else True)


def check_environment(r: dict, threads: int, device: str = "cpu", extra: dict | None = None):
    """The JSON's ``environment`` holds the torch threads the script ran with and the thread and
    allocator variables of the environment it was given (``bench_env(extra)``, read here, not
    by sciml); the versions of this process; the GPU's name only where the run's device is a
    CUDA one (``device``: "cpu", or "default" for cuda where present)."""
    import platform

    import sciml

    given = bench_env(extra)
    env = r["environment"]
    assert env["torch_threads"] == threads
    assert finite(env["interop_threads"], positive=True)
    assert env["thread_env"] == {
        k: given.get(k) for k in ("OMP_NUM_THREADS", "MKL_NUM_THREADS", "OPENBLAS_NUM_THREADS")
    }
    allocator = {
        k: v
        for k, v in given.items()
        if k == "LD_PRELOAD"
        or k.startswith("MALLOC_")
        or k
        in ("PYTORCH_CUDA_ALLOC_CONF", "PYTORCH_HIP_ALLOC_CONF", "PYTORCH_NO_CUDA_MEMORY_CACHING")
    }
    assert env["allocator_env"] == allocator
    assert (env["torch"], env["sciml"]) == (torch.__version__, sciml.__version__)
    assert env["python"] == platform.python_version() and env["cpu_count"] == os.cpu_count()
    cpuinfo = Path("/proc/cpuinfo")
    models = [ln for ln in cpuinfo.read_text().splitlines() if ln.startswith("model name")] if (
        cpuinfo.exists()
    ) else []  # fmt: skip
    assert env["cpu"] == (models[0].split(":", 1)[1].strip() if models else env["cpu"]) != ""
    on_gpu = device == "default" and torch.cuda.is_available()
    assert env["gpu"] == (torch.cuda.get_device_name(0) if on_gpu else None)


#: the torch threads each smoke run sets or inherits (OMP_NUM_THREADS=1), and its device
SMOKE_THREADS = {"spectral": 2}
SMOKE_DEVICE = {"trainer_overhead": "default"}


# -- per-script checks of the JSON -------------------------------------------------------------
def check_data_loading(r: dict) -> None:
    assert len(r["runs"]) == 6
    assert len(r["items_checked_equal"]) == 3  # the loaders read the same windows
    for run in r["runs"]:
        assert run["samples"] == 16 and finite(run["samples_per_s"], positive=True)
        assert finite(run["peak_rss_mib"], positive=True)
    assert finite(r["speedup_vs_well_0_workers"], positive=True)


def check_data_read_paths(r: dict) -> None:
    # the script asserts that the three readers return the same values before timing them
    assert r["grid"] == 16 and len(r["rows"]) == 3
    assert r["threads"] == 1  # set by --threads (default 1) and recorded
    for row in r["rows"]:
        times = [row[k] for k in ("sciml_ms", "h5py_sliced_ms", "h5py_whole_then_numpy_ms")]
        assert all(finite(t, positive=True) for t in times), row
        assert row["sliced_over_sciml"] == pytest.approx(times[1] / times[0])


def check_deeponet(r: dict) -> None:
    s = r["summary"]
    assert all(finite(v, positive=True) for v in s.values()), s
    run = r["runs"][0]
    assert run["same_initial_weights"] is True
    # the same weights, data and (non-fused) Adam: the same error after 20 steps
    assert s["sciml_plain_adam_test_mean_rel_l2"] == pytest.approx(
        s["deepxde_test_mean_rel_l2"], rel=1e-3
    )


def check_deeponet_accuracy(r: dict) -> None:
    assert r["iterations_done"] == 2
    # the test-set evaluations along the way are timed apart from the optimisation
    assert finite(r["train_seconds"], positive=True) and finite(r["eval_seconds"], positive=True)
    assert r["history"][-1]["seconds"] <= r["train_seconds"]
    assert finite(r["final"]["test_mse"], positive=True)
    assert finite(r["final"]["test_mean_rel_l2"], positive=True)
    assert r["history"] and all(finite(h["loss"]) for h in r["history"])


def check_linear_solvers(r: dict) -> None:
    assert {row["geometry"] for row in r["rows"]} == {"box", "obstacle"}
    for row in r["rows"]:
        assert {"scipy-cg", "cg", "amg-pcg", "dcdm", "dcdm-k16", "dcdm-d4"} <= set(row["methods"])
        for name, m in row["methods"].items():
            assert m["status"] == "converged", (name, m)
            assert m["true_residual"] < 10 * r["rtol"], (name, m)
            assert finite(m["time_vs_cg"], positive=True)
    for per_geometry in r["summary"].values():
        for s in per_geometry.values():
            assert all(finite(v, positive=True) for v in s["iterations_vs_cg"].values())


def check_lpinn(r: dict) -> None:
    cases = ["conv10", "convdiff50", "burgers", "burgers_moving"]
    assert [c["case"] for c in r["results"]] == cases
    for c in r["results"]:
        assert finite(c["time_ratio_lpinn_over_pinn"], positive=True)
        for method in ("pinn", "lpinn"):
            assert finite(c[method]["rel_l2"], positive=True)
            # the authors' measure (matrix 2-norms), beside the relative L2 the tables give
            assert finite(c[method]["rel_spectral"], positive=True)
            assert finite(c[method]["adam_seconds_per_step"], positive=True)
    # DeepXDE runs beside them by default wherever it is installed
    has_deepxde = importlib.util.find_spec("deepxde") is not None
    assert r["args"]["baselines"] == (["deepxde"] if has_deepxde else [])
    for c in r["results"] if has_deepxde else []:
        d, p = c["deepxde"], c["pinn"]
        # the same points, initial weights, feature transform and loss weights: the same loss
        # at the start; the same Adam schedule and L-BFGS: the same error after 3 + 2 steps
        assert d["initial_loss"] == pytest.approx(p["initial_loss"], rel=1e-5)
        assert d["rel_l2"] == pytest.approx(p["rel_l2"], rel=1e-3)
        assert d["lbfgs_iterations"] == p["lbfgs_iterations"]
        for m in ("lpinn", "pinn"):
            assert finite(c[f"time_ratio_{m}_over_deepxde"], positive=True)
            assert finite(c[f"lbfgs_time_ratio_{m}_over_deepxde"], positive=True)
            assert c[f"error_ratio_{m}_over_deepxde"] == pytest.approx(c[m]["rel_l2"] / d["rel_l2"])
        # timed in turns with sciml's (lpinn.Turns): every Adam step but its first
        assert d["adam_steps_timed"] == r["args"]["adam"] - 1 == p["adam_steps_timed"]


def _has_neuralop() -> bool:
    return importlib.util.find_spec("neuralop") is not None


def check_mgno_vs_fno(r: dict) -> None:
    (row,) = r["runs"]
    models = ["mgno", "fno", *(["neuralop_fno"] if _has_neuralop() else [])]
    assert r["args"]["models"] == models
    assert ("neuralop_fno" in r["skipped"]) is not _has_neuralop()
    assert (r["neuraloperator"] is None) is not _has_neuralop()
    for m in models:
        assert finite(row[m]["test_rel_l2"], positive=True)
        assert finite(row[m]["seconds_per_epoch"], positive=True)
    for i, a in enumerate(models):  # every pair's ratios, recomputed from the rows
        for b in models[i + 1 :]:
            assert row[f"error_ratio_{a}_over_{b}"] == pytest.approx(
                row[a]["test_rel_l2"] / row[b]["test_rel_l2"]
            )
            assert row[f"time_ratio_{a}_over_{b}"] == pytest.approx(
                row[a]["seconds_per_epoch"] / row[b]["seconds_per_epoch"]
            )
    # counted by hand for the smoke run's --fno-modes 4 --fno-width 8 (spectral weights
    # 8 x 8 x (2 x 4) x 4 complex = 4,096 reals a layer in both): sciml's FNO, linear lifting
    # 3 -> 8 (32), per layer 4,096 + a 1x1 skip with bias (72), projection 8 -> 128 -> 1 (1,281)
    assert row["fno"]["num_parameters"] == 32 + 4 * (4096 + 72) + 1281 == 17_985
    if "neuralop_fno" in models:
        # neuraloperator's, built to match: per layer 4,096 + spectral bias (8) + skip without
        # bias (64) + its channel MLP 8 -> 4 -> 8 (36 + 40) + soft-gating (8)
        assert row["neuralop_fno"]["num_parameters"] == 32 + 4 * (4096 + 8 + 64 + 76 + 8) + 1281


def check_neural_de(r: dict) -> None:
    assert set(r["table"]) == {"digits", "latent", "sparse", "sde"}
    for task, rows in r["table"].items():
        # RNODE on the ODE tasks only (NeuralSDE takes no RNODE: the SDE task skips it)
        variants = ("vanilla", "global", "local") + (("rnode",) if task != "sde" else ())
        assert ("rnode" in rows) == (task != "sde"), (task, list(rows))
        for variant in variants:
            row = rows[variant]
            assert all(finite(v) for v in row.values()), (task, variant, row)
            assert finite(row["nfe_ratio"], positive=True)
            # the ratio against vanilla of the same seed, recomputed from the raw runs
            nfe = {x["variant"]: x["nfe"] for x in r["runs"] if x["task"] == task}
            assert row["nfe_ratio"] == pytest.approx(nfe[variant] / nfe["vanilla"])
        if task in ("latent", "sparse"):  # the generating ODE is at the noise floor
            assert rows["exact_ode"]["mse"] < rows["vanilla"]["mse"]


def check_prose_classical(r: dict) -> None:
    assert r["n"] == 15  # one sample of each system
    assert r["threads"] == 1 and r["omp_num_threads"] == "1"  # what the fits ran with
    for key in ("identified", "identified_prior", "true_eq"):
        assert finite(r["table"]["all"][key]["mean"])
    # the true equations with a fitted u(0) forecast within a few % (measured 0.3%)
    assert r["table"]["all"]["true_eq"]["failed"] == 0
    assert r["table"]["all"]["true_eq"]["mean"] < 0.05


def check_prose_step(r: dict) -> None:
    assert finite(r["speedup"], positive=True)
    trimmed, padded = r["loss_trimmed_vs_padded"]
    assert finite(trimmed) and trimmed == pytest.approx(padded, rel=1e-5)
    assert r["longest_equation_per_batch"]["max"] <= r["max_symbol_len"]


def check_scot(r: dict) -> None:
    assert r["device_name"].startswith("cpu (")  # a GPU run records the GPU's name
    for mode in ("forward", "forward_backward"):
        assert finite(r["time"][mode]["sciml"]["wall_s"], positive=True)
        assert finite(r["memory_peak_mib"][mode]["sciml"])
    # training keeps the activations for the backward pass
    mem = r["memory_peak_mib"]
    assert mem["forward_backward"]["sciml"] > mem["forward"]["sciml"]
    # what stays resident between calls is recorded too: sciml's inference keeps its 32 position
    # biases (19.7 MiB for Poseidon-T, the sum of the cached tensors), which a later call's peak
    # does not see (measured 45.5 MiB retained at batch 1)
    kept = r["memory_retained_by_warm_up_mib"]["forward"]["sciml"]
    assert finite(kept) and kept > 19.7


def check_spectral(r: dict) -> None:
    assert [c["case"] for c in r["results"]] == ["SpectralConv 1D", "FNO training step"]
    for c in r["results"]:
        assert finite(c["speedup"], positive=True)
        assert c["max_rel_output_diff"] < 1e-5  # same weights, same outputs
    assert set(r["results"][0]["backends_ms"]) == {"auto", "fft", "dft_matmul", "fused"}
    assert all(finite(v, positive=True) for v in r["results"][0]["backends_ms"].values())
    # the process's thread count (--threads 2 below; the subprocess starts with OMP_NUM_THREADS=1)
    assert r["threads"] == 2 and r["device"].endswith("2 thread(s)")


def check_fno_padding_resolution(r: dict) -> None:
    # docs/spectral.md: padding in points moves the outputs of the two grids far apart, padding
    # scaled with the grid much less (the unpadded model least), seed by seed
    rel = r["rel_diff"]
    assert set(rel) == {"0:0", "4:4", "4:8"} and r["setting"]["seeds"] == [0, 1]
    for same, scaled, none in zip(*(rel[k]["per_seed"] for k in ("4:4", "4:8", "0:0"))):
        assert finite(none, positive=True) and same > 2 * scaled > 2 * none
    # deterministic (float64, seeded): seeds 0 and 1 reproduce the committed JSON that the
    # docs' 17.5 / 2.4 / 1.0% come from, so a change to FNO or the script that moves them fails
    committed = json.loads((BENCHMARKS / "results" / "fno_padding_resolution.json").read_text())
    assert committed["setting"] == {**r["setting"], "seeds": list(range(10))}
    for key, row in rel.items():
        assert row["per_seed"] == pytest.approx(
            committed["rel_diff"][key]["per_seed"][:2], rel=1e-6
        )


def check_spectral_op_counts(r: dict) -> None:
    counts = r["counts"]
    assert set(counts) == {"fft", "dft_matmul", "fused"}
    for c in counts.values():
        for key in ("autograd_nodes", "issued_ops", "aten_calls", "compute_kernels"):
            assert isinstance(c[key], int) and c[key] > 0
    # the fused backend's point: one autograd node per DFT instead of a chain
    assert counts["fused"]["autograd_nodes"] < counts["dft_matmul"]["autograd_nodes"]


def check_t1_vs_fno(r: dict) -> None:
    variants = ("t1", "t1_rfft", "t1_shift")
    baselines = ["fno", *(["neuralop_fno"] if _has_neuralop() else [])]
    assert r["setup"]["baselines"] == baselines
    assert ("neuralop_fno" in r["skipped"]) is not _has_neuralop()
    assert (r["neuraloperator"] is None) is not _has_neuralop()
    steps = r["step_s"]["32"]
    assert all(finite(v, positive=True) for v in steps.values())
    assert set(r["training"]) == {*baselines, *variants}
    for k, t in r["training"].items():
        assert finite(t["test_rel_l2"], positive=True), k
        assert finite(t["test_rel_l2_group_average"], positive=True), k
        assert t["seconds_per_epoch"] == pytest.approx(t["train_s"] / t["epochs"])
    for k in variants:
        assert finite(r[f"{k}_over_fno_test_error"], positive=True)
    if "neuralop_fno" in baselines:
        tr, vs = r["training"], r["vs_neuralop_fno"]
        for k in variants:
            assert steps[f"neuralop_fno_over_{k}"] == pytest.approx(
                steps["neuralop_fno"] / steps[k]
            )
        assert steps["fno_over_neuralop_fno"] == pytest.approx(steps["fno"] / steps["neuralop_fno"])
        for k in ("fno", *variants):
            assert r[f"{k}_over_neuralop_fno_test_error"] == pytest.approx(
                tr[k]["test_rel_l2"] / tr["neuralop_fno"]["test_rel_l2"]
            )
            assert vs[k]["test_rel_l2"] == pytest.approx(r[f"{k}_over_neuralop_fno_test_error"])
            assert vs[k]["seconds_per_epoch"] == pytest.approx(
                tr[k]["seconds_per_epoch"] / tr["neuralop_fno"]["seconds_per_epoch"]
            )
            assert vs[k]["step_s_32"] == pytest.approx(steps[k] / steps["neuralop_fno"])
        # neuraloperator's FNO at sciml's settings has, per layer, its channel MLP
        # 32 -> 16 -> 32 (528 + 544) and soft-gating (32) more, and a spectral bias (32) where
        # sciml's skip has one (32): 4 x 1,104 parameters more than sciml's 2,368,001
        assert r["params"]["fno"] == 2_368_001
        assert r["params"]["neuralop_fno"] - r["params"]["fno"] == 4 * (528 + 544 + 32)
    # solved on 16 x 16, trained on the data Fourier-interpolated to 32 x 32
    assert (r["data"]["solve_resolution"], r["data"]["resolution"]) == (16, 32)
    assert r["setup"]["device_name"].startswith("cpu (")  # a GPU run records the GPU's name


def check_ns_resolution_check(r: dict) -> None:
    # 16 x 16 -> 32 x 32 over T = 0.5 (measured: 1.3% from the coarse grid's dealiasing, 1.3e-6
    # between dt and dt / 2, 8.7e-7 float32 against float64)
    assert 1e-4 < r["resolution_error"][0] < 0.05
    assert 0 < r["time_step_error_coarse"][0] < 1e-4
    assert 0 < r["float32_vs_float64_coarse"][0] < 1e-5
    tail = [r["fine_tail_energy"][f">= {k}"][0] for k in (12, 16, 32)]
    assert tail == sorted(tail, reverse=True) and tail[0] < 1e-20


def check_trainer_overhead(r: dict) -> None:
    # two epochs of 3 steps (5 samples, batch 2), 3 timed repeats; --baseline-trainer loads the
    # current trainer.py a second time, as the before / after comparison would load an older one.
    # No timing is asserted: each summary figure is recomputed from the raw per-repeat times the
    # JSON stores, over the step count recomputed from the sample counts
    import statistics

    names = {"plain", "plain_val_ckpt", "trainer", "trainer_val_ckpt", "baseline",
             "baseline_val_ckpt"}  # fmt: skip
    assert r["threads"] == 1 and r["baseline_trainer"].endswith("trainer.py")
    assert r["repeats"] == 3
    for case in ("fno", "deeponet"):
        c = r["results"][case]
        assert (c["train_samples"], c["val_samples"], c["epochs"], c["batch_size"]) == (5, 2, 2, 2)
        steps = c["epochs"] * math.ceil(c["train_samples"] / c["batch_size"])  # the last is short
        assert c["steps"] == steps == 6
        for clock in ("cpu", "wall"):
            raw = c[f"{clock}_s"]
            assert set(raw) == names
            assert all(len(ts) == 3 and all(finite(t, positive=True) for t in ts)
                       for ts in raw.values())  # fmt: skip
            summary = c[clock]
            ms = summary["ms_per_step"]
            assert set(ms) == names
            for name in names:
                assert ms[name] == pytest.approx(1e3 * statistics.median(raw[name]) / steps)
            for name in ("trainer", "baseline"):
                for suffix in ("", "_val_ckpt"):
                    run, plain = f"{name}{suffix}", f"plain{suffix}"
                    median_of = {k: statistics.median(raw[k]) for k in (run, plain)}
                    over = median_of[run] - median_of[plain]
                    assert summary[f"{run}_overhead_ms_per_step"] == pytest.approx(
                        1e3 * over / steps, abs=1e-9
                    )
                    assert summary[f"{run}_over_{plain}"] == pytest.approx(
                        median_of[run] / median_of[plain]
                    )


J = ["--out", "out.json"]
SMOKE = {
    "data_loading": (["--small", "--batches", "1", "--data-dir", "data", *J], ["the_well"]),
    "data_read_paths": (["--size", "16", "--repeats", "1", *J], []),
    "deeponet": (["--iterations", "20", "--block", "10", "--seeds", "0", *J], ["deepxde"]),
    "fno_padding_resolution": (["--seeds", "0,1", *J], []),
    "linear_solvers": (["--sizes", "8", "--deflate", "4", "--threads", "1", *J], ["pyamg"]),
    "lpinn": (["--cases", "conv10", "convdiff50", "burgers", "burgers_moving", "--points", "128",
               "--ic-points", "32", "--width", "16", "--depth", "2", "--curve-depth", "1",
               "--adam", "3", "--lbfgs", "2", *J], []),
    "mgno_vs_fno": (["--resolutions", "16", "--n-train", "8", "--n-test", "4", "--epochs", "1",
                     "--batch-size", "4", "--fno-modes", "4", "--fno-width", "8",
                     "--device", "cpu", "--data-dir", "data", *J], []),
    "neural_de": (["--epochs", "1", "--seeds", "0", "--variants", "vanilla,global,local,rnode",
                   *J], ["sklearn"]),
    "ns_resolution_check": (["--n", "1", "--coarse", "16", "--fine", "32", "--T", "0.5",
                             "--dt", "0.01", "--threads", "1", *J], []),
    "prose_classical": (["--data", "data/val.h5", "--n", "15", "--per-system", "1",
                         "--workers", "1", *J], []),
    "prose_step": (["--n", "16", "--batch-size", "4", "--width", "32", "--reps", "1",
                    "--threads", "1", *J], []),
    "scot": (["--batch", "1", "--repeats", "1", "--threads", "1", "--device", "cpu", *J], []),
    "spectral": (["--device", "cpu", "--repeats", "1", "--cases", "1,fno", "--threads", "2",
                  "--backends", "auto,fft,dft_matmul,fused", *J], ["neuralop"]),
    "spectral_op_counts": (["--ndim", "1", "--batch", "1", "--channels", "4", *J], []),
    "trainer_overhead": (["--repeats", "3", "--epochs", "2", "--batch-size", "2", "--n-fno", "5",
                          "--n-deeponet", "5", "--n-val", "2", "--grid", "16", "--baseline-trainer",
                          str(BENCHMARKS.parent / "sciml" / "train" / "trainer.py"), *J], []),
    "t1_vs_fno": (["--n-train", "4", "--n-test", "2", "--resolution", "32",
                   "--solve-resolution", "16", "--step-resolution", "32", "--step-batch", "2", "--reps", "1", "--T", "0.05",
                   "--dt", "0.01", "--epochs", "1", "--batch-size", "2", "--augment",
                   "--test-average", "--data", "ns.npz", *J], []),
}  # fmt: skip
SLOW = {"data_loading"}  # ~11 s at its smallest settings


@pytest.mark.parametrize(
    "name", [pytest.param(n, marks=pytest.mark.slow) if n in SLOW else n for n in sorted(SMOKE)]
)
def test_benchmark_runs(name, tmp_path):
    args, requires = SMOKE[name]
    for module in requires:
        pytest.importorskip(module)
    if name == "deeponet" and not DEEPXDE_DATA.exists():
        pytest.skip(f"DeepXDE's antiderivative data not at {DEEPXDE_DATA}")
    run_benchmark(name, *args, cwd=tmp_path)
    text = (tmp_path / "out.json").read_text()
    r = json.loads(text, parse_constant=_refuse_constant)
    globals()[f"check_{name}"](r)
    check_environment(r, SMOKE_THREADS.get(name, 1), SMOKE_DEVICE.get(name, "cpu"))


def test_lpinn_without_deepxde_runs_sciml_alone_or_refuses_an_explicit_request(tmp_path):
    """With DeepXDE not importable (a stand-in module that raises ImportError) the default run
    says so and goes on without it; ``--baselines deepxde`` stops with that message."""
    fake = tmp_path / "fake"
    fake.mkdir()
    (fake / "deepxde.py").write_text("raise ImportError('hidden by the test')\n")
    env = {"PYTHONPATH": str(fake)}
    args = ["--cases", "conv10", "--points", "64", "--ic-points", "16", "--width", "8",
            "--depth", "1", "--curve-depth", "1", "--adam", "2", "--lbfgs", "0", *J]  # fmt: skip
    proc = run_benchmark("lpinn", *args, cwd=tmp_path, env=env)
    assert "DeepXDE is not installed: running without it" in proc.stdout
    r = json.loads((tmp_path / "out.json").read_text())
    assert r["deepxde"] is None and r["args"]["baselines"] == []
    assert "deepxde" not in r["results"][0] and finite(r["results"][0]["pinn"]["rel_l2"])
    proc = run_benchmark("lpinn", *args, "--baselines", "deepxde", cwd=tmp_path, env=env,
                         check=False)  # fmt: skip
    assert proc.returncode == 2
    assert "--baselines deepxde: DeepXDE is not installed" in proc.stderr


def test_benchmark_records_thread_and_allocator_variables_as_set(tmp_path, monkeypatch):
    """One run under known thread and allocator variables: the JSON's ``environment`` names each
    variable with its value (an unset OPENBLAS_NUM_THREADS as null, a variable that is no
    allocator's not at all) beside torch's threads, which the script sets to 1 whatever
    OMP_NUM_THREADS says."""
    for k in list(os.environ):
        if k.startswith(("MALLOC_", "PYTORCH_")) or k in ("LD_PRELOAD", "OPENBLAS_NUM_THREADS"):
            monkeypatch.delenv(k)
    extra = {"OMP_NUM_THREADS": "3", "MKL_NUM_THREADS": "2", "MALLOC_ARENA_MAX": "2",
             "PYTORCH_CUDA_ALLOC_CONF": "expandable_segments:True", "PYTORCH_JIT": "1"}  # fmt: skip
    args, _ = SMOKE["spectral_op_counts"]
    run_benchmark("spectral_op_counts", *args, cwd=tmp_path, env=extra)
    r = json.loads((tmp_path / "out.json").read_text())
    check_environment(r, threads=1, extra=extra)
    env = r["environment"]
    assert env["thread_env"] == {
        "OMP_NUM_THREADS": "3", "MKL_NUM_THREADS": "2", "OPENBLAS_NUM_THREADS": None
    }  # fmt: skip
    assert env["allocator_env"] == {
        "MALLOC_ARENA_MAX": "2", "PYTORCH_CUDA_ALLOC_CONF": "expandable_segments:True"
    }  # fmt: skip


def test_allocator_vars_names_ld_preload_malloc_and_torch_allocator_variables():
    from sciml._environment import allocator_vars

    env = {
        "LD_PRELOAD": "/usr/lib/libjemalloc.so.2", "MALLOC_CONF": "background_thread:true",
        "MALLOC_TRIM_THRESHOLD_": "0", "PYTORCH_CUDA_ALLOC_CONF": "max_split_size_mb:128",
        "PYTORCH_NO_CUDA_MEMORY_CACHING": "1", "PYTORCH_JIT": "0", "HOME": "/root",
        "OMP_NUM_THREADS": "1",
    }  # fmt: skip
    assert allocator_vars(env) == {
        "LD_PRELOAD": "/usr/lib/libjemalloc.so.2", "MALLOC_CONF": "background_thread:true",
        "MALLOC_TRIM_THRESHOLD_": "0", "PYTORCH_CUDA_ALLOC_CONF": "max_split_size_mb:128",
        "PYTORCH_NO_CUDA_MEMORY_CACHING": "1",
    }  # fmt: skip
    assert allocator_vars({"HOME": "/root"}) == {}


@pytest.mark.parametrize(
    "problem",
    [
        "antiderivative",
        pytest.param("pendulum", marks=pytest.mark.slow),
        pytest.param("diffusion_reaction", marks=pytest.mark.slow),
        "pi_diffusion_reaction",
    ],
)
def test_deeponet_accuracy_runs(problem, tmp_path):
    run_benchmark(
        "deeponet_accuracy", "--problem", problem, "--iterations", "2", "--n-train", "20",
        "--batch", "10", "--out", "out.json", cwd=tmp_path,
    )  # fmt: skip
    r = json.loads((tmp_path / "out.json").read_text())
    assert r["problem"] == problem
    check_deeponet_accuracy(r)
    check_environment(r, threads=1)


@pytest.mark.slow
def test_prose_classical_scores_a_prose_checkpoint(tmp_path):
    """``--prose CKPT``: an untrained small PROSE, scored on the same samples as the fits."""
    from sciml.models import PROSE, PROSEConfig

    torch.manual_seed(0)
    PROSE(PROSEConfig.small(width=32)).save_pretrained(tmp_path / "ckpt")
    args, _ = SMOKE["prose_classical"]
    run_benchmark("prose_classical", *args, "--prose", "ckpt", cwd=tmp_path)
    r = json.loads((tmp_path / "out.json").read_text())
    check_prose_classical(r)
    for row in r["table"].values():  # every system, and "all"
        assert finite(row["prose"]["mean"], positive=True)
        assert finite(row["prose_refined"]["mean"], positive=True)


@pytest.mark.slow
def test_spectral_fno_step_through_torch_compile(tmp_path):
    """``spectral.py --cases fno --compile``: compiled steps of both sides timed beside the eager
    ones (the compiled models are the same modules, so the outputs were compared already)."""
    run_benchmark("spectral", "--device", "cpu", "--repeats", "1", "--cases", "fno",
                  "--compile", "--out", "out.json", cwd=tmp_path)  # fmt: skip
    r = json.loads((tmp_path / "out.json").read_text(), parse_constant=_refuse_constant)
    c = r["results"][0]["compiled"]
    for key in ("sciml_ms", "neuraloperator_ms", "speedup", "sciml_speedup_over_eager"):
        assert finite(c[key], positive=True)
    assert all(finite(v, positive=True) for v in c["first_step_s"].values())


@pytest.mark.slow
def test_prose_step_compiled_against_eager(tmp_path):
    """``prose_step.py --compiled`` (backend eager, three compiles): forward + loss eager, compiled
    at max_symbol_len and compiled at the bucket width; the script stops if a compiled loss is
    not eager's, and the short batch's bucket is narrower than the padded width."""
    run_benchmark("prose_step", "--compiled", "--backend", "eager", "--n", "16", "--batch-size",
                  "4", "--width", "32", "--reps", "1", "--threads", "1", *J, cwd=tmp_path)  # fmt: skip
    r = json.loads((tmp_path / "out.json").read_text(), parse_constant=_refuse_constant)
    assert all(finite(v, positive=True) for v in r["median_s"].values())
    short, long = r["cases"]["short"], r["cases"]["long"]
    assert short["longest_equation"] <= short["bucket_width"] < short["padded_width"] == 200
    assert long["longest_equation"] <= long["bucket_width"] <= 200
    for key, loss in r["loss"].items():
        assert loss == pytest.approx(r["loss"][key.split("/")[0] + "/eager"], rel=1e-5)


@pytest.mark.parametrize("name", ["mgno_vs_fno", "t1_vs_fno"])
def test_fno_benchmarks_without_neuralop_skip_it_or_refuse_an_explicit_request(name, tmp_path):
    """With neuraloperator not importable (a stand-in package that raises ImportError) the
    default run says why it skips neuraloperator's FNO, records that in ``skipped`` and runs the
    other models; asking for it by name stops with the same reason (argparse's exit code 2)."""
    fake = tmp_path / "fake" / "neuralop"
    fake.mkdir(parents=True)
    (fake / "__init__.py").write_text("raise ImportError('hidden by the test')\n")
    env = {"PYTHONPATH": str(fake.parent)}
    if name == "mgno_vs_fno":
        args, pick = SMOKE[name][0], ["--models", "fno", "neuralop_fno"]
    else:
        args = ["--skip-training", "--resolution", "32", "--step-resolution", "32",
                "--step-batch", "1", "--reps", "1", "--t1-variants", "t1", *J]  # fmt: skip
        pick = ["--baselines", "neuralop_fno"]
    proc = run_benchmark(name, *args, cwd=tmp_path, env=env)
    assert "skipping neuralop_fno: neuraloperator is not installed (hidden by the test)" in (
        proc.stdout
    )
    r = json.loads((tmp_path / "out.json").read_text())
    assert r["skipped"] == {
        "neuralop_fno": "neuraloperator is not installed (hidden by the test); pip install "
        "neuraloperator"
    }
    assert r["neuraloperator"] is None
    if name == "mgno_vs_fno":
        assert r["args"]["models"] == ["mgno", "fno"] and "neuralop_fno" not in r["runs"][0]
    else:
        assert r["setup"]["baselines"] == ["fno"] and set(r["params"]) == {"fno", "t1"}
        assert "vs_neuralop_fno" not in r and finite(r["step_s"]["32"]["fno_over_t1"])
    (tmp_path / "out.json").unlink()
    proc = run_benchmark(name, *args, *pick, cwd=tmp_path, env=env, check=False)
    assert proc.returncode == 2
    assert f"{pick[0]} neuralop_fno: neuraloperator is not installed" in proc.stderr
    assert not (tmp_path / "out.json").exists()


def test_t1_vs_fno_times_a_compiled_step_only_if_its_loss_is_the_eager_one(monkeypatch):
    """``--compile-step``: nothing compared a compiled step's loss with the eager one, so a
    compile that computed something else was timed as if it were the same step. Each compiled
    loss is now checked on the same weights and batch before any step: with a stand-in
    ``torch.compile`` that returns the function itself the check records equal losses (the
    FNO's is the relative L2 of its output, computed here); one whose loss is 1e-3 too large
    stops the timing with a RuntimeError, before any weight moved."""
    from sciml.data.generators import sample_grf
    from sciml.train import LpLoss

    module = _load_script("t1_vs_fno")
    models = module.make_models(0, ["t1"])
    u = torch.as_tensor(sample_grf(2, 32, dim=2, seed=1), dtype=torch.float32).unsqueeze(1)
    torch.manual_seed(7)
    y = torch.randn_like(u)
    with torch.no_grad():
        fno_loss = float(LpLoss()(models["fno"](u), y))
    monkeypatch.setattr(torch, "compile", lambda fn, mode=None: fn)
    checked = {}
    torch.manual_seed(7)  # the same y inside step_times
    times = module.step_times(models, 32, 2, 1, "cpu", "default", checked)
    assert set(times) == {"fno", "t1", "fno+compile", "t1+compile"}
    assert set(checked) == {"fno", "t1"}
    assert checked["fno"]["eager"] == pytest.approx(fno_loss, rel=1e-6)
    for c in checked.values():
        assert c["compiled"] == c["eager"] and c["rel_diff"] == 0.0

    def off(fn, mode=None):
        return lambda u, y: fn(u, y) * (1 + 1e-3)

    monkeypatch.setattr(torch, "compile", off)
    before = {k: v.clone() for k, v in models["fno"].state_dict().items()}
    with pytest.raises(RuntimeError, match=r"fno\+compile: the compiled loss .* is not the eager "
                       r"loss .*relative difference 0\.001 > --compile-rtol 0\.0001"):  # fmt: skip
        module.step_times(models, 32, 2, 1, "cpu", "default")
    assert all(torch.equal(v, before[k]) for k, v in models["fno"].state_dict().items())
    # a looser tolerance lets it through
    assert set(module.step_times(models, 32, 2, 1, "cpu", "default", compile_rtol=1e-2)) == set(
        times
    )


def test_t1_vs_fno_isolated_steps(tmp_path):
    """``--isolate-steps``: each model timed in a loop of its own, the same keys and ratios as
    the interleaved loop (the ratio is the quotient of the two recorded step times)."""
    run_benchmark("t1_vs_fno", "--skip-training", "--resolution", "32", "--step-resolution",
                  "32", "--step-batch", "2", "--reps", "1", "--t1-variants", "t1",
                  "--isolate-steps", "--out", "out.json", cwd=tmp_path)  # fmt: skip
    r = json.loads((tmp_path / "out.json").read_text(), parse_constant=_refuse_constant)
    s = r["step_s"]["32"]
    assert finite(s["fno"], positive=True) and finite(s["t1"], positive=True)
    assert s["fno_over_t1"] == pytest.approx(s["fno"] / s["t1"], rel=1e-12)
    assert r["setup"]["isolate_steps"] is True


@pytest.mark.slow
def test_t1_vs_fno_step_through_torch_compile(tmp_path):
    """``t1_vs_fno.py --compile-step default``: every model's compiled step timed beside its
    eager one, and the FNO / T1 ratio of the compiled steps reported."""
    run_benchmark("t1_vs_fno", "--skip-training", "--resolution", "32", "--step-resolution",
                  "32", "--step-batch", "2", "--reps", "1", "--t1-variants", "t1",
                  "--compile-step", "default", "--out", "out.json", cwd=tmp_path)  # fmt: skip
    r = json.loads((tmp_path / "out.json").read_text(), parse_constant=_refuse_constant)
    s = r["step_s"]["32"]
    for key in ("fno", "t1", "fno+compile", "t1+compile", "fno+compile_over_t1+compile"):
        assert finite(s[key], positive=True)
    # each compiled loss was checked against the eager one before the timing (inductor's
    # float32 reorderings: well inside the 1e-4 the script allows)
    checked = r["compile_check"]["32"]
    assert set(checked) == set(r["params"])
    for c in checked.values():
        assert c["rel_diff"] == pytest.approx(abs(c["compiled"] - c["eager"]) / abs(c["eager"]))
        assert c["rel_diff"] <= 1e-4


def test_spectral_cuda_graphs(tmp_path):
    """``spectral.py --cuda-graphs``: without a GPU it refuses and writes nothing; with one, both
    layers are captured and their graphed outputs and input gradients equal the eager ones."""
    if not torch.cuda.is_available():
        proc = run_benchmark(
            "spectral", "--device", "cpu", "--cuda-graphs", "--out", "out.json", cwd=tmp_path,
            check=False,
        )  # fmt: skip
        assert proc.returncode != 0, proc.stderr
        assert "--cuda-graphs needs --device cuda, got --device cpu" in proc.stderr
        assert not (tmp_path / "out.json").exists()
        return
    run_benchmark(
        "spectral", "--device", "cuda", "--cases", "1", "--repeats", "2", "--cuda-graphs",
        "--out", "out.json", cwd=tmp_path,
    )  # fmt: skip
    (c,) = json.loads((tmp_path / "out.json").read_text())["results"]
    g = c["cuda_graphs"]
    assert finite(g["sciml_ms"], positive=True) and finite(g["neuraloperator_ms"], positive=True)
    assert max(g["max_rel_diff_vs_eager"].values()) < 1e-6, g


def test_spectral_kernels(tmp_path):
    """CUDA only: without a GPU the script must say so and stop; with one it runs its 1D
    cases and the Triton kernels pass gradcheck and agree with the FFT backend."""
    if not torch.cuda.is_available():
        proc = run_benchmark("spectral_kernels", "--out", "out.json", cwd=tmp_path, check=False)
        assert proc.returncode != 0 and "needs a CUDA GPU" in proc.stderr, proc.stderr
        assert not (tmp_path / "out.json").exists()
        return
    pytest.importorskip("triton")
    run_benchmark(
        "spectral_kernels", "--dims", "1", "--repeats", "2", "--out", "out.json", cwd=tmp_path
    )
    r = json.loads((tmp_path / "out.json").read_text())
    assert all(r["gradcheck"].values()), r["gradcheck"]
    assert r["threads"] == 1  # run_benchmark's OMP_NUM_THREADS=1
    check_environment(r, threads=1, device="default")
    assert len(r["results"]) == 4
    for c in r["results"]:
        assert all(finite(v, positive=True) for v in c["ms"].values())
        for errors in c["rel_error_vs_fft"].values():
            assert errors["output"] < 1e-4 and errors["input_grad"] < 1e-4, errors


@pytest.mark.parametrize(
    "path", sorted((BENCHMARKS / "results").glob("*.json")), ids=lambda p: p.name
)
def test_committed_results_are_strict_json(path):
    """Every committed result parses as strict JSON (no NaN / Infinity, which Python writes by
    default and other readers reject)."""
    json.loads(path.read_text(), parse_constant=_refuse_constant)


def test_data_read_paths_readers_return_materialised_values(tmp_path):
    """Every reader of ``data_read_paths`` returns the item's values (against the arrays
    written, indexed by hand) in memory of its own: a NumPy strided view left un-copied (the
    "whole snapshots + NumPy" reader's ``[::2]``) timed less work than sciml's item."""
    import importlib.util

    import h5py
    import numpy as np

    import sciml.data as sd

    spec = importlib.util.spec_from_file_location(
        "data_read_paths", BENCHMARKS / "data_read_paths.py"
    )
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    rng = np.random.default_rng(0)
    u, v = (rng.standard_normal((2, 6, 8, 8)).astype(np.float32) for _ in range(2))
    path = sd.write(tmp_path / "f.h5", fields={"u": u, "v": v})
    uv = np.stack([u, v], 2)  # (sample, time, field, x, y)
    expected = [uv[0, 0:5:2], uv[1, [0, 5]], uv[0, 0:2, :, ::2, ::2]]
    with sd.open(path) as ds, h5py.File(path, "r") as f:
        cases = module.readers(ds, f)
        for want, (name, fns) in zip(expected, cases.items()):
            item = fns[0]()
            ours = np.concatenate([item["input"].numpy(), item["target"].numpy()])
            np.testing.assert_array_equal(ours.reshape(want.shape), want, err_msg=name)
            assert all(t.is_contiguous() for t in item.values()), name
            for fn in fns[1:]:
                got = fn()
                np.testing.assert_array_equal(got, want, err_msg=name)
                assert got.flags.c_contiguous and got.flags.owndata, name


def _load_script(name: str):
    """A benchmark script imported as a module (its ``main`` not run)."""
    import importlib.util

    spec = importlib.util.spec_from_file_location(name, BENCHMARKS / f"{name}.py")
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def test_data_loading_checks_that_the_loaders_read_the_same_windows(tmp_path, monkeypatch):
    """The three loaders ``data_loading.py`` times against each other must return the same
    window for the same index (The Well's item moved to the ``(steps x fields, h, w)`` layout of
    the others); nothing checked it. A loader one step off is refused before any timing. The
    allocator text says "glibc malloc defaults" only where nothing is set, ``LD_PRELOAD``
    included."""
    pytest.importorskip("the_well")
    module = _load_script("data_loading")
    path = tmp_path / "f.hdf5"
    module.write_well_file(path, 2, 8, 8, 8)  # 2 trajectories x 4 windows of 5 steps
    assert module.same_items(path, range(8)) == list(range(8))

    class OneStepLate(module.PlainH5):
        def __getitem__(self, k):
            s, t0 = divmod(k, self.n_starts)
            return super().__getitem__(s * self.n_starts + (t0 + 1) % self.n_starts)

    monkeypatch.setattr(module, "PlainH5", OneStepLate)
    with pytest.raises(SystemExit, match="sciml's item 0 differs from the h5py loop's"):
        module.same_items(path, [0])
    assert module.allocator_text({"HOME": "/root"}).startswith("glibc malloc defaults")
    text = module.allocator_text({"LD_PRELOAD": "/usr/lib/libjemalloc.so.2"})
    assert "libjemalloc" in text and "defaults" not in text


def test_trainer_overhead_plain_loop_batches_its_validation_items_in_the_timed_run(tmp_path):
    """``trainer_overhead.py``'s plain loop was handed validation batches collated once outside
    the timing, while the Trainer it is compared with batches its ``val_data`` inside: the same
    items now go to both, and the plain loop's validation value is the mean relative L2 over
    the items, recomputed here by hand from the trained model."""
    module = _load_script("trainer_overhead")
    build, data = module.fno_case(10, 16)
    train, val = data[:7], data[7:]
    model = build()
    means = module.plain(model, train, val, 1, 4, tmp_path)
    model.eval()
    with torch.no_grad():
        errs = []
        for item in val:
            pred = model(item["input"][None])[0]
            errs.append(((pred - item["target"]).norm() / item["target"].norm()).item())
    assert len(means) == 2 and means[1] == pytest.approx(sum(errs) / len(errs), rel=1e-5)
    assert (tmp_path / "last.pt").exists()


def test_spectral_graphs_the_backend_that_sciml_ms_reports(monkeypatch):
    """``spectral.py --cuda-graphs --backends fft,...`` reports the first backend as ``sciml_ms``
    but captured the default (``Auto``) layer for the graphed ``sciml`` row. The capture is
    replaced by the identity here (no GPU needed): the graphed sciml layer carries the first
    listed backend, with the same weights as neuraloperator's layer."""
    pytest.importorskip("neuralop")
    from sciml.layers.spectral_backends import FFT

    module = _load_script("spectral")
    captured = {}

    def fake_graphed(layer, u):
        captured[type(layer).__module__.split(".")[0]] = layer
        return layer, 0.0

    monkeypatch.setattr(module, "_graphed", fake_graphed)
    r = module.bench_spectral(1, torch.device("cpu"), 1, ("fft", "auto"), graphs=True)
    ours, theirs = captured["sciml"], captured["neuralop"]
    assert isinstance(ours.backend, FFT) and r["backend"] == repr(FFT())
    u = torch.randn(2, 64, 1024)
    with torch.no_grad():
        assert torch.allclose(ours(u), theirs(u), rtol=1e-4, atol=1e-5)


def test_t1_vs_fno_waits_for_the_gpu_on_every_cuda_device(monkeypatch):
    """``t1_vs_fno.py`` synchronised only where ``--device`` was the string ``cuda``: with
    ``--device cuda:0`` its step times and training times held the host's kernel launches, not
    the GPU's work. Every timed step is now bracketed by a wait that takes any CUDA device."""
    module = _load_script("t1_vs_fno")
    waited = []
    monkeypatch.setattr(torch.cuda, "synchronize", lambda device=None: waited.append(device))
    for device in ("cuda", "cuda:0", "cuda:1", "cpu"):
        module._sync(device)
    assert waited == ["cuda", "cuda:0", "cuda:1"]
    # two waits around each timed step: 2 models x (1 warm-up + 2 timed) rounds x 2
    calls = []
    monkeypatch.setattr(module, "_sync", calls.append)
    models = module.make_models(0, ["t1"])
    times = module.step_times(models, 32, 2, 2, "cpu", None)
    assert calls == ["cpu"] * 12 and set(times) == {"fno", "t1"}


SCRIPTS = [
    p
    for folder in (BENCHMARKS, BENCHMARKS.parent / "tools")
    for p in sorted(folder.glob("*.py"))
    if "ArgumentParser(" in p.read_text()
]


@pytest.mark.parametrize("path", SCRIPTS, ids=[f"{p.parent.name}/{p.stem}" for p in SCRIPTS])
def test_help_gives_every_option_a_meaning_and_a_default(path, monkeypatch, capsys):
    """Most options had no default in ``--help`` (no defaults formatter) and many no help text
    at all (``mgno_vs_fno.py --resolutions RESOLUTIONS [RESOLUTIONS ...]``). The script runs as
    ``python SCRIPT --help`` would, in-process, up to the exit ``--help`` makes; every argument
    of the parser it builds says what it is and, for an option, its default, as the examples'
    test asks (tests/_help.py)."""
    import runpy

    monkeypatch.syspath_prepend(str(path.parent))  # what running the file puts first
    monkeypatch.delitem(sys.modules, "_formatter", raising=False)  # benchmarks' or tools'
    parsers = record_parsers(monkeypatch)
    monkeypatch.setattr(sys, "argv", [str(path), "--help"])
    with pytest.raises(SystemExit) as exit_:
        runpy.run_path(str(path), run_name="__main__")
    assert exit_.value.code in (0, None)
    (parser,) = set(parsers)
    check_every_option_has_a_meaning_and_a_default(parser, capsys.readouterr().out, path.name)


def test_lpinn_turns_run_one_method_at_a_time_in_blocks_of_adam_steps():
    """``lpinn.Turns``: each method's Adam steps run in turns of ``block`` steps, in order,
    one thread at a time; after its last Adam step a method keeps the turn (its L-BFGS phase
    runs alone). Every Adam step but a method's first is timed."""
    lpinn = _load_script("lpinn")
    log = []
    turns = lpinn.Turns(["a", "b", "c"], 3)

    def job(name, steps):
        def run():
            for s in range(steps):
                log.append(name)
                turns.tick(name, s == steps - 1)
            log.append(name.upper())  # what runs after the Adam phase (L-BFGS)
            return name

        return run

    jobs = {n: job(n, k) for n, k in (("a", 7), ("b", 7), ("c", 4))}
    assert lpinn._run_in_turns(turns, jobs, threads=1) == {"a": "a", "b": "b", "c": "c"}
    assert "".join(log) == "aaabbbcccaaabbbcCaAbB"
    assert turns.steps == {"a": 6, "b": 6, "c": 3}
    assert all(s > 0 for s in turns.seconds.values())
    # an error in one method's thread is raised once the others have finished
    turns = lpinn.Turns(["a", "b"], 2)

    def fails():
        turns.tick("a", False)
        raise RuntimeError("boom")

    with pytest.raises(RuntimeError, match="boom"):
        lpinn._run_in_turns(turns, {"a": fails, "b": job("b", 5)}, threads=1)


def test_lpinn_trains_in_turns_as_each_model_trains_alone():
    """Timed in turns, sciml's PINN and LPINN in ``lpinn.run_case`` train exactly as a plain
    ``fit`` of each, one after the other (the loss history and final loss bit for bit), and
    each records its timed Adam steps (all but its first)."""
    import argparse

    from sciml.pinn import PINN, Box, LossWeights, PINNTrainConfig, fit, sobol
    from sciml.pinn.reference import periodic_grid

    lpinn = _load_script("lpinn")
    args = argparse.Namespace(
        points=64, ic_points=16, ic_weight=100.0, width=8, depth=2, curve_depth=1, adam=7,
        lbfgs=3, lr=1e-3, nu=0.01, burgers_shift=10.0, exact_diffusion=False, seed=0,
        threads=1, save_fields=False, paper=False, turn_steps=2,
    )  # fmt: skip
    out = lpinn.run_case("conv30", args, dde=None)
    problem = lpinn.CASES["conv30"](args)
    pts = sobol(args.points, Box((0.0, 0.0), (2 * math.pi, problem.t_final)), seed=0)
    x_ic = periodic_grid(args.ic_points).float()[:, None]
    torch.manual_seed(0)
    x, t = pts[:, :1].clone().requires_grad_(), pts[:, 1:].clone().requires_grad_()
    model = PINN(width=8, depth=2)
    config = PINNTrainConfig(adam_steps=7, lr=1e-3, lbfgs_steps=3, log_every=1)
    res = fit(model, lambda: model.loss_terms(problem, x, t, x_ic), config,
              weights=LossWeights({"ic": 100.0}))  # fmt: skip
    want = [h["loss"] for h in res.history]
    assert [h["loss"] for h in out["pinn"]["history"]] == want
    assert out["pinn"]["loss"] == res.loss and len(want) == 8  # 7 Adam steps and L-BFGS's end
    for m in ("pinn", "lpinn"):
        assert out[m]["adam_steps_timed"] == 6
        assert finite(out[m]["adam_seconds_per_step"], positive=True)
