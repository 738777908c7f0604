"""Initial and boundary conditions: soft penalties, hard constraints, exact periodicity.

* **Soft**: add ``weight * mean((pred - target)^2)`` to the loss (:func:`soft_penalty`,
  :func:`periodic_penalty`); simple and general, but only approximately satisfied.
* **Hard**: build the condition into the network's output, ``u(p) = g(p) + d(p) N(p)`` with ``g``
  meeting the condition and ``d = 0`` where it is imposed (:class:`HardConstraint`,
  :class:`HardInitialCondition`); then it holds exactly for every parameter value.
* **Periodic**: feed the network ``cos(2 pi k x / L), sin(2 pi k x / L)`` instead of ``x``
  (:class:`PeriodicEmbedding`): every function of the embedding is exactly ``L``-periodic in ``x``
  with all its derivatives, so no boundary term is needed at all.
"""

from __future__ import annotations

import math
from collections.abc import Callable, Sequence

import torch
from torch import nn

from .._scalars import is_int
from ._checks import check_float_points, is_count, is_number

__all__ = [
    "PeriodicEmbedding",
    "HardConstraint",
    "HardInitialCondition",
    "soft_penalty",
    "periodic_penalty",
]


def _set_fixed(owner: nn.Module, name: str, fn: Callable[[torch.Tensor], torch.Tensor]) -> None:
    """Keep a given (not trained) function such as an initial condition ``u0`` on ``owner`` as a
    plain attribute, not a submodule; call it with :func:`_call_fixed`.

    (why) an ``nn.Module`` assigned as usual becomes a submodule and is trained with ``owner``,
    so the condition it imposes, and a problem sharing it, changed during training: the
    amplitude of a module ``sin`` u0 of a PINN went from 1 to 0.79 in 200 Adam steps, and a
    :class:`HardConstraint`'s ``u(0) = 1`` drifted to 0.84 in 30."""
    object.__setattr__(owner, name, fn)


def _call_fixed(fn: Callable[[torch.Tensor], torch.Tensor], x: torch.Tensor) -> torch.Tensor:
    """``fn(x)`` for a given (not trained) function such as an initial condition ``u0``: an
    ``nn.Module`` with floating weights gets ``x`` in their dtype and on their device and its
    values come back in ``x``'s (differentiably in ``x``); anything else is called as it is.

    (why) such a module is not a submodule of the model that uses it (it would be trained with
    it), so ``model.double()`` / ``model.to(device)`` leave it where it was."""
    if isinstance(fn, nn.Module):
        ref = next(
            (v for v in (*fn.parameters(), *fn.buffers()) if v.is_floating_point()),
            None,
        )
        if ref is not None and (ref.dtype != x.dtype or ref.device != x.device):
            return fn(x.to(dtype=ref.dtype, device=ref.device)).to(dtype=x.dtype, device=x.device)
    return fn(x)


def _call_u0(fn: Callable[[torch.Tensor], torch.Tensor], x: torch.Tensor) -> torch.Tensor:
    """``_call_fixed(fn, x)`` for an initial condition ``u0``, which acts elementwise: its
    values must have the shape of the points ``x`` (or one that broadcasts to it).

    (why) a u0 returning (n,) for points (n, 1), written for the 1-d points the references
    pass, broadcast against the (n, 1) network output: u of shape (n, n), and soft initial
    terms averaged over an (n, n) table, silently."""
    u = _call_fixed(fn, x)
    try:
        fits = torch.broadcast_shapes(u.shape, x.shape) == x.shape
    except RuntimeError:
        fits = False
    if not fits:
        raise ValueError(
            f"expected an initial condition u0 that acts elementwise (values of the shape of "
            f"its points), but u0 returned shape {tuple(u.shape)} for points of shape "
            f"{tuple(x.shape)}"
        )
    return u


