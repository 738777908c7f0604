"""Spectral layers: sciml vs neuraloperator 2.0, one run, same weights, same process.

Measured (forward + backward, float32, interleaved iterations so both sides see the same load):

* ``SpectralConv`` 1D (batch 16, 64 -> 64 channels, 1024 points, 16 kept modes), 2D (batch 16,
  64 -> 64, 128 x 128, 32 x 16 kept modes = sciml ``modes=(16, 16)`` = neuraloperator
  ``n_modes=(32, 30)``), 3D (batch 4, 32 -> 32, 32^3, 16 x 16 x 8 kept).
* a full FNO training step (forward, relative L2 loss, backward, AdamW step) of neuraloperator's
  ``FNO`` with its default options against sciml's ``FNO`` converted from it by
  :func:`sciml.pretrained.convert_neuraloperator.fno_from_neuraloperator`.

Before timing, outputs of both sides are compared for the same weights (max relative error in
the JSON). The sciml spectral layer uses its default backend (``Auto``). Allocator settings are
whatever the environment gives (recorded); both sides share the process, so they are equal.

    OMP_NUM_THREADS=1 .venv/bin/python benchmarks/spectral.py            # small FNO step
    OMP_NUM_THREADS=1 .venv/bin/python benchmarks/spectral.py --full     # FNO at 128^2, width 64
    .venv/bin/python benchmarks/spectral.py --device cuda                # same ratios on a GPU
    OMP_NUM_THREADS=1 .venv/bin/python benchmarks/spectral.py --cases fno --compile  # + compiled

``--compile`` also times both FNO steps through ``torch.compile`` (inductor, as
``TrainConfig(compile=True)`` uses it), interleaved with the eager ones; the first (compiling)
step is timed separately.

``--cuda-graphs`` (CUDA) also times each ``SpectralConv`` case with both layers captured as CUDA
graphs by ``torch.cuda.make_graphed_callables`` (the same treatment on both sides, open to any
PyTorch module): on a GPU these layers are bound by host-side launch overhead, which a graph
replay removes, so this shows the GPU-side ratio. Graphed outputs and input gradients are checked
against the eager ones (``max_rel_diff_vs_eager``).

``--backends auto,fft,dft_matmul,fused,triton`` times the ``SpectralConv`` cases once per listed
sciml backend (same weights, same interleaved loop as neuraloperator); ``auto`` is the default
and the one ``sciml_ms`` / ``speedup`` report, the others go to ``backends_ms``. ``triton`` needs
CUDA and the ``triton`` extra.

    .venv/bin/python benchmarks/spectral.py --device cuda --cases 1,2,3 \
        --backends auto,fft,dft_matmul,fused,triton --repeats 50 --out /tmp/spectral_backends.json
"""

from __future__ import annotations

import argparse
import copy
import json
import platform
import statistics
import time
from pathlib import Path

import torch

from sciml._environment import run_environment


def _sync(device: torch.device) -> None:
    if device.type == "cuda":
        torch.cuda.synchronize(device)


def _interleaved(fns: dict, repeats: int, device: torch.device) -> dict[str, float]:
    """Median seconds per call of each function, calls interleaved round-robin."""
    times: dict[str, list[float]] = {k: [] for k in fns}
    for f in fns.values():  # warm-up (plans, caches, allocator)
        f()
    _sync(device)
    for _ in range(repeats):
        for name, f in fns.items():
            t0 = time.perf_counter()
            f()
            _sync(device)
            times[name].append(time.perf_counter() - t0)
    return {k: statistics.median(v) for k, v in times.items()}


def _rel(a: torch.Tensor, b: torch.Tensor) -> float:
    return ((a - b).norm() / b.norm()).item()


@torch.no_grad()
def _output_diff(ours, theirs, u: torch.Tensor) -> float:
    """Relative output difference for the same weights, computed on CPU copies: on CUDA,
    neuraloperator's ``irfft`` goes through cuFFT, whose C2R transform does not ignore the
    imaginary part of the DC bin at every size (``irfft``'s definition, which sciml follows)."""
    a, b = copy.deepcopy(ours).cpu(), copy.deepcopy(theirs).cpu()
    x = u.detach().cpu()
    return _rel(a(x), b(x))


def _backend(name: str):
    from sciml.layers import spectral_backends as sb

    if name == "triton":
        from sciml.kernels import TritonSpectral

        return TritonSpectral()
    table = {"auto": sb.Auto, "fft": sb.FFT, "dft_matmul": sb.DFTMatmul, "fused": sb.FusedDFT}
    if name not in table:
        raise SystemExit(
            f"--backends: unknown backend {name!r}; expected {sorted(table)} or triton"
        )
    return table[name]()


