"""A sympy ODE system as a batched torch vector field ``f: (..., d) -> (..., d)``."""

from __future__ import annotations

from collections.abc import Callable, Sequence

import sympy as sp
import torch

from ..layers._checks import check_int, check_real
from .prefix import Decoded

__all__ = ["TorchVectorField"]

_UNARY_FUNCS: dict[type, Callable[[torch.Tensor], torch.Tensor]] = {
    sp.sin: torch.sin,
    sp.cos: torch.cos,
    sp.exp: torch.exp,
    # not in the vocabulary, but sympy writes (u^2)^0.5 of a real u as Abs(u) when decoding
    sp.Abs: torch.abs,
}


class TorchVectorField:
    """``f(u)`` of ``du/dt = f(u)`` evaluated with torch ops, batched over leading dimensions.

    Built by walking the sympy trees once (no ``lambdify`` / ``eval``): symbols ``u_i`` index the
    last axis of ``u``, numbers become constants of ``u``'s dtype and device, so the field runs
    on the GPU and is differentiable.

    Args:
        system: right-hand sides ``(f_0, ..., f_{k-1})`` in ``u_0 ... u_{d-1}``, or a valid
            :class:`~sciml.symbolic.Decoded`; ``f_i`` is ``du_i/dt``, so ``k <= d`` (the first
            ``k`` components of a ``d``-dimensional state).
        dim: the state dimension ``d`` (default: the number of equations); a ``dim`` smaller
            than the number of equations raises.

    Call: ``field(u)`` with ``u`` ``(..., dim)``, a real floating-point tensor, returns
    ``(..., len(system))`` (``(..., dim)`` by default).
    """

    def __init__(self, system: Sequence[sp.Expr] | Decoded, dim: int | None = None) -> None:
        if isinstance(system, Decoded):
            if not system.valid:
                raise ValueError(
                    f"cannot build a vector field from an invalid system: {system.error}"
                )
            system = system.expressions
        self.system = tuple(sp.sympify(f) for f in system)
        # (why) an empty system built and then failed when called, in torch.stack
        if not self.system:
            raise ValueError("expected a system of at least one equation, got none")
        # (why) int() truncated dim=2.5 to 2 and read True as 1 and '3' as 3
        self.dim = len(self.system) if dim is None else check_int("dim", dim)
        # (why) [u_0, u_0] with dim=1 returned 2 columns from a 1-d state: f_1 would be du_1/dt
        # of a component the state does not have
        if len(self.system) > self.dim:
            raise ValueError(
                f"expected at most dim={self.dim} equations (one per state component, f_i = "
                f"du_i/dt), got {len(self.system)} equations"
            )
        for f in self.system:
            for s in f.free_symbols:
                name, index = s.name, s.name[2:]
                # isascii: isdigit accepts 'u_\u00b2', which int() then refuses
                if not (
                    name.startswith("u_")
                    and index.isascii()
                    and index.isdigit()
                    and int(index) < self.dim
                ):
                    raise ValueError(
                        f"expected expressions in u_0 ... u_{self.dim - 1}, got symbol {name!r} in {f}"
                    )
        self._fns = [
            _connected(self._compile(f)) if f.is_number else self._compile(f) for f in self.system
        ]

    def _compile(self, expr: sp.Expr) -> Callable[[torch.Tensor], torch.Tensor]:
        if expr.is_Symbol:
            i = int(expr.name[2:])
            return lambda u: u[..., i]
        if expr.is_number:  # any constant: 2.5, but also E (decoded from exp(1)), pi, sin(1)
            try:
                c = float(expr)
            except TypeError:
                raise ValueError(f"expected real constants, got {expr} in the system") from None
            return lambda u: _constant(c, u)
        args = [self._compile(a) for a in expr.args]
        if expr.is_Add:
            return lambda u: _fold(args, u, torch.add)
        if expr.is_Mul:
            return lambda u: _fold(args, u, torch.mul)
        if expr.is_Pow:
            base = args[0]
            exp = expr.args[1]
            if exp.is_Integer and abs(int(exp)) < 2**63:
                k = int(exp)
                return lambda u: base(u) ** k
            if exp.is_Integer:
                # (why) torch takes an int exponent as int64: u_0**(2**100), which decode reads
                # from 100 pow2, raised "int too big to convert" when called; a float exponent
                # loses the parity of an odd one, which the sign of the base keeps here
                k, odd = float(exp), int(exp) % 2 == 1
                return lambda u: _huge_power(base(u), k, odd)
            e = args[1]
            return lambda u: torch.pow(base(u), e(u))
        fn = _UNARY_FUNCS.get(type(expr))
        if fn is not None:
            a = args[0]
            return lambda u: fn(a(u))
        raise ValueError(f"cannot evaluate {expr!r} ({type(expr).__name__}) with torch")

    def __call__(self, u: torch.Tensor) -> torch.Tensor:
        # (why) constants take u's dtype: an integer u truncated 2.5 u_0 at u_0 = 1 to 2
        check_real("TorchVectorField", "u", u)
        if u.ndim == 0 or u.shape[-1] != self.dim:
            raise ValueError(f"expected u of shape (..., {self.dim}), got {tuple(u.shape)}")
        return torch.stack([f(u) for f in self._fns], dim=-1)


def _constant(c: float, u: torch.Tensor) -> torch.Tensor:
    if abs(c) > torch.finfo(u.dtype).max:
        # (why) torch.full_like raised "value cannot be converted to type float without overflow"
        raise ValueError(
            f"the constant {c:g} of the system is beyond {u.dtype}'s range "
            f"(|value| <= {torch.finfo(u.dtype).max:g}): evaluate with u in torch.float64"
        )
    return torch.full_like(u[..., 0], c)


def _connected(
    fn: Callable[[torch.Tensor], torch.Tensor],
) -> Callable[[torch.Tensor], torch.Tensor]:
    """A constant equation's value, tied to ``u`` in autograd's graph with gradient 0."""

    # (why) full_like is a leaf: an all-constant system's output did not require grad, and
    # torch.autograd.grad of it raised 'element 0 of tensors does not require grad'. 0 * u is
    # NaN at u = +-inf, hence nan_to_num (whose gradient there is 0): the value stays exact
    def fn_u(u: torch.Tensor) -> torch.Tensor:
        return fn(u) + torch.nan_to_num(u[..., 0] * 0, nan=0.0, posinf=0.0, neginf=0.0)

    return fn_u


def _huge_power(b: torch.Tensor, k: float, odd: bool) -> torch.Tensor:
    """``b ** n`` for an integer ``n`` beyond int64, given as the float ``k`` and its parity."""
    out = b.abs() ** k
    return torch.where(b < 0, -out, out) if odd else out


def _fold(fns, u, op):
    out = fns[0](u)
    for f in fns[1:]:
        out = op(out, f(u))
    return out