class PeriodicEmbedding(nn.Module):
    """Map points ``(..., d)`` to features in which the chosen coordinates are periodic.

    Coordinate ``j`` with ``periods[j] = L`` becomes the ``2 * harmonics`` features
    ``cos(2 pi k x_j / L), sin(2 pi k x_j / L)`` for ``k = 1..harmonics``; a coordinate with
    ``periods[j] = None`` (time, say) passes through unchanged. Output
    ``(..., n_free + 2 * harmonics * n_periodic)``: periodic features first, in coordinate order,
    then the free coordinates.
    """

    def __init__(self, periods: Sequence[float | None], *, harmonics: int = 1) -> None:
        super().__init__()
        # (why) 1.5 stored int(1.5) = 1 but its buffer arange(1, 2.5) held 2 harmonics:
        # forward gave more features than out_features
        if not is_int(harmonics):
            raise TypeError(f"expected an int harmonics, got {harmonics!r}")
        if harmonics < 1:
            raise ValueError(f"expected harmonics >= 1, got {harmonics}")
        if not any(p is not None for p in periods):
            raise ValueError(f"expected at least one periodic coordinate, got periods {periods}")
        for p in periods:
            # (why) a string failed in 'p > 0' with Python's "'<' not supported", True was a
            # period of 1
            if p is not None and not is_number(p):
                raise TypeError(f"expected real-number periods (or None), got {periods}")
            # (why) inf passed 'p > 0': frequency 0, constant features, the coordinate ignored
            if p is not None and not 0 < p < math.inf:
                raise ValueError(f"expected finite, positive periods (or None), got {periods}")
        self.periods = tuple(None if p is None else float(p) for p in periods)
        self.harmonics = int(harmonics)
        self._per = [j for j, p in enumerate(self.periods) if p is not None]
        self._free = [j for j, p in enumerate(self.periods) if p is None]
        # (why) angular frequencies stay Python floats and the harmonics an integer buffer: a
        # floating buffer is rounded to float32 by the default dtype or by module.float(), and
        # cos(w (x + L)) then differs from cos(w x) by ~1e-7 in float64 for an L other than 2 pi
        self._omega = [2 * math.pi / self.periods[j] for j in self._per]
        self.register_buffer("k", torch.arange(1, harmonics + 1), persistent=False)

    @property
    def out_features(self) -> int:
        """The width of :meth:`forward`'s output: ``n_free + 2 * harmonics * n_periodic``."""
        return len(self._free) + 2 * self.harmonics * len(self._per)

    def forward(self, p: torch.Tensor) -> torch.Tensor:
        """``p: (..., d)`` (floating-point) -> ``(..., out_features)``."""
        check_float_points("PeriodicEmbedding", "p", p)
        if p.shape[-1] != len(self.periods):
            raise ValueError(
                f"expected points with {len(self.periods)} coordinates (periods "
                f"{self.periods}), got shape {tuple(p.shape)}"
            )
        x = torch.stack([p[..., j] * w for j, w in zip(self._per, self._omega)], dim=-1)
        phase = x[..., None] * self.k  # (..., n_per, harmonics)
        feats = [torch.cos(phase).flatten(-2), torch.sin(phase).flatten(-2)]
        if self._free:
            feats.append(p[..., self._free])
        return torch.cat(feats, dim=-1)


class HardConstraint(nn.Module):
    """``u(p) = g(p) + d(p) * net(p)``: exact wherever the distance function ``d`` vanishes.

    Args:
        net: the free network, ``(..., d) -> (..., c)``.
        particular: ``g``, meets the condition; ``(..., d) -> (..., c)`` (broadcastable).
            Not trained: an ``nn.Module`` ``g`` or ``d`` is not a submodule (called in its
            own dtype and on its own device).
        distance: ``d``, zero exactly where the condition is imposed, non-zero elsewhere;
            ``(..., d) -> (..., 1)``.
    """

    def __init__(
        self,
        net: nn.Module,
        particular: Callable[[torch.Tensor], torch.Tensor],
        distance: Callable[[torch.Tensor], torch.Tensor],
    ) -> None:
        super().__init__()
        self.net = net
        _set_fixed(self, "particular", particular)
        _set_fixed(self, "distance", distance)

    def forward(self, p: torch.Tensor) -> torch.Tensor:
        """``g(p) + d(p) * net(p)`` at floating-point points ``p: (..., d)``: ``(..., c)``."""
        check_float_points(type(self).__name__, "p", p)
        g, d, n = _call_fixed(self.particular, p), _call_fixed(self.distance, p), self.net(p)
        out = g + d * n
        # (why) g of shape (n,) against d * net of shape (n, 1) gave a (n, n) u, silently
        if out.numel() > max(v.numel() if torch.is_tensor(v) else 1 for v in (g, d, n)):
            raise ValueError(
                f"expected a particular g and a distance d whose values broadcast to the "
                f"network's output, got g {tuple(torch.as_tensor(g).shape)}, d "
                f"{tuple(torch.as_tensor(d).shape)} and net "
                f"{tuple(n.shape)} broadcast to {tuple(out.shape)}; keep the last dim of g and "
                f"d (e.g. q.sum(-1, keepdim=True))"
            )
        return out