def _graphed(layer, u: torch.Tensor):
    """``layer`` (a copy) with its forward and backward captured as CUDA graphs by
    ``torch.cuda.make_graphed_callables`` (PyTorch's own API, open to any module), and the
    largest relative difference of its output and input gradient from the eager layer's."""
    eager = copy.deepcopy(layer)
    graphed = torch.cuda.make_graphed_callables(copy.deepcopy(layer), (u,))
    diffs = []
    for f in (eager, graphed):
        x = u.detach().clone().requires_grad_(True)
        y = f(x)
        (g,) = torch.autograd.grad(y.square().mean(), x)
        diffs.append((y.detach().clone(), g))
    (ye, ge), (yg, gg) = diffs
    return graphed, max(_rel(yg, ye), _rel(gg, ge))


def bench_spectral(
    ndim: int,
    device: torch.device,
    repeats: int,
    backends: tuple[str, ...] = ("auto",),
    graphs: bool = False,
) -> dict:
    from neuralop.layers.spectral_convolution import SpectralConv as NSpectralConv

    from sciml.pretrained.convert_neuraloperator import spectral_conv_from_neuraloperator

    batch, ch, grid, n_modes = {
        1: (16, 64, (1024,), (30,)),
        2: (16, 64, (128, 128), (32, 30)),
        3: (4, 32, (32, 32, 32), (16, 16, 14)),
    }[ndim]
    theirs = NSpectralConv(ch, ch, n_modes).to(device)
    ours = spectral_conv_from_neuraloperator(theirs).to(device)
    u = torch.randn(batch, ch, *grid, device=device, requires_grad=True)
    err = _output_diff(ours, theirs, u)

    def step(layer):
        return lambda: layer(u).square().mean().backward()

    fns = {"neuraloperator": step(theirs)}
    layers = {}
    for name in backends:
        layers[name] = copy.deepcopy(ours)
        layers[name].backend = _backend(name)
        fns[name] = step(layers[name])
    graph_diff = {}
    if graphs:  # both sides through the same CUDA-graph capture
        # (why) the graphed sciml layer is the one sciml_ms reports (the first --backends entry);
        # it was the default-backend layer whatever --backends said first
        for name, layer in (("neuraloperator", theirs), ("sciml", layers[backends[0]])):
            graphed, graph_diff[name] = _graphed(layer, u)
            fns[f"{name}_graphed"] = step(graphed)
    t = _interleaved(fns, repeats, device)
    t["sciml"] = t[backends[0]]
    extra = {}
    if graphs:
        extra["cuda_graphs"] = {
            "sciml_ms": 1e3 * t["sciml_graphed"],
            "neuraloperator_ms": 1e3 * t["neuraloperator_graphed"],
            "speedup": t["neuraloperator_graphed"] / t["sciml_graphed"],
            "max_rel_diff_vs_eager": graph_diff,
        }
    if len(backends) > 1:
        extra |= {
            "backends_ms": {k: 1e3 * t[k] for k in backends},
            "backends_speedup_vs_neuraloperator": {k: t["neuraloperator"] / t[k] for k in backends},
        }
    return {
        "case": f"SpectralConv {ndim}D",
        "shape": [batch, ch, *grid],
        "sciml_modes": list(ours.modes),
        "neuraloperator_n_modes": list(n_modes),
        "backend": repr(_backend(backends[0]).resolve(grid, ours.modes, device)),
        "sciml_ms": 1e3 * t["sciml"],
        "neuraloperator_ms": 1e3 * t["neuraloperator"],
        "speedup": t["neuraloperator"] / t["sciml"],
        "max_rel_output_diff": err,
        **extra,
    }


def bench_fno(full: bool, device: torch.device, repeats: int, compile_: bool = False) -> dict:
    from neuralop.models import FNO as NFNO

    from sciml.pretrained.convert_neuraloperator import fno_from_neuraloperator
    from sciml.train import LpLoss

    batch, grid, width = (16, 128, 64) if full else (8, 64, 32)
    hp = dict(n_modes=(16, 16), in_channels=1, out_channels=1, hidden_channels=width, n_layers=4)
    theirs = NFNO(**hp).to(device)
    ours = fno_from_neuraloperator(theirs).to(device).train()
    theirs.train()
    u = torch.randn(batch, 1, grid, grid, device=device)
    y = torch.randn(batch, 1, grid, grid, device=device)
    err = _output_diff(ours, theirs, u)
    loss = LpLoss()

    def step(model):
        opt = torch.optim.AdamW(model.parameters(), lr=1e-4)

        def run():
            opt.zero_grad(set_to_none=True)
            loss(model(u), y).backward()
            opt.step()

        return run

    fns = {"sciml": step(ours), "neuraloperator": step(theirs)}
    first_s = {}
    if compile_:  # each side through torch.compile (inductor), as TrainConfig(compile=True) does
        for name, model in (("sciml", ours), ("neuraloperator", theirs)):
            run = step(torch.compile(model))
            t0 = time.perf_counter()
            run()  # compiles forward and backward
            _sync(device)
            first_s[name] = time.perf_counter() - t0
            fns[f"{name}_compiled"] = run
    t = _interleaved(fns, repeats, device)
    out = {
        "case": "FNO training step",
        "hyper_parameters": {**hp, "n_modes": list(hp["n_modes"]), "batch": batch, "grid": grid},
        "sciml_ms": 1e3 * t["sciml"],
        "neuraloperator_ms": 1e3 * t["neuraloperator"],
        "speedup": t["neuraloperator"] / t["sciml"],
        "max_rel_output_diff": err,
    }
    if compile_:
        ours_c, theirs_c = t["sciml_compiled"], t["neuraloperator_compiled"]
        out["compiled"] = {
            "sciml_ms": 1e3 * ours_c,
            "neuraloperator_ms": 1e3 * theirs_c,
            "speedup": theirs_c / ours_c,
            "sciml_speedup_over_eager": t["sciml"] / ours_c,
            "neuraloperator_speedup_over_eager": t["neuraloperator"] / theirs_c,
            "first_step_s": first_s,
        }
    return out


