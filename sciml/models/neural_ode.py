"""A neural ODE as an operator from an initial state to a trajectory (family ``node``).

An autonomous vector field, an MLP in normalised coordinates ``z = (y - c) / s``, integrated by a
Runge-Kutta solver (:class:`sciml.de.NeuralODE`), adaptive (dopri5, bosh3) or with a fixed step
(rk4, euler: ``config.step_size``, which :func:`sciml.export` traces as it is)::

    dy/dt = s * f_theta((y - c) / s),   y(t_0) = u,   returns y(t_k) for the requested times t_k

``c`` (``config.center``) and ``s`` (``config.scale``) are fixed per-channel constants (typically
the training data's mean and spread), so the network sees and returns O(1) numbers. Wrapping
:class:`~sciml.de.NeuralODE` gives the operator its function-evaluation counters (``nfe``: the
cost of the last prediction) and, in training, a solver-heuristic regulariser passed to the
constructor (``regulariser=LocalHeuristic(...)``): a training-time choice, not part of the saved
model. Saving and loading work as for every sciml :class:`~sciml.operator.Operator`.
"""

from __future__ import annotations

import math
from collections.abc import Iterable
from dataclasses import dataclass
from typing import Any, Literal

import torch
from torch import Tensor, nn

from .._scalars import is_real
from ..de import RK4, Bosh3, Dopri5, Euler, NeuralODE, ODESolver
from ..de.solvers import _check_tol
from ..layers import activation as _activation
from ..layers._checks import check_input_dtype, check_int_fields, check_ints
from ..layers.mlp import _ACTIVATIONS
from ..operator import Operator

__all__ = ["NODE", "NODEConfig"]

_SOLVERS = {"dopri5": Dopri5, "bosh3": Bosh3, "rk4": RK4, "euler": Euler}


@dataclass(frozen=True)
class NODEConfig:
    """Configuration of :class:`NODE`.

    Attributes:
        state_dim: channels of the state ``y``.
        hidden: widths of the field MLP's hidden layers.
        activation: one of gelu, relu, tanh, silu.
        solver: ``"dopri5"`` or ``"bosh3"``, adaptive embedded pairs (which the
            :class:`~sciml.de.LocalHeuristic` and :class:`~sciml.de.GlobalHeuristic`
            regularisers need); or ``"rk4"`` or ``"euler"``, fixed-step
            (:class:`~sciml.de.RK4`, :class:`~sciml.de.Euler` with their default output
            interpolation), whose solve :func:`sciml.export` unrolls without ``solver=``.
        rtol, atol: the adaptive solver's tolerances (> 0), used for prediction as in training
            (a fixed-step solver has none and ignores them, but they are checked all the same).
        center, scale: per-channel constants of the normalisation ``z = (y - center) / scale``
            (``None``: 0 and 1).
        step_size: the fixed step ``h`` (a real number, finite, > 0, held as a Python float) of
            ``"rk4"`` and ``"euler"``, required by them; ``None`` for the adaptive solvers, which
            choose their own steps.
    """

    state_dim: int = 2
    hidden: tuple[int, ...] = (64, 64)
    activation: Literal["gelu", "relu", "tanh", "silu"] = "tanh"
    solver: Literal["dopri5", "bosh3", "rk4", "euler"] = "dopri5"
    rtol: float = 1e-5
    atol: float = 1e-6
    center: tuple[float, ...] | None = None
    scale: tuple[float, ...] | None = None
    step_size: float | None = None

    def __post_init__(self) -> None:
        check_int_fields(self, ("state_dim",))
        check_ints("hidden", self.hidden, low=None)
        if self.state_dim < 1 or any(w < 1 for w in self.hidden):
            raise ValueError(
                f"expected state_dim >= 1 and hidden widths >= 1, got {self.state_dim}, "
                f"{self.hidden}"
            )
        if self.activation not in _ACTIVATIONS:
            raise ValueError(
                f"activation: expected one of {sorted(_ACTIVATIONS)}, got {self.activation!r}"
            )
        if self.solver not in _SOLVERS:
            raise ValueError(f"solver: expected one of {sorted(_SOLVERS)}, got {self.solver!r}")
        h = self.step_size
        if _SOLVERS[self.solver].adaptive:
            if h is not None:
                raise ValueError(
                    f"step_size: solver {self.solver!r} is adaptive (it chooses its steps to "
                    f"meet rtol and atol), so expected step_size None, got {h!r}; for fixed "
                    "steps pick solver 'rk4' or 'euler'"
                )
        else:
            try:  # (why) the solver holds the rule for its step; this says where it came from
                fixed = _SOLVERS[self.solver](step_size=h)
            except ValueError as err:
                raise ValueError(
                    f"step_size: solver {self.solver!r} takes fixed steps and {err}; pass e.g. "
                    f"NODEConfig(solver={self.solver!r}, step_size=0.01)"
                ) from None
            # the solver's float: a numpy scalar (which the solver admits) is not JSON, so a
            # config holding one could not be saved
            object.__setattr__(self, "step_size", fixed.step_size)
        for name in ("center", "scale"):
            value = getattr(self, name)
            if value is None:
                continue
            iterable = isinstance(value, Iterable) and not isinstance(value, (str, bytes))
            values = tuple(value) if iterable else ()
            if iterable and len(values) != self.state_dim:
                raise ValueError(
                    f"{name}: expected {self.state_dim} values (one per state channel), "
                    f"got {len(values)}"
                )
            # (why) a NumPy array (data.mean(0)) made float64 buffers in a float32 model (every
            # forward failed in the first Linear), NaN or inf failed each solve as a "stiff
            # field", a bool in torch's bool subtraction
            if not iterable or not all(is_real(v) and math.isfinite(v) for v in values):
                raise ValueError(
                    f"{name}: expected {self.state_dim} finite real numbers (one per state "
                    f"channel), got {value!r}"
                )
            object.__setattr__(self, name, tuple(float(v) for v in values))
        if self.scale is not None and min(self.scale) <= 0:
            raise ValueError(f"scale: expected positive values, got {self.scale}")
        # the adaptive solvers' rule, also for a fixed-step one (which ignores the tolerances)
        _check_tol(self.rtol, self.atol)


