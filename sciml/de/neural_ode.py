"""``NeuralODE``: a vector-field network integrated by torchdiffeq, with NFE counting and
solver-heuristic regularisation.

    dy/dt = f_theta(t, y),   y(t_0) = y0,   returns y(t_k) for the requested times t_k.

Usage::

    node = NeuralODE(Autonomous(mlp), Dopri5(rtol=1e-3, atol=1e-4),
                     regulariser=LocalHeuristic(error_weight=0.1))
    ys = node(y0, t)                          # (time, batch, ...), torchdiffeq's layout
    loss = task_loss(ys[-1]) + node.regularisation
    loss.backward()
    node.nfe_forward, node.nfe_backward       # evaluations in the solve and in its gradient
"""

from __future__ import annotations

import inspect
from collections.abc import Mapping
from typing import Any

import torch
import torchdiffeq
from torch import Tensor, nn

from ..errors import ConfigError, SciMLError
from ..layers._cache import transforming
from ._field import CountingField, DetachedState, StepWatchingField, step_containing
from .heuristics import GlobalHeuristic, global_penalty
from .local import AcceptedStepTime, LocalHeuristic, UniformTime
from .rnode import RNODE, augment
from .solvers import _TORCHDIFFEQ_SOLVERS, Dopri5, ODESolver
from .tableaus import rk_step

__all__ = ["NeuralODE", "Autonomous"]

Regulariser = GlobalHeuristic | LocalHeuristic | RNODE


def check_times(
    t: Tensor,
    *,
    decreasing: bool,
    strict: bool = True,
    what: str = "times t",
    repeat_hint: str | None = None,
) -> None:
    """A ValueError unless ``t`` ``(time,)`` is finite and strictly increasing (or, with
    ``decreasing``, strictly decreasing; without ``strict``, repeats allowed), naming the first
    offending entries. ``repeat_hint``: what to do about a repeated time (default: solve at
    the distinct ones). Reads the data (one device sync; the solvers sync at every step
    anyway); skipped while tracing."""
    if torch.compiler.is_compiling():
        return
    dt = t[1:] - t[:-1]
    up = (dt > 0) if strict else (dt >= 0)
    down = (dt < 0) if strict else (dt <= 0)
    ok = bool(torch.isfinite(t).all()) and (bool(up.all()) or (decreasing and bool(down.all())))
    if not ok:
        order = "strictly increasing" if strict else "non-decreasing"
        if decreasing:
            order += " or strictly decreasing" if strict else " or non-increasing"
        shown = ", ".join(f"{v:g}" for v in t[:8].tolist()) + (", ..." if t.numel() > 8 else "")
        hint = ""
        if strict and bool(torch.isfinite(t).all()) and bool((dt == 0).any()):
            hint = "; " + (
                repeat_hint
                or "for repeated times solve at the distinct ones and index the result "
                "(torch.unique_consecutive(t, return_inverse=True))"
            )
        raise ValueError(f"expected finite, {order} {what}, got [{shown}]{hint}")


def rounding_note(given, t: Tensor, *, decreasing: bool) -> str:
    """For a time check's error: a note when ``t`` is the ``given`` times rounded to the
    state's dtype and only that rounding made them fail :func:`check_times` (with
    ``decreasing``); "" otherwise. (why) float64 times [1e8, 1e8 + 1] with a float32 state
    became [1e8, 1e8], and the error said to solve at the distinct times, which the caller
    had given."""
    if t.dtype == torch.float64 or torch.compiler.is_compiling():
        return ""
    try:
        exact = torch.as_tensor(given, dtype=torch.float64).detach().cpu()
    except (TypeError, ValueError, RuntimeError):
        return ""
    if exact.shape != t.shape or exact.dim() != 1 or exact.numel() < 2:
        return ""  # a shape error (no time, say), not one of the times' order
    try:
        check_times(exact, decreasing=decreasing)
    except ValueError:
        return ""
    try:
        check_times(t, decreasing=decreasing)
    except ValueError:
        return (
            f" (the times are distinct as given but not in the state's dtype {t.dtype}, to "
            "which they are rounded: shift them to start near 0, or solve in float64)"
        )
    return ""


