"""``sciml.export``: a model as a ``torch.export`` program, for inference without sciml.

The program (a ``.pt2`` file) holds the graph and the weights; ``torch.export.load(path)
.module()(u)`` runs it with PyTorch alone, so a trained surrogate can be deployed where sciml is
not installed (or compiled further: AOTInductor, ExecuTorch). The batch size stays free; every
other size is fixed at the example's (a spectral layer's kept modes depend on the grid), except
in a model that says its sizes may vary (``export_free_sizes``: PROSE).

A NODE exports with a fixed-step solver: its own where its config names one
(``NODEConfig(solver="rk4", step_size=...)``), else ``solver=RK4(step_size=...)`` (or ``Euler``)
given to the export; an adaptive solver chooses steps from tensor values, which
``torch.export`` cannot trace. The fixed-step integration is unrolled at the example's output
times ``t``, which become part of the program (``program.module()(u)``). PROSE exports
``forward(u, x=x)`` and ``forward(u, x=x, symbols=...)`` with the numbers of observation
times, query times and skeleton tokens free (a skeleton of at most ``max_symbol_len`` tokens);
the symbolic decoding (``generate``) does not export.
"""

from __future__ import annotations

import inspect
import os
import warnings
from pathlib import Path
from typing import TYPE_CHECKING

import torch
from torch import Tensor, nn

# (why) the package, for the annotation ``sciml.de.ODESolver``: ``typing.get_type_hints`` on
# export resolves it through the package's lazy attributes, while ``from .de import ODESolver``
# under TYPE_CHECKING left a name it raised NameError on, and importing sciml.de here would
# cost every export import torchdiffeq's and torchsde's (about 1.7 s)
import sciml

from ._io import file_in_the_way, tmp_path
from .errors import SciMLError

if TYPE_CHECKING:
    import sciml.de

__all__ = ["export"]


