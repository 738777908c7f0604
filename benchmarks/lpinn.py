"""Lagrangian PINN vs Eulerian PINN and DeepXDE's PINN on convection and Burgers, one run.

The setting of Mojgani, Balajewicz & Hassanzadeh (2022): ``u0 = sin(x)`` on the periodic
interval ``[0, 2 pi)``, ``t in [0, 1]``; Burgers ``u_t + u u_x = nu u_xx`` with ``nu = 0.01``.
Both methods get the same budget:

* the same collocation points (``--points`` scrambled Sobol points in ``[0, 2 pi) x [0, 1]``,
  fixed), the same ``--ic-points`` initial-condition points, soft initial conditions with the
  same weight (``--ic-weight``, as in the paper);
* the same network size: the PINN's MLP and the LPINN's state branch both have ``--depth``
  tanh layers of ``--width`` units on ``(cos x, sin x, t)``; the LPINN adds its characteristic
  branch (``--curve-depth`` layers);
* the same optimiser: ``--adam`` Adam steps (lr ``--lr``, cosine decay to lr/10), then up to
  ``--lbfgs`` L-BFGS iterations (strong Wolfe).

Error: relative L2 ``||u - u_ref|| / ||u_ref - mean(u0)||`` (the mean is 0 except for
``burgers_moving``) on a 256 x 101 space-time grid against the exact solution (convection; exact
Fourier decay with diffusion) or a pseudo-spectral ETDRK4 solution on 2048 points (Burgers); the
LPINN is mapped back to that grid by wrapping its characteristics and interpolating. The JSON
also has ``rel_spectral``, the same ratio with matrix 2-norms: the authors' measure, on this
whole grid (their code drops the 2 end points and interpolates the LPINN with ``interp1d``,
``docs/pinn.md``), so not their code's number. Timing: wall seconds per Adam step and per
L-BFGS iteration, in one process with one thread (the machine is shared: compare the ratio, not
absolute seconds). The methods' Adam phases run **in turns** of ``--turn-steps`` steps (each
method in its own thread, one running at a time: sciml's PINN, the LPINN, DeepXDE, PINN, ...),
so a change in the machine's load falls on all of them alike: run one after the other, the
PINN measured 1.47x DeepXDE per Adam step on conv30 where, interleaved, its step costs 1.05x
DeepXDE's (``benchmarks/README.md``). An Adam step is timed from the end of the one before it,
or from the moment its method's turn came back (each method's first step, with its one-off
costs, is not timed; the JSON's ``adam_steps_timed`` counts the rest); a method keeps its turn
after its last Adam step, so its L-BFGS phase runs alone, as before. The training itself is
unchanged (no method draws random numbers while training; each model is built, after its seed,
before any trains).

Beside them, what a user would otherwise pick: DeepXDE's PINN (``--baselines deepxde``, the
default where DeepXDE is installed, ``pip install 'sciml[bench]'``; a message and no DeepXDE
otherwise), on its PyTorch backend, trained third in the same process, on the same problem:

* ``dde.data.TimePDE`` with ``num_domain=num_boundary=num_initial=0`` and the same collocation
  points as ``anchors``; the initial condition as a ``PointSetBC`` on the same points at
  ``t = 0``, with ``loss_weights=[1, --ic-weight]`` (mean squares, as sciml's);
* ``dde.nn.FNN`` with the same ``--depth`` x ``--width`` tanh layers behind the feature
  transform ``(cos x, sin x, t)`` (sciml's periodic embedding) and the same initial weights
  (copied from sciml's PINN: so the two start from the same loss, which the JSON records as
  ``initial_loss``);
* Adam with ``decay=("cosine", adam - 1, lr / 10)`` (torch's ``CosineAnnealingLR``: the same
  learning rate at every step as sciml's schedule), then L-BFGS through
  ``dde.optimizers.config.set_LBFGS_options`` with sciml's history (50), tolerances and
  ``--lbfgs`` iterations (strong Wolfe, the same ``torch.optim.LBFGS``).

What is not the same, and why: DeepXDE evaluates the residual's derivatives at the
initial-condition points as well (its ``PDE`` data differentiates every input and then drops
the rows of the conditions), about 6 % more points than sciml's PINN, which runs only a
forward pass there; that is DeepXDE's cost as a user meets it, so it stays in the timing. The
pytorch backend fixes L-BFGS's per-call limits (``iter_per_step``, ``fun_per_step``) at import
from the default ``maxiter`` (15000), so ``set_LBFGS_options(maxiter=50)`` alone ran up to 1000
iterations: they are set to the budget here. Where L-BFGS stops on its tolerances before the
budget, DeepXDE's loop calls it again (sciml's stops): the JSON's ``lbfgs_iterations`` counts
what each ran. DeepXDE's loss evaluations (``Model._test``, at the start and end of each phase)
are kept out of its timings (and DeepXDE's timed Adam steps are taken as sciml's, by
:class:`Turns`). The JSON adds, per case, ``time_ratio_lpinn_over_deepxde`` (per
Adam step), ``lbfgs_time_ratio_lpinn_over_deepxde`` (per L-BFGS iteration) and
``error_ratio_lpinn_over_deepxde``, and the same three for sciml's PINN.

    OMP_NUM_THREADS=1 .venv/bin/python benchmarks/lpinn.py              # default budget (~30 min)
    .venv/bin/python benchmarks/lpinn.py --adam 300 --lbfgs 50 --cases conv30   # smoke test
    .venv/bin/python benchmarks/lpinn.py --paper   # 256 x 100 grid points, 5 x 50 nets, more steps
    OMP_NUM_THREADS=1 .venv/bin/python benchmarks/lpinn.py --cases convdiff50 --out benchmarks/results/lpinn_convdiff.json
    .venv/bin/python benchmarks/lpinn.py --cases burgers_moving --out benchmarks/results/lpinn_moving.json
"""