def solve_times(t, y0: Tensor) -> Tensor:
    """``t`` as the tensor of times a solve from ``y0`` runs on: on ``y0``'s device, in
    ``y0``'s dtype for a float32 or float64 state, and at least float32 for a float16 or
    bfloat16 one (float64 times stay float64); a complex ``y0`` leaves a tensor's dtype (a
    list is float32). (why) half-precision times round the output times: t = 100.3 became
    100.5 in bfloat16 and the solution came back at the wrong time, and torchsde's fixed
    steps of 0.01 from t = 100 never advanced (100 + 0.01 is 100 in bfloat16). torchdiffeq
    and torchsde take times of another dtype than the state; the field sees the state's."""
    if not y0.is_floating_point():
        return torch.as_tensor(t, device=y0.device)
    dtype = y0.dtype
    if dtype in (torch.float16, torch.bfloat16):
        given = t.dtype if isinstance(t, Tensor) and t.is_floating_point() else torch.float32
        dtype = torch.promote_types(given, torch.float32)
    return torch.as_tensor(t, dtype=dtype, device=y0.device)


def check_step_advances(t: Tensor, step, *, name: str) -> None:
    """A ValueError when a fixed ``step`` is lost to rounding in ``t``'s dtype: at the time of
    largest magnitude, ``t + step`` rounds back to ``t``. (why) float32 times near 1e8 are 8
    apart: torchsde's steps of dt = 0.05 never advanced (the solve never returned), and RK4's
    grid of step 0.05 collapsed to one step of 8 (y' = -y from 1 gave 110, no error).
    Skipped while tracing, and for ``step`` None (an adaptive solver)."""
    if step is None or t.numel() < 2 or torch.compiler.is_compiling():
        return
    # (why) away from 0, where the spacing is the larger one (one sync, as check_times')
    big = t.detach().abs().max()
    if bool(big + step != big):
        return
    far = float(t[t.detach().abs().argmax()])
    spacing = float(torch.nextafter(big, big.new_tensor(float("inf"))) - big)
    raise ValueError(
        f"expected a {name} that advances {t.dtype} times near {far:g} (their spacing "
        f"there is {spacing:g}), got {name}={step:g}, which rounds away: shift the times to "
        "start near 0, or solve in float64"
    )


def check_output_times(t: Tensor, *, min_times: int = 1) -> None:
    """A ValueError unless ``t`` is a solve's output times: ``(time,)``, ``time >=
    min_times``, finite and strictly monotone (:func:`check_times`)."""
    if t.dim() != 1 or t.numel() < min_times:
        raise ValueError(
            f"expected t of shape (time,) with time >= {min_times}, got {tuple(t.shape)}"
        )
    check_times(t, decreasing=True)


def insert_time(t: Tensor, t_star: float) -> tuple[Tensor, int, bool, float]:
    """``(t_solve, index, added, t_star)``: ``t`` ``(time,)`` (monotone) with ``t_star``, rounded
    to ``t``'s dtype, inserted in order at ``t_solve[index]``. A ``t_star`` that rounds onto one
    of the times is that time (``added`` False): the solvers refuse a repeated time, and in
    float32 a uniform draw lands on one of many output times often enough to stop a long
    training run."""
    ts = t.new_tensor([t_star])
    hit = (t == ts).nonzero()
    if hit.numel():
        return t, int(hit[0]), False, float(ts)
    t_solve, order = torch.sort(torch.cat([t, ts]), descending=bool(t[-1] < t[0]))
    return t_solve, int((order == t.numel()).nonzero()[0]), True, float(ts)


