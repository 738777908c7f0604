"""Spectral-convolution backends on a CUDA GPU: correctness of the Triton kernels, and timings.

One run, one process, same weights and inputs for every backend:

1. ``gradcheck`` (float64, on the GPU) of every custom autograd function of
   :mod:`sciml.kernels.autograd` with ``impl="triton"``;
2. for each case (1D/2D/3D, several grid sizes), ``SpectralConv`` forward + backward with the
   backends :class:`~sciml.layers.spectral_backends.FFT`,
   :class:`~sciml.layers.spectral_backends.DFTMatmul`,
   :class:`~sciml.layers.spectral_backends.FusedDFT` and :class:`sciml.kernels.TritonSpectral`:
   output and input-gradient relative errors against ``FFT`` on fresh random float32 inputs, and
   the median time of forward + backward (CUDA events around each call, calls interleaved);
3. the grid sizes where Triton beat every PyTorch backend, in the form of
   :data:`sciml.kernels.DISPATCH_TABLE`.

    python benchmarks/spectral_kernels.py --out benchmarks/results/spectral_kernels_h100.json
"""

from __future__ import annotations

import argparse
import json
import statistics
from pathlib import Path

import torch

from sciml._environment import run_environment

CASES = {
    1: dict(batch=16, channels=64, modes=(16,), grids=[(256,), (1024,), (4096,), (16384,)]),
    2: dict(batch=16, channels=64, modes=(16, 16), grids=[(32, 32), (64, 64), (128, 128), (256, 256)]),
    3: dict(batch=4, channels=32, modes=(8, 8, 8), grids=[(16,) * 3, (32,) * 3, (48,) * 3, (64,) * 3]),
}  # fmt: skip


def _rel(a: torch.Tensor, b: torch.Tensor) -> float:
    return ((a - b).norm() / b.norm()).item()


def gradchecks(device: torch.device) -> dict[str, bool]:
    from sciml.kernels import autograd as K

    g = torch.Generator(device=device).manual_seed(1)
    c128 = dict(dtype=torch.complex128, device=device, requires_grad=True)
    a = torch.randn(2, 5, 4, generator=g, **c128)
    b = torch.randn(2, 4, 3, generator=g, **c128)
    x = torch.randn(3, 10, generator=g, dtype=torch.float64, device=device, requires_grad=True)
    s = torch.rand(4, generator=g, dtype=torch.float64, device=device)
    z = torch.randn(3, 4, generator=g, **c128)
    gc = torch.autograd.gradcheck
    return {
        "cbmm": gc(lambda a, b: K.cbmm(a, b, impl="triton"), (a, b)),
        "rdft": gc(lambda x: K.rdft(x, 4, s, impl="triton"), (x,)),
        "irdft": gc(lambda z: K.irdft(z, 10, s, impl="triton"), (z,)),
    }


def _time(fns: dict, repeats: int) -> dict[str, float]:
    """Median milliseconds per call, CUDA events, calls interleaved round-robin."""
    for f in fns.values():
        f()
        f()
    torch.cuda.synchronize()
    ms: dict[str, list[float]] = {k: [] for k in fns}
    for _ in range(repeats):
        for k, f in fns.items():
            start, end = torch.cuda.Event(enable_timing=True), torch.cuda.Event(enable_timing=True)
            start.record()
            f()
            end.record()
            end.synchronize()
            ms[k].append(start.elapsed_time(end))
    return {k: statistics.median(v) for k, v in ms.items()}