from __future__ import annotations

import argparse
import contextlib
import io
import json
import math
import os
import platform
import sys
import threading
import time
from pathlib import Path

import numpy as np
import torch

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from sciml._environment import run_environment  # noqa: E402
from sciml.pinn import (  # noqa: E402
    PINN,
    Box,
    Burgers,
    Convection,
    ConvectionDiffusion,
    LagrangianPINN,
    LossWeights,
    PINNTrainConfig,
    fit,
    grid,
    sobol,
)
from sciml.pinn.reference import periodic_grid  # noqa: E402

TWO_PI = 2 * math.pi
CASES = {
    "conv10": lambda a: Convection(beta=10.0),
    "conv30": lambda a: Convection(beta=30.0),
    "conv50": lambda a: Convection(beta=50.0),
    # the authors' script runs its convection cases with nu = 0.01 (not in the default list)
    "convdiff50": lambda a: ConvectionDiffusion(beta=50.0, viscosity=a.nu),
    "burgers": lambda a: Burgers(viscosity=a.nu),
    # a moving shock: u0 = c + sin x travels at speed ~c (not in the default list)
    "burgers_moving": lambda a: Burgers(
        viscosity=a.nu, u0=lambda x: a.burgers_shift + torch.sin(x)
    ),
}
DEFAULT_CASES = ["conv10", "conv30", "conv50", "burgers"]


def rel_l2(pred: torch.Tensor, ref: torch.Tensor, mean: float = 0.0) -> float:
    """``||pred - ref|| / ||ref - mean||``: relative to the fluctuation about the conserved mean
    (= ``||ref||`` for the zero-mean ``sin x`` cases), so a constant offset does not hide errors."""
    pred, ref = pred.double(), ref.double()
    return float((pred - ref).norm() / (ref - mean).norm())


def rel_spectral(pred: torch.Tensor, ref: torch.Tensor, mean: float = 0.0) -> float:
    """The authors' measure on the whole ``(nt, nx)`` grid: ``||pred - ref||_2 / ||ref - mean||_2``
    with matrix 2-norms (largest singular value). Not their code's number: it drops the 2 end
    points and interpolates the LPINN with ``interp1d`` (``docs/pinn.md``)."""
    pred, ref = pred.double(), ref.double()
    return float(torch.linalg.matrix_norm(pred - ref, 2) / torch.linalg.matrix_norm(ref - mean, 2))