def _check_func_transforms(solver: ODESolver, adjoint: bool) -> None:
    """A SciMLError inside a ``torch.func`` transform that torchdiffeq cannot run under, naming
    the reason: an adaptive solver picks its steps from tensor values and torchdiffeq runs it
    through an ``autograd.Function`` without ``setup_context``; ``odeint_adjoint`` is such a
    Function. Fixed-step solvers without the adjoint work under ``grad``, ``jacrev`` and
    ``jacfwd`` (``vmap`` over the batch or an ensemble: see :meth:`NeuralODE._odeint`)."""
    if not transforming():
        return
    reasons = []
    if solver.adaptive:
        reasons.append(
            f"the adaptive solver {type(solver).__name__} chooses its steps from tensor values "
            "and torchdiffeq runs it through an autograd.Function without setup_context"
        )
    if adjoint:
        reasons.append("torchdiffeq's odeint_adjoint is an autograd.Function without setup_context")
    if reasons:
        raise SciMLError(
            "NeuralODE (also inside sciml.models.NODE) cannot run inside a torch.func transform "
            f"(vmap, grad, jacrev, jacfwd): {'; '.join(reasons)}. Use a fixed-step solver (RK4, "
            "Euler) with adjoint=False, or torch.autograd and a loop over the batch"
        )


def _step_control_error(
    solver: ODESolver, err: AssertionError, dtype: torch.dtype, *, adjoint: bool
) -> SciMLError | None:
    """The SciMLError for torchdiffeq's step-control ``err`` in a solve by ``solver`` (the
    forward solve, or with ``adjoint`` the backward one): its step cap reached, or its step
    shrunk to zero; None for another AssertionError. It names that solver, its tolerances and
    its cap, and says what to change."""
    role = "the adjoint_solver" if adjoint else "the adaptive solver"
    where = " in the adjoint (backward) solve of the gradient" if adjoint else ""
    what = f"NeuralODE: {role} {type(solver).__name__} (rtol {solver.rtol:g}, atol {solver.atol:g})"
    if "max_num_steps exceeded" in str(err):
        # (why) only the built-in adaptive solvers have a max_num_steps field: a custom
        # ODESolver passing it in options() got an AttributeError here that hid this error
        limit = getattr(solver, "max_num_steps", None)
        if limit is None:
            limit = solver.options().get("max_num_steps")
        cap = "step limit" if limit is None else f"max_num_steps={limit} steps"
        whose = "the adjoint_solver's " if adjoint else ""
        return SciMLError(
            f"{what} reached its {cap} between two output times{where} ({err}): the field is "
            f"stiff or fast there; raise {whose}max_num_steps, loosen the tolerances, or "
            "regularise the dynamics (LocalHeuristic, RNODE)"
        )
    if "underflow in dt" not in str(err):
        return None
    why = (
        "in float16 this happens at ordinary tolerances (its machine epsilon is "
        "9.8e-4); use float32 or bfloat16, looser tolerances, or a fixed-step solver "
        "(RK4, Euler)"
        if dtype == torch.float16
        else "the field is stiff or the solution blows up between the output times"
    )
    return SciMLError(f"{what} shrank its step to zero in {dtype}{where} ({err}): {why}")