def bench_case(ndim: int, grid: tuple[int, ...], device: torch.device, repeats: int) -> dict:
    from sciml.kernels import TritonSpectral
    from sciml.layers import SpectralConv
    from sciml.layers.spectral_backends import FFT, DFTMatmul, FusedDFT

    spec = CASES[ndim]
    ch, modes = spec["channels"], spec["modes"]
    backends = {
        "fft": FFT(),
        "dft_matmul": DFTMatmul(),
        "fused": FusedDFT(),
        "triton": TritonSpectral(),
    }
    ref = SpectralConv(ch, ch, modes, backend=backends["fft"]).to(device)
    layers = {}
    for name, be in backends.items():
        layer = SpectralConv(ch, ch, modes, backend=be).to(device)
        layer.load_state_dict(ref.state_dict())
        layers[name] = layer
    u = torch.randn(spec["batch"], ch, *grid, device=device, requires_grad=True)
    outs, grads = {}, {}
    for name, layer in layers.items():
        u.grad = None
        y = layer(u)
        y.square().mean().backward()
        outs[name], grads[name] = y.detach(), u.grad.detach().clone()
    errors = {
        name: {
            "output": _rel(outs[name], outs["fft"]),
            "input_grad": _rel(grads[name], grads["fft"]),
        }
        for name in layers
        if name != "fft"
    }

    def step(layer):
        return lambda: layer(u).square().mean().backward()

    t = _time({name: step(layer) for name, layer in layers.items()}, repeats)
    torch_best = min(t["fft"], t["dft_matmul"], t["fused"])
    return {
        "ndim": ndim,
        "shape": [spec["batch"], ch, *grid],
        "modes": list(modes),
        "ms": t,
        "triton_vs_best_torch": torch_best / t["triton"],
        "dft_matmul_vs_fft": t["fft"] / t["dft_matmul"],
        "fused_vs_dft_matmul": t["dft_matmul"] / t["fused"],
        "rel_error_vs_fft": errors,
    }


def dispatch_ranges(results: list[dict], gpu: str) -> dict[str, list[list[int]]]:
    """Grid-point ranges (prod of spatial) where Triton beat every PyTorch backend."""
    table: dict[str, list[list[int]]] = {}
    for r in results:
        if r["triton_vs_best_torch"] > 1.0:
            p = 1
            for s in r["shape"][2:]:
                p *= s
            table.setdefault(f"{gpu}|{r['ndim']}", []).append([p, p])
    return table


def main() -> None:
    from sciml.cli import HelpFormatter

    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0], formatter_class=HelpFormatter)
    ap.add_argument("--repeats", type=int, default=30, help="timed runs per case")
    ap.add_argument("--dims", default="1,2,3", help="comma-separated spatial dims to time")
    ap.add_argument(
        "--out",
        default=str(Path(__file__).parent / "results" / "spectral_kernels.json"),
        help="JSON path",
    )
    args = ap.parse_args()
    if not torch.cuda.is_available():
        raise SystemExit(
            "benchmarks/spectral_kernels.py needs a CUDA GPU (torch.cuda.is_available() is False)"
        )
    device = torch.device("cuda")
    torch.manual_seed(0)
    gpu = torch.cuda.get_device_name(device)
    import triton

    checks = gradchecks(device)
    print("gradcheck (float64, CUDA, impl=triton):", checks, flush=True)
    results = []
    for nd in (int(d) for d in args.dims.split(",")):
        for grid in CASES[nd]["grids"]:
            r = bench_case(nd, tuple(grid), device, args.repeats)
            print(json.dumps(r), flush=True)
            results.append(r)
    record = {
        "device": gpu,
        "threads": torch.get_num_threads(),  # the host's intra-op threads (launches, gradcheck)
        "torch": torch.__version__,
        "triton": triton.__version__,
        "tf32_matmul": torch.backends.cuda.matmul.allow_tf32,
        "repeats": args.repeats,
        "gradcheck": checks,
        "environment": run_environment(device),
        "results": results,
        "triton_faster_at": dispatch_ranges(results, gpu),
    }
    Path(args.out).parent.mkdir(parents=True, exist_ok=True)
    Path(args.out).write_text(json.dumps(record, indent=2) + "\n")
    print(f"{'case':>24} {'fft ms':>8} {'dft ms':>8} {'fused ms':>8} {'triton ms':>9} "
          f"{'tri/best':>8} {'err':>8}")  # fmt: skip
    for r in results:
        t = r["ms"]
        err = max(max(e.values()) for e in r["rel_error_vs_fft"].values())
        print(f"{str(r['shape']):>24} {t['fft']:8.3f} {t['dft_matmul']:8.3f} {t['fused']:8.3f} {t['triton']:9.3f} "
              f"{r['triton_vs_best_torch']:8.2f} {err:8.1e}")  # fmt: skip


if __name__ == "__main__":
    main()
