"""T1 (transform once) vs FNO on Navier-Stokes 2D (nu = 1e-3, w(0) -> w(T)), one run.

Both models are sciml's (``sciml.models.T1`` and the FNO baseline ``sciml.models.FNO``), trained
in the same process with the same optimiser (AdamW, cosine schedule), batch size, epochs and
data; each model gets its own learning rate (``--lr-fno``, ``--lr-t1``: pass each model's best
from a sweep; both preferred 1e-2 of {1e-3, 3e-3, 1e-2} in a 12-epoch sweep on 120 samples, see
docs/t1.md) and weight decay (``--wd-fno``, ``--wd-t1``; default the paper's 1e-4). ``--n-val N``
scores on the last N training samples instead of the test set, for choosing such settings
without looking at the test set:

* FNO: modes (12, 12), width 32, 4 Fourier layers, projection 128 (the FNO paper's 2D setting),
  trained on the relative L2 loss.
* T1 variants (``--t1-variants``), projection 128, trained on the Parseval relative L2 loss
  (:class:`sciml.models.t1.SpectralL2Loss`, no inverse transform in training): ``t1``: DCT-II,
  24 x 24 kept modes, width 32, 4 blocks; ``t1_rfft``: real FFT, ``|k| < 12`` (FNO's kept set;
  the data are periodic); ``t1_shift``: ``t1_rfft`` made exactly equivariant to shifts along
  (1, -1), the symmetry of the forcing (``T1Config.shift_equivariant``); ``t1_paper`` /
  ``t1_shift_paper``: ``t1`` / ``t1_shift`` at the paper's Navier-Stokes size (width 48, 8 blocks).

Reported: test relative L2 of both (physical space, ``LpLoss``), the time of one training step
(forward + loss + backward + Adam step) at the data resolution and at ``--step-resolution``
(default 256 x 256; inputs are GRF samples, targets random: a step's cost does not depend on the
values), parameter counts. Step timings interleave the two models (one FNO step, one T1 step,
repeated) so both see the same machine load; the ratio is what to read on a shared machine.
``--isolate-steps`` times each model alone instead (its own loop and ``torch.compile`` cache,
reset between models): on CUDA with ``--compile-step reduce-overhead``, compiling all five
models' steps in one loop stopped with an inductor error ("Tensor on device cpu is not on the
expected device cuda:0", torch 2.11) that no model compiled alone raised (not yet understood).

Data: ``sciml.data.generators.generate_navier_stokes`` (pseudo-spectral, Crank-Nicolson + Heun,
FNO forcing, GRF initial vorticity) on 64 x 64, cached in ``--data`` (npz). The full setting of
the issue (and the paper, DiffEqML/kairos ``configs/experiment/navier-stokes/t1.yaml``) is
1000 train / 200 test with T = 50; with ``--device cuda`` the data are generated on the GPU
(dt = 1e-3: one minute on an H100). On a CPU choose smaller ``--T`` / fewer samples and report
what ran. Results and commands: ``benchmarks/README.md``.

    OMP_NUM_THREADS=1 .venv/bin/python benchmarks/t1_vs_fno.py                  # small default
    python benchmarks/t1_vs_fno.py --device cuda --n-train 1000 --n-test 200 --T 50 --dt 1e-3 \\
        --epochs 30 --lr-fno 1e-2 --t1-variants t1 t1_rfft t1_shift t1_shift_paper
"""

from __future__ import annotations

import argparse
import json
import math
import platform
import statistics
import time
from pathlib import Path

import numpy as np
import torch

from sciml._environment import run_environment
from sciml.data.generators import fno_forcing_symmetries, generate_navier_stokes, sample_grf
from sciml.data.symmetry import RandomSymmetry, group_average
from sciml.layers import fourier_resample
from sciml.models import FNO, T1, FNOConfig, T1Config
from sciml.train import LpLoss