class _NamedAdjointSolve:
    """torchdiffeq's solver for the adjoint solve (``method="sciml_adjoint"``): the solver of
    the ``sciml_solver`` option (an :class:`~sciml.de.ODESolver`), whose step-control errors
    name it. (why) the adjoint solve runs inside autograd's backward, where NeuralODE cannot
    catch them: its step cap surfaced as the bare ``AssertionError: max_num_steps exceeded
    (3>=3)``, naming no solver, from ``loss.backward()``."""

    def __init__(
        self,
        func,
        y0,
        rtol,
        atol,
        *,
        sciml_solver: ODESolver | None = None,
        sciml_method: str | None = None,
        **options,
    ) -> None:
        # (why) the name is in torchdiffeq's solver list, so a user may try it as a method: a
        # call without these options was a bare TypeError about missing keyword arguments
        if not isinstance(sciml_solver, ODESolver) or sciml_method not in _TORCHDIFFEQ_SOLVERS:
            pairs = (("sciml_solver", sciml_solver), ("sciml_method", sciml_method))
            given = {k: v for k, v in pairs if v is not None}
            raise TypeError(
                "torchdiffeq method 'sciml_adjoint' is sciml's wrapper for NeuralODE's adjoint "
                "(backward) solve: expected options={'sciml_solver': an ODESolver, "
                f"'sciml_method': its torchdiffeq method}}, got sciml options {given}; to solve "
                "directly, pass the solver's own settings, e.g. torchdiffeq.odeint(func, y0, t, "
                "**sciml.de.Dopri5().odeint_kwargs())"
            )
        self.named, self.dtype = sciml_solver, y0.dtype
        # (why) the method its odeint_kwargs() give, as the forward solve runs, not its
        # ``method`` attribute, which a subclass overriding odeint_kwargs need not follow
        make = _TORCHDIFFEQ_SOLVERS[sciml_method]
        self.solver = make(func=func, y0=y0, rtol=rtol, atol=atol, **options)

    @classmethod
    def valid_callbacks(cls) -> set[str]:
        """Every callback of torchdiffeq's RK solvers (the wrapped one calls those it has)."""
        return {"callback_step", "callback_accept_step", "callback_reject_step"}

    def integrate(self, t: Tensor) -> Tensor:
        try:
            return self.solver.integrate(t)
        except AssertionError as err:
            failure = _step_control_error(self.named, err, self.dtype, adjoint=True)
            if failure is None:
                raise
            raise failure from err


_TORCHDIFFEQ_SOLVERS.setdefault("sciml_adjoint", _NamedAdjointSolve)


def check_field(owner: str, name: str, field: Any) -> None:
    """Refuse a ``field`` that cannot be called as ``field(t, y)``: a network ``net(y)`` (one
    positional input) failed only in the first solve, with torch's "forward() takes 2
    positional arguments but 3 were given". Fields whose signature cannot be read, or that
    take ``*args``, pass."""
    if not callable(field):
        raise TypeError(f"{owner} expected {name} a module called as {name}(t, y), got {field!r}")
    try:  # (why) a module's __call__ takes *args: its forward says what it takes
        params = inspect.signature(field.forward if isinstance(field, nn.Module) else field)
        params = params.parameters.values()
    except (TypeError, ValueError):
        return
    kinds = [p.kind for p in params]
    if inspect.Parameter.VAR_POSITIONAL in kinds:
        return
    positional = (inspect.Parameter.POSITIONAL_ONLY, inspect.Parameter.POSITIONAL_OR_KEYWORD)
    if sum(k in positional for k in kinds) < 2:
        raise TypeError(
            f"{owner} expected {name} called as {name}(t, y), got {type(field).__name__}, which "
            f"takes one input: wrap a network net(y) as sciml.de.Autonomous(net)"
        )


class Autonomous(nn.Module):
    """Adapt a network ``net(y)`` to the field signature ``f(t, y)`` (time is ignored)."""

    def __init__(self, net: nn.Module) -> None:
        super().__init__()
        self.net = net

    def forward(self, t: Tensor, y: Tensor) -> Tensor:
        """``net(y)``; ``t`` is ignored."""
        return self.net(y)