def export(
    model: nn.Module | str | os.PathLike,
    *args: Tensor,
    path: str | os.PathLike | None = None,
    dynamic_batch: bool = True,
    check: bool = True,
    rtol: float = 1e-5,
    atol: float = 1e-6,
    solver: sciml.de.ODESolver | None = None,
    **kwargs: Tensor,
) -> torch.export.ExportedProgram:
    """Trace ``model(*args, **kwargs)`` in eval mode without autograd into an exported program.

    Args:
        model: a module, or a shipped name / checkpoint folder for :func:`sciml.load`.
        *args: the example's positional inputs, e.g. ``u`` of shape ``(batch, channels, *grid)``.
        **kwargs: the example's keyword inputs, e.g. ``t=`` for time-conditioned models.
        path: if given, the program is written there: a file name ending in ``.pt2``, in a
            folder that exists or can be made (checked before the export, as ``sciml export
            --out`` checks it); written to a temporary file in the same folder and renamed, so
            a failed export leaves nothing behind, not even the folders it made.
        dynamic_batch: keep the batch (dim 0 of the first tensor input) free (needs an example
            batch of at least 2: ``torch.export`` fixes sizes 0 and 1). Dim 0 of the other tensor
            inputs follows the batch where the model ties it to the batch (scOT's lead times
            ``t``) and is free on its own where the model allows (DeepONet's query points ``x``
            of shape ``(points, d)``); the tracer decides from the model's code.
        check: run the program on the example and on the example repeated to twice its batch,
            and raise :class:`~sciml.SciMLError` unless both equal the model's own output to
            ``rtol``, ``atol``.
        rtol: relative tolerance of ``check``, as in ``torch.testing.assert_close``: an output
            passes where ``|program - model| <= atol + rtol |model|``.
        atol: absolute tolerance of ``check``, in that test.
        solver: for a :class:`~sciml.models.NODE` only, a fixed-step solver
            (:class:`~sciml.de.RK4` or :class:`~sciml.de.Euler`) that the program integrates
            the NODE's field with. Needed for a NODE with an adaptive solver; a NODE whose
            config names a fixed-step one (``solver="rk4"``, ``step_size``) exports with that
            one without it, and a ``solver=`` given anyway wins (a deployment may take a
            coarser step than training did). The example's times ``t`` (``(time,)``,
            monotone) are built into the program, which is called as ``program.module()(u)``
            and returns ``(batch, time, state_dim)``; ``check`` compares it with the same
            fixed-step solve run eagerly by torchdiffeq. Where that solver is not the model's
            own, its error against the model is the step size's: compare the two before
            deploying.

    Returns:
        the ``torch.export.ExportedProgram``; ``program.module()`` is callable like the model
        (for a NODE: like the model at the example's times, without ``t``).

    Raises:
        SciMLError: when ``torch.export`` cannot trace the model (its message first), e.g. a
            forward pass with data-dependent control flow such as an iterative solver; for a
            NODE with an adaptive solver and no ``solver=``, naming that solver and the options;
            when ``check`` finds the program's outputs off the model's; with
            ``dynamic_batch`` and more than one tensor input on a torch older than 2.5 (no
            ``torch.export.Dim.AUTO``), naming the version and ``dynamic_batch=False``.
        TypeError: ``model`` is neither a module nor a name / folder; ``solver`` is not a
            fixed-step :class:`~sciml.de.RK4` or :class:`~sciml.de.Euler` (an adaptive
            :class:`~sciml.de.Dopri5`, say).
        ValueError: no example input, or none of it a tensor; an example batch below 2 with
            ``dynamic_batch``; ``solver`` given for a model that is not a
            :class:`~sciml.models.NODE`; a NODE example other than ``export(node, u, t=t,
            solver=...)`` (``t`` missing or passed positionally); keyword inputs other than
            ``x`` / ``t`` for a model whose forward takes ``**kwargs``; a ``path`` that does
            not end in ``.pt2``, is a folder, or lies under a file (:func:`check_out_path`).
    """
    if path is not None:
        check_out_path(path, "path")
    if isinstance(model, (str, os.PathLike)):
        from .operator import load

        model = load(model)
    if not isinstance(model, nn.Module):
        raise TypeError(f"expected a torch.nn.Module or a model name, got {type(model).__name__}")
    if not args and not kwargs:
        raise ValueError("expected an example input, e.g. export(model, u) with u a batch")
    original, reference = model, model
    if solver is not None or _has_neural_ode(model):
        model, reference, args, kwargs = _fixed_step(model, solver, args, kwargs)
    signature = inspect.signature(model.forward)
    if any(p.kind is inspect.Parameter.VAR_KEYWORD for p in signature.parameters.values()):
        # (why) a wrapper such as Normalized passes ``**kwargs`` on; torch.export cannot give a
        # free batch to inputs collected by ``**kwargs``, so the common interface's names are
        # spelled out
        if set(kwargs) - {"x", "t"}:
            raise ValueError(
                f"{type(model).__name__}.forward takes **kwargs; expected keyword inputs among "
                f"the common interface's x and t, got {sorted(kwargs)}"
            )
        model = _Interface(model)
        signature = inspect.signature(model.forward)
    try:
        bound = signature.bind(*args, **kwargs).arguments
    except TypeError as exc:
        # (why) inspect's own words ("missing a required argument: 'x'") named neither the
        # model nor what its forward takes
        raise TypeError(
            f"expected an example for {type(model).__name__}.forward{signature}, given as "
            f"export(model, u, name=value, ...): {exc}"
        ) from None
    tensors = {k: v for k, v in bound.items() if isinstance(v, Tensor)}
    if not tensors:
        raise ValueError(f"expected at least one tensor input, got {sorted(bound)}")
    first = next(iter(tensors.values()))
    batch = first.shape[0] if first.dim() else None
    dynamic = None
    if dynamic_batch:
        if batch is None or batch < 2:
            raise ValueError(
                f"expected an example batch of at least 2 for dynamic_batch=True (torch.export "
                f"fixes sizes 0 and 1), got {batch}; pass a larger batch or dynamic_batch=False"
            )
        first_key = next(iter(tensors))
        others = [k for k, v in tensors.items() if k != first_key and v.dim()]
        auto = getattr(torch.export.Dim, "AUTO", None)
        if others and auto is None:
            raise SciMLError(
                f"exporting {type(model).__name__} with a free batch and the tensor inputs "
                f"{others} besides {first_key!r} needs torch >= 2.5 (torch.export.Dim.AUTO lets "
                f"their dim 0 follow the batch or stay free), got torch {torch.__version__}; "
                f"upgrade torch (pip install 'torch>=2.5'), or pass dynamic_batch=False"
            )
        # (why) the other inputs' dim 0 is left to the tracer (Dim.AUTO): it follows the batch
        # where the model's code ties it to u's (scOT's lead times) and stays free on its own
        # where not (DeepONet's query points), even when the example's sizes happen to agree
        dynamic = {
            k: (
                {0: torch.export.Dim("batch", min=1) if k == first_key else auto}
                | _free_sizes(original, v)
                if isinstance(v, Tensor) and v.dim()
                else None
            )
            for k, v in bound.items()
        }
    elif getattr(original, "export_free_sizes", False):
        first_key = next(iter(tensors))  # (why) its dim 0, the batch, stays the example's
        dynamic = {
            k: (
                ({} if k == first_key else {0: torch.export.Dim.AUTO}) | _free_sizes(original, v)
                if isinstance(v, Tensor) and v.dim()
                else None
            )
            for k, v in bound.items()
        }
    # (why) each module's own flag: a model in training mode may hold submodules in eval mode
    # (frozen normalisation layers), which one train(True) afterwards would switch on
    modes = [(m, m.training) for m in original.modules()]
    model.eval()
    reference.eval()
    try:
        with torch.no_grad():
            # (why) an example the model itself refuses (a wrong shape) raises the model's own
            # error here, not a tracing failure with a misleading hint
            reference(*args, **kwargs)
            try:
                program = torch.export.export(model, args, kwargs or None, dynamic_shapes=dynamic)
            except Exception as exc:
                reason = (str(exc).strip().splitlines() or [type(exc).__name__])[0]
                raise SciMLError(
                    f"torch.export could not trace {type(model).__name__}: {reason}. A forward "
                    "pass that branches on tensor values or sizes its tensors by them (an "
                    "iterative solver) cannot be exported"
                ) from exc
            if check:
                batch = batch if dynamic_batch else None
                _check(reference, program, args, kwargs, batch, rtol, atol)
    finally:
        for m, training in modes:
            m.training = training
    if path is not None:
        _save(program, Path(path))
    return program