class HardInitialCondition(HardConstraint):
    """``u(x, t) = u0(x) + (t - t0) * net(x, t)``: ``u(x, t0) = u0(x)`` exactly.

    Points are ``(..., d)`` with time in column ``time_dim`` (default last) and space in the
    others; ``u0`` maps the spatial columns ``(..., d - 1)`` to ``(..., c)``. It is not trained;
    an ``nn.Module`` ``u0`` is called in its own dtype and on its own device.
    """

    def __init__(
        self,
        net: nn.Module,
        u0: Callable[[torch.Tensor], torch.Tensor],
        *,
        t0: float = 0.0,
        time_dim: int = -1,
    ) -> None:
        # (why) a nan or inf t0 made the distance t - t0 non-finite: u was nan / inf at every
        # point, silently; a float time_dim failed in slicing ('slice indices must be integers')
        if not is_number(t0):
            raise TypeError(f"expected a real number t0 (the initial time), got {t0!r}")
        if not math.isfinite(t0):
            raise ValueError(f"expected a finite initial time t0, got {t0!r}")
        if not is_count(time_dim):
            raise TypeError(f"expected an int time_dim (the time column), got {time_dim!r}")
        self.t0, self.time_dim = float(t0), int(time_dim)

        def time_column(p: torch.Tensor) -> int:
            d = p.shape[-1]
            # (why) time_dim % d wrapped an index past the end around: time_dim=2 for (x, t)
            # took x for time, silently
            if not -d <= self.time_dim < d:
                raise ValueError(
                    f"expected time_dim in [-{d}, {d}) for points with {d} coordinates, got "
                    f"time_dim={self.time_dim} (points of shape {tuple(p.shape)})"
                )
            return self.time_dim % d

        def particular(p: torch.Tensor) -> torch.Tensor:
            k = time_column(p)
            # (why) _call_fixed: a module u0 is not a submodule, so model.double() left it
            # float32, and a plain call failed in its first Linear
            return _call_fixed(u0, p[..., [j for j in range(p.shape[-1]) if j != k]])

        def distance(p: torch.Tensor) -> torch.Tensor:
            k = time_column(p)
            return p[..., k : k + 1] - self.t0

        super().__init__(net, particular, distance)


def soft_penalty(pred: torch.Tensor, target: torch.Tensor | float = 0.0) -> torch.Tensor:
    """``mean((pred - target)^2)``: the soft-constraint term for an initial or boundary condition
    (or, with ``target = 0``, for a residual).

    ``target`` is a number or a tensor of ``pred``'s shape (or one that broadcasts to it).

    Raises:
        ValueError: if broadcasting would pair every value of one with every value of the other
            (``pred: (n, 1)`` against ``target: (n,)`` makes an ``(n, n)`` table).
    """
    if isinstance(target, torch.Tensor):
        shape = torch.broadcast_shapes(pred.shape, target.shape)
        # (why) (n, 1) against (n,) gave the mean over all n^2 pairs, silently
        if math.prod(shape) > max(pred.numel(), target.numel()):
            raise ValueError(
                f"expected pred and target of one shape, got pred {tuple(pred.shape)} and "
                f"target {tuple(target.shape)} broadcast to {tuple(shape)}; reshape target "
                f"to {tuple(pred.shape)}"
            )
    return torch.mean((pred - target) ** 2)


def periodic_penalty(
    fn: Callable[[torch.Tensor], torch.Tensor], p: torch.Tensor, period: float, dim: int = 0
) -> torch.Tensor:
    """``mean((fn(p) - fn(p + period e_dim))^2)``: the soft periodic boundary condition, with
    ``p: (n, d)`` floating-point points on the lower boundary of coordinate ``dim`` (an int in
    ``[-d, d)``), ``period`` finite and ``> 0``."""
    # (why) integer points truncated the period of the shift (2.5 -> 2), silently
    check_float_points("periodic_penalty", "p", p)
    # (why) period 0 compared fn(p) with itself: a penalty of 0 for any fn, silently; nan gave
    # a nan loss, and a dim past the coordinates failed in torch's indexing
    if not is_number(period):
        raise TypeError(f"expected a real number period, got {period!r}")
    if not 0 < period < math.inf:
        raise ValueError(f"expected a finite, positive period, got {period}")
    d = p.shape[-1] if p.ndim else 0
    if not is_count(dim) or not -d <= dim < d:
        raise ValueError(
            f"expected dim, the periodic coordinate, an int in [-{d}, {d}) for points of shape "
            f"{tuple(p.shape)}, got {dim!r}"
        )
    shift = torch.zeros(p.shape[-1], dtype=p.dtype, device=p.device)
    shift[dim] = period
    return soft_penalty(fn(p), fn(p + shift))
