"""Triton kernels for the spectral hot paths (imported only when Triton is used).

* ``_cbmm_kernel``: per-mode complex GEMM ``C[k] = op(A[k]) @ op(B[k])`` on interleaved complex
  storage (``view_as_real``), arbitrary strides (so transposes are free) and optional conjugation
  of either operand: the forward and both backward products of the channel mixing.
* ``_rdft_kernel``: truncated real DFT ``out[r, k] = s_k sum_n x[r, n] e^{-2 pi i k n / N}``,
  twiddles computed in registers from ``(k n) mod N`` (fused: no basis matrix is read).
* ``_irdft_kernel``: ``y[r, j] = sum_k w_k Re(z[r, k] e^{2 pi i k j / N})``, the adjoint.

Set ``TRITON_INTERPRET=1`` before importing Triton to run them on the CPU (tests do).
"""

from __future__ import annotations

import torch
import triton
import triton.language as tl

__all__ = ["cbmm", "rdft", "irdft"]

_BLOCK = 32


@triton.jit
def _accumulator(ptr, BM: tl.constexpr, BN: tl.constexpr):
    """A ``(BM, BN)`` block of zeros to sum products in: float32 for float32 data behind
    ``ptr``, float64 otherwise (the one precision rule of the three kernels)."""
    return tl.zeros(
        (BM, BN), dtype=tl.float32 if ptr.dtype.element_ty == tl.float32 else tl.float64
    )


@triton.jit
def _cbmm_kernel(
    a_ptr, b_ptr, c_ptr, M, N, P,
    sak, sam, sap, sbk, sbp, sbn, sck, scm, scn,
    CONJ_A: tl.constexpr, CONJ_B: tl.constexpr,
    BM: tl.constexpr, BN: tl.constexpr, BP: tl.constexpr,
):  # fmt: skip
    k = tl.program_id(0)
    rm = tl.program_id(1) * BM + tl.arange(0, BM)
    rn = tl.program_id(2) * BN + tl.arange(0, BN)
    acc_r = _accumulator(a_ptr, BM, BN)
    acc_i = tl.zeros_like(acc_r)
    for p0 in range(0, P, BP):
        rp = p0 + tl.arange(0, BP)
        a_off = k * sak + rm[:, None] * sam + rp[None, :] * sap
        a_mask = (rm[:, None] < M) & (rp[None, :] < P)
        b_off = k * sbk + rp[:, None] * sbp + rn[None, :] * sbn
        b_mask = (rp[:, None] < P) & (rn[None, :] < N)
        ar = tl.load(a_ptr + 2 * a_off, mask=a_mask, other=0.0)
        ai = tl.load(a_ptr + 2 * a_off + 1, mask=a_mask, other=0.0)
        br = tl.load(b_ptr + 2 * b_off, mask=b_mask, other=0.0)
        bi = tl.load(b_ptr + 2 * b_off + 1, mask=b_mask, other=0.0)
        if CONJ_A:
            ai = -ai
        if CONJ_B:
            bi = -bi
        acc_r += tl.dot(ar, br, input_precision="ieee") - tl.dot(ai, bi, input_precision="ieee")
        acc_i += tl.dot(ar, bi, input_precision="ieee") + tl.dot(ai, br, input_precision="ieee")
    c_off = k * sck + rm[:, None] * scm + rn[None, :] * scn
    c_mask = (rm[:, None] < M) & (rn[None, :] < N)
    tl.store(c_ptr + 2 * c_off, acc_r, mask=c_mask)
    tl.store(c_ptr + 2 * c_off + 1, acc_i, mask=c_mask)


@triton.jit
def _angle(t, N, dtype: tl.constexpr):
    """``2 pi t / N`` in ``dtype``. Triton's float literals are float32, so 2 pi is split into
    a part exact in float32 and a small remainder: float64 angles keep ~1e-13 accuracy."""
    frac = t.to(dtype) / N
    return frac * 6.28125 + frac * 0.0019353071795864769


@triton.jit
def _rdft_kernel(
    x_ptr, s_ptr, out_ptr, R, N, E, sxr, sxn, sor, sok,
    BR: tl.constexpr, BE: tl.constexpr, BN: tl.constexpr,
):  # fmt: skip
    rr = tl.program_id(0) * BR + tl.arange(0, BR)
    rk = tl.program_id(1) * BE + tl.arange(0, BE)
    acc_c = _accumulator(x_ptr, BR, BE)
    acc_s = tl.zeros_like(acc_c)
    for n0 in range(0, N, BN):
        rn = n0 + tl.arange(0, BN)
        x = tl.load(
            x_ptr + rr[:, None] * sxr + rn[None, :] * sxn,
            mask=(rr[:, None] < R) & (rn[None, :] < N),
            other=0.0,
        )
        # (k n) mod N in integers keeps the angle exact for any grid size
        ang = _angle((rn[:, None] * rk[None, :]) % N, N, acc_c.dtype)
        acc_c += tl.dot(x, tl.cos(ang).to(x.dtype), input_precision="ieee")
        acc_s += tl.dot(x, tl.sin(ang).to(x.dtype), input_precision="ieee")
    s = tl.load(s_ptr + rk, mask=rk < E, other=0.0)
    off = rr[:, None] * sor + rk[None, :] * sok
    mask = (rr[:, None] < R) & (rk[None, :] < E)
    tl.store(out_ptr + 2 * off, acc_c * s[None, :], mask=mask)
    tl.store(out_ptr + 2 * off + 1, -acc_s * s[None, :], mask=mask)