def check_out_path(path: str | os.PathLike, name: str) -> None:
    """Refuse, before any work, a ``path`` for a program that the export could not write or
    that tools would not recognise; ``name`` is what the caller calls it (``"--out"`` for the
    CLI, ``"path"`` for :func:`export`), so both say the same.

    Raises:
        ValueError: ``path`` is a folder, lies under a file (a folder must be made where a file
            is), or does not end in ``.pt2``.
    """
    shown = os.fspath(path)
    out = Path(path)
    if out.is_dir():
        raise ValueError(f"expected {name} to name the .pt2 file to write, got the folder {shown}")
    above = file_in_the_way(out.absolute().parent)
    if above is not None:
        # (why) the folder is made only at writing, after the export: it then failed with
        # "[Errno 17] File exists", naming neither the argument nor the problem
        raise ValueError(f"expected {name} in a folder, got {shown}, where {above} is a file")
    if out.suffix.lower() != ".pt2":
        # (why) a .pt2 program was written under any name (e.txt); torch.export's files are
        # .pt2 by convention, as data generate asks .h5 of its HDF5 files
        raise ValueError(
            f"{name} expects a torch.export file name ending in .pt2, got {shown!r} (the "
            "file is a .pt2 program whatever its name: name it so that tools recognise it)"
        )


def _free_sizes(model: nn.Module, v: Tensor) -> dict:
    """``{dim: Dim.AUTO}`` for the dims of input ``v`` past its first where ``model`` says its
    sizes may vary (``export_free_sizes``, PROSE: the numbers of observation times, query times
    and skeleton tokens), else ``{}``. (why) ``Dim.AUTO``: the tracer keeps a size free where the
    code allows and fixes it where the model pins it (PROSE's ``1 + dim`` channels) without an
    error, and bounds it where the model's code does (a skeleton of at most ``max_symbol_len``
    tokens: a guard of the program). A bound the tracer assumes instead (a free size is taken to
    be >= 2) the model asserts in its graph itself (PROSE: at least 2 observation times, a
    skeleton of at least one token)."""
    if not getattr(model, "export_free_sizes", False):
        return {}
    # (why) not a size of 1 (x's trailing 1): torch.export fixes it anyway, and logs a warning
    return {d: torch.export.Dim.AUTO for d in range(1, v.dim()) if v.shape[d] > 1}