def load_data(path: Path, n: int, resolution: int, T: float, dt: float, device: str) -> dict:
    """``w0, wT`` of ``n`` trajectories, generated once and cached in ``path``."""
    if path.exists():
        d = np.load(path)
        same = float(d["T"]) == T and float(d["dt"]) == dt and d["w0"].shape[-1] == resolution
        if d["w0"].shape[0] >= n and same:
            return {"w0": d["w0"][:n], "wT": d["wT"][:n], "seconds": float(d["seconds"])}
    t0 = time.perf_counter()
    # chunks of 100 on CPU: one batch of 400 ran 1.4-1.6x slower per sample than chunks of 25-200
    batch = n if device != "cpu" else min(n, 100)
    out = generate_navier_stokes(
        n, resolution, T=T, dt=dt, nu=1e-3, record_steps=1, seed=0, device=device, batch_size=batch
    )
    w = out["fields"]["w"]
    seconds = time.perf_counter() - t0
    path.parent.mkdir(parents=True, exist_ok=True)
    np.savez(path, w0=w[:, 0], wT=w[:, -1], T=T, dt=dt, nu=1e-3, seconds=seconds)
    return {"w0": w[:, 0], "wT": w[:, -1], "seconds": seconds}


# The forcing 0.1 (sin 2 pi (x + y) + cos 2 pi (x + y)) is invariant to shifts along (1, -1), so
# w(0) -> w(T) commutes with them: T1Config.shift_equivariant makes T1 exactly equivariant there.
NS_SHIFTS = ((1, -1),)
T1_VARIANTS = {
    # name: (transform, kept modes per axis, width, blocks, shift_equivariant); rfft keeps
    # |k| < m on the first axis
    "t1": ("dct", 24, 32, 4, None),
    "t1_rfft": ("rfft", 12, 32, 4, None),
    "t1_paper": ("dct", 24, 48, 8, None),  # the paper's Navier-Stokes T1 size (11.1M parameters)
    "t1_shift": ("rfft", 12, 32, 4, NS_SHIFTS),
    "t1_shift_paper": ("rfft", 12, 48, 8, NS_SHIFTS),
}


def make_models(seed: int, variants: list[str]) -> dict:
    torch.manual_seed(seed)
    models = {"fno": FNO(FNOConfig(modes=(12, 12), width=32, n_layers=4, projection_channels=128))}
    for name in variants:
        transform, m, width, blocks, shifts = T1_VARIANTS[name]
        torch.manual_seed(seed)
        cfg = T1Config(
            modes=(m, m),
            width=width,
            n_layers=blocks,
            projection_channels=128,
            transform=transform,
            shift_equivariant=shifts,
        )
        models[name] = T1(cfg)
    return models


def loss_fn(name: str, model):
    if name.startswith("t1"):
        spectral = model.spectral_loss()
        return lambda u, y: spectral(model.spectrum(u), y)
    rel = LpLoss()
    return lambda u, y: rel(model(u), y)


def _sync(device: str) -> None:
    """Wait for the GPU's queued work where ``device`` is a CUDA device."""
    # (why) compared as a string ('device == "cuda"'), "--device cuda:0" timed the steps and the
    # training without a synchronize: only the host's launches, not the GPU's work
    if torch.device(device).type == "cuda":
        torch.cuda.synchronize(device)


def device_name(device: str) -> str:
    """The GPU's name for a CUDA ``device``, else the CPU's as ``platform`` reports it."""
    if torch.device(device).type == "cuda":
        return torch.cuda.get_device_name(device)
    return f"{torch.device(device).type} ({platform.processor() or platform.machine()})"


