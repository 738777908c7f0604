"""T1 (transform once) vs FNO (sciml's and neuraloperator's) on Navier-Stokes 2D (nu = 1e-3,
w(0) -> w(T)), one run.

``sciml.models.T1``, sciml's FNO baseline ``sciml.models.FNO`` and neuraloperator's
``neuralop.models.FNO`` (what a user would otherwise pick) are trained in the same process by the
same plain loop (below; sciml's ``Trainer`` is not used here, for any model) with the same
optimiser (AdamW, cosine schedule), batch size, epochs and data; each model gets its own learning
rate (``--lr-fno``, ``--lr-neuralop``, ``--lr-t1``: pass each model's best from a sweep; FNO and
T1 both preferred 1e-2 of {1e-3, 3e-3, 1e-2} in a 12-epoch sweep on 120 samples, see docs/t1.md;
neuraloperator's was not swept) and weight decay (``--wd-fno``, ``--wd-neuralop``, ``--wd-t1``;
default the paper's 1e-4). ``--n-val N`` scores on the last N training samples instead of the
test set, for choosing such settings without looking at the test set:

* ``fno`` (sciml): modes (12, 12), width 32, 4 Fourier layers, linear lifting, projection 128
  (the FNO paper's 2D setting), trained on the relative L2 loss.
* ``neuralop_fno`` (``--baselines``; skipped with a message where neuraloperator is not
  installed): ``neuralop.models.FNO`` built to match ``fno`` as far as its API allows: the same
  kept modes (``n_modes=(24, 22)`` keeps what sciml's ``modes=(12, 12)`` keeps), width 32,
  4 layers, linear lifting (``lifting_channel_ratio=0``; its default is a two-layer MLP), a
  projection MLP with 128 hidden channels (``projection_channel_ratio=4``), no padding, trained on
  the same relative L2 loss. Where it differs: each Fourier layer keeps neuraloperator's default
  channel MLP (32 -> 16 -> 32, soft-gating skip), which sciml's ``fno`` here has not
  (``use_channel_mlp=False`` would make neuraloperator 2.0 apply the activation twice per layer);
  its grid embedding spans ``[0, 1]``, sciml's ``[0, 1)``. It takes and returns sciml's
  channel-first ``(batch, 1, h, w)`` tensors as they are. 2,372,417 parameters (a complex weight
  counted as two reals, as sciml counts them; sciml's ``fno``: 2,368,001).
* T1 variants (``--t1-variants``), projection 128, trained on the Parseval relative L2 loss
  (:class:`sciml.models.t1.SpectralL2Loss`, no inverse transform in training): ``t1``: DCT-II,
  24 x 24 kept modes, width 32, 4 blocks; ``t1_rfft``: real FFT, ``|k| < 12`` (FNO's kept set;
  the data are periodic); ``t1_shift``: ``t1_rfft`` made exactly equivariant to shifts along
  (1, -1), the symmetry of the forcing (``T1Config.shift_equivariant``); ``t1_paper`` /
  ``t1_shift_paper``: ``t1`` / ``t1_shift`` at the paper's Navier-Stokes size (width 48, 8 blocks).

Reported: test relative L2 of every model (physical space, ``LpLoss``), seconds per training
epoch, the time of one training step (forward + loss + backward + Adam step) at the data
resolution and at ``--step-resolution`` (default 256 x 256; inputs are GRF samples, targets
random: a step's cost does not depend on the values), parameter counts, and each model's error,
time per epoch and step time over neuraloperator's (``vs_neuralop_fno``). Step timings interleave
the models (one FNO step, one T1 step, ..., repeated) so all see the same machine load; the ratio
is what to read on a shared machine. With ``--compile-step`` each model's compiled loss is first
compared with its eager loss on the same weights and batch (``compile_check`` in the JSON); a
relative difference over ``--compile-rtol`` stops the run before anything is timed.
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

from sciml._environment import optional_missing, optional_version, run_environment
from sciml.data.generators import fno_forcing_symmetries, generate_navier_stokes, sample_grf
from sciml.data.symmetry import RandomSymmetry, group_average
from sciml.layers import fourier_resample
from sciml.models import FNO, T1, FNOConfig, T1Config
from sciml.train import LpLoss

BASELINES = ("fno", "neuralop_fno")


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


def neuralop_missing() -> str | None:
    """Why neuraloperator's FNO cannot run here, or None where it can."""
    return optional_missing("neuralop", "neuraloperator")


def neuralop_fno() -> torch.nn.Module:
    """neuraloperator's FNO with sciml's ``fno`` settings (module docstring: where they differ)."""
    from neuralop.models import FNO as NeuralopFNO

    return NeuralopFNO(
        n_modes=(24, 22),  # = sciml's modes=(12, 12): |k| < 12 on the first axis, 0..11 on the last
        in_channels=1,
        out_channels=1,
        hidden_channels=32,
        n_layers=4,
        lifting_channel_ratio=0,  # linear lifting, as sciml's FNO
        projection_channel_ratio=4,  # 128 hidden channels
    )


