"""Differentiable spectral ops: ``torch.autograd.Function`` s whose forward and backward run on
either the Triton kernels or the PyTorch reference (same math, chosen by ``impl``).

Backward passes (``g`` the incoming gradient, ``^H`` conjugate transpose, PyTorch's convention
for complex gradients):

* ``C = A @ B``: ``dA = g @ B^H``, ``dB = A^H @ g`` (the same complex GEMM kernel with strides
  and conjugation flags, no copies; with ``create_graph=True`` or forward-mode tangents the
  products go through ``ComplexBMM`` again, on copied conjugates, so they are differentiable).
* ``Z = rdft(x, e, s)`` and ``y = irdft(Z, n, w)`` are adjoint with ``w = s``: the backward of
  each is the other one.

Forward mode (``jvp``, for ``torch.func.jacfwd``): each op is linear in its tensor input, so the
tangent is the op applied to the input's tangent (``d(A B) = dA B + A dB`` for the product).
``torch.func.vmap`` runs forward and backward on the batched tensors (``generate_vmap_rule``),
which is why inside any ``torch.func`` transform ``cbmm`` / ``rdft`` / ``irdft`` take the PyTorch
reference rather than the Triton kernels.
"""

from __future__ import annotations

import torch
import torch.autograd.forward_ad as fwAD

from ..layers._cache import transforming
from . import reference

__all__ = ["ComplexBMM", "RealDFT", "InverseRealDFT", "cbmm", "rdft", "irdft"]


def _ops(impl: str):
    if impl == "triton":
        try:
            from . import triton_kernels
        except ImportError as err:
            if err.name != "triton":
                raise
            raise ImportError(
                "the Triton kernels (TritonSpectral(impl='triton')) need Triton: "
                "pip install 'sciml[kernels]' (or pip install triton); impl='torch' runs the "
                "same graph on PyTorch ops, and the default spectral backend never needs Triton"
            ) from None

        return triton_kernels
    if impl == "torch":
        return None
    raise ValueError(f"impl must be 'triton' or 'torch', got {impl!r}")


class ComplexBMM(torch.autograd.Function):
    generate_vmap_rule = True  # torch.func.vmap: run forward/backward on the batched tensors

    @staticmethod
    def forward(a: torch.Tensor, b: torch.Tensor, impl: str) -> torch.Tensor:
        ops = _ops(impl)
        return ops.cbmm(a, b) if ops else reference.cbmm(a, b)

    @staticmethod
    def setup_context(ctx, inputs, output) -> None:
        a, b, impl = inputs
        ctx.save_for_backward(a, b)
        ctx.save_for_forward(a, b)
        ctx.impl = impl

    @staticmethod
    def backward(ctx, g: torch.Tensor):
        a, b = ctx.saved_tensors
        ops = _ops(_impl(ctx.impl, g))
        g = g.resolve_conj()
        da = db = None
        # The products must be differentiable while a graph is recorded (create_graph=True:
        # second derivatives, a PINN loss on u_x and its weight gradient) and while forward-mode
        # tangents flow (a dual level open: forward-over-reverse Hessian-vector products).
        differentiable = torch.is_grad_enabled() or fwAD._current_level >= 0
        if ops is not None and differentiable:
            # a raw kernel launch records no graph and no tangent, so the products go through
            # this Function again (the conjugates are materialised: the kernel's conjugation
            # flags serve the first-order path only; conj_physical, not a conj() view: see below)
            if ctx.needs_input_grad[0]:
                da = _apply_cbmm(g, b.transpose(1, 2).conj_physical(), ctx.impl)
            if ctx.needs_input_grad[1]:
                db = _apply_cbmm(a.transpose(1, 2).conj_physical(), g, ctx.impl)
            return da, db, None
        # a conj() view of a transposed dual tensor whose tangent is batched trips an internal
        # assert of PyTorch's forward AD ("has_fw_view"): forward-over-reverse under the engine's
        # vmap, hessian(..., vectorize=True, outer_jacobian_strategy="forward-mode")
        conj = torch.conj_physical if differentiable else torch.conj
        if ctx.needs_input_grad[0]:
            bt = b.transpose(1, 2)
            da = ops.cbmm(g, bt, conj_b=True) if ops else torch.bmm(g, conj(bt))
        if ctx.needs_input_grad[1]:
            at = a.transpose(1, 2)
            db = ops.cbmm(at, g, conj_a=True) if ops else torch.bmm(conj(at), g)
        return da, db, None

    @staticmethod
    def jvp(ctx, da: torch.Tensor | None, db: torch.Tensor | None, _impl_tangent) -> torch.Tensor:
        # d(a b) = da b + a db (forward mode: torch.func.jacfwd, torch.func.jvp)
        a, b = ctx.saved_tensors
        out = None
        if da is not None:
            out = _apply_cbmm(da.resolve_conj(), b, _impl(ctx.impl, da))
        if db is not None:
            t = _apply_cbmm(a, db.resolve_conj(), _impl(ctx.impl, db))
            out = t if out is None else out + t
        return out


