"""Host-overhead proxy for SpectralConv backends: ops recorded in one forward + backward.

At common FNO sizes a GPU run of a spectral layer is dominated by per-op host cost, so the number
of ops is a device-independent proxy. For one ``SpectralConv`` call followed by
``backward(grad)`` (no loss ops), the PyTorch profiler counts, per backend:

* ``autograd_nodes``: backward functions the engine ran (including ``AccumulateGrad``);
* ``issued_ops``: ATen calls made from Python or by an autograd node (not nested inside another
  ATen op): what the host dispatches;
* ``aten_calls``: all ATen calls, nested ones included;
* ``compute_kernels``: ATen ops that do arithmetic or copy memory (innermost non-view ops).

    .venv/bin/python benchmarks/spectral_op_counts.py                    # 2D benchmark shape
    .venv/bin/python benchmarks/spectral_op_counts.py --ndim 3 --batch 4
"""

from __future__ import annotations

import argparse
import json
from collections import Counter

import torch
from torch.profiler import profile

from sciml._environment import run_environment

# ATen ops that only make views, allocate, or dispatch to another op
META = {
    "aten::" + n
    for n in [
        "view",
        "reshape",
        "as_strided",
        "permute",
        "expand",
        "transpose",
        "t",
        "numpy_T",
        "mT",
        "mH",
        "_conj",
        "alias",
        "view_as_real",
        "view_as_complex",
        "resolve_conj",
        "_reshape_alias",
        "_unsafe_view",
        "empty",
        "empty_like",
        "empty_strided",
        "to",
        "contiguous",
        "result_type",
        "movedim",
        "select",
        "narrow",
        "slice",
        "unsqueeze",
        "squeeze",
        "detach",
        "clone",
        "_to_copy",
        "matmul",
    ]
}

SHAPES = {1: ((1024,), (16,)), 2: ((128, 128), (16, 16)), 3: ((32, 32, 32), (8, 8, 7))}


def count(backend, ndim: int, batch: int, channels: int) -> dict:
    from sciml.layers import SpectralConv

    grid, modes = SHAPES[ndim]
    layer = SpectralConv(channels, channels, modes, backend=backend)
    u = torch.randn(batch, channels, *grid, requires_grad=True)
    g = torch.randn(batch, channels, *grid)

    def step():
        layer(u).backward(g)

    step()  # caches, plans
    with profile() as prof:
        step()
    ev = prof.events()
    aten = [e for e in ev if e.name.startswith("aten::")]

    def has_compute_below(e) -> bool:
        return any(c.name not in META or has_compute_below(c) for c in e.cpu_children)

    kernels = [e for e in aten if e.name not in META and not has_compute_below(e)]
    issued = [e for e in aten if e.cpu_parent is None or not e.cpu_parent.name.startswith("aten::")]
    nodes = [e for e in ev if e.name.startswith("autograd::engine::evaluate_function")]
    return {
        "autograd_nodes": len(nodes),
        "issued_ops": len(issued),
        "aten_calls": len(aten),
        "compute_kernels": len(kernels),
        "kernels": dict(Counter(e.name for e in kernels)),
    }


def main() -> None:
    from sciml.cli import HelpFormatter
    from sciml.layers.spectral_backends import FFT, DFTMatmul, FusedDFT

    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0], formatter_class=HelpFormatter)
    ap.add_argument(
        "--ndim", type=int, default=2, choices=(1, 2, 3), help="spatial dims of the layer"
    )
    ap.add_argument("--batch", type=int, default=2, help="samples per forward")
    ap.add_argument("--channels", type=int, default=64, help="input and output channels")
    ap.add_argument(
        "--out", default=None, help="write the counts as JSON here (default: print only)"
    )
    args = ap.parse_args()
    torch.set_num_threads(1)
    backends = {"fft": FFT(), "dft_matmul": DFTMatmul(), "fused": FusedDFT()}
    res = {k: count(b, args.ndim, args.batch, args.channels) for k, b in backends.items()}
    for k, r in res.items():
        print(f"{k:>10}: " + ", ".join(f"{n} {v}" for n, v in r.items() if n != "kernels"))
    base, fused = res["dft_matmul"], res["fused"]
    print("dft_matmul / fused: " + ", ".join(
        f"{n} {base[n] / fused[n]:.2f}x" for n in ("autograd_nodes", "issued_ops", "aten_calls")
    ))  # fmt: skip
    if args.out:
        with open(args.out, "w") as f:
            json.dump(
                {"args": vars(args), "counts": res, "environment": run_environment("cpu")},
                f,
                indent=2,
            )


if __name__ == "__main__":
    main()