def num_parameters(model: torch.nn.Module) -> int:
    """Scalar parameters, a complex one counted twice (as :meth:`sciml.Operator.num_parameters`)."""
    return sum(p.numel() * (2 if p.is_complex() else 1) for p in model.parameters())


def make_models(seed: int, variants: list[str], baselines: tuple[str, ...] = ("fno",)) -> dict:
    """The ``baselines`` (``fno``, ``neuralop_fno``) and the T1 ``variants``, each built after
    ``torch.manual_seed(seed)``."""
    models = {}
    for name in baselines:
        torch.manual_seed(seed)
        if name == "fno":
            cfg = FNOConfig(modes=(12, 12), width=32, n_layers=4, projection_channels=128)
            models[name] = FNO(cfg)
        elif name == "neuralop_fno":
            models[name] = neuralop_fno()
        else:
            raise ValueError(f"baselines: expected names from {BASELINES}, got {name!r}")
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


def check_compiled_losses(losses: dict, u, y, rtol: float) -> dict:
    """Each ``NAME+compile`` loss against the eager ``NAME`` loss on the same weights and batch,
    before any step: ``{NAME: {eager, compiled, rel_diff}}``; a relative difference over ``rtol``
    (or a non-finite loss) raises RuntimeError, so no step that computes something else is
    timed."""
    checked = {}
    for k in [k for k in losses if not k.endswith("+compile")]:
        eager = float(losses[k](u, y).detach())
        compiled = float(losses[f"{k}+compile"](u, y).detach())  # compiles forward + backward
        rel = abs(compiled - eager) / abs(eager) if eager else abs(compiled - eager)
        checked[k] = {"eager": eager, "compiled": compiled, "rel_diff": rel}
        if not (math.isfinite(eager) and rel <= rtol):  # (why) a NaN rel fails "<=" too
            raise RuntimeError(
                f"{k}+compile: the compiled loss {compiled!r} is not the eager loss {eager!r} "
                f"(relative difference {rel:.3g} > --compile-rtol {rtol:g}) at "
                f"{tuple(u.shape)}; not timing a compiled step that computes something else"
            )
    return checked


def step_times(
    models: dict,
    resolution: int,
    batch: int,
    reps: int,
    device: str,
    compile_mode: str | None,
    checked: dict | None = None,
    compile_rtol: float = 1e-4,
) -> dict:
    """Median seconds of one training step per model, interleaved; with ``compile_mode`` each
    model's forward + loss also through ``torch.compile(mode=compile_mode)`` as ``NAME+compile``
    (its first, compiling step is the warm-up round, not timed), after
    :func:`check_compiled_losses` (its results go into ``checked`` where given)."""
    u = torch.as_tensor(sample_grf(batch, resolution, dim=2, seed=1), dtype=torch.float32)
    u = u.unsqueeze(1).to(device)
    y = torch.randn_like(u)
    losses = {k: loss_fn(k, m) for k, m in models.items()}
    params = {k: list(m.parameters()) for k, m in models.items()}
    if compile_mode is not None:
        for k in list(losses):
            losses[f"{k}+compile"] = torch.compile(losses[k], mode=compile_mode)
            params[f"{k}+compile"] = params[k]
        found = check_compiled_losses(losses, u, y, compile_rtol)
        if checked is not None:
            checked.update(found)
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
        out = {
            "test_rel_l2": float(errs.mean()),
            "train_rel_l2": train_err,
            "train_s": seconds,
            "seconds_per_epoch": seconds / epochs,
        }
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
    ap.add_argument(
        "--lr-neuralop",
        type=float,
        default=1e-2,
        help="neuraloperator FNO's learning rate (not swept: sciml FNO's best)",
    )
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
    ap.add_argument(
        "--wd-neuralop", type=float, default=1e-4, help="neuraloperator FNO's AdamW weight decay"
    )
    ap.add_argument(
        "--baselines",
        nargs="+",
        choices=BASELINES,
        default=None,
        help="FNOs to compare with: fno (sciml's), neuralop_fno (neuraloperator's) (default: "
        "both; neuralop_fno is skipped with a message where neuraloperator is not installed)",
    )
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
        help="subset of the baselines and the T1 variants to train (default: all)",
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
        "--compile-rtol",
        type=float,
        default=1e-4,
        help="largest relative difference allowed between a compiled step's loss and the eager "
        "one (checked before timing; the run stops if it is exceeded)",
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
    skipped = {}
    missing = neuralop_missing()
    if args.baselines is None:
        args.baselines = list(BASELINES)
        if missing:
            args.baselines.remove("neuralop_fno")
            skipped["neuralop_fno"] = missing
            print(f"skipping neuralop_fno: {missing}", flush=True)
    elif "neuralop_fno" in args.baselines and missing:
        ap.error(f"--baselines neuralop_fno: {missing}")
    args.baselines = [b for b in BASELINES if b in args.baselines]  # fixed order, no repeats
    known = {*args.baselines, *args.t1_variants}
    if args.train_models is not None and not set(args.train_models) <= known:
        ap.error(
            f"--train-models: expected names from {sorted(known)}, got "
            f"{sorted(set(args.train_models) - known)}"
        )

    def build() -> dict:
        made = make_models(args.seed, args.t1_variants, tuple(args.baselines))
        return {k: m.to(args.device) for k, m in made.items()}

    models = build()
    result: dict = {
        "setup": vars(args)
        | {
            "torch": torch.__version__,
            "machine": platform.machine(),
            "device_name": device_name(args.device),
        },
        "params": {k: num_parameters(m) for k, m in models.items()},
        "neuraloperator": optional_version("neuralop", "neuraloperator"),
        "skipped": skipped,
        "step_s": {},
        "environment": run_environment(args.device),
    }
    if args.compile_step is not None:
        result["compile_check"] = {}
    for res in sorted({args.resolution, args.step_resolution}):
        checked: dict = {}
        timing = (args.step_batch, args.reps, args.device, args.compile_step, checked)
        if args.isolate_steps:
            result["step_s"][str(res)] = {}
            for k, m in models.items():
                result["step_s"][str(res)] |= step_times({k: m}, res, *timing, args.compile_rtol)
                torch._dynamo.reset()  # (why) the next model compiles in a cache of its own
        else:
            result["step_s"][str(res)] = step_times(models, res, *timing, args.compile_rtol)
        if args.compile_step is not None:
            result["compile_check"][str(res)] = checked
        s = result["step_s"][str(res)]
        suffixes = ("",) if args.compile_step is None else ("", "+compile")
        for sfx in suffixes:
            for b in args.baselines:
                for k in args.t1_variants:  # "fno_over_t1": how much faster T1's step is
                    s[f"{b}{sfx}_over_{k}{sfx}"] = s[f"{b}{sfx}"] / s[f"{k}{sfx}"]
            if "neuralop_fno" in args.baselines and "fno" in args.baselines:
                s[f"fno{sfx}_over_neuralop_fno{sfx}"] = s[f"fno{sfx}"] / s[f"neuralop_fno{sfx}"]
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
        models = build()
        result["training"] = {}
        for k, m in models.items():
            if args.train_models is not None and k not in args.train_models:
                continue
            t1 = k.startswith("t1")
            lr = args.lr_t1 if t1 else args.lr_neuralop if k == "neuralop_fno" else args.lr_fno
            wd = args.wd_t1 if t1 else args.wd_neuralop if k == "neuralop_fno" else args.wd_fno
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
        for b in args.baselines:
            for k in [*args.t1_variants, *(["fno"] if b == "neuralop_fno" else [])]:
                if k in tr and b in tr:
                    ratio = tr[k]["test_rel_l2"] / tr[b]["test_rel_l2"]
                    result[f"{k}_over_{b}_test_error"] = ratio
    if "neuralop_fno" in models:
        result["vs_neuralop_fno"] = vs_neuralop(result)
        print(table(result))

    Path(args.out).parent.mkdir(parents=True, exist_ok=True)
    Path(args.out).write_text(json.dumps(result, indent=2) + "\n")
    print(json.dumps({k: v for k, v in result.items() if k != "setup"}, indent=2))


