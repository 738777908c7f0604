"""Function-space losses and metrics: relative Lp, H1 (Sobolev) and per-sample MSE.

All losses compare ``pred`` and ``target`` of the same shape ``(batch, ...)`` and compute one
number per sample (over all channels and grid points / query points), then reduce over the batch
with ``reduction="mean" | "sum" | "none"`` (``"none"`` gives shape ``(batch,)``, the form the
Trainer's validation metrics use).

Discrete norms are quadrature on a uniform grid normalised to a domain of unit volume, so the
absolute Lp error of a sample is ``(mean_j |e_j|^p)^(1/p)`` (the RMSE for ``p = 2``); relative
errors do not depend on the normalisation.
"""

from __future__ import annotations

import math
import numbers
from collections.abc import Sequence

import torch

from .._scalars import is_real

__all__ = ["LpLoss", "H1Loss", "MSE"]

_REDUCTIONS = ("mean", "sum", "none")


def _reduce(values: torch.Tensor, reduction: str) -> torch.Tensor:
    if reduction == "mean":
        return values.mean()
    if reduction == "sum":
        return values.sum()
    return values


def _check(pred: torch.Tensor, target: torch.Tensor) -> None:
    if pred.shape != target.shape:
        raise ValueError(
            f"expected pred and target of the same shape, got {tuple(pred.shape)} and "
            f"{tuple(target.shape)}; check the model's out_channels and the data's target layout"
        )


class LpLoss:
    """Lp error between functions, per sample, reduced over the batch.

    For a sample with error ``e = pred - target`` flattened over channels and points:

    * ``relative=True``:  ``||e||_p / ||target||_p = (sum_j |e_j|^p)^(1/p) / (sum_j |y_j|^p)^(1/p)``
    * ``relative=False``: ``(mean_j |e_j|^p)^(1/p)``

    ``p = inf`` gives the max norm (``max_j |e_j|``, divided by ``max_j |y_j|`` when relative). A
    sample predicted exactly (``e = 0``) has the gradient 0, the subgradient at the minimum.

    Args:
        p: the exponent, ``1 <= p <= inf``.
        relative: divide by the target's norm (undefined, hence inf/nan, for an all-zero target).
        reduction: ``"mean"`` (default) / ``"sum"`` over the batch, or ``"none"`` for ``(batch,)``.

    Call: ``loss(pred, target)`` with both ``(batch, ...)``; returns a scalar (or ``(batch,)``).
    """

    def __init__(self, p: float = 2.0, *, relative: bool = True, reduction: str = "mean") -> None:
        if not isinstance(p, numbers.Real) or isinstance(p, bool):
            # (why) True ran as the L1 norm, a str failed in a bare comparison
            raise TypeError(f"expected p >= 1 (or inf) for an Lp norm, got p={p!r}")
        if not p >= 1:  # (why) also refuses nan
            raise ValueError(f"expected p >= 1 (or inf) for an Lp norm, got p={p}")
        if reduction not in _REDUCTIONS:
            raise ValueError(f"expected reduction in {_REDUCTIONS}, got {reduction!r}")
        self.p = float(p)
        self.relative = relative
        self.reduction = reduction

    def __call__(self, pred: torch.Tensor, target: torch.Tensor) -> torch.Tensor:
        _check(pred, target)
        e = (pred - target).reshape(pred.shape[0], -1)  # (batch, n)
        # (why) vector_norm, not sum(|e|^p)^(1/p): the root's derivative is infinite at 0, so a
        # sample with e = 0 made the whole batch's gradient nan (0 * inf), and p = inf gave 1
        values = torch.linalg.vector_norm(e, ord=self.p, dim=1)
        if self.relative:
            y = target.reshape(target.shape[0], -1)
            values = values / torch.linalg.vector_norm(y, ord=self.p, dim=1)
        else:
            values = values / e.shape[1] ** (1.0 / self.p)  # the grid mean; 1 for p = inf
        return _reduce(values, self.reduction)

    def __repr__(self) -> str:
        return f"LpLoss(p={self.p:g}, relative={self.relative}, reduction={self.reduction!r})"


