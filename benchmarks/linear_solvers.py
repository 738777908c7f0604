"""Iterations and wall time to relative residual 1e-6 on 3D Poisson: CG, SGS-PCG, AMG-PCG, DCDM.

    OMP_NUM_THREADS=2 .venv/bin/python benchmarks/linear_solvers.py                 # 32^3, 64^3
    OMP_NUM_THREADS=2 .venv/bin/python benchmarks/linear_solvers.py --sizes 64 128  # the issue's

All solvers run in the same process on the same system: the all-Neumann 7-point matrix (singular;
b is projected onto the range) of an empty n^3 box and of the same box with a solid obstacle the
network never saw (a sphere and a slab with a window). The right-hand side is Gaussian noise.

* ``scipy-cg``: ``scipy.sparse.linalg.cg`` (what a SciPy user calls; rtol=1e-6 on ||b||);
* ``cg``, ``sgs-pcg``, ``amg-pcg``: :func:`sciml.linalg.solve` with ``CG()``,
  ``PCG(SymmetricGaussSeidel())``, ``PCG(AMG())`` (pyamg smoothed aggregation, setup included
  in the time and also reported alone);
* ``dcdm``: ``DeepConjugateDirection(model, k=2)`` with the shipped ``dcdm-poisson3d`` network
  (or ``--model DIR``), float32 network, float64 iteration; ``k = 2`` kept directions as in the
  paper;
* ``dcdm-kK`` for every ``K`` in ``--dcdm-k`` (default 16): the same network and iteration,
  A-orthogonalised against the last ``K`` directions (``K`` more dot products and vectors per
  iteration, no more network calls).

With ``--deflate B`` (a sciml extension, not the paper's method): rows with a piecewise-constant
coarse space of B^3-cell aggregates removed from every direction (:class:`sciml.linalg.Deflation`,
setup included in the time): ``dcg-dB`` (deflated CG, ``FlexibleCG(deflation=...)``: what the
coarse space does without a network), ``dcdm-dB`` (k = 2) and ``dcdm-kK-dB``.

With ``--device cuda`` more rows run on the GPU, on the matrix-free stencil (a convolution)
with the right-hand side on the GPU: ``cg-gpu`` (``CG()``), ``dcdm-gpu``, ``dcdm-gpu-kK`` and
``dcdm-gpu-kK-dB`` (an H100 run: ``benchmarks/README.md``); the CPU
rows stay on the CPU, so AMG on the CPU can be compared with DCDM on the GPU. A GPU warm-up
solve (8^3) runs first so that start-up costs are not timed; on the CPU every method kind first
solves a 16^3 box, untimed, for the same reason.

Writes ``benchmarks/results/linear_solvers.json``.
"""

from __future__ import annotations

import argparse
import json
import platform
import sys
import time
from pathlib import Path

import numpy as np
import scipy.sparse.linalg as sla
import torch

import sciml
from sciml._environment import run_environment
from sciml.linalg import (
    AMG,
    CG,
    PCG,
    DeepConjugateDirection,
    Deflation,
    FlexibleCG,
    SymmetricGaussSeidel,
    Wall,
    poisson,
    solve,
)

RESULTS = Path(__file__).parent / "results" / "linear_solvers.json"


def obstacle(n: int) -> np.ndarray:
    """A solid sphere and a solid slab with a window (True = solid)."""
    z, y, x = np.meshgrid(*(np.arange(n) + 0.5,) * 3, indexing="ij")
    c = n / 2
    sphere = (x - 0.35 * n) ** 2 + (y - c) ** 2 + (z - c) ** 2 < (0.15 * n) ** 2
    slab = (np.abs(x - 0.7 * n) < 0.04 * n + 0.5) & ~(
        (np.abs(y - c) < 0.15 * n) & (np.abs(z - c) < 0.15 * n)
    )
    return sphere | slab


def scipy_cg(A, b, rtol: float, maxiter: int) -> dict:
    its = [0]

    def count(_):
        its[0] += 1

    t0 = time.perf_counter()
    x, info = sla.cg(A, b, rtol=rtol, maxiter=maxiter, callback=count)
    elapsed = time.perf_counter() - t0
    rel = float(np.linalg.norm(b - A @ x) / np.linalg.norm(b))
    return {
        "iterations": its[0],
        "time_s": elapsed,
        "status": "converged" if info == 0 else f"info={info}",
        "true_residual": rel,
    }


def _record(res, elapsed: float) -> dict:
    return {
        "iterations": res.iterations,
        "time_s": elapsed,
        "status": res.status.value,
        "true_residual": res.true_residual,
        "setup_s": res.setup_s,
    }