def step_times(
    models: dict, resolution: int, batch: int, reps: int, device: str, compile_mode: str | None
) -> dict:
    """Median seconds of one training step per model, interleaved; with ``compile_mode`` each
    model's forward + loss also through ``torch.compile(mode=compile_mode)`` as ``NAME+compile``
    (its first, compiling step is the warm-up round, not timed)."""
    u = torch.as_tensor(sample_grf(batch, resolution, dim=2, seed=1), dtype=torch.float32)
    u = u.unsqueeze(1).to(device)
    y = torch.randn_like(u)
    losses = {k: loss_fn(k, m) for k, m in models.items()}
    params = {k: list(m.parameters()) for k, m in models.items()}
    if compile_mode is not None:
        for k in list(losses):
            losses[f"{k}+compile"] = torch.compile(losses[k], mode=compile_mode)
            params[f"{k}+compile"] = params[k]
    opts = {k: torch.optim.Adam(p, lr=1e-4) for k, p in params.items()}
    times: dict = {k: [] for k in losses}
    for r in range(reps + 1):
        for k in losses:
            _sync(device)
            t0 = time.perf_counter()
            loss = losses[k](u, y)
            opts[k].zero_grad(set_to_none=True)
            loss.backward()
            opts[k].step()
            _sync(device)
            if r > 0:  # first round: warm-up
                times[k].append(time.perf_counter() - t0)
    return {k: statistics.median(v) for k, v in times.items()}


def train(
    name, model, data, epochs, batch, lr, device, augment=False, test_average=False, wd=1e-4
) -> dict:
    """Train one model with AdamW (weight decay ``wd``); ``augment``: each sample of each batch
    moved by a random exact symmetry of the problem (:func:`fno_forcing_symmetries`);
    ``test_average``: also report the test error of the model averaged over the 16 group
    elements (exactly equivariant)."""
    u_tr, y_tr, u_te, y_te = (t.to(device) for t in data)
    elements, directions = fno_forcing_symmetries()
    if augment:
        aug = RandomSymmetry(
            elements, shift_directions=directions, generator=torch.Generator().manual_seed(1)
        )
    opt = torch.optim.AdamW(model.parameters(), lr=lr, weight_decay=wd)
    steps = epochs * math.ceil(len(u_tr) / batch)
    sched = torch.optim.lr_scheduler.CosineAnnealingLR(opt, steps)
    loss = loss_fn(name, model)
    g = torch.Generator().manual_seed(0)
    _sync(device)
    t0 = time.perf_counter()
    for _ in range(epochs):
        perm = torch.randperm(len(u_tr), generator=g)
        for i in range(0, len(u_tr), batch):
            idx = perm[i : i + batch]
            u, y = aug(u_tr[idx], y_tr[idx]) if augment else (u_tr[idx], y_tr[idx])
            value = loss(u, y)
            opt.zero_grad(set_to_none=True)
            value.backward()
            opt.step()
            sched.step()
    _sync(device)  # the queued kernels are part of the training time
    seconds = time.perf_counter() - t0
    model.eval()
    rel = LpLoss(reduction="none")
    with torch.no_grad():
        errs = torch.cat(
            [rel(model(u_te[i : i + 50]), y_te[i : i + 50]) for i in range(0, len(u_te), 50)]
        )
        train_err = float(rel(model(u_tr[:200]), y_tr[:200]).mean())
        out = {"test_rel_l2": float(errs.mean()), "train_rel_l2": train_err, "train_s": seconds}
        if test_average:
            avg = [
                rel(group_average(model, u_te[i : i + 50], elements), y_te[i : i + 50])
                for i in range(0, len(u_te), 50)
            ]
            out["test_rel_l2_group_average"] = float(torch.cat(avg).mean())
    return out


