"""How far a padded FNO's outputs on two grids are apart: padding in points vs scaled with the grid.

``FNOConfig.padding`` counts grid points, so the same number of points is a smaller part of the
domain on a finer grid and the model computes a different function there (``docs/spectral.md``).
For each seed this builds a randomly initialised FNO (``--modes``, ``--width``, ``--layers``;
float64), draws one band-limited periodic input (Fourier modes ``|k| <= --band`` per axis, normal
coefficients) and samples it exactly on ``--coarse``² and ``--fine``² grids (``x = i / n``: the
coarse points are every ``fine / coarse``-th fine point). The same weights then run with each
padding pair ``COARSE:FINE`` of ``--paddings`` (``dataclasses.replace(config, padding=...)``), and
the JSON records ``||out_fine[on the coarse points] - out_coarse|| / ||out_coarse||`` per seed,
with the mean, min and max over the seeds. No timing; CPU, one thread.

    OMP_NUM_THREADS=1 .venv/bin/python benchmarks/fno_padding_resolution.py \\
        --out benchmarks/results/fno_padding_resolution.json
"""

from __future__ import annotations

import argparse
import dataclasses
import json
import math
import platform
from pathlib import Path

import torch

from sciml._environment import run_environment
from sciml.models import FNO, FNOConfig
from sciml.train import LpLoss


def band_limited(n: int, coeffs: torch.Tensor, band: int) -> torch.Tensor:
    """``sum_k a_k cos(2 pi k.x) + b_k sin(2 pi k.x)`` over ``k in [-band, band]^2`` on the grid
    ``x = (i / n, j / n)``: ``(1, 1, n, n)``; ``coeffs: (2, 2 band + 1, 2 band + 1)``."""
    x = torch.arange(n, dtype=torch.float64) / n
    k = torch.arange(-band, band + 1, dtype=torch.float64)
    kx = k[:, None, None, None] * x[:, None]  # k1 x_i: (k1, 1, n, 1)
    phase = 2 * math.pi * (kx + k[:, None, None] * x)  # k1 x_i + k2 x_j: (k1, k2, n, n)
    u = torch.einsum("ab,abij->ij", coeffs[0], phase.cos())
    u = u + torch.einsum("ab,abij->ij", coeffs[1], phase.sin())
    return u[None, None]


def main(argv: list[str] | None = None) -> None:
    from sciml.cli import HelpFormatter

    ap = argparse.ArgumentParser(description=__doc__, formatter_class=HelpFormatter)
    ap.add_argument(
        "--coarse", type=int, default=32, help="grid points per side of the coarse grid"
    )
    ap.add_argument(
        "--fine",
        type=int,
        default=64,
        help="grid points per side of the fine grid (a multiple of --coarse)",
    )
    ap.add_argument("--modes", type=int, default=6, help="FNO Fourier modes kept per axis")
    ap.add_argument("--width", type=int, default=16, help="FNO channel width")
    ap.add_argument("--layers", type=int, default=3, help="FNO layers")
    ap.add_argument("--band", type=int, default=4, help="largest |k| of the input per axis")
    ap.add_argument(
        "--seeds", default="0,1,2,3,4,5,6,7,8,9", help="comma-separated seeds, one model each"
    )
    ap.add_argument("--paddings", default="0:0,4:4,4:8", help="COARSE:FINE padding pairs")
    ap.add_argument(
        "--out",
        default=str(Path(__file__).resolve().parent / "results" / "fno_padding_resolution.json"),
        help="JSON path (default: results/fno_padding_resolution.json beside this script)",
    )
    args = ap.parse_args(argv)
    if args.fine % args.coarse or not 2 * args.band < args.coarse:
        ap.error(
            f"expected --fine a multiple of --coarse and 2 --band < --coarse (the input "
            f"resolved on both grids), got {args.fine}, {args.coarse} and {args.band}"
        )
    try:
        seeds = [int(s) for s in args.seeds.split(",")]
        pairs = [tuple(int(p) for p in pair.split(":")) for pair in args.paddings.split(",")]
    except ValueError as err:
        ap.error(f"--seeds expects integers and --paddings COARSE:FINE pairs of integers: {err}")
    if any(len(p) != 2 or min(p) < 0 for p in pairs):
        ap.error(f"--paddings expects COARSE:FINE pairs of integers >= 0, got {args.paddings}")
    torch.set_num_threads(1)
    step = args.fine // args.coarse

    rows = {f"{pc}:{pf}": [] for pc, pf in pairs}
    rel_l2 = LpLoss(p=2, relative=True)  # batch of 1: the mean is the one sample's value
    for seed in seeds:
        torch.manual_seed(seed)
        config = FNOConfig(modes=(args.modes,) * 2, width=args.width, n_layers=args.layers)
        model = FNO(config).double().eval()
        side = 2 * args.band + 1
        coeffs = torch.randn(2, side, side, dtype=torch.float64) / side
        u_coarse, u_fine = (
            band_limited(args.coarse, coeffs, args.band),
            band_limited(args.fine, coeffs, args.band),
        )
        assert torch.allclose(u_fine[..., ::step, ::step], u_coarse, atol=1e-12)
        state = model.state_dict()
        for pc, pf in pairs:
            outs = []
            for padding, u in ((pc, u_coarse), (pf, u_fine)):
                padded = FNO(dataclasses.replace(config, padding=padding)).double().eval()
                padded.load_state_dict(state)  # padding holds no weights
                with torch.no_grad():
                    outs.append(padded(u))
            coarse, fine = outs[0], outs[1][..., ::step, ::step]
            rows[f"{pc}:{pf}"].append(float(rel_l2(fine, coarse)))  # ||fine - c|| / ||c||

    summary = {
        key: {"mean": sum(v) / len(v), "min": min(v), "max": max(v), "per_seed": v}
        for key, v in rows.items()
    }
    record = {
        "what": "relative L2 between an FNO's outputs on the coarse and the fine grid (fine "
        "output at the coarse points), same weights, per COARSE:FINE padding pair",
        "setting": {
            "coarse": args.coarse,
            "fine": args.fine,
            "modes": args.modes,
            "width": args.width,
            "layers": args.layers,
            "band": args.band,
            "seeds": seeds,
            "dtype": "float64",
            "init": "FNO's default initialisation (untrained), seeded",
        },
        "machine": platform.machine(),
        "threads": torch.get_num_threads(),
        "torch": torch.__version__,
        "environment": run_environment("cpu"),
        "rel_diff": summary,
    }
    Path(args.out).parent.mkdir(parents=True, exist_ok=True)
    Path(args.out).write_text(json.dumps(record, indent=2) + "\n")
    for key, s in summary.items():
        print(
            f"padding {key:>6}: outputs {100 * s['mean']:.2f}% apart (mean over {len(seeds)} "
            f"seeds; {100 * s['min']:.2f} to {100 * s['max']:.2f}%)"
        )


if __name__ == "__main__":
    main()