class Turns:
    """The methods' Adam phases in turns of ``block`` steps, one method running at a time.

    Each method trains in its own thread (:func:`_run_in_turns`) and calls ``tick(name, last)``
    after each of its Adam steps: it times the step from the previous tick of the same turn
    or, for the first step of a later turn, from the moment the turn came back (a method's
    first Adam step has no such mark and is not timed) and, after ``block`` steps, hands the
    turn to the next method still running and waits for its own next turn. After its
    ``last`` Adam step a method keeps its turn until :meth:`done` (its L-BFGS phase runs alone).

    (why) run one after the other, the methods' per-step times took different stretches of a
    shared machine's load: sciml's PINN measured 1.47x DeepXDE per Adam step on conv30 (2,000
    steps each, sequential; results/lpinn_deepxde_jointgrad.json), 1.09x in turns
    (results/lpinn_deepxde_turns.json), the same training to the bit.
    """

    def __init__(self, names: list[str], block: int) -> None:
        if block < 1:
            raise ValueError(f"expected --turn-steps >= 1, got {block}")
        self.names, self.block = list(names), block
        self.running = list(names)
        self.holder: str | None = self.names[0]
        self.seconds = dict.fromkeys(names, 0.0)
        self.steps = dict.fromkeys(names, 0)
        self._count = 0
        self._mark: dict[str, float] = {}
        self._cond = threading.Condition()

    def wait(self, name: str) -> None:
        with self._cond:
            self._cond.wait_for(lambda: self.holder == name)

    def tick(self, name: str, last: bool, exclude: float = 0.0) -> None:
        """After one Adam step of ``name``; ``exclude``: seconds of that step not to count
        (DeepXDE's loss evaluation at its last step)."""
        now = time.perf_counter()
        if name in self._mark:
            self.seconds[name] += now - self._mark.pop(name) - exclude
            self.steps[name] += 1
        self._count += 1
        if self._count >= self.block and not last:
            with self._cond:
                self._pass(name)
                self._cond.wait_for(lambda: self.holder == name)
        self._mark[name] = time.perf_counter()

    def done(self, name: str) -> None:
        with self._cond:
            self._mark.pop(name, None)
            if self.holder == name:
                self._pass(name)
            self.running.remove(name)
            if self.holder == name:
                self.holder = self.running[0] if self.running else None
            self._cond.notify_all()

    def _pass(self, name: str) -> None:
        i = self.running.index(name)
        self.holder = self.running[(i + 1) % len(self.running)]
        self._count = 0
        self._cond.notify_all()

    def seconds_per_step(self, name: str) -> float:
        return self.seconds[name] / max(self.steps[name], 1)


def _run_in_turns(turns: Turns, jobs: dict, threads: int) -> dict:
    """``{name: job()}``, each job in its own thread, in ``turns``; the first error is raised."""
    results: dict = {}
    errors: list[BaseException] = []

    def run(name, job):
        torch.set_num_threads(threads)  # (why) intra-op threads are set per thread
        try:
            turns.wait(name)
            results[name] = job()
        except BaseException as e:  # (why) re-raised in the main thread below
            errors.append(e)
        finally:
            turns.done(name)

    workers = [threading.Thread(target=run, args=item, daemon=True) for item in jobs.items()]
    for w in workers:
        w.start()
    for w in workers:
        w.join()
    if errors:
        raise errors[0]
    return results


def _deepxde_or_none():
    """DeepXDE on its PyTorch backend, or None where it is not installed.

    (why) DDE_BACKEND is read once, at DeepXDE's import: it is set here, in the benchmark's
    process only, and a DeepXDE already imported on another backend is refused."""
    os.environ["DDE_BACKEND"] = "pytorch"
    try:
        import deepxde as dde
    except ImportError:
        return None
    if dde.backend.backend_name != "pytorch":
        raise SystemExit(
            f"DeepXDE was imported on its {dde.backend.backend_name!r} backend; this benchmark "
            "compares on the pytorch one (DDE_BACKEND=pytorch)"
        )
    return dde


def _deepxde_pde(dde, problem):
    """The Eulerian residual ``u_t + F(u) u_x - nu u_xx`` written as a DeepXDE user would, on
    inputs ``X = (x, t)``."""
    if isinstance(problem, Burgers):
        speed = None  # F(u) = u
    elif isinstance(problem, (Convection, ConvectionDiffusion)):
        speed = float(problem.beta)
    else:
        raise ValueError(f"no DeepXDE residual for {type(problem).__name__}")
    nu = float(problem.nu)

    def pde(X, u):
        u_x = dde.grad.jacobian(u, X, i=0, j=0)
        r = dde.grad.jacobian(u, X, i=0, j=1) + (u if speed is None else speed) * u_x
        if nu:
            r = r - nu * dde.grad.hessian(u, X, i=0, j=0)
        return r

    return pde


