"""One autograd node for a whole spectral convolution: truncated DFT GEMMs, per-mode complex
channel mixing, inverse DFT GEMMs, with a hand-written backward.

Why: at the sizes people train FNOs on, forward + backward of
:class:`~sciml.layers.spectral_backends.DFTMatmul` on a GPU is dominated by host overhead (about
150 ATen calls and 25 autograd nodes for a 2D layer, each costing microseconds on the host),
not by GPU arithmetic. Here the whole layer is one autograd node; it runs ``2 d + 3`` kernels
forward and ``2 d + 4`` backward (on the CPU two more: ATen there materialises the conjugated
operands of the two backward products, which cuBLAS takes as ``op = C``), and every reshape is a
view.

Memory: the input ``u`` is saved by reference (not copied) for the double-backward path; in an
FNO block the same tensor also feeds the pointwise skip, which keeps it alive anyway.

Layout. Complex numbers along the DFT stages are *planar*: a real tensor with a size-2 axis
``ri`` (real, imaginary) placed right next to the axis that the next stage contracts, so that one
real GEMM with a ``2 x 2``-block basis performs the complex product. With ``d`` spatial dims,
grid ``(n_1, ..., n_d)``, kept modes ``e`` and ``P_i = 2 e_i`` kept frequencies on a non-last dim:

* forward, last dim: ``u (b, c, n_1, ..., n_d) @ B (n_d, 2 e_d)`` gives
  ``(b, c, n_1, ..., n_{d-1}, ri, k_d)``;
* forward, dim ``i = d-1, ..., 1``: ``F_i (2 P_i, 2 n_i)`` contracts ``(n_i, ri)`` of every
  ``(b, c, n_1, ..., n_{i-1})`` slice (one batched GEMM, the basis broadcast), giving
  ``(..., ri, j_i, j_{i+1}, ..., k_d)``; at the end ``(b, c, ri, K)``, ``K`` the kept modes in
  mode-major block order (see :mod:`sciml.layers.spectral_backends`);
* mixing: one permuting copy to complex ``(K, b, c)`` and one complex batched GEMM with the
  weight ``(K, c, o)``, one permuting copy back to planar ``(b, o, ri, K)``;
* inverse, dim ``i = 1, ..., d-1``: ``G_i (2 m_i, 2 P_i)`` contracts ``(ri, j_i)`` giving
  ``(b, o, m_1, ..., m_i, ri, j_{i+1}, ...)``;
* inverse, last dim: ``(..., ri, k_d) @ H (2 e_d, m_d)`` with ``H = [c_k cos; -c_k sin]``,
  ``c_0 = c_{m/2} = 1`` else 2, and the sine rows of the DC / Nyquist bins exactly zero: that is
  ``irfft``, which ignores the imaginary parts of those bins.

The backward is the transposed chain (``B^T``, ``F_i^T``, ``W^H``, ``G_i^T``, ``H^T``) plus the
weight gradient ``X^H @ dZ`` per mode. It is written with differentiable torch ops, so second
derivatives (``create_graph=True``) work too.

``torch.func`` transforms (``vmap``, ``grad``, ``jacrev``, ``jacfwd``): :func:`fused_spectral_conv`
computes the same function with :class:`~sciml.layers.spectral_backends.DFTMatmul`'s plain torch
ops instead, which every transform differentiates and batches by itself. Why not a
``setup_context`` / ``generate_vmap_rule`` form of this node: its views are planned for one
unbatched shape (``_Plan``), forward AD (``jacfwd``) would need a hand-written ``jvp`` too, and the
node exists to save host overhead, which a transform's per-op dispatch spends anyway. The check
(:func:`~sciml.layers._cache.transforming`) is one C call per layer call. The same fallback
serves forward-mode AD outside ``torch.func`` (``torch.autograd.forward_ad`` dual tensors), for
which the node has no ``jvp`` either.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass

import torch
import torch.autograd.forward_ad as fwAD

from ._cache import cache_unless_tracing, transforming

__all__ = ["fused_spectral_conv"]


# ---------------------------------------------------------------------------- bases (cached)


def _angles(freqs: torch.Tensor, n: int) -> torch.Tensor:
    """``2 pi f x / n`` for ``f`` (rows) and ``x = 0..n-1`` (cols), the product reduced mod n
    first so large products keep their accuracy (float64)."""
    t = freqs[:, None] * torch.arange(n, dtype=torch.float64)
    return 2 * math.pi * torch.remainder(t, n) / n


def _kept(e: int) -> torch.Tensor:
    """Kept frequencies of a non-last dim in block order: ``0..e-1, -e..-1``."""
    return torch.tensor(list(range(e)) + list(range(-e, 0)), dtype=torch.float64)


def _forward_last(n: int, e: int) -> torch.Tensor:
    """``(n, 2e)``, columns ``(ri, k)``: ``[cos | -sin] / n`` (the kept ``rfft`` bins)."""
    ang = _angles(torch.arange(e, dtype=torch.float64), n).T  # (n, e)
    return torch.cat([torch.cos(ang), -torch.sin(ang)], dim=1) / n


def _forward_mid(n: int, e: int) -> torch.Tensor:
    """``(2P, 2n)``, rows ``(ri_out, j)``, cols ``(x, ri_in)``: the real form of
    ``F[j, x] = exp(-2 pi i f_j x / n) / n`` acting on a planar complex vector."""
    ang = _angles(_kept(e), n)  # (P, n)
    fr, fi = torch.cos(ang) / n, -torch.sin(ang) / n
    # Yr = Fr Xr - Fi Xi, Yi = Fi Xr + Fr Xi
    top = torch.stack([fr, -fi], dim=-1).reshape(2 * e, 2 * n)
    bottom = torch.stack([fi, fr], dim=-1).reshape(2 * e, 2 * n)
    return torch.cat([top, bottom], dim=0)


def _inverse_mid(m: int, e: int) -> torch.Tensor:
    """``(2m, 2P)``, rows ``(x, ri_out)``, cols ``(ri_in, j)``: the real form of
    ``G[x, j] = exp(+2 pi i f_j x / m)``."""
    ang = _angles(_kept(e), m).T  # (m, P)
    gr, gi = torch.cos(ang), torch.sin(ang)
    real_row = torch.cat([gr, -gi], dim=1)  # Zr = Gr Yr - Gi Yi
    imag_row = torch.cat([gi, gr], dim=1)  # Zi = Gi Yr + Gr Yi
    return torch.stack([real_row, imag_row], dim=1).reshape(2 * m, 4 * e)


def _inverse_last(m: int, e: int) -> torch.Tensor:
    """``(2e, m)``, rows ``(ri, k)``: ``[c_k cos; -c_k sin]`` with the sine rows of the DC and
    (kept) Nyquist bins exactly zero, as ``irfft`` ignores those imaginary parts."""
    k = torch.arange(e, dtype=torch.float64)
    c = torch.full((e,), 2.0, dtype=torch.float64)
    c[0] = 1.0
    nyquist = m % 2 == 0 and e > m // 2
    if nyquist:
        c[m // 2] = 1.0
    ang = _angles(k, m)  # (e, m)
    sin = torch.sin(ang)
    sin[0] = 0.0
    if nyquist:
        sin[m // 2] = 0.0
    return torch.cat([c[:, None] * torch.cos(ang), -c[:, None] * sin], dim=0)


@dataclass(frozen=True)
class _Bases:
    """Real bases for one (grid, kept modes, output grid, dtype, device), with transposes."""

    fwd_last: torch.Tensor  # (n_d, 2 e_d)
    fwd_mid: tuple[torch.Tensor, ...]  # per non-last dim: (2P, 2n)
    inv_mid: tuple[torch.Tensor, ...]  # per non-last dim: (2m, 2P)
    inv_last: torch.Tensor  # (2 e_d, m_d)


@cache_unless_tracing(maxsize=64)
def _bases(
    spatial: tuple[int, ...],
    modes: tuple[int, ...],
    out_shape: tuple[int, ...],
    dtype: torch.dtype,
    device: torch.device,
) -> _Bases:
    def cast(t: torch.Tensor) -> torch.Tensor:
        return t.to(dtype=dtype, device=device).contiguous()

    return _Bases(
        cast(_forward_last(spatial[-1], modes[-1])),
        tuple(cast(_forward_mid(n, e)) for n, e in zip(spatial[:-1], modes[:-1])),
        tuple(cast(_inverse_mid(m, e)) for m, e in zip(out_shape[:-1], modes[:-1])),
        cast(_inverse_last(out_shape[-1], modes[-1])),
    )


# A batched stage: the basis expanded over the batch (stride 0, no copy), and the 3-D view
# ``(lead, q, t)`` its input is read through.
_Stage = tuple[torch.Tensor, tuple[int, int, int]]


@dataclass(frozen=True)
class _Plan:
    """Everything shape-dependent of one call, precomputed so a call is views and GEMMs only."""

    b: int
    c: int
    o: int
    u_shape: tuple[int, ...]  # (b, c, *spatial)
    y_shape: tuple[int, ...]  # (b, o, *out_shape)
    n_last: int  # n_d
    m_last: int  # m_d
    e2_last: int  # 2 e_d
    fwd_last: torch.Tensor
    fwd_last_t: torch.Tensor
    inv_last: torch.Tensor
    inv_last_t: torch.Tensor
    analysis: tuple[_Stage, ...]  # dims d-1 .. 1
    analysis_t: tuple[_Stage, ...]  # its transpose, dims 1 .. d-1
    synthesis: tuple[_Stage, ...]  # dims 1 .. d-1
    synthesis_t: tuple[_Stage, ...]  # its transpose, dims d-1 .. 1


@cache_unless_tracing(maxsize=64)
def _plan(
    b: int,
    c: int,
    o: int,
    spatial: tuple[int, ...],
    modes: tuple[int, ...],
    out_shape: tuple[int, ...],
    dtype: torch.dtype,
    device: torch.device,
) -> _Plan:
    bases = _bases(spatial, modes, out_shape, dtype, device)
    d = len(spatial)
    # analysis: (lead, 2 n_i, t) -> (lead, 2 P_i, t), innermost non-last dim first
    analysis, analysis_t = [], []
    lead, t = b * c * math.prod(spatial[:-1]), modes[-1]
    for axis in range(d - 2, -1, -1):
        lead //= spatial[axis]
        mat = bases.fwd_mid[axis]
        p, q = mat.shape
        analysis.append((mat.expand(lead, p, q), (lead, q, t)))
        analysis_t.insert(0, (mat.T.expand(lead, q, p), (lead, p, t)))
        t *= p // 2
    # synthesis: (lead, 2 P_i, t) -> (lead, 2 m_i, t), outermost dim first
    synthesis, synthesis_t = [], []
    lead = b * o
    for axis in range(d - 1):
        mat = bases.inv_mid[axis]
        p, q = mat.shape
        t //= q // 2
        synthesis.append((mat.expand(lead, p, q), (lead, q, t)))
        synthesis_t.insert(0, (mat.T.expand(lead, q, p), (lead, p, t)))
        lead *= out_shape[axis]
    return _Plan(
        b,
        c,
        o,
        (b, c, *spatial),
        (b, o, *out_shape),
        spatial[-1],
        out_shape[-1],
        2 * modes[-1],
        bases.fwd_last,
        bases.fwd_last.T,
        bases.inv_last,
        bases.inv_last.T,
        tuple(analysis),
        tuple(analysis_t),
        tuple(synthesis),
        tuple(synthesis_t),
    )


# ---------------------------------------------------------------------------- the chain


def _chain(x: torch.Tensor, stages: tuple[_Stage, ...]) -> torch.Tensor:
    for mat, shape in stages:
        x = torch.bmm(mat, x.view(shape))
    return x


def _to_modes(x: torch.Tensor, b: int, c: int) -> torch.Tensor:
    """Planar ``(b, c, 2, K)`` real -> complex mode-major ``(K, b, c)`` (one copy)."""
    x = x.view(b, c, 2, -1).permute(3, 0, 1, 2).contiguous()
    return torch.view_as_complex(x)


def _from_modes(z: torch.Tensor) -> torch.Tensor:
    """Complex mode-major ``(K, b, c)`` -> planar ``(b, c, 2, K)`` real (one copy)."""
    return torch.view_as_real(z).permute(1, 2, 3, 0).contiguous()


class _FusedSpectralConv(torch.autograd.Function):
    """``y = synthesis(W * analysis(u))`` with a hand-written backward (see module docstring).

    ``weight`` comes in the parameter layout ``(in, out, 2e_1, ..., e_d)`` of
    :class:`~sciml.layers.SpectralConv` (a permuted view of mode-major memory), so the layer's
    parameter goes in without an autograd node of its own; its gradient goes back as the same
    permuted view, which ``AccumulateGrad`` keeps without a copy.
    """

    @staticmethod
    def forward(ctx, u: torch.Tensor, weight: torch.Tensor, plan: _Plan) -> torch.Tensor:
        if torch.is_autocast_enabled(u.device.type):  # the bases are float32/64: keep them so
            with torch.autocast(u.device.type, enabled=False):
                return _FusedSpectralConv.forward(ctx, u, weight, plan)
        xc = _analysis(u, plan)  # (K, b, i) complex
        z = _from_modes(torch.bmm(xc, _modes_weight(weight, plan)))  # (b, o, ri, K)
        y = torch.mm(_chain(z, plan.synthesis).view(-1, plan.e2_last), plan.inv_last)
        # u and weight are inputs (saved by reference): a double backward rebuilds xc from them
        ctx.save_for_backward(u, weight, xc)
        ctx.plan = plan
        return y.view(plan.y_shape)

    @staticmethod
    def backward(ctx, grad: torch.Tensor):
        if torch.is_autocast_enabled(grad.device.type):
            with torch.autocast(grad.device.type, enabled=False):
                return _FusedSpectralConv.backward(ctx, grad.to(ctx.plan.inv_last.dtype))
        u, weight, xc = ctx.saved_tensors
        plan: _Plan = ctx.plan
        if torch.is_grad_enabled():  # create_graph=True: let the graph reach u and weight
            xc = _analysis(u, plan)
        w = _modes_weight(weight, plan)  # (K, i, o)
        g = torch.mm(grad.reshape(-1, plan.m_last), plan.inv_last_t)  # (.., m_{d-1}, ri, k_d)
        gz = _to_modes(_chain(g, plan.synthesis_t), plan.b, plan.o)  # (K, b, o) complex
        grad_u = grad_w = None
        if ctx.needs_input_grad[1]:
            d = weight.ndim - 2
            gw = torch.bmm(xc.mH, gz).view(*weight.shape[2:], plan.c, plan.o)  # X^H dZ
            grad_w = gw.permute(d, d + 1, *range(d))  # the parameter's layout, a view
        if ctx.needs_input_grad[0]:
            gx = _chain(_from_modes(torch.bmm(gz, w.mH)), plan.analysis_t)  # dZ W^H
            grad_u = torch.mm(gx.view(-1, plan.e2_last), plan.fwd_last_t).view(plan.u_shape)
        return grad_u, grad_w, None


def _analysis(u: torch.Tensor, plan: _Plan) -> torch.Tensor:
    """Real ``u (b, i, *spatial)`` -> complex mode-major kept coefficients ``(K, b, i)``."""
    x = torch.mm(u.reshape(-1, plan.n_last), plan.fwd_last)  # (.., n_{d-1}, ri, k_d)
    return _to_modes(_chain(x, plan.analysis), plan.b, plan.c)


def _modes_weight(weight: torch.Tensor, plan: _Plan) -> torch.Tensor:
    """Parameter layout ``(i, o, 2e_1, ..., e_d)`` -> ``(K, i, o)`` (a view of mode-major
    memory)."""
    d = weight.ndim - 2
    return weight.permute(*range(2, d + 2), 0, 1).reshape(-1, plan.c, plan.o)


def _forward_ad(u: torch.Tensor, weight: torch.Tensor) -> bool:
    """Whether ``u`` or ``weight`` carries a forward-mode tangent (``torch.autograd.forward_ad``
    dual tensors, as in forward-over-reverse Hessian products): the node has no ``jvp``, which
    would raise. Outside a dual level this is one module-attribute read."""
    if fwAD._current_level < 0:  # no dual level open: nothing can carry a tangent
        return False
    return any(fwAD.unpack_dual(t).tangent is not None for t in (u, weight))


def fused_spectral_conv(
    u: torch.Tensor, weight: torch.Tensor, modes: Sequence[int], out_shape: Sequence[int]
) -> torch.Tensor:
    """Spectral convolution as one autograd node.

    Args:
        u: real ``(batch, in_channels, *spatial)``, float32 or float64.
        weight: complex ``(in_channels, out_channels, 2e_1, ..., 2e_{d-1}, e_d)`` of the
            matching precision, already truncated to the effective ``modes`` (the layout of
            :attr:`SpectralConv.weight <sciml.layers.SpectralConv>`).
        modes: effective kept modes ``e`` per spatial dim.
        out_shape: spatial size of the output.

    Returns:
        real ``(batch, out_channels, *out_shape)``:
        ``irfftn(W(k) rfftn(u)(k))`` over the kept ``k``, both transforms ``norm="forward"``,
        the same function as :class:`~sciml.layers.spectral_backends.DFTMatmul`.
    """
    d = len(modes)
    spatial = tuple(u.shape[2:])
    block = tuple(2 * e for e in modes[:-1]) + (modes[-1],)
    if u.ndim != d + 2 or tuple(weight.shape[2:]) != block or weight.shape[0] != u.shape[1]:
        raise ValueError(
            f"expected u (batch, in, {d} spatial dims) and weight (in, out, *{block}), got "
            f"u {tuple(u.shape)} and weight {tuple(weight.shape)}"
        )
    if u.dtype not in (torch.float32, torch.float64) or weight.dtype != (
        torch.complex128 if u.dtype == torch.float64 else torch.complex64
    ):
        raise TypeError(
            f"expected float32 u with complex64 weight or float64 with complex128, got "
            f"{u.dtype} and {weight.dtype}"
        )
    keep = out_shape[-1] // 2 + 1
    if modes[-1] > keep:
        # (why) irfft drops the bins past the output's Nyquist k = m // 2, as DFTMatmul's
        # inverse does; the inverse basis folded them onto m - k
        weight = weight.narrow(-1, 0, keep)
        modes = (*modes[:-1], keep)
    if transforming() or _forward_ad(u, weight):  # (why) see the module docstring
        from .spectral_backends import DFTMatmul

        return DFTMatmul().convolve(u, weight, modes, out_shape)
    b, c, o = u.shape[0], u.shape[1], weight.shape[1]
    plan = _plan(b, c, o, spatial, tuple(modes), tuple(out_shape), u.dtype, u.device)
    return _FusedSpectralConv.apply(u, weight, plan)