class _Interface(nn.Module):
    """``forward(u, *, x=None, t=None)`` around a model whose forward takes ``**kwargs``."""

    def __init__(self, model: nn.Module) -> None:
        super().__init__()
        self.model = model

    def forward(self, u: Tensor, *, x: Tensor | None = None, t: Tensor | None = None) -> Tensor:
        given = {k: v for k, v in (("x", x), ("t", t)) if v is not None}
        return self.model(u, **given)


def _has_neural_ode(model: nn.Module) -> bool:
    from .de import NeuralODE

    return any(isinstance(m, NeuralODE) for m in model.modules())


def _fixed_step(model: nn.Module, solver, args, kwargs):
    """``(module to trace, eager reference, args, kwargs)`` for a model that integrates a neural
    ODE: a NODE with a fixed-step ``solver`` becomes :class:`_FixedStepNODE` at the example's
    times; anything else is refused, naming why and what to pass."""
    from .de import RK4, Euler, NeuralODE
    from .de.neural_ode import check_output_times
    from .models.neural_ode import NODE

    if not isinstance(model, NODE):
        if solver is not None:
            raise ValueError(
                f"solver= replaces a NODE's ODE solver, got a {type(model).__name__}; export "
                "other models without it"
            )
        raise SciMLError(
            f"torch.export cannot trace {type(model).__name__}: it integrates a NeuralODE with "
            "torchdiffeq, whose solvers branch on the time values (an adaptive solver's step "
            "control; a fixed-step solver's grid and the step each output time falls in). Of "
            "the neural ODE models only a NODE exports, with solver=RK4(step_size=...)"
        )
    ode = model.ode
    if solver is None and isinstance(ode.solver, (RK4, Euler)):
        solver = ode.solver  # NODEConfig(solver="rk4" or "euler", step_size=...)
    if solver is None:
        s = ode.solver
        raise SciMLError(
            f"torch.export cannot trace NODE with its adaptive solver {type(s).__name__} (rtol "
            f"{s.rtol:g}, atol {s.atol:g}): each step size is chosen from the values of the "
            "error estimate. Pass a fixed-step solver, solver=sciml.de.RK4(step_size=...) (or "
            "Euler), to export a fixed-step solve of the same field at the example's times t "
            "(sciml export: --solver rk4 --step-size H --times T0,...,TK), or train the NODE "
            "with one (NODEConfig(solver='rk4', step_size=...))"
        )
    if not isinstance(solver, (RK4, Euler)):
        raise TypeError(
            f"expected solver a fixed-step sciml.de.RK4 or sciml.de.Euler, got "
            f"{type(solver).__name__}"
        )
    if len(args) != 1 or set(kwargs) != {"t"}:
        raise ValueError(
            "expected a NODE example as export(node, u, t=t, solver=...): u (batch, "
            f"state_dim) and t (time,), got {len(args)} positional and keywords {sorted(kwargs)}"
        )
    u = args[0]
    # (why) the NODE's own checks of u and t (shapes, dtype, monotone), without the solve of
    # the model's solver that ran only for them (an adaptive one, for a NODE trained so)
    t = model._output_times(u, None, kwargs["t"])
    check_output_times(t, min_times=2)
    field = ode.field.net  # (why) the network without NeuralODE's evaluation counters
    eager = _EagerNODE(NeuralODE(field, solver), t)
    return _FixedStepNODE(field, solver, t), eager, (u,), {}


class _EagerNODE(nn.Module):
    """``u -> ode(u, t)`` in NODE's layout ``(batch, time, state)``: the torchdiffeq solve that
    :class:`_FixedStepNODE` unrolls, which the export's check compares it with."""

    def __init__(self, ode: nn.Module, t: Tensor) -> None:
        super().__init__()
        self.ode = ode
        self.register_buffer("t", t, persistent=False)

    def forward(self, u: Tensor) -> Tensor:
        return self.ode(u, self.t).transpose(0, 1)