def main() -> None:
    from sciml.cli import HelpFormatter

    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0], formatter_class=HelpFormatter)
    ap.add_argument("--n-train", type=int, default=300, help="training samples")
    ap.add_argument("--n-test", type=int, default=60, help="test samples")
    ap.add_argument("--resolution", type=int, default=64, help="grid points per side of the data")
    ap.add_argument(
        "--solve-resolution",
        type=int,
        default=None,
        help="solve the PDE on this grid and Fourier-interpolate w(0), w(T) to --resolution "
        "(sciml.layers.fourier_resample; exact for fields band-limited on the solve grid): a "
        "256 x 256 data set at the cost of a 64 x 64 solve (default: the --resolution grid)",
    )
    ap.add_argument("--T", type=float, default=5.0, help="target time: w(0) -> w(T)")
    ap.add_argument("--dt", type=float, default=5e-3, help="solver time step")
    ap.add_argument("--epochs", type=int, default=30, help="training epochs")
    ap.add_argument("--batch-size", type=int, default=20, help="samples per batch")
    ap.add_argument("--lr-fno", type=float, default=1e-2, help="FNO's best of 1e-3/3e-3/1e-2")
    ap.add_argument("--lr-t1", type=float, default=1e-2, help="T1's best of 1e-3/3e-3/1e-2")
    ap.add_argument(
        "--t1-variants",
        nargs="+",
        default=["t1", "t1_rfft", "t1_shift"],
        choices=sorted(T1_VARIANTS),
        help="t1: DCT-II 24 x 24 kept modes, width 32, 4 blocks; t1_rfft: real FFT, |k| < 12; "
        "t1_paper: DCT-II 24 x 24, width 48, 8 blocks (the paper's NS size); t1_shift: t1_rfft "
        "made equivariant to shifts along (1, -1); t1_shift_paper: t1_shift, width 48, 8 blocks",
    )
    ap.add_argument("--wd-fno", type=float, default=1e-4, help="FNO's AdamW weight decay")
    ap.add_argument("--wd-t1", type=float, default=1e-4, help="T1's AdamW weight decay")
    ap.add_argument(
        "--n-val",
        type=int,
        default=0,
        help="score on the last N training samples instead of the test set (train on the rest): "
        "for choosing hyper-parameters without looking at the test set (the JSON keeps the test "
        "keys and says scored_on: validation)",
    )
    ap.add_argument(
        "--t1-epochs",
        type=int,
        default=None,
        help="epochs for the T1 variants (default: those of --epochs); e.g. more for an "
        "equal-time comparison",
    )
    ap.add_argument(
        "--train-models",
        nargs="+",
        default=None,
        help="subset of fno and the T1 variants to train (default: all)",
    )
    ap.add_argument(
        "--step-resolution", type=int, default=256, help="grid points per side of the timed steps"
    )
    ap.add_argument("--step-batch", type=int, default=8, help="samples per timed step")
    ap.add_argument("--reps", type=int, default=5, help="timed steps per model")
    ap.add_argument("--threads", type=int, default=1, help="torch intra-op threads")
    ap.add_argument("--device", default="cpu", help="torch device, e.g. cpu, cuda")
    ap.add_argument("--seed", type=int, default=0, help="seed of the data and the weights")
    ap.add_argument("--skip-training", action="store_true", help="step times only")
    ap.add_argument(
        "--isolate-steps",
        action="store_true",
        help="time each model's step in a loop of its own (torch.compile's cache reset between "
        "models) instead of interleaving them",
    )
    ap.add_argument(
        "--compile-step",
        metavar="MODE",
        default=None,
        help="also time each step through torch.compile(mode=MODE): default, reduce-overhead "
        "(CUDA graphs, for launch-bound GPU steps) or max-autotune (default: eager only)",
    )
    ap.add_argument(
        "--augment",
        action="store_true",
        help="train every model on samples moved by random exact symmetries of the problem "
        "(sciml.data.generators.fno_forcing_symmetries: 16 maps and the shifts along (1, -1))",
    )
    ap.add_argument(
        "--test-average",
        action="store_true",
        help="also report each model's test error averaged over the 16 symmetries (16 forwards)",
    )
    ap.add_argument(
        "--data",
        default=None,
        help="npz cache of the data set (default: a file in /tmp named by the solve "
        "resolution, T and dt)",
    )
    ap.add_argument(
        "--out", default=str(Path(__file__).parent / "results" / "t1_vs_fno.json"), help="JSON path"
    )
    args = ap.parse_args()
    if not 0 <= args.n_val < args.n_train:
        ap.error(f"--n-val must be in [0, n_train = {args.n_train}), got {args.n_val}")
    torch.set_num_threads(args.threads)

    models = {k: m.to(args.device) for k, m in make_models(args.seed, args.t1_variants).items()}
    result: dict = {
        "setup": vars(args)
        | {
            "torch": torch.__version__,
            "machine": platform.machine(),
            "device_name": device_name(args.device),
        },
        "params": {k: m.num_parameters() for k, m in models.items()},
        "step_s": {},
        "environment": run_environment(args.device),
    }
    for res in sorted({args.resolution, args.step_resolution}):
        if args.isolate_steps:
            result["step_s"][str(res)] = {}
            for k, m in models.items():
                result["step_s"][str(res)] |= step_times(
                    {k: m}, res, args.step_batch, args.reps, args.device, args.compile_step
                )
                torch._dynamo.reset()  # (why) the next model compiles in a cache of its own
        else:
            result["step_s"][str(res)] = step_times(
                models, res, args.step_batch, args.reps, args.device, args.compile_step
            )
        s = result["step_s"][str(res)]
        for k in args.t1_variants:
            s[f"fno_over_{k}"] = s["fno"] / s[k]
            if args.compile_step is not None:
                s[f"fno+compile_over_{k}+compile"] = s["fno+compile"] / s[f"{k}+compile"]
        print(f"step {res}x{res} batch {args.step_batch}: {json.dumps(s)}", flush=True)

    if not args.skip_training:
        n = args.n_train + args.n_test
        solve_res = args.solve_resolution or args.resolution
        cache = args.data or f"/tmp/sciml_ns_r{solve_res}_T{args.T:g}_dt{args.dt:g}.npz"
        d = load_data(Path(cache), n, solve_res, args.T, args.dt, args.device)
        w0 = torch.as_tensor(d["w0"], dtype=torch.float32).unsqueeze(1)
        wT = torch.as_tensor(d["wT"], dtype=torch.float32).unsqueeze(1)
        if solve_res != args.resolution:  # (n, 1, r, r) -> (n, 1, R, R), same function
            w0, wT = (fourier_resample(w, (args.resolution,) * 2) for w in (w0, wT))
        if args.n_val:  # validation: the last n_val training samples; the test set is not read
            split, end = args.n_train - args.n_val, args.n_train
        else:
            split, end = args.n_train, n
        data = (w0[:split], wT[:split], w0[split:end], wT[split:end])
        result["data"] = {
            "cache": cache,
            "generation_s": d["seconds"],
            "n": n,
            "solve_resolution": solve_res,
            "resolution": args.resolution,
        }
        result["scored_on"] = "validation" if args.n_val else "test"
        models = {k: m.to(args.device) for k, m in make_models(args.seed, args.t1_variants).items()}
        result["training"] = {}
        for k, m in models.items():
            if args.train_models is not None and k not in args.train_models:
                continue
            t1 = k.startswith("t1")
            lr = args.lr_t1 if t1 else args.lr_fno
            wd = args.wd_t1 if t1 else args.wd_fno
            epochs = args.t1_epochs if t1 and args.t1_epochs is not None else args.epochs
            r = train(
                k,
                m,
                data,
                epochs,
                args.batch_size,
                lr,
                args.device,
                args.augment,
                args.test_average,
                wd,
            )
            r["epochs"] = epochs
            result["training"][k] = r
            print(f"{k}: {json.dumps(r)}", flush=True)
        tr = result["training"]
        for k in args.t1_variants:
            if k in tr and "fno" in tr:
                result[f"{k}_over_fno_test_error"] = tr[k]["test_rel_l2"] / tr["fno"]["test_rel_l2"]

    Path(args.out).parent.mkdir(parents=True, exist_ok=True)
    Path(args.out).write_text(json.dumps(result, indent=2) + "\n")
    print(json.dumps({k: v for k, v in result.items() if k != "setup"}, indent=2))


if __name__ == "__main__":
    main()