def run_deepxde(dde, problem, pts, x_ic, xg, tg, ref, mean, init, args, turns=None) -> dict:
    """DeepXDE's PINN on the same points, initial weights, loss weights and optimiser budget
    as sciml's :class:`PINN` (``init``: that PINN's state before training); its Adam steps
    timed in ``turns`` (a :class:`Turns`) where given."""
    geom = dde.geometry.GeometryXTime(
        dde.geometry.Interval(0.0, TWO_PI), dde.geometry.TimeDomain(0.0, problem.t_final)
    )
    x_ic64 = x_ic.double()
    ic = dde.icbc.PointSetBC(
        torch.cat([x_ic64, torch.zeros_like(x_ic64)], dim=1).float().numpy(),
        problem._u0_at(x_ic64).float().numpy(),
    )
    data = dde.data.TimePDE(
        geom,
        _deepxde_pde(dde, problem),
        [ic],
        num_domain=0,
        num_boundary=0,
        num_initial=0,
        anchors=pts.numpy(),
    )
    net = dde.nn.FNN([3] + [args.width] * args.depth + [1], "tanh", "Glorot normal")
    net.apply_feature_transform(
        lambda X: torch.cat([torch.cos(X[:, :1]), torch.sin(X[:, :1]), X[:, 1:]], dim=1)
    )
    # sciml's MLP is nn.Sequential(Linear, Tanh, ..., Linear): its Linear i is entry 2 i
    with torch.no_grad():
        for i, lin in enumerate(net.linears):
            lin.weight.copy_(init[f"net.{2 * i}.weight"])
            lin.bias.copy_(init[f"net.{2 * i}.bias"])
    model = dde.Model(data, net)
    clock = {"test": 0.0}
    inner_test = model._test

    def timed_test(*a, **k):  # DeepXDE's loss / metric evaluations, kept out of the timings
        t0 = time.perf_counter()
        out = inner_test(*a, **k)
        clock["test"] += time.perf_counter() - t0
        return out

    model._test = timed_test
    weights = [1.0, args.ic_weight]
    decay = ("cosine", args.adam - 1, args.lr * 0.1) if args.adam > 1 else None
    with contextlib.redirect_stdout(io.StringIO()):  # (why) compile prints 'Compiling model...'
        model.compile("adam", lr=args.lr, loss_weights=weights, decay=decay)

    class Tick(dde.callbacks.Callback):  # (why) each Adam step into turns, less its _test
        step, tested = 0, 0.0

        def on_batch_begin(self):
            self.tested = clock["test"]

        def on_batch_end(self):
            self.step += 1
            turns.tick("deepxde", self.step == args.adam, exclude=clock["test"] - self.tested)

    t0 = time.perf_counter()
    if args.adam:
        callbacks = [] if turns is None else [Tick()]
        model.train(iterations=args.adam, display_every=args.adam, verbose=0, callbacks=callbacks)
    adam_seconds = time.perf_counter() - t0 - clock["test"]
    lbfgs_iterations = lbfgs_evaluations = 0
    lbfgs_seconds = 0.0
    if args.lbfgs:
        cfg = dde.optimizers.config
        cfg.set_LBFGS_options(
            maxcor=50, ftol=1e-14, gtol=1e-10, maxiter=args.lbfgs, maxfun=args.lbfgs * 5 // 4
        )
        # (why) the pytorch backend's per-call limits are fixed at DeepXDE's import from the
        # default maxiter (15000): max_iter 1000 and max_eval 1250 per optimizer.step, so
        # maxiter=50 ran up to 1000 iterations. Set them to the budget, as sciml's fit does.
        cfg.LBFGS_options["iter_per_step"] = args.lbfgs
        cfg.LBFGS_options["fun_per_step"] = args.lbfgs * 5 // 4
        with contextlib.redirect_stdout(io.StringIO()):
            model.compile("L-BFGS", loss_weights=weights)
        clock["test"] = 0.0
        t0 = time.perf_counter()
        model.train(verbose=0)
        lbfgs_seconds = time.perf_counter() - t0 - clock["test"]
        state = model.opt.state_dict()["state"][0]
        lbfgs_iterations, lbfgs_evaluations = int(state["n_iter"]), int(state["func_evals"])
    X = torch.stack(torch.meshgrid(xg, tg, indexing="xy"), dim=-1).reshape(-1, 2)  # (nt nx, 2)
    pred = torch.as_tensor(model.predict(X.float().numpy())).reshape(len(tg), len(xg))
    history = model.losshistory.loss_train  # the first row: at the initial weights
    # (why) DeepXDE's L-BFGS loop leaves train_state's loss stale where it stops after one
    # iteration ('converged'): evaluate at the returned weights, as sciml's fit does
    inner_test(verbose=0)
    initial_loss = float(np.sum(history[0])) if history else None
    losses = [float(v) for v in model.train_state.loss_train]
    return {
        "rel_l2": rel_l2(pred, ref, mean),
        "rel_l2_final_time": rel_l2(pred[-1], ref[-1], mean),
        "rel_spectral": rel_spectral(pred, ref, mean),
        "loss": sum(losses),
        "terms": {"r": losses[0], "ic": losses[1] / args.ic_weight},
        "initial_loss": initial_loss,
        "parameters": sum(p.numel() for p in net.parameters()),
        "adam_seconds_per_step": adam_seconds / max(args.adam, 1),
        "lbfgs_iterations": lbfgs_iterations,
        "lbfgs_evaluations": lbfgs_evaluations,
        "lbfgs_seconds_per_iteration": lbfgs_seconds / max(lbfgs_iterations, 1),
    }, pred