def warm_up(model, dcdm_k, deflate, skip) -> None:
    """One untimed solve per method kind on a 16^3 box (larger for --deflate B > 8, so that the
    box holds more than one aggregate), before anything is timed."""
    n = max(16, 2 * max(deflate, default=0))
    P = poisson((n,) * 3, walls=Wall.NEUMANN)
    b = np.random.default_rng(1).standard_normal(P.n)
    b -= b.mean()
    if "scipy-cg" not in skip:
        sla.cg(P.to_scipy(), b, rtol=1e-6, maxiter=200)
    methods = [CG(), PCG(SymmetricGaussSeidel()), PCG(AMG()), DeepConjugateDirection(model, k=2)]
    methods += [DeepConjugateDirection(model, k=k) for k in dcdm_k]
    for B in deflate:
        methods += [
            FlexibleCG(deflation=Deflation(B)),
            DeepConjugateDirection(model, k=2, deflation=Deflation(B)),
        ]
    for method in methods:
        solve(P.to_scipy(), b, method=method, rtol=1e-6, maxiter=200, problem=P)


def main() -> None:
    from sciml.cli import HelpFormatter

    ap = argparse.ArgumentParser(description=__doc__, formatter_class=HelpFormatter)
    ap.add_argument(
        "--sizes", type=int, nargs="+", default=[32, 64], help="grid points per side (n^3 unknowns)"
    )
    ap.add_argument("--model", default="dcdm-poisson3d", help="checkpoint dir or shipped name")
    ap.add_argument(
        "--rtol", type=float, default=1e-6, help="relative residual every method stops at"
    )
    ap.add_argument("--maxiter", type=int, default=5000, help="iteration limit of each method")
    ap.add_argument("--threads", type=int, default=2, help="torch intra-op threads")
    ap.add_argument(
        "--skip", nargs="*", default=[], help="methods to skip, e.g. sgs-pcg (default: none)"
    )
    ap.add_argument(
        "--geometries", nargs="+", default=["box", "obstacle"], help="domains: box, obstacle"
    )
    ap.add_argument(
        "--dcdm-k",
        type=int,
        nargs="*",
        default=[16],
        help="extra DCDM rows 'dcdm-kK' with K kept directions (the 'dcdm' row keeps 2)",
    )
    ap.add_argument(
        "--deflate",
        type=int,
        nargs="*",
        default=[],
        help="aggregate sizes B: add deflated rows dcg-dB, dcdm-dB, dcdm-kK-dB (sciml "
        "extension; default: none)",
    )
    ap.add_argument("--device", default="cpu", help="cuda: add the cg-gpu and dcdm-gpu rows")
    ap.add_argument("--out", default=str(RESULTS), help="JSON path")
    args = ap.parse_args()
    torch.set_num_threads(args.threads)

    model = sciml.load(args.model)
    model.float().eval()
    gpu_model = None
    if args.device != "cpu":
        gpu_model = sciml.load(args.model).float().eval().to(args.device)
        warm = poisson((8, 8, 8), walls=Wall.NEUMANN)
        wb = torch.randn(warm.n, dtype=torch.float64, device=args.device)
        for m in (CG(), DeepConjugateDirection(gpu_model, k=2)):
            solve(warm.stencil(device=args.device), wb - wb.mean(), method=m, maxiter=50)
    # (why) the first solve of each kind in a process pays one-time costs (lazy imports, first
    # oneDNN convolution, pyamg's first setup): 0.10 s more for CG and 0.08 s for AMG-PCG on a
    # 16^3 box, against CG's whole 0.04 s on 32^3. The GPU rows had a warm-up; the CPU rows now too.
    warm_up(model, args.dcdm_k, args.deflate, args.skip)
    rows = []
    for n in args.sizes:
        for geometry in args.geometries:
            solid = obstacle(n) if geometry == "obstacle" else None
            P = poisson((n,) * 3, walls=Wall.NEUMANN, solid=solid)
            A = P.to_scipy()
            rng = np.random.default_rng(0)
            b = rng.standard_normal(P.n)
            b -= b.mean()  # consistent rhs (the matrix is singular), same for every solver
            methods = {
                "cg": CG(),
                "sgs-pcg": PCG(SymmetricGaussSeidel()),
                "amg-pcg": PCG(AMG()),
                "dcdm": DeepConjugateDirection(model, k=2, problem=P),
            }
            for k in args.dcdm_k:
                methods[f"dcdm-k{k}"] = DeepConjugateDirection(model, k=k, problem=P)
            for B in args.deflate:
                D = Deflation(B)
                methods[f"dcg-d{B}"] = FlexibleCG(deflation=D)
                methods[f"dcdm-d{B}"] = DeepConjugateDirection(model, k=2, problem=P, deflation=D)
                for k in args.dcdm_k:
                    methods[f"dcdm-k{k}-d{B}"] = DeepConjugateDirection(
                        model, k=k, problem=P, deflation=D
                    )
            row = {"n": n, "geometry": geometry, "unknowns": P.n, "methods": {}}
            if "scipy-cg" not in args.skip:
                row["methods"]["scipy-cg"] = scipy_cg(A, b, args.rtol, args.maxiter)
            for name, method in methods.items():
                if name in args.skip:
                    continue
                t0 = time.perf_counter()
                x, res = solve(A, b, method=method, rtol=args.rtol, maxiter=args.maxiter, problem=P)
                elapsed = time.perf_counter() - t0
                row["methods"][name] = _record(res, elapsed)
            if gpu_model is not None:
                op = P.stencil(device=args.device)
                bg = torch.from_numpy(b).to(args.device)
                gpu_methods = (
                    [
                        ("cg-gpu", CG()),
                        ("dcdm-gpu", DeepConjugateDirection(gpu_model, k=2, problem=P)),
                    ]
                    + [
                        (f"dcdm-gpu-k{k}", DeepConjugateDirection(gpu_model, k=k, problem=P))
                        for k in args.dcdm_k
                    ]
                    + [
                        (
                            f"dcdm-gpu-k{k}-d{B}",
                            DeepConjugateDirection(
                                gpu_model, k=k, problem=P, deflation=Deflation(B)
                            ),
                        )
                        for k in args.dcdm_k
                        for B in args.deflate
                    ]
                )
                for name, method in gpu_methods:
                    if name in args.skip:
                        continue
                    torch.cuda.synchronize()
                    t0 = time.perf_counter()
                    x, res = solve(op, bg, method=method, rtol=args.rtol, maxiter=args.maxiter)
                    torch.cuda.synchronize()
                    row["methods"][name] = _record(res, time.perf_counter() - t0)
            cg_its = row["methods"].get("cg", {}).get("iterations")
            for name, r in row["methods"].items():
                if cg_its:
                    r["iterations_vs_cg"] = r["iterations"] / cg_its
                if "cg" in row["methods"]:
                    r["time_vs_cg"] = r["time_s"] / row["methods"]["cg"]["time_s"]
                print(
                    f"{n:4d}^3 {geometry:8s} {name:13s} {r['status']:10s} it {r['iterations']:5d} "
                    f"time {r['time_s']:8.2f} s  true res {r['true_residual']:.1e}",
                    flush=True,
                )
            rows.append(row)

    summary = {}
    plain = ("dcdm", *(f"dcdm-k{k}" for k in args.dcdm_k))
    deflated = [name for B in args.deflate for name in (f"dcg-d{B}", *(f"{m}-d{B}" for m in plain))]
    dcdm_rows = [m for m in (*plain, *deflated) if m not in args.skip]
    for method in dcdm_rows if "cg" not in args.skip else ():
        for geometry in args.geometries:
            done = [r for r in rows if r["geometry"] == geometry]
            its = {r["n"]: r["methods"][method]["iterations"] for r in done}
            sizes = sorted(its)
            summary.setdefault(method, {})[geometry] = {
                "iterations_vs_cg": {
                    r["n"]: r["methods"][method]["iterations_vs_cg"] for r in done
                },
                "growth_smallest_to_largest": its[sizes[-1]] / its[sizes[0]],
            }
    record = {
        "benchmark": "linear_solvers",
        "argv": sys.argv[1:],
        "command": "benchmarks/linear_solvers.py --sizes "
        + " ".join(map(str, args.sizes))
        + " --geometries "
        + " ".join(args.geometries)
        + " --dcdm-k "
        + " ".join(map(str, args.dcdm_k))
        + ("" if not args.deflate else " --deflate " + " ".join(map(str, args.deflate))),
        "rtol": args.rtol,
        "model": args.model,
        "model_config": model.config_dict(),
        "threads": args.threads,
        "machine": f"{platform.machine()} {platform.processor() or ''}".strip(),
        "torch": torch.__version__,
        "device": torch.cuda.get_device_name(args.device) if args.device != "cpu" else "cpu",
        "environment": run_environment(args.device),
        "rows": rows,
        "summary": summary,
    }
    out = Path(args.out)
    out.parent.mkdir(parents=True, exist_ok=True)
    out.write_text(json.dumps(record, indent=2) + "\n")
    print(json.dumps(summary, indent=2))
    print(f"wrote {out}")


if __name__ == "__main__":
    main()
