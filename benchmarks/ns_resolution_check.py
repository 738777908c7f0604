"""How far 64 x 64 Navier-Stokes data, Fourier-interpolated, is from a solve on the finer grid.

`t1_vs_fno.py --solve-resolution 64 --resolution 256` trains on 64 x 64 solutions interpolated to
256 x 256 (a 256 x 256 data set at a 64 x 64 solve's cost). That stands for the 256 x 256 solution
when w(T) is resolved on the coarse grid. This script measures it on a few samples of the same
problem (FNO forcing, nu = 1e-3, GRF initial vorticity drawn on the coarse grid), in float64:

* resolution error: the coarse solve interpolated to the fine grid against the fine solve from
  the interpolated w(0), relative L2 per sample;
* time-step error on the coarse grid: ``dt`` against ``dt / 2``;
* the precision of the data: the same coarse solve in float32 (the data's precision) against
  float64;
* the spectrum of the fine w(T): the energy fraction at ``max(|kx|, |ky|) >= K``.

    OMP_NUM_THREADS=2 .venv/bin/python benchmarks/ns_resolution_check.py \
        --out benchmarks/results/ns_resolution_check.json
"""

from __future__ import annotations

import argparse
import json
import math
import time
from pathlib import Path

import torch

from sciml._environment import run_environment
from sciml.data.generators import sample_grf
from sciml.data.generators.navier_stokes import fno_forcing, solve_navier_stokes
from sciml.layers import fourier_resample


def _rel(a: torch.Tensor, b: torch.Tensor) -> list[float]:
    """Relative L2 of ``a`` against ``b`` per sample (leading dim)."""
    num = (a - b).flatten(1).norm(dim=1)
    return (num / b.flatten(1).norm(dim=1)).tolist()


def _tail(w: torch.Tensor, k: int) -> list[float]:
    """Energy fraction of ``w`` ``(n, N, N)`` at ``max(|kx|, |ky|) >= k``, per sample."""
    n = w.shape[-1]
    e = torch.fft.fft2(w).abs().square()
    freq = torch.fft.fftfreq(n, 1.0 / n).abs()
    high = torch.maximum(freq[:, None], freq[None, :]) >= k
    return (e[:, high].sum(1) / e.flatten(1).sum(1)).tolist()


def main() -> None:
    from sciml.cli import HelpFormatter

    ap = argparse.ArgumentParser(
        description=__doc__.split("\n\n")[0], formatter_class=HelpFormatter
    )
    ap.add_argument("--n", type=int, default=4, help="samples")
    ap.add_argument(
        "--coarse", type=int, default=64, help="grid points per side of the coarse solve"
    )
    ap.add_argument(
        "--fine", type=int, default=256, help="grid points per side of the fine (reference) solve"
    )
    ap.add_argument("--T", type=float, default=50.0, help="final time of the solves")
    ap.add_argument("--dt", type=float, default=5e-3, help="solver time step")
    ap.add_argument("--seed", type=int, default=123, help="seed of the initial vorticities")
    ap.add_argument("--threads", type=int, default=2, help="torch intra-op threads")
    ap.add_argument("--out", default=None, help="JSON path (default: print only)")
    args = ap.parse_args()
    torch.set_num_threads(args.threads)
    nu, c, fine = 1e-3, args.coarse, args.fine
    # the generator's GRF (alpha 2.5, tau 7, sigma sqrt(2) 7^1.5), drawn on the coarse grid
    grf = sample_grf(
        args.n, c, dim=2, alpha=2.5, tau=7.0, sigma=math.sqrt(2.0) * 7.0**1.5, seed=args.seed
    )
    w0 = torch.as_tensor(grf, dtype=torch.float64)
    seconds = {}

    def solve(w: torch.Tensor, dt: float, key: str) -> torch.Tensor:
        t0 = time.perf_counter()
        force = torch.as_tensor(fno_forcing(w.shape[-1], 0.1), dtype=w.dtype)
        out = solve_navier_stokes(w, force, nu, args.T, dt, 1)[:, -1]
        seconds[key] = time.perf_counter() - t0
        print(f"{key}: {seconds[key]:.1f} s", flush=True)
        return out

    coarse = solve(w0, args.dt, f"{c}^2, dt")
    coarse_half = solve(w0, args.dt / 2, f"{c}^2, dt/2")
    coarse32 = solve(w0.float(), args.dt, f"{c}^2, dt, float32").double()
    w0_fine = fourier_resample(w0, (fine, fine))
    fine_sol = solve(w0_fine, args.dt, f"{fine}^2, dt")
    up = fourier_resample(coarse, (fine, fine))
    result = {
        "setting": {
            "n": args.n,
            "coarse": c,
            "fine": fine,
            "T": args.T,
            "dt": args.dt,
            "nu": nu,
            "seed": args.seed,
            "threads": args.threads,
            "precision": "float64 unless said",
        },
        "resolution_error": _rel(up, fine_sol),
        "time_step_error_coarse": _rel(coarse, coarse_half),
        "float32_vs_float64_coarse": _rel(coarse32, coarse),
        "fine_tail_energy": {f">= {k}": _tail(fine_sol, k) for k in (12, 16, 32)},
        "seconds": seconds,
        "torch": torch.__version__,
        "environment": run_environment("cpu"),
    }
    print(json.dumps({k: v for k, v in result.items() if k != "seconds"}, indent=1))
    if args.out:
        Path(args.out).write_text(json.dumps(result, indent=1, allow_nan=False) + "\n")


if __name__ == "__main__":
    main()