def main() -> None:
    from sciml.cli import HelpFormatter

    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0], formatter_class=HelpFormatter)
    ap.add_argument(
        "--device",
        default="cuda" if torch.cuda.is_available() else "cpu",
        help="torch device (the default: cuda where available, else cpu)",
    )
    ap.add_argument("--repeats", type=int, default=5, help="timed runs per case and side")
    ap.add_argument("--threads", type=int, default=1, help="torch intra-op threads")
    ap.add_argument("--full", action="store_true", help="FNO step at 128^2, width 64, batch 16")
    ap.add_argument("--cases", default="1,2,3,fno", help="comma list of 1, 2, 3, fno")
    ap.add_argument(
        "--compile",
        action="store_true",
        help="also time the FNO step of both sides through torch.compile (inductor)",
    )
    ap.add_argument(
        "--backends",
        default="auto",
        help="comma list of sciml backends for the SpectralConv cases: auto, fft, dft_matmul, "
        "fused, triton (the first one is reported as sciml_ms)",
    )
    ap.add_argument(
        "--cuda-graphs",
        action="store_true",
        help="also time each SpectralConv case with both layers captured as CUDA graphs "
        "(torch.cuda.make_graphed_callables; CUDA only)",
    )
    ap.add_argument(
        "--out", default=str(Path(__file__).parent / "results" / "spectral.json"), help="JSON path"
    )
    args = ap.parse_args()
    if args.cuda_graphs and not args.device.startswith("cuda"):
        raise SystemExit(f"--cuda-graphs needs --device cuda, got --device {args.device}")
    torch.set_num_threads(args.threads)
    torch.manual_seed(0)
    device = torch.device(args.device)
    import neuralop

    results = []
    for case in args.cases.split(","):
        r = (
            bench_fno(args.full, device, args.repeats, args.compile)
            if case == "fno"
            else bench_spectral(
                int(case), device, args.repeats, tuple(args.backends.split(",")), args.cuda_graphs
            )
        )
        print(json.dumps(r), flush=True)
        results.append(r)
    record = {
        "device": torch.cuda.get_device_name(device)
        if device.type == "cuda"
        else f"CPU ({platform.processor() or platform.machine()}), {args.threads} thread(s)",
        "threads": torch.get_num_threads(),  # intra-op threads of this process (CPU side)
        "torch": torch.__version__,
        "neuraloperator": getattr(neuralop, "__version__", "2.0.0"),
        "environment": run_environment(device),
        "repeats": args.repeats,
        "results": results,
    }
    Path(args.out).parent.mkdir(parents=True, exist_ok=True)
    Path(args.out).write_text(json.dumps(record, indent=2) + "\n")
    for r in results:
        print(f"{r['case']:>20}: sciml {r['sciml_ms']:.1f} ms, neuraloperator "
              f"{r['neuraloperator_ms']:.1f} ms, speedup {r['speedup']:.2f}x, "
              f"rel diff {r['max_rel_output_diff']:.1e}")  # fmt: skip
        if "compiled" in r:
            c = r["compiled"]
            print(f"{'compiled':>20}: sciml {c['sciml_ms']:.1f} ms, neuraloperator "
                  f"{c['neuraloperator_ms']:.1f} ms, speedup {c['speedup']:.2f}x (over eager: "
                  f"sciml {c['sciml_speedup_over_eager']:.2f}x, neuraloperator "
                  f"{c['neuraloperator_speedup_over_eager']:.2f}x)")  # fmt: skip
        if "cuda_graphs" in r:
            c = r["cuda_graphs"]
            print(f"{'CUDA graphs':>20}: sciml {c['sciml_ms']:.2f} ms, neuraloperator "
                  f"{c['neuraloperator_ms']:.2f} ms, speedup {c['speedup']:.2f}x")  # fmt: skip
        for k, ms in r.get("backends_ms", {}).items():
            print(f"{'':>20}  {k:>10}: {ms:.2f} ms, "
                  f"{r['backends_speedup_vs_neuraloperator'][k]:.2f}x vs neuraloperator")  # fmt: skip


if __name__ == "__main__":
    main()