class _SavesIteration(nn.Module):
    """Mixin: the module's ``iteration`` (a Python int, the training iteration its weight
    schedules are evaluated at) is saved in ``state_dict`` as the 0-dim int64 tensor
    ``<prefix>iteration``, so a model loaded from a checkpoint continues its schedules where
    the run that saved it stopped.

    (why) an int attribute, not a buffer: reading a CUDA buffer at every forward pass to
    evaluate the schedules would be a device sync per step. Checkpoints written before the key
    was saved lack it; loading one gives ``iteration`` 0, as then. A subclass lists the key in
    its ``optional_state_keys`` (set in ``__init__``: see
    :func:`sciml.operator.optional_state_keys`), so the strict key checks of ``sciml.load`` and
    of a resume let exactly it be missing.
    """

    iteration: int

    def _save_to_state_dict(self, destination, prefix, keep_vars):
        super()._save_to_state_dict(destination, prefix, keep_vars)
        destination[prefix + "iteration"] = torch.tensor(self.iteration, dtype=torch.int64)

    def _load_from_state_dict(
        self, state_dict, prefix, local_metadata, strict, missing_keys, unexpected_keys, errors
    ):
        # popped before the default load, which would report it as unexpected
        saved = state_dict.pop(prefix + "iteration", None)
        error = _iteration_error(saved, prefix)
        if error is not None:
            errors.append(error)
        else:  # 0 for a checkpoint written before the iteration was saved
            self.iteration = 0 if saved is None else int(saved)
        super()._load_from_state_dict(
            state_dict, prefix, local_metadata, strict, missing_keys, unexpected_keys, errors
        )

    def _saved_state_errors(self, state: Mapping[str, Any], prefix: str) -> list[str]:
        """What ``load_state_dict`` would refuse in ``state`` for this module (keys under
        ``prefix``), found without loading (see ``sciml.operator._saved_state_errors``)."""
        error = _iteration_error(state.get(prefix + "iteration"), prefix)
        return [] if error is None else [error]


def _iteration_error(saved: Any, prefix: str) -> str | None:
    """None for a valid saved iteration (a 0-dim integer tensor >= 0) or none saved, else the
    message naming the key."""
    if saved is None or (
        isinstance(saved, Tensor)
        and saved.dim() == 0
        and not saved.is_floating_point()
        and not saved.is_complex()
        and saved.dtype != torch.bool
        and int(saved) >= 0
    ):
        return None
    shown = tuple(saved.shape) if isinstance(saved, Tensor) and saved.dim() else saved
    return (
        f"{prefix}iteration: expected the training iteration as a 0-dim integer tensor >= 0, "
        f"got {shown!r}"
    )