def vs_neuralop(result: dict) -> dict:
    """Each model's test error, seconds per epoch and step times over neuraloperator's FNO's
    (where both were measured): ``{model: {quantity: model / neuralop_fno}}``."""
    ref = "neuralop_fno"
    out: dict = {}
    for k in result["params"]:
        row = {"params": result["params"][k] / result["params"][ref]}
        for res, s in result["step_s"].items():
            for sfx in ("", "+compile"):
                if f"{k}{sfx}" in s and f"{ref}{sfx}" in s:
                    row[f"step_s_{res}{sfx}"] = s[f"{k}{sfx}"] / s[f"{ref}{sfx}"]
        tr = result.get("training", {})
        if k in tr and ref in tr:
            for q in ("test_rel_l2", "seconds_per_epoch"):
                row[q] = tr[k][q] / tr[ref][q]
        out[k] = row
    return out


def table(result: dict) -> str:
    """The models side by side, each ratio over neuraloperator's FNO (``/ nop``)."""
    res = sorted(result["step_s"], key=int)
    tr = result.get("training", {})
    cols = ["parameters", "test rel L2", "s/epoch", *(f"step {r}" for r in res)]
    cols += ["error / nop", "s/epoch / nop", *(f"step {r} / nop" for r in res)]
    lines = [f"{'model':<16}" + "".join(f"{c:>15}" for c in cols)]
    for k, ratio in result["vs_neuralop_fno"].items():
        t = tr.get(k, {})
        cells = [f"{result['params'][k]:,}"]
        cells += [f"{t[q]:.4g}" if q in t else "-" for q in ("test_rel_l2", "seconds_per_epoch")]
        cells += [f"{result['step_s'][r][k]:.4g}" for r in res]
        cells += [f"{ratio[q]:.3g}" if q in ratio else "-" for q in ("test_rel_l2",
                  "seconds_per_epoch", *(f"step_s_{r}" for r in res))]  # fmt: skip
        lines.append(f"{k:<16}" + "".join(f"{c:>15}" for c in cells))
    return "\n".join(lines)


if __name__ == "__main__":
    main()