def _train(model, problem, x, t, x_ic, config, weights, callback=None):
    return fit(
        model,
        lambda: model.loss_terms(problem, x, t, x_ic),
        config,
        weights=weights,
        callback=callback,
    )


def run_case(name: str, args: argparse.Namespace, dde=None) -> dict:
    problem = CASES[name](args)
    box = Box((0.0, 0.0), (TWO_PI, problem.t_final))
    if args.paper:  # the paper's collocation: a 256 x 100 space-time grid
        pts = grid((100, 256), Box((0.0, 0.0), (problem.t_final, TWO_PI)), endpoint=(True, False))
        pts = pts[:, [1, 0]]
    else:
        pts = sobol(args.points, box, seed=args.seed)
    x_ic = periodic_grid(args.ic_points).float()[:, None]
    xg = periodic_grid(256)
    tg = torch.linspace(0, problem.t_final, 101, dtype=torch.float64)
    t0 = time.perf_counter()
    ref = problem.reference(xg, tg)
    ref_seconds = time.perf_counter() - t0
    mean = float(ref[0].mean())
    config = PINNTrainConfig(
        adam_steps=args.adam, lr=args.lr, lbfgs_steps=args.lbfgs, log_every=max(args.adam // 10, 1)
    )
    out = {"case": name, "problem": repr(problem), "reference_seconds": ref_seconds}
    # (why) every model is built, after its seed, before any trains: the training threads
    # below draw no random numbers, so each trains as it did run one after the other
    setups = {}
    for method in ("pinn", "lpinn"):
        torch.manual_seed(args.seed)
        x = pts[:, :1].clone().requires_grad_()
        t = pts[:, 1:].clone().requires_grad_()
        if method == "pinn":
            model = PINN(width=args.width, depth=args.depth)
            pinn_init = {k: v.clone() for k, v in model.state_dict().items()}
            weights = LossWeights({"ic": args.ic_weight})
        else:
            model = LagrangianPINN(
                width=args.width,
                state_depth=args.depth,
                curve_depth=args.curve_depth,
                exact_diffusion=args.exact_diffusion,
            )
            weights = LossWeights({"ic_x": args.ic_weight, "ic_u": args.ic_weight})
        setups[method] = (model, x, t, weights)
    methods = ["pinn", "lpinn"] + ([] if dde is None else ["deepxde"])
    turns = Turns(methods, args.turn_steps)

    def sciml_job(method):
        model, x, t, weights = setups[method]

        def tick(phase, step):
            if phase == "adam":
                turns.tick(method, step == args.adam - 1)

        return lambda: _train(model, problem, x, t, x_ic, config, weights, tick)

    jobs = {m: sciml_job(m) for m in ("pinn", "lpinn")}
    if dde is not None:
        jobs["deepxde"] = lambda: run_deepxde(
            dde, problem, pts, x_ic, xg, tg, ref, mean, pinn_init, args, turns
        )
    done = _run_in_turns(turns, jobs, args.threads)
    for method in methods:
        if method == "deepxde":
            row, pred = done[method]
            row["adam_seconds_per_step"] = turns.seconds_per_step(method)
        else:
            model, res = setups[method][0], done[method]
            pred = model.evaluate(xg.float(), tg.float())
            row = {
                "rel_l2": rel_l2(pred, ref, mean),
                "rel_l2_final_time": rel_l2(pred[-1], ref[-1], mean),
                "rel_spectral": rel_spectral(pred, ref, mean),
                "loss": res.loss,
                "terms": res.terms,
                "parameters": sum(p.numel() for p in model.parameters()),
                "adam_seconds_per_step": turns.seconds_per_step(method),
                "lbfgs_iterations": res.lbfgs_iterations,
                "lbfgs_evaluations": res.lbfgs_evaluations,
                "lbfgs_seconds_per_iteration": res.lbfgs_seconds / max(res.lbfgs_iterations, 1),
                "initial_loss": res.history[0]["loss"] if res.history else None,
                "history": res.history,
            }
        row["adam_steps_timed"] = turns.steps[method]
        out[method] = row
        print(
            f"{name:8s} {method:6s} rel L2 {row['rel_l2']:.3e}  loss {row['loss']:.2e}  "
            f"{1e3 * row['adam_seconds_per_step']:.1f} ms/Adam step  "
            f"{1e3 * row['lbfgs_seconds_per_iteration']:.1f} ms/L-BFGS it "
            f"({row['lbfgs_iterations']} its)",
            flush=True,
        )
        if args.save_fields:
            row["field_final"] = pred[-1].tolist()
    out["time_ratio_lpinn_over_pinn"] = (
        out["lpinn"]["adam_seconds_per_step"] / out["pinn"]["adam_seconds_per_step"]
    )
    if dde is not None:
        d = out["deepxde"]
        for m in ("lpinn", "pinn"):
            out[f"time_ratio_{m}_over_deepxde"] = (
                out[m]["adam_seconds_per_step"] / d["adam_seconds_per_step"]
            )
            if d["lbfgs_iterations"] and out[m]["lbfgs_iterations"]:
                out[f"lbfgs_time_ratio_{m}_over_deepxde"] = (
                    out[m]["lbfgs_seconds_per_iteration"] / d["lbfgs_seconds_per_iteration"]
                )
            out[f"error_ratio_{m}_over_deepxde"] = out[m]["rel_l2"] / d["rel_l2"]
    return out


def main() -> None:
    from sciml.cli import HelpFormatter

    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0], formatter_class=HelpFormatter)
    ap.add_argument(
        "--cases", nargs="+", default=DEFAULT_CASES, choices=list(CASES), help="problems to run"
    )
    ap.add_argument("--points", type=int, default=2048, help="collocation points (Sobol)")
    ap.add_argument("--ic-points", type=int, default=128, help="initial-condition points")
    ap.add_argument(
        "--ic-weight", type=float, default=100.0, help="weight of the initial-condition loss"
    )
    ap.add_argument("--width", type=int, default=50, help="hidden width of the MLPs")
    ap.add_argument("--depth", type=int, default=4, help="hidden layers of the MLPs")
    ap.add_argument(
        "--curve-depth",
        type=int,
        default=2,
        help="hidden layers of the LPINN's characteristic-curve MLP",
    )
    ap.add_argument("--adam", type=int, default=2000, help="Adam steps")
    ap.add_argument("--lbfgs", type=int, default=500, help="L-BFGS steps after Adam")
    ap.add_argument("--lr", type=float, default=1e-3, help="Adam learning rate")
    ap.add_argument(
        "--nu", type=float, default=0.01, help="viscosity of convdiff50 and the Burgers cases"
    )
    ap.add_argument("--burgers-shift", type=float, default=10.0, help="c in burgers_moving")
    ap.add_argument(
        "--exact-diffusion",
        action="store_true",
        help="LPINN: chain-rule Eulerian u_xx as the diffusion term, not the label derivative",
    )
    ap.add_argument("--seed", type=int, default=0, help="seed of the points and the weights")
    ap.add_argument(
        "--turn-steps",
        type=int,
        default=50,
        help="Adam steps each method runs in its turn (the methods' Adam phases are timed "
        "interleaved, in turns)",
    )
    ap.add_argument("--threads", type=int, default=1, help="torch intra-op threads")
    ap.add_argument(
        "--save-fields",
        action="store_true",
        help="also write each method's final-time field into the JSON",
    )
    ap.add_argument(
        "--paper",
        action="store_true",
        help="the authors' collocation and depth (256 x 100 grid, 5 hidden layers, 256 IC "
        "points) with 20000 Adam + 2000 L-BFGS steps of this benchmark's optimiser (their "
        "script: Adam lr 1e-2 for up to 1e6 steps, then L-BFGS without line search)",
    )
    ap.add_argument(
        "--baselines",
        nargs="*",
        choices=["deepxde"],
        default=None,
        help="other libraries' PINNs to run beside sciml's (none: give the option alone); "
        "default: deepxde where it is installed",
    )
    ap.add_argument(
        "--out", default=str(Path(__file__).parent / "results" / "lpinn.json"), help="JSON path"
    )
    args = ap.parse_args()
    if args.paper:
        args.depth, args.adam, args.lbfgs, args.ic_points = 5, 20000, 2000, 256
    dde = None
    if args.baselines is None or "deepxde" in args.baselines:
        dde = _deepxde_or_none()
        if dde is None and args.baselines is not None:
            ap.error("--baselines deepxde: DeepXDE is not installed (pip install 'sciml[bench]')")
        if dde is None:
            print("DeepXDE is not installed: running without it (pip install 'sciml[bench]')")
    args.baselines = [] if dde is None else ["deepxde"]
    torch.set_num_threads(args.threads)
    started = time.perf_counter()
    results = [run_case(c, args, dde) for c in args.cases]
    record = {
        "benchmark": "lpinn",
        "command": " ".join(sys.argv),
        "args": vars(args),
        "torch": torch.__version__,
        "deepxde": None if dde is None else dde.__version__,
        "machine": platform.machine(),
        "threads": torch.get_num_threads(),
        "total_seconds": time.perf_counter() - started,
        "environment": run_environment("cpu"),
        "results": results,
    }
    Path(args.out).parent.mkdir(parents=True, exist_ok=True)
    Path(args.out).write_text(json.dumps(record, indent=1))
    print("\n| case | PINN rel L2 | LPINN rel L2 | PINN ms/step | LPINN ms/step | ratio |")
    print("|---|---|---|---|---|---|")
    for r in results:
        p, lp = r["pinn"], r["lpinn"]
        print(
            f"| {r['case']} | {p['rel_l2']:.2e} | {lp['rel_l2']:.2e} | "
            f"{1e3 * p['adam_seconds_per_step']:.1f} | {1e3 * lp['adam_seconds_per_step']:.1f} | "
            f"{r['time_ratio_lpinn_over_pinn']:.2f}x |"
        )
    if dde is not None:
        print(
            "\n| case | DeepXDE rel L2 | LPINN / DeepXDE error | PINN / DeepXDE error | "
            "DeepXDE ms/step | LPINN / DeepXDE time | DeepXDE ms/L-BFGS it | "
            "LPINN / DeepXDE L-BFGS time |"
        )
        print("|---|---|---|---|---|---|---|---|")
        for r in results:
            d = r["deepxde"]
            lb = r.get("lbfgs_time_ratio_lpinn_over_deepxde", math.nan)
            print(
                f"| {r['case']} | {d['rel_l2']:.2e} | {r['error_ratio_lpinn_over_deepxde']:.3g} | "
                f"{r['error_ratio_pinn_over_deepxde']:.3g} | "
                f"{1e3 * d['adam_seconds_per_step']:.1f} | "
                f"{r['time_ratio_lpinn_over_deepxde']:.2f}x | "
                f"{1e3 * d['lbfgs_seconds_per_iteration']:.1f} | {lb:.2f}x |"
            )
    print(f"wrote {args.out} ({record['total_seconds']:.0f} s)")


if __name__ == "__main__":
    main()