class NeuralODE(_SavesIteration, DetachedState):
    """A neural ODE block.

    Args:
        field: module called as ``field(t, y)`` returning ``dy/dt`` of ``y``'s shape
            (wrap a ``net(y)`` in :class:`Autonomous`).
        solver: an :class:`~sciml.de.ODESolver` (``Dopri5()``, ``Bosh3()``, ``RK4(step_size)``...;
            default ``Dopri5()``).
        adjoint: False for direct backpropagation through the solver, True for the adjoint
            method (``O(1)`` memory, a second solve backwards in time). A parameter of
            ``field`` that the field never uses gets ``grad`` None under direct backprop but
            zeros under the adjoint (torchdiffeq returns a gradient for every adjoint
            parameter), so AdamW's weight decay and momentum then act on it; freeze it
            (``requires_grad_(False)``) or remove it for the same training under both.
        adjoint_solver: solver of the backward solve (default: ``solver``); its step cap or
            step underflow, raised from ``backward``, is a SciMLError naming it. Only with
            ``adjoint=True`` (a ValueError otherwise: direct backprop has no backward solve).
        regulariser: ``None``, :class:`~sciml.de.GlobalHeuristic` (direct backprop only),
            :class:`~sciml.de.LocalHeuristic` or :class:`~sciml.de.RNODE`. Active in training mode
            with gradients enabled; the weighted penalty lands in ``self.regularisation``.

    After each forward pass: ``nfe_forward`` (evaluations in the solve, which is also the
    prediction cost), ``nfe_regulariser``, ``steps_accepted``, ``steps_rejected`` (a fixed-step
    solver's steps are all accepted); after
    ``backward``: ``nfe_backward`` (evaluations in the adjoint solve, 0 for direct backprop, which
    replays the stored graph instead of evaluating ``f``).

    ``iteration``: the training iteration the regulariser's weight schedules are evaluated at,
    the number of forward passes in training mode with gradients enabled so far. Saved in
    ``state_dict`` (key ``iteration``), so a model loaded from a checkpoint (``sciml.load``, a
    Trainer resume, ``load_state_dict``) continues its schedule where the run stopped; a
    checkpoint written before it was saved loads with iteration 0.
    """

    def __init__(
        self,
        field: nn.Module,
        solver: ODESolver | None = None,
        *,
        adjoint: bool = False,
        adjoint_solver: ODESolver | None = None,
        regulariser: Regulariser | None = None,
    ) -> None:
        super().__init__()
        check_field("NeuralODE", "field", field)
        solver = Dopri5() if solver is None else solver
        if not isinstance(solver, ODESolver):
            raise TypeError(f"expected an ODESolver (e.g. Dopri5()), got {type(solver).__name__}")
        if adjoint_solver is not None and not isinstance(adjoint_solver, ODESolver):
            # (why) unchecked, a string or an SDE solver failed only at the first forward pass
            # ("'str' object has no attribute 'odeint_kwargs'")
            raise TypeError(
                "expected adjoint_solver None or an ODESolver (e.g. Dopri5()), got "
                f"{adjoint_solver!r}"
            )
        if adjoint_solver is not None and not adjoint:
            # (why) direct backprop replays the forward graph and runs no backward solve, so the
            # adjoint_solver was silently ignored
            raise ValueError(
                f"adjoint_solver {type(adjoint_solver).__name__} applies only with adjoint=True, "
                "got adjoint=False: pass adjoint=True, or leave adjoint_solver None"
            )
        if regulariser is not None and not isinstance(
            regulariser, (GlobalHeuristic, LocalHeuristic, RNODE)
        ):
            raise TypeError(
                "expected regulariser None, GlobalHeuristic, LocalHeuristic or RNODE, "
                f"got {type(regulariser).__name__}"
            )
        if isinstance(regulariser, (GlobalHeuristic, LocalHeuristic)) and solver.tableau is None:
            raise ConfigError(
                f"{type(regulariser).__name__} needs an adaptive embedded RK solver "
                f"(Dopri5 or Bosh3), got {type(solver).__name__}"
            )
        if isinstance(regulariser, GlobalHeuristic) and adjoint:
            raise ConfigError(
                "GlobalHeuristic differentiates the forward solve's own steps and needs "
                "adjoint=False; use LocalHeuristic with the adjoint"
            )
        self.field = (StepWatchingField if solver.adaptive else CountingField)(field)
        self.solver = solver
        self.adjoint = adjoint
        self.adjoint_solver = adjoint_solver or solver
        self.regulariser = regulariser
        self.iteration = 0
        # (why) the key that files written before it was saved lack (_SavesIteration)
        self.optional_state_keys = ("iteration",)
        self.regularisation: Tensor = torch.zeros(())

    # ------------------------------------------------------------------ counters
    @property
    def nfe_forward(self) -> int:
        """Evaluations of ``field`` in the last forward solve (the prediction cost; with
        :class:`~sciml.de.RNODE` active, evaluations of the augmented field). 0 before the first
        call; reset by each call."""
        return self.field.nfe_forward

    @property
    def nfe_backward(self) -> int:
        """Evaluations of ``field`` in the adjoint solve of the last ``backward``: 0 for direct
        backpropagation (it replays the stored graph) and until ``backward`` runs; reset by each
        forward call."""
        return self.field.nfe_backward

    @property
    def nfe_regulariser(self) -> int:
        """Evaluations of ``field`` spent on the penalty in the last forward call (the stages of
        the one step a :class:`~sciml.de.LocalHeuristic` re-evaluates; 0 for
        :class:`~sciml.de.GlobalHeuristic` and :class:`~sciml.de.RNODE`, which reuse the solve,
        and with no active regulariser). Reset by each call."""
        return self.field.nfe_regulariser

    @property
    def steps_accepted(self) -> int:
        """Steps the solver accepted in the last forward solve (for a fixed-step solver, every
        step it took). 0 before the first call; reset by each call."""
        return len(self.field.steps)

    @property
    def steps_rejected(self) -> int:
        """Step attempts an adaptive solver rejected in the last forward solve (always 0 for a
        fixed-step solver). 0 before the first call; reset by each call."""
        return self.field.rejected

    # ------------------------------------------------------------------ solve
    def _odeint(self, func: nn.Module, y0, t: Tensor):
        try:
            return self._odeint_unchecked(func, y0, t)
        except RuntimeError as err:
            if transforming() and "vmap" in str(err):
                raise SciMLError(
                    "NeuralODE cannot run under torch.func.vmap with its state or parameters "
                    "batched (vmap over samples, an ensemble by stack_module_state): torchdiffeq "
                    "writes the solution in place into an unbatched buffer. Loop over the batch "
                    f"or the ensemble members instead. torch said: {str(err).splitlines()[0]}"
                ) from err
            raise
        except AssertionError as err:  # torchdiffeq's step control: t + dt == t, or too many
            dtype = y0.dtype if isinstance(y0, Tensor) else y0[0].dtype
            failure = _step_control_error(self.solver, err, dtype, adjoint=False)
            if failure is None:
                raise
            raise failure from err

    def _odeint_unchecked(self, func: nn.Module, y0, t: Tensor):
        kw = self.solver.odeint_kwargs()
        if not self.adjoint:
            return torchdiffeq.odeint(func, y0, t, **kw)
        akw = self.adjoint_solver.odeint_kwargs()
        return torchdiffeq.odeint_adjoint(
            func,
            y0,
            t,
            # (why) the adjoint solve runs in autograd's backward, out of reach of _odeint's
            # except: _NamedAdjointSolve runs akw["method"] and names its own step-control errors
            adjoint_method="sciml_adjoint",
            adjoint_rtol=akw["rtol"],
            adjoint_atol=akw["atol"],
            adjoint_options={
                **akw["options"],
                "sciml_solver": self.adjoint_solver,
                "sciml_method": akw["method"],
            },
            adjoint_params=tuple(self.field.parameters()),
            **kw,
        )

    def forward(self, y0: Tensor, t: Tensor) -> Tensor:
        """Solve ``dy/dt = f(t, y)`` from ``y0`` and return ``y`` at the times ``t``.

        Args:
            y0: ``(batch, *state)``.
            t: ``(time,)`` strictly monotone times, ``t[0]`` the initial time. A single time
                returns ``y0[None]`` (as torchdiffeq does) without evaluating ``field``.

        Returns:
            ``(time, batch, *state)``.
        """
        if not isinstance(y0, Tensor) or y0.dim() < 1:
            given = f"shape {tuple(y0.shape)}" if isinstance(y0, Tensor) else type(y0).__name__
            raise ValueError(f"expected y0 as a tensor (batch, *state), got {given}")
        if not (y0.is_floating_point() or y0.is_complex()):
            # (why) RK4 solved an integer y0 in integer arithmetic (y' = -y from 1 gave 0 at
            # t = 1) and Dopri5 failed in torch's nextafter, naming neither y0 nor its dtype
            raise TypeError(
                f"expected a floating-point or complex y0, got {y0.dtype}; convert it with "
                "y0.float() (or y0.double())"
            )
        given = t
        # (why) on y0's device, as NeuralSDE makes its times: a list t stayed on the CPU
        # beside a CUDA y0 (torchdiffeq copied it over, after the checks ran on the CPU copy)
        t = solve_times(t, y0)
        try:
            check_output_times(t)
        except ValueError as err:
            if not (note := rounding_note(given, t, decreasing=True)):
                raise
            raise ValueError(f"{err}{note}") from None
        _check_func_transforms(self.solver, self.adjoint)
        if not self.solver.adaptive:
            check_step_advances(t, self.solver.options().get("step_size"), name="step_size")
        # (why) nothing to solve: an empty y0 (the step control would divide by a norm of 0),
        # or a single time, where torchdiffeq returns y0[None] (its Dopri5 after two field
        # evaluations for a first step it never takes) and a penalty has no interval (0, as
        # the integrals over it are, not RNODE's 0/0)
        if y0.numel() == 0 or t.numel() == 1:
            self.field.reset()
            self.regularisation = y0.new_zeros(())
            return y0.unsqueeze(0).expand(t.numel(), *y0.shape).clone()
        reg = self.regulariser
        active = reg is not None and self.training and torch.is_grad_enabled()
        tab = self.solver.tableau
        self.field.reset(
            tableau=tab,
            rtol=self.solver.rtol,
            atol=self.solver.atol,
            record_stages=active and isinstance(reg, GlobalHeuristic),
            # (why) only AcceptedStepTime starts its step from a recorded state; UniformTime
            # reads y(t*) off the solve and only the step size from the recorded steps
            keep_states=active
            and isinstance(reg, LocalHeuristic)
            and isinstance(reg.sampling, AcceptedStepTime),
            reverse=bool(t[-1] < t[0]),
        )
        zero = y0.new_zeros(())
        t_solve, extra, added = t, None, False
        if active and isinstance(reg, LocalHeuristic) and isinstance(reg.sampling, UniformTime):
            # (why) add t* to the output times: y(t*) then carries the solve's gradient (direct
            # or adjoint) while the solver's step sequence is unchanged (outputs interpolate).
            lo, hi = t[0].item(), t[-1].item()
            u = torch.rand((), dtype=torch.float64).item()
            t_solve, extra, added, t_star = insert_time(t, lo + (hi - lo) * u)

        if active and isinstance(reg, RNODE):
            eps = torch.randn_like(y0)
            b = y0.shape[0]
            state = (y0, y0.new_zeros(b), y0.new_zeros(b))
            out = self._odeint(augment(self.field, eps), state, t_solve)
            ys, kin, frob = out
            self.field.phase = "backward"
            wk, wj = reg.weights(self.iteration)
            # signed: the integrals run from t[0] to t[-1], negative for decreasing times
            span = t[-1] - t[0]
            # (why) .real: torchdiffeq solves the tuple state in one dtype, so a complex y0's
            # integrals are complex with a zero imaginary part
            # (why) span in the state's dtype: a half state's times are float32 (solve_times)
            # and the penalty stays in the state's dtype, as the other regularisers' do
            span = span.to(kin.real.dtype)
            self.regularisation = (wk * kin[-1].real.mean() + wj * frob[-1].real.mean()) / span
        else:
            ys = self._odeint(self.field, y0, t_solve)
            self.field.phase = "backward"
            self.regularisation = zero
            if active and isinstance(reg, GlobalHeuristic):
                err, stiff = global_penalty(self.field.steps)
                we, ws = reg.weights(self.iteration)
                self.regularisation = we * err + ws * stiff
            elif active and isinstance(reg, LocalHeuristic):
                if extra is not None:
                    y_star = ys[extra]
                    if added:
                        ys = ys[[i for i in range(ys.shape[0]) if i != extra]]
                    step = step_containing(self.field.steps, t_star)
                else:
                    j = int(torch.randint(len(self.field.steps), ()).item())
                    step = self.field.steps[j]
                    t_star, y_star = step.t0, step.y0
                self.regularisation = self._local_penalty(reg, t_star, y_star, step.dt)
        if self.training and torch.is_grad_enabled():
            self.iteration += 1
        return ys

    def _local_penalty(self, reg: LocalHeuristic, t_star: float, y_star: Tensor, h: float):
        tab = self.solver.tableau
        self.field.phase = "regulariser"
        try:
            res = rk_step(
                self.field,
                # (why) .real: the time of a complex state is real, as in the solve
                torch.tensor(t_star, dtype=y_star.real.dtype, device=y_star.device),
                y_star,
                h,
                tab,
                rtol=self.solver.rtol,
                atol=self.solver.atol,
            )
        finally:
            self.field.phase = "backward"
        we, ws = reg.weights(self.iteration)
        return we * res.error_ratio * abs(h) + ws * res.stiffness

    def extra_repr(self) -> str:
        return f"solver={self.solver}, adjoint={self.adjoint}, regulariser={self.regulariser}"
