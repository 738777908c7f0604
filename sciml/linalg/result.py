"""The record of one Krylov solve: why it stopped (:class:`Status`) and what it reached
(:class:`SolveResult`)."""

from __future__ import annotations

import enum
import math
from dataclasses import dataclass, field, fields

import torch

__all__ = ["Status", "SolveResult"]


class Status(enum.Enum):
    """Why an iteration stopped."""

    CONVERGED = "converged"
    MAXITER = "maxiter"
    STAGNATED = "stagnated"
    NOT_SPD = "breakdown-not-spd"
    NAN_INPUT = "nan-input"
    NONFINITE = "nonfinite"


@dataclass
class SolveResult:
    """The record of one solve.

    Attributes:
        status: why the iteration stopped; ``converged`` is ``status is Status.CONVERGED``.
        iterations: number of iterations (one matvec each, two with a deflation; each true-
            residual check of residual replacement adds one, in float64, two at a stagnation
            stop with a kept iterate, a replacement at a ``p^T A p <= 0`` stop one more (the
            ``A p`` it discards), and with a deflation each replacement one more).
        residuals: relative residuals ``||r_k|| / ||b'||``, k = 0 .. iterations, with ``b'`` as
            for ``true_residual`` (the repr shows only the first and the last).
        true_residual: ``||b' - A x|| / ||b'||`` recomputed from the returned x. ``b'`` is b as
            given to :func:`~sciml.linalg.solve` for a nonsingular A; for a singular one (a
            ``null_space``) it is b less its null-space part, ``b' = b - Z^T Z b`` (the part
            ``null_space_component`` reports), so a b outside the range of A is measured by how
            well x solves the consistent system, not against b itself (0 for a b in the null
            space, where ``b' = 0`` and x = 0). With the default ``dot_dtype`` (float64) it is
            computed in float64 from the float64 b' and a float64 ``A x`` (A's entries cast;
            an operator with no float64 product gives ``A x`` in its own dtype and the message
            says so); with another ``dot_dtype``, from ``A x`` in A's dtype against b' rounded
            to A's dtype, accumulated in ``dot_dtype``. ``<= rtol`` whenever ``status`` is
            ``CONVERGED``. (A non-symmetric A refused by ``check_symmetry`` reports x0's
            residual against b as given.)
        message: a sentence for a human.
        time_s: wall time of the iteration (setup of preconditioners included).
        setup_s: the part of ``time_s`` spent setting up the preconditioner.
        null_space_component: ``||P_null b|| / ||b||`` removed from b before solving (0 when A is
            nonsingular or b was consistent).
        iterates: the iterates x_k when ``keep_iterates=True`` was asked for, else empty;
            tensors on b's device, as x (on the CPU for a NumPy b).
        returned_iteration: the k of the iterate x_k returned: ``iterations`` (the last),
            except after a breakdown (``STAGNATED``, ``NOT_SPD``, ``NONFINITE``), which returns
            the iterate with the smallest true residual among the last, those checked by
            residual replacement, one kept within 2x of the smallest updated residual and x0
            (0, also where a deflation's coarse solve started from another x).
    """

    status: Status
    iterations: int
    residuals: list[float] = field(repr=False)
    true_residual: float = math.nan
    message: str = ""
    time_s: float = 0.0
    null_space_component: float = 0.0
    setup_s: float = 0.0
    iterates: list[torch.Tensor] = field(default_factory=list, repr=False)
    returned_iteration: int = 0

    def __repr__(self) -> str:
        # (why) the dataclass repr printed every residual: 10,000 iterations made a repr of
        # 235,000 characters; the list stays whole in the field, the repr shows its ends
        parts = []
        for f in fields(self):
            if f.name == "residuals":
                parts.append(f"residuals={_ends(self.residuals)}")
            elif f.repr:
                parts.append(f"{f.name}={getattr(self, f.name)!r}")
        return f"{type(self).__name__}({', '.join(parts)})"

    @property
    def converged(self) -> bool:
        """``status is Status.CONVERGED``."""
        return self.status is Status.CONVERGED


def _ends(values: list[float]) -> str:
    """``values`` in full up to 3 of them, else ``[first, ..., last] (n values)``."""
    if len(values) <= 3:
        return repr(values)
    return f"[{values[0]!r}, ..., {values[-1]!r}] ({len(values)} values)"