class RealDFT(torch.autograd.Function):
    generate_vmap_rule = True

    @staticmethod
    def forward(x: torch.Tensor, e: int, scale: torch.Tensor, impl: str) -> torch.Tensor:
        ops = _ops(impl)
        return ops.rdft(x, e, scale) if ops else reference.rdft(x, e, scale)

    @staticmethod
    def setup_context(ctx, inputs, output) -> None:
        x, e, scale, impl = inputs
        ctx.save_for_backward(scale)
        ctx.save_for_forward(scale)
        ctx.n, ctx.e, ctx.impl = x.shape[-1], e, impl

    @staticmethod
    def backward(ctx, g: torch.Tensor):
        (scale,) = ctx.saved_tensors
        # out = x C^T - i x S^T  =>  dL/dx = Re(g) C - Im(g) S, i.e. irdft with weight = scale
        return (
            _apply_irdft(g.resolve_conj().contiguous(), ctx.n, scale, _impl(ctx.impl, g)),
            None,
            None,
            None,
        )

    @staticmethod
    def jvp(ctx, dx: torch.Tensor, _e, _scale, _impl_tangent) -> torch.Tensor:
        (scale,) = ctx.saved_tensors  # linear in x (scale is a constant)
        return _apply_rdft(dx.contiguous(), ctx.e, scale, _impl(ctx.impl, dx))


class InverseRealDFT(torch.autograd.Function):
    generate_vmap_rule = True

    @staticmethod
    def forward(z: torch.Tensor, n: int, weight: torch.Tensor, impl: str) -> torch.Tensor:
        ops = _ops(impl)
        return ops.irdft(z, n, weight) if ops else reference.irdft(z, n, weight)

    @staticmethod
    def setup_context(ctx, inputs, output) -> None:
        z, n, weight, impl = inputs
        ctx.save_for_backward(weight)
        ctx.save_for_forward(weight)
        ctx.n, ctx.e, ctx.impl = n, z.shape[-1], impl

    @staticmethod
    def backward(ctx, g: torch.Tensor):
        (weight,) = ctx.saved_tensors
        return _apply_rdft(g.contiguous(), ctx.e, weight, _impl(ctx.impl, g)), None, None, None

    @staticmethod
    def jvp(ctx, dz: torch.Tensor, _n, _weight, _impl_tangent) -> torch.Tensor:
        (weight,) = ctx.saved_tensors  # linear in z (weight is a constant)
        return _apply_irdft(dz.resolve_conj().contiguous(), ctx.n, weight, _impl(ctx.impl, dz))


# (why) dynamo refuses to trace an autograd.Function that defines jvp ("Unsupported custom jvp":
# a graph break, an error under fullgraph=True). Its twin without jvp runs the same forward and
# backward; a compiled region carries no forward-mode tangents that would need the jvp.
class _ComplexBMMCompiled(ComplexBMM):
    jvp = torch.autograd.Function.jvp


class _RealDFTCompiled(RealDFT):
    jvp = torch.autograd.Function.jvp


class _InverseRealDFTCompiled(InverseRealDFT):
    jvp = torch.autograd.Function.jvp


# (why) one function per op, not a lookup by class: dynamo traces neither `fn is ComplexBMM`,
# a dict keyed by the class nor an attribute set on it
def _apply_cbmm(*args):
    fn = _ComplexBMMCompiled if torch.compiler.is_compiling() else ComplexBMM
    return fn.apply(*args)


def _apply_rdft(*args):
    fn = _RealDFTCompiled if torch.compiler.is_compiling() else RealDFT
    return fn.apply(*args)


def _apply_irdft(*args):
    fn = _InverseRealDFTCompiled if torch.compiler.is_compiling() else InverseRealDFT
    return fn.apply(*args)


# the batched tensors of the autograd engine's own vmap (is_grads_batched) are not functorch's
_legacy_batched = getattr(torch._C._functorch, "is_legacy_batchedtensor", lambda t: False)


def _impl(impl: str, *tensors: torch.Tensor) -> str:
    """The PyTorch reference where a Triton launch cannot run: the launches read raw data
    pointers, which batched and wrapped tensors do not have. That is inside a ``torch.func``
    transform (the functions' ``generate_vmap_rule`` and ``jvp`` then run on the reference ops),
    and in a backward run under the autograd engine's own vmap
    (``torch.autograd.grad(..., is_grads_batched=True)``,
    ``torch.autograd.functional.jacobian(..., vectorize=True)``), which a graph recorded with the
    kernels meets, so backward and ``jvp`` ask again with their incoming ``tensors``."""
    if impl == "torch":
        return impl
    if transforming() or any(_legacy_batched(t) for t in tensors):
        return "torch"
    return impl


def cbmm(a: torch.Tensor, b: torch.Tensor, *, impl: str = "torch") -> torch.Tensor:
    """Differentiable ``a @ b`` for ``a (K, M, P)``, ``b (K, P, N)`` complex."""
    return _apply_cbmm(a.resolve_conj(), b.resolve_conj(), _impl(impl))


def rdft(x: torch.Tensor, e: int, scale: torch.Tensor, *, impl: str = "torch") -> torch.Tensor:
    """Differentiable truncated real DFT ``(R, N) -> (R, e)``."""
    return _apply_rdft(x, e, scale, _impl(impl))


def irdft(z: torch.Tensor, n: int, weight: torch.Tensor, *, impl: str = "torch") -> torch.Tensor:
    """Differentiable weighted inverse real DFT ``(R, e) -> (R, n)``."""
    return _apply_irdft(z.resolve_conj(), n, weight, _impl(impl))