@triton.jit
def _irdft_kernel(
    z_ptr, w_ptr, y_ptr, R, N, E, szr, szk, syr, syn,
    BR: tl.constexpr, BN: tl.constexpr, BE: tl.constexpr,
):  # fmt: skip
    rr = tl.program_id(0) * BR + tl.arange(0, BR)
    rn = tl.program_id(1) * BN + tl.arange(0, BN)
    acc = _accumulator(z_ptr, BR, BN)
    for k0 in range(0, E, BE):
        rk = k0 + tl.arange(0, BE)
        mask = (rr[:, None] < R) & (rk[None, :] < E)
        off = rr[:, None] * szr + rk[None, :] * szk
        w = tl.load(w_ptr + rk, mask=rk < E, other=0.0)
        zr = tl.load(z_ptr + 2 * off, mask=mask, other=0.0) * w[None, :]
        zi = tl.load(z_ptr + 2 * off + 1, mask=mask, other=0.0) * w[None, :]
        ang = _angle((rk[:, None] * rn[None, :]) % N, N, acc.dtype)
        acc += tl.dot(zr, tl.cos(ang).to(zr.dtype), input_precision="ieee")
        acc -= tl.dot(zi, tl.sin(ang).to(zi.dtype), input_precision="ieee")
    tl.store(y_ptr + rr[:, None] * syr + rn[None, :] * syn, acc,
             mask=(rr[:, None] < R) & (rn[None, :] < N))  # fmt: skip


# (why) compiled kernels launch on CUDA only: given a CPU tensor, Triton's own error is
# "0 active drivers ([]). There should only be one.", which names neither the tensor nor a fix
_INTERPRETED = not isinstance(_cbmm_kernel, triton.runtime.jit.JITFunction)


def _check_cuda(x: torch.Tensor) -> None:
    if not _INTERPRETED and x.device.type != "cuda":
        raise ValueError(
            f"the Triton kernels (TritonSpectral(impl='triton')) run on CUDA tensors, got one on "
            f"{x.device}: use TritonSpectral(impl='torch') or the default backend there, or set "
            f"TRITON_INTERPRET=1 before triton is imported to run the kernels interpreted"
        )


def cbmm(
    a: torch.Tensor, b: torch.Tensor, *, conj_a: bool = False, conj_b: bool = False
) -> torch.Tensor:
    """``op(a) @ op(b)`` per batch entry; ``a (K, M, P)``, ``b (K, P, N)`` complex (any strides)."""
    _check_cuda(a)
    kb, m, p = a.shape
    n = b.shape[2]
    c = torch.empty(kb, m, n, dtype=a.dtype, device=a.device)
    ar, br, cr = torch.view_as_real(a), torch.view_as_real(b), torch.view_as_real(c)
    grid = (kb, triton.cdiv(m, _BLOCK), triton.cdiv(n, _BLOCK))
    _cbmm_kernel[grid](
        ar, br, cr, m, n, p, *a.stride(), *b.stride(), *c.stride(),
        CONJ_A=conj_a, CONJ_B=conj_b, BM=_BLOCK, BN=_BLOCK, BP=_BLOCK,
    )  # fmt: skip
    return c


def rdft(x: torch.Tensor, e: int, scale: torch.Tensor) -> torch.Tensor:
    """Truncated real DFT ``(R, N) -> (R, e)`` complex (see :mod:`sciml.kernels.reference`)."""
    _check_cuda(x)
    r, n = x.shape
    out = torch.empty(r, e, dtype=torch.complex128 if x.dtype == torch.float64 else torch.complex64,
                      device=x.device)  # fmt: skip
    grid = (triton.cdiv(r, _BLOCK), triton.cdiv(e, _BLOCK))
    _rdft_kernel[grid](x, scale.to(x.dtype).contiguous(), torch.view_as_real(out), r, n, e,
                       *x.stride(), *out.stride(), BR=_BLOCK, BE=_BLOCK, BN=_BLOCK)  # fmt: skip
    return out


def irdft(z: torch.Tensor, n: int, weight: torch.Tensor) -> torch.Tensor:
    """Weighted inverse real DFT ``(R, e)`` complex -> ``(R, n)`` real."""
    _check_cuda(z)
    r, e = z.shape
    y = torch.empty(r, n, dtype=z.real.dtype, device=z.device)
    grid = (triton.cdiv(r, _BLOCK), triton.cdiv(n, _BLOCK))
    _irdft_kernel[grid](torch.view_as_real(z), weight.to(y.dtype).contiguous(), y, r, n, e,
                        *z.stride(), *y.stride(), BR=_BLOCK, BN=_BLOCK, BE=_BLOCK)  # fmt: skip
    return y