class _FixedStepNODE(nn.Module):
    """torchdiffeq's fixed-grid solve of ``dy/dt = field(t, y)`` at the times ``t``, unrolled.

    What depends on the time values (the grid ``arange(n) * step + t0`` with its last point
    moved onto ``t[-1]``, the step each output time falls in, whether it is a step's end) is
    decided here, once, by the schedule the eager solve follows (``_output_schedule`` of
    :mod:`sciml.de.solvers`: torchdiffeq's for linear output, sciml's for the cubic Hermite
    one); the forward pass is then the steps and interpolants alone, run by the eager solve's
    own loop (``_step_through``, torchdiffeq's formulas), which ``torch.export`` can trace
    because it branches on the schedule only. Decreasing times are solved as torchdiffeq
    solves them: ``dy/ds = -field(-s, y)`` forwards in ``s = -t``. ``forward(u (batch, state))
    -> (batch, time, state)``.
    """

    def __init__(self, field: nn.Module, solver, t: Tensor) -> None:
        from torchdiffeq._impl.odeint import SOLVERS

        from .de.solvers import _output_schedule

        super().__init__()
        self.field = field
        self.reverse = bool(t[-1] < t[0])
        if self.reverse:  # torchdiffeq's _check_inputs: s = -t, with the field -f(-s, y)
            t = -t
        # (why) the torchdiffeq solver object NeuralODE runs (sciml_rk4, sciml_euler): its grid,
        # step and interpolant are used as they are; only the schedule is laid out here
        # (why) the constructor wants a state y0 only for its dtype and device (and for
        # integrate(), never called here); the output times t have both, no state exists yet
        self.solver = SOLVERS[solver.method](None, t, atol=solver.atol, **solver.options())
        grid = self.solver.grid_constructor(None, None, t)
        self.register_buffer("grid", grid, persistent=False)
        self.register_buffer("times", t, persistent=False)
        # outputs[i]: (j, how) for the output times read off step i, in order
        self.outputs = _output_schedule(grid, t, solver.interp)

    def _f(self, t: Tensor, y: Tensor, perturb=None) -> Tensor:
        return -self.field(-t, y) if self.reverse else self.field(t, y)

    def forward(self, u: Tensor) -> Tensor:
        from .de.solvers import _step_through

        out: list[Tensor | None] = [None] * self.times.shape[0]
        out[0] = u
        _step_through(self.solver, self._f, u, self.grid, self.times, self.outputs, out.__setitem__)
        return torch.stack(out, dim=1)  # (batch, time, state)


def _check(model, program, args, kwargs, batch, rtol, atol) -> None:
    """The program's outputs against the model's, on the example and, with a free batch, on the
    example repeated to twice its batch."""
    inputs = [(args, kwargs)]
    if batch is not None:  # and the example repeated to twice its batch

        def twice(v):
            return (
                torch.cat([v, v])
                if isinstance(v, Tensor) and v.dim() and v.shape[0] == batch
                else v
            )

        inputs.append((tuple(map(twice, args)), {k: twice(v) for k, v in kwargs.items()}))
    run = program.module()
    for repeats, (a, kw) in enumerate(inputs, start=1):
        want, got = model(*a, **kw), run(*a, **kw)
        try:
            torch.testing.assert_close(got, want, rtol=rtol, atol=atol)
        except AssertionError as err:
            at = "the example" if repeats == 1 else "twice the example's batch"
            raise SciMLError(
                f"the exported program does not reproduce the model on {at} "
                f"(rtol={rtol}, atol={atol}): {err}"
            ) from None


def _save(program: torch.export.ExportedProgram, path: Path) -> None:
    made = [p for p in (path.parent, *path.parent.parents) if not p.exists()]
    path.parent.mkdir(parents=True, exist_ok=True)
    try:
        # (why) torch.export.save wants a name ending in .pt2
        with tmp_path(path, suffix=".tmp.pt2") as tmp, warnings.catch_warnings():
            # (why) SpectralConv's weights are permuted views of their storage (the layout of
            # the per-mode GEMMs); torch.export.save then says it found no tensor spanning the
            # whole storage and stores that storage as it is, which loads back exactly (tested)
            warnings.filterwarnings("ignore", message="No complete tensor found in the group")
            torch.export.save(program, tmp)
            os.replace(tmp, path)
    except BaseException:
        for folder in made:  # (why) deepest first; a failed export leaves no empty folders
            try:
                folder.rmdir()
            except OSError:
                break
        raise