class H1Loss:
    """H1 (Sobolev) error of functions on a uniform grid, per sample, reduced over the batch.

    For ``u: (batch, channels, *spatial)`` on the box ``prod_d [0, L_d]``::

        |u|^2_{H1} = sum_{c, grid} ( u^2 + sum_d (d u / d x_d)^2 )

    (quadrature weights cancel in the relative error; the absolute error uses the grid mean, as
    :class:`LpLoss` does). ``relative=True`` returns ``|pred - target|_{H1} / |target|_{H1}``.

    Derivatives:

    * ``periodic=True`` (default): spectral, ``d/dx_d u = F^-1[ i k_d F[u] ]`` with
      ``k_d = 2 pi m / L_d``, grid points ``x_j = j L_d / n`` (endpoint excluded); the Nyquist mode
      of an even-sized grid is dropped. Exact for band-limited periodic functions.
    * ``periodic=False``: second-order finite differences (``torch.gradient``, central inside,
      second-order one-sided at the ends) on ``x_j = j L_d / (n - 1)`` (endpoints included).

    Args:
        lengths: domain lengths ``L_d``, one number for every spatial dim or one per dim.
        spatial_dims: number of trailing spatial dims; default ``pred.ndim - 2``.
        periodic: spectral derivatives on a periodic grid, else finite differences (see above).
        relative: divide by the target's H1 norm (see above).
        reduction: ``"mean"``, ``"sum"`` or ``"none"`` (one value per sample) over the batch.
    """

    def __init__(
        self,
        *,
        lengths: float | Sequence[float] = 1.0,
        periodic: bool = True,
        relative: bool = True,
        spatial_dims: int | None = None,
        reduction: str = "mean",
    ) -> None:
        if reduction not in _REDUCTIONS:
            raise ValueError(f"expected reduction in {_REDUCTIONS}, got {reduction!r}")
        # (why) lengths=0 gave a nan loss and lengths=-1 the loss of lengths=1, without a word
        values = lengths.tolist() if hasattr(lengths, "tolist") else lengths  # (array, tensor)
        one = not isinstance(values, (Sequence, list)) or isinstance(values, str)
        values = [values] if one else list(values)
        if not values or not all(_positive(v) for v in values):
            raise ValueError(
                f"expected lengths as numbers > 0 (one, or one per spatial dim), got {lengths!r}"
            )
        if spatial_dims is not None and (
            isinstance(spatial_dims, bool) or not isinstance(spatial_dims, int) or spatial_dims < 1
        ):
            raise ValueError(f"expected spatial_dims as an int >= 1 or None, got {spatial_dims!r}")
        self.lengths = lengths
        self._lengths = None if one else [float(v) for v in values]  # None: one for every dim
        self._length = float(values[0])
        self.periodic = periodic
        self.relative = relative
        self.spatial_dims = spatial_dims
        self.reduction = reduction

    def _dims_lengths(self, u: torch.Tensor) -> list[tuple[int, float]]:
        nd = u.ndim - 2 if self.spatial_dims is None else self.spatial_dims
        if nd < 1 or u.ndim < nd + 1:
            raise ValueError(
                f"expected u of shape (batch, channels, *spatial) with >= 1 spatial dim, got "
                f"shape {tuple(u.shape)} (spatial_dims={self.spatial_dims})"
            )
        lengths = [self._length] * nd if self._lengths is None else self._lengths
        if len(lengths) != nd:
            raise ValueError(f"expected {nd} domain lengths, got {len(lengths)}: {self.lengths}")
        return list(zip(range(u.ndim - nd, u.ndim), lengths))

    def derivatives(self, u: torch.Tensor) -> list[torch.Tensor]:
        """``[d u / d x_d for each spatial dim d]``, each of the shape of ``u``."""
        out = []
        for dim, length in self._dims_lengths(u):
            n = u.shape[dim]
            if self.periodic:
                out.append(_spectral_derivative(u, dim, length))
            else:
                if n < 3:
                    raise ValueError(
                        f"finite differences need >= 3 points along dim {dim}, got {n}"
                    )
                out.append(torch.gradient(u, spacing=length / (n - 1), dim=dim, edge_order=2)[0])
        return out

    def _norm(self, u: torch.Tensor) -> torch.Tensor:
        """``|u|_{H1}`` per sample, over channels and grid points: ``(batch,)``."""
        # (why) the 2-norm of u and its derivatives side by side, not sqrt(sum of squares): the
        # square root's derivative is infinite at 0, so an exactly predicted sample made the
        # whole batch's gradient nan; vector_norm's gradient there is 0. The norm of the parts'
        # norms, not of the parts stacked: stacking copied (d + 1) fields per call
        parts = [u, *self.derivatives(u)]
        norms = [torch.linalg.vector_norm(p.reshape(u.shape[0], -1), dim=1) for p in parts]
        return torch.linalg.vector_norm(torch.stack(norms, dim=1), dim=1)  # (batch,)

    def __call__(self, pred: torch.Tensor, target: torch.Tensor) -> torch.Tensor:
        _check(pred, target)
        err = self._norm(pred - target)
        if self.relative:
            values = err / self._norm(target)
        else:
            values = err / math.sqrt(math.prod(pred.shape[1:]))
        return _reduce(values, self.reduction)

    def __repr__(self) -> str:
        return (
            f"H1Loss(lengths={self.lengths}, periodic={self.periodic}, relative={self.relative}, "
            f"reduction={self.reduction!r})"
        )


def _positive(value: object) -> bool:
    """A finite real number > 0, not a bool."""
    real = is_real(value)
    return real and 0 < value < math.inf  # type: ignore[operator]


def _spectral_derivative(u: torch.Tensor, dim: int, length: float) -> torch.Tensor:
    """``d u / dx`` along ``dim`` of a periodic function sampled at ``x_j = j L / n``."""
    n = u.shape[dim]
    u_hat = torch.fft.rfft(u, dim=dim)
    # (why) in u's precision: rfftfreq's default float32 limited float64 derivatives to ~1e-7
    dtype = u_hat.real.dtype
    k = 2 * math.pi * torch.fft.rfftfreq(n, d=length / n, device=u.device, dtype=dtype)
    if n % 2 == 0:
        k[-1] = 0.0  # the Nyquist mode's derivative is not real-representable
    shape = [1] * u.ndim
    shape[dim] = k.numel()  # (n // 2 + 1,) along dim
    return torch.fft.irfft(u_hat * (1j * k).reshape(shape), n=n, dim=dim)


class MSE:
    """Mean squared error per sample, ``mean_j (pred_j - target_j)^2``, reduced over the batch."""

    def __init__(self, *, reduction: str = "mean") -> None:
        if reduction not in _REDUCTIONS:
            raise ValueError(f"expected reduction in {_REDUCTIONS}, got {reduction!r}")
        self.reduction = reduction

    def __call__(self, pred: torch.Tensor, target: torch.Tensor) -> torch.Tensor:
        _check(pred, target)
        values = (pred - target).reshape(pred.shape[0], -1).pow(2).mean(dim=1)
        return _reduce(values, self.reduction)

    def __repr__(self) -> str:
        return f"MSE(reduction={self.reduction!r})"
