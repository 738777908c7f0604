"""One solve as a method's ``_iterate`` gets it (:class:`_Problem`: A, b, x0 and the stopping
rule's monitor, with the true residual ``b - A x`` and x as :func:`solve` returns it), and the
inner products and norms every method accumulates in ``dot_dtype`` (:func:`_dot`,
:func:`_norm`). The stopping rule itself is in ``_stopping.py``."""

from __future__ import annotations

from dataclasses import dataclass
from typing import TYPE_CHECKING

import torch

from ._operator import LinearOperator, null_basis, project_out

if TYPE_CHECKING:  # (why) _stopping imports this module: the monitor is an annotation only
    from ._stopping import _Monitor


# (why) detached: a Python float takes no part in the graph, and float() of a tensor that
# requires grad added torch's "Converting a tensor with requires_grad=True to a scalar"
# warning after solve's own (a differentiated solve)
def _dot(a: torch.Tensor, b: torch.Tensor, dtype: torch.dtype) -> float:
    return float(torch.dot(a.detach().to(dtype), b.detach().to(dtype)))


def _norm(a: torch.Tensor, dtype: torch.dtype) -> float:
    return float(torch.linalg.vector_norm(a.detach().to(dtype)))


@dataclass
class _Problem:
    """What a method's ``_iterate`` gets: the operator, rhs, start, and the stopping rule."""

    A: LinearOperator
    b: torch.Tensor
    x0: torch.Tensor
    monitor: _Monitor
    keep_iterates: bool = False
    #: b in float64, where the iteration runs on its rounding to A's dtype: as given to
    #: solve() for a nonsingular A, less its null-space part for a singular one (see
    #: SolveResult.true_residual)
    b64: torch.Tensor | None = None

    def returned(self, x: torch.Tensor) -> torch.Tensor:
        """``x`` as :func:`solve` returns it: for a singular A less its null-space component
        (projected in float64, rounded to x's dtype), giving the minimum-norm solution."""
        if self.A.null_space is None:
            return x
        basis = null_basis(self.A.null_space, x.device)
        return project_out(x.to(torch.float64), basis).to(x.dtype)

    def residual(self, x: torch.Tensor, dt: torch.dtype) -> torch.Tensor:
        """The true residual ``b - A x``: in float64 (x, b and A's entries cast, see
        :meth:`LinearOperator.apply64`) when ``dt``, the accumulation dtype, is float64, else
        in x's dtype."""
        if dt == torch.float64:
            b = (self.b if self.b64 is None else self.b64).to(torch.float64)
            matvec = self.A.apply64
        else:
            b, matvec = self.b, self.A
        Ax = matvec(x)
        if Ax.requires_grad and torch.is_grad_enabled():
            # (why) an A that requires grad saves x for its gradient, and the methods then
            # update x in place (x.add_, x.copy_): backward raised "modified by an inplace
            # operation". Only this graph path pays for the copy and the second product.
            Ax = matvec(x.clone())
        return b - Ax