class _Field(nn.Module):
    """``f(t, y) = s * net((y - c) / s)`` on ``y`` ``(batch, state_dim)``."""

    def __init__(self, c: NODEConfig) -> None:
        super().__init__()
        sizes = [c.state_dim, *c.hidden, c.state_dim]
        layers: list[nn.Module] = []
        for i, (a, b) in enumerate(zip(sizes[:-1], sizes[1:])):
            layers.append(nn.Linear(a, b))
            if i < len(sizes) - 2:
                layers.append(_activation(c.activation))
        self.net = nn.Sequential(*layers)
        self._constants = {
            "center": (0.0,) * c.state_dim if c.center is None else tuple(c.center),
            "scale": (1.0,) * c.state_dim if c.scale is None else tuple(c.scale),
        }
        # constants of the config, not weights: kept out of the state dict
        for name, values in self._constants.items():
            self.register_buffer(name, torch.tensor(values), persistent=False)

    def _apply(self, fn, recurse=True):
        # (why) a dtype change rounds the config's numbers once into the new dtype: converting
        # the float32 buffers left a float64 model's center 0.1 at 0.10000000149
        super()._apply(fn, recurse)
        for name, values in self._constants.items():
            buf = getattr(self, name)
            setattr(self, name, torch.tensor(values, dtype=buf.dtype, device=buf.device))
        return self

    def forward(self, t: Tensor, y: Tensor) -> Tensor:
        return self.scale * self.net((y - self.center) / self.scale)


class NODE(Operator, family="node"):
    """Neural ODE ``u = y(t_0) -> (y(t_0), ..., y(t_K))`` (see the module doc).

    Args:
        config: the :class:`NODEConfig`.
        regulariser: training-time solver-heuristic regulariser
            (:class:`~sciml.de.LocalHeuristic`, :class:`~sciml.de.GlobalHeuristic`,
            :class:`~sciml.de.RNODE` or None); its penalty after a training-mode forward pass
            is :attr:`regularisation`.
        adjoint: adjoint gradients instead of backpropagation through the solver.
    """

    config_class = NODEConfig
    config: NODEConfig

    def __init__(
        self, config: NODEConfig, *, regulariser: Any = None, adjoint: bool = False
    ) -> None:
        super().__init__(config)
        kind = _SOLVERS[config.solver]
        solver: ODESolver = (
            kind(rtol=config.rtol, atol=config.atol)
            if kind.adaptive
            else kind(step_size=config.step_size)
        )
        self.ode = NeuralODE(_Field(config), solver, adjoint=adjoint, regulariser=regulariser)

    @property
    def nfe(self) -> int:
        """Vector-field evaluations of the last forward solve (the prediction cost)."""
        return self.ode.nfe_forward

    @property
    def regularisation(self) -> Tensor:
        """The weighted regulariser penalty of the last training-mode forward pass (else 0)."""
        return self.ode.regularisation

    def forward(self, u: Tensor, *, x: Tensor | None = None, t: Tensor | None = None) -> Tensor:
        """Integrate ``dy/dt = s f_theta((y - c) / s)`` from ``y(t[0]) = u``.

        Args:
            u: initial states ``(batch, state_dim)``.
            x: unused; must be None.
            t: output times ``(time,)``, strictly monotone, ``t[0]`` the initial time (shared
                by the batch; a ``(batch, time)`` tensor with identical rows is accepted).

        Returns:
            ``(batch, time, state_dim)``: the trajectories (sciml's layout; the solver's own is
            ``(time, batch, state_dim)``). ``u`` is returned at ``t[0]`` up to the solver's
            arithmetic.
        """
        return self.ode(u, self._output_times(u, x, t)).transpose(0, 1)

    def _output_times(self, u: Tensor, x: Tensor | None, t: Tensor | None) -> Tensor:
        """NODE's checks of ``forward``'s inputs (the solver checks the times' order); the
        output times as a ``(time,)`` tensor. (why) apart from ``forward``: ``sciml.export``
        checks an example with them without solving it."""
        d = self.config.state_dim
        if x is not None:
            raise ValueError("NODE takes no query points x; pass the initial state u and times t")
        check_input_dtype("NODE", "u", u, next(self.parameters()).dtype)
        if u.ndim != 2 or u.shape[1] != d:
            raise ValueError(f"NODE expected u of shape (batch, {d}), got {tuple(u.shape)}")
        if t is None:
            raise ValueError("NODE needs the output times t: a (time,) tensor, t[0] the start")
        t = torch.as_tensor(t, dtype=u.dtype, device=u.device)
        if t.ndim == 2:  # a batch of identical time grids (a DataLoader collates them)
            if t.shape[0] not in (1, u.shape[0]):
                raise ValueError(
                    f"NODE expected t of shape (time,) or (batch={u.shape[0]}, time), got "
                    f"{tuple(t.shape)}"
                )
            if not torch.equal(t, t[:1].expand_as(t)):
                raise ValueError("NODE expected one time grid shared by the batch")
            t = t[0]
        return t
