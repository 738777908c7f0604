"""Shifted-window attention in the Swin-v2 form (Liu et al., "Swin Transformer V2", CVPR 2022).

Inside each window of ``N = w_h * w_w`` tokens and for each head::

    A = softmax( s_h * cos(q_i, k_j) + B_h(i, j) + M(i, j) ),    s_h = exp(min(log_s_h, log 100))
    B_h(i, j) = 16 * sigmoid( MLP(phi(p_i - p_j)) )_h,          phi(d) = sign(d) log2(1 + 8|d|/(w-1)) / 3

``cos`` is the cosine similarity of query and key (scaled cosine attention), ``s_h`` a learned
per-head logit scale, ``B`` the continuous relative position bias: a 2-layer MLP evaluated on
log-spaced relative coordinates, and ``M`` the additive mask that keeps tokens from attending
across the seams of a cyclically shifted window grid.

The attention itself runs through ``torch.nn.functional.scaled_dot_product_attention``: queries
and keys are L2-normalised first and the logit scale is folded into the queries, so the fused
kernel sees ``softmax(Q K^T + bias)`` with ``scale=1`` and the bias as ``attn_mask``.
"""

from __future__ import annotations

import math

import torch
import torch.nn.functional as F
from torch import nn

from ._cache import tracing, transforming
from ._checks import check_dtype, check_grid, check_int, check_ints, check_size, check_tensor
from .conditional_norm import layer_norm
from .drop_path import DropPath

__all__ = [
    "WindowAttention",
    "SwinV2Block",
    "window_partition",
    "window_reverse",
    "shifted_window_mask",
]

# The reference implementation (HF transformers' Swinv2, used by Poseidon) adds its -100 seam
# mask twice; -200 reproduces its outputs exactly, also where logits exceed 100 in magnitude.
MASK_VALUE = -200.0


def window_partition(x: torch.Tensor, window: int) -> torch.Tensor:
    """``(b, h, w, c)`` -> ``(b * n_windows, window * window, c)``, windows in row-major order."""
    b, h, w, c = x.shape
    x = x.view(b, h // window, window, w // window, window, c)
    return x.permute(0, 1, 3, 2, 4, 5).reshape(-1, window * window, c)


def window_reverse(windows: torch.Tensor, window: int, h: int, w: int) -> torch.Tensor:
    """Inverse of :func:`window_partition`: ``(b * n_windows, window**2, c)`` -> ``(b, h, w, c)``."""
    c = windows.shape[-1]
    x = windows.view(-1, h // window, w // window, window, window, c)
    return x.permute(0, 1, 3, 2, 4, 5).reshape(-1, h, w, c)


def shifted_window_mask(
    h: int, w: int, window: int, shift: int, *, device=None, dtype=torch.float32
) -> torch.Tensor:
    """Additive mask ``(n_windows, window**2, window**2)`` for a grid rolled by ``-shift``:
    0 between tokens from the same region of the unrolled grid, ``MASK_VALUE`` otherwise."""
    region = torch.zeros(h, w, dtype=torch.int64)
    cuts = (slice(0, -window), slice(-window, -shift), slice(-shift, None))
    for i, rows in enumerate(cuts):
        for j, cols in enumerate(cuts):
            region[rows, cols] = 3 * i + j
    ids = window_partition(region.view(1, h, w, 1), window).squeeze(-1)  # (n_windows, N)
    differ = ids.unsqueeze(1) != ids.unsqueeze(2)
    mask = torch.zeros(differ.shape, dtype=dtype).masked_fill_(differ, MASK_VALUE)
    return mask.to(device)


def _log_spaced_table(window: tuple[int, int]) -> torch.Tensor:
    """Relative coordinates ``((2 w_h - 1) * (2 w_w - 1), 2)``, log-spaced to about [-1, 1]."""
    axes = []
    for n in window:
        d = torch.arange(-(n - 1), n, dtype=torch.float32)
        axes.append(d / (n - 1) * 8 if n > 1 else d)  # a 1-wide window has only offset 0
    table = torch.stack(torch.meshgrid(*axes, indexing="ij"), dim=-1).reshape(-1, 2)
    return torch.sign(table) * torch.log2(table.abs() + 1.0) / math.log2(8)


def _relative_index(window: tuple[int, int]) -> torch.Tensor:
    """``(N, N)`` index into the table of :func:`_log_spaced_table` for every token pair."""
    wh, ww = window
    coords = torch.stack(torch.meshgrid(torch.arange(wh), torch.arange(ww), indexing="ij"))
    coords = coords.flatten(1)  # (2, N)
    rel = coords[:, :, None] - coords[:, None, :]  # (2, N, N)
    return (rel[0] + wh - 1) * (2 * ww - 1) + (rel[1] + ww - 1)


class WindowAttention(nn.Module):
    """Multi-head scaled cosine attention inside windows, with continuous position bias.

    Args:
        dim: channels ``c`` (split into ``num_heads`` heads).
        num_heads: attention heads.
        window: window side(s) ``w`` (int or ``(w_h, w_w)``).
        qkv_bias: learn biases for queries and values (keys never have one, as in Swin-v2).
        cpb_hidden: hidden width of the position-bias MLP.

    Parameters: ``qkv`` (fused ``Linear(c, 3c)``), ``q_bias``, ``v_bias``, ``logit_scale``
    ``(heads, 1, 1)`` (log of ``s_h``), ``cpb`` (the bias MLP), ``proj`` (output ``Linear(c, c)``).
    """

    max_log_scale = math.log(100.0)

    def __init__(
        self,
        dim: int,
        num_heads: int,
        window: int | tuple[int, int],
        *,
        qkv_bias: bool = True,
        cpb_hidden: int = 512,
    ) -> None:
        super().__init__()
        if check_int("dim", dim) % check_int("num_heads", num_heads):
            raise ValueError(f"dim={dim} must be a multiple of num_heads={num_heads}")
        self.dim, self.num_heads = dim, num_heads
        window = (window, window) if isinstance(window, int) else window
        self.window = check_ints("window", window, per="spatial dim")
        if len(self.window) != 2:
            raise ValueError(f"expected window as an int or (w_h, w_w), got {window}")
        self.qkv = nn.Linear(dim, 3 * dim, bias=False)
        self.q_bias = nn.Parameter(torch.zeros(dim)) if qkv_bias else None
        self.v_bias = nn.Parameter(torch.zeros(dim)) if qkv_bias else None
        self.logit_scale = nn.Parameter(torch.full((num_heads, 1, 1), math.log(10.0)))
        self.cpb = nn.Sequential(
            nn.Linear(2, cpb_hidden),
            nn.ReLU(inplace=True),
            nn.Linear(cpb_hidden, num_heads, bias=False),
        )
        self.proj = nn.Linear(dim, dim)
        self.register_buffer("rel_table", _log_spaced_table(self.window), persistent=False)
        self.register_buffer("rel_index", _relative_index(self.window), persistent=False)
        # (autocast dtype or None, MLP parameter / buffer values the bias was computed from,
        # the bias): see position_bias
        self._bias_cache: tuple[torch.dtype | None, list[torch.Tensor], torch.Tensor] | None = None

    def position_bias(self) -> torch.Tensor:
        """``B``: ``(heads, N, N)``, ``16 * sigmoid(MLP(table))`` gathered for each token pair.

        On the CPU without autograd (inference), and not while traced, the result is reused
        while the bias MLP's parameters hold the values it was computed from: they are compared
        with a copy (``torch.equal``, about 30 us against about 3 ms to recompute a 16 x 16
        window's bias; without it a Poseidon-T forward pass took 1.12x as long). A check of version
        counters, as this had, misses in-place updates through ``p.data`` (EMA or weight
        averaging steps), which bump none, and kept a stale bias. Elsewhere (CUDA: the
        comparison would synchronise the device) it is recomputed on every call. The buffers of
        the MLP (a pruning mask) are compared too, and the autocast state: a bias computed in
        bfloat16 under ``torch.autocast`` is not the float32 one. ``torch.jit.trace`` recomputes
        it, so the traced graph holds the MLP rather than a constant bias."""
        if (
            torch.is_grad_enabled()
            or tracing()
            or transforming()  # (why) sciml/layers/_cache.py
            or torch.jit.is_tracing()
            or self.rel_table.device.type != "cpu"
        ):
            return self._position_bias()
        state = [t.detach() for t in (*self.cpb.parameters(), *self.cpb.buffers())]
        autocast = torch.get_autocast_dtype("cpu") if torch.is_autocast_enabled("cpu") else None
        cached = self._bias_cache
        if (
            cached is not None
            and cached[0] == autocast
            and len(cached[1]) == len(state)
            and all(
                s.dtype == t.dtype and s.shape == t.shape and torch.equal(s, t)
                for s, t in zip(cached[1], state)
            )
        ):
            return cached[2]
        bias = self._position_bias()
        self._bias_cache = (autocast, [t.clone() for t in state], bias)
        return bias

    def _position_bias(self) -> torch.Tensor:
        table = self.cpb(self.rel_table)  # (T, heads)
        n = self.window[0] * self.window[1]
        bias = table[self.rel_index.view(-1)].view(n, n, self.num_heads).permute(2, 0, 1)
        return 16 * torch.sigmoid(bias)

    def forward(self, x: torch.Tensor, mask: torch.Tensor | None = None) -> torch.Tensor:
        """``x``: ``(b * n_windows, N, c)`` tokens of each window; ``mask``: additive
        ``(n_windows, N, N)`` or None. Returns ``(b * n_windows, N, c)``."""
        n_win = self.window[0] * self.window[1]
        check_tensor("WindowAttention", "x", x)
        if x.ndim != 3 or x.shape[1:] != (n_win, self.dim):
            raise ValueError(
                f"WindowAttention expected x of shape (batch * n_windows, {n_win}, {self.dim}) "
                f"(tokens of {self.window[0]} x {self.window[1]} windows), got {tuple(x.shape)}"
            )
        check_dtype("WindowAttention", "x", x, self.qkv.weight.dtype)
        if mask is not None and (
            not isinstance(mask, torch.Tensor) or not mask.is_floating_point()
        ):
            # (why) a boolean mask was cast to 0 / 1 and added to the logits: True (attend, in
            # SDPA's convention) became a bias of +1 and nothing was masked, without an error
            got = mask.dtype if isinstance(mask, torch.Tensor) else type(mask).__name__
            raise TypeError(
                f"WindowAttention expected an additive float mask (0 where a token may attend, "
                f"{MASK_VALUE} or -inf where not, as shifted_window_mask gives), got {got}; for "
                f"a boolean keep-mask m pass torch.where(m, 0.0, {MASK_VALUE})"
            )
        if mask is not None and (mask.ndim != 3 or mask.shape[1:] != (n_win, n_win)):
            raise ValueError(
                f"WindowAttention expected mask of shape (n_windows, {n_win}, {n_win}), got "
                f"{tuple(mask.shape)}"
            )
        bw, n, c = x.shape
        h = self.num_heads
        bias = None
        if self.q_bias is not None:
            bias = torch.cat((self.q_bias, torch.zeros_like(self.v_bias), self.v_bias))
        qkv = F.linear(x, self.qkv.weight, bias).view(bw, n, 3, h, c // h)
        q, k, v = qkv.permute(2, 0, 3, 1, 4).unbind(0)  # each (bw, h, N, d)
        scale = torch.clamp(self.logit_scale, max=self.max_log_scale).exp()  # (h, 1, 1)
        q = F.normalize(q, dim=-1) * scale
        k = F.normalize(k, dim=-1)
        attn_bias = self.position_bias().to(q.dtype).unsqueeze(0)  # (1, h, N, N)
        nw = 1
        if mask is not None:
            nw = mask.shape[0]
            if bw % nw:
                raise ValueError(f"{bw} windows are not a multiple of the mask's {nw}")
            attn_bias = attn_bias + mask.unsqueeze(1).to(q.dtype)  # (n_windows, h, N, N)
        if transforming() or (
            q.device.type == "cpu" and torch.is_grad_enabled() and attn_bias.requires_grad
        ):
            # training on the CPU: SDPA has no fused kernel with a bias gradient and its
            # fallback is slower than the plain product; broadcast the bias over the batch.
            # Under torch.func too: SDPA's CPU kernel has no forward AD (jacfwd) and refuses a
            # bias that jacrev's functorch wrappers mark as requiring grad.
            s = (q @ k.transpose(-2, -1)).view(bw // nw, nw, h, n, n) + attn_bias
            out = s.softmax(dim=-1).view(bw, h, n, n) @ v
        else:
            # 4-D inputs (the bias repeated over the batch) let SDPA pick its fused kernels
            if nw > 1:
                attn_bias = attn_bias.repeat(bw // nw, 1, 1, 1)
            out = F.scaled_dot_product_attention(q, k, v, attn_mask=attn_bias, scale=1.0)
        return self.proj(out.transpose(1, 2).reshape(bw, n, c))

    def extra_repr(self) -> str:
        return f"dim={self.dim}, heads={self.num_heads}, window={self.window}"


class SwinV2Block(nn.Module):
    """Swin-v2 transformer block (residual post-norm) on a channels-last grid::

        x = x + DropPath(Norm_1(W-MSA(shift(x)), t))
        x = x + DropPath(Norm_2(MLP(x), t))

    ``shift`` rolls the grid by ``-shift`` before partitioning into windows (and back after);
    the grid is zero-padded on the right/bottom to a multiple of the window. When the shorter side
    of the grid is no larger than the window, the window is clipped to that side and the shift
    dropped, so each stage of a multiscale model on a square grid still sees its whole grid in one
    window (``grid`` sets this at construction).

    Args:
        dim: channels.
        num_heads: attention heads.
        grid: the ``(h, w)`` token grid this block will see.
        window: the window side before clipping.
        shift: roll of shifted blocks before clipping (``window // 2`` for odd blocks; 0 else).
        mlp_ratio: hidden width of the MLP over ``dim``.
        conditional: time-conditioned norms (see :class:`~sciml.layers.ConditionalLayerNorm`).
        qkv_bias: learn biases for queries and values (see :class:`WindowAttention`).
        eps: the epsilon of both norms.
        drop_path: stochastic-depth probability of both residual branches.
    """

    def __init__(
        self,
        dim: int,
        num_heads: int,
        grid: tuple[int, int],
        *,
        window: int,
        shift: int = 0,
        mlp_ratio: float = 4.0,
        conditional: bool = False,
        qkv_bias: bool = True,
        eps: float = 1e-5,
        drop_path: float = 0.0,
    ) -> None:
        super().__init__()
        check_int("window", window)
        self.dim = check_int("dim", dim)
        # (why) shift=True rolled by 1 token, shift=1.0 built and failed in forward (torch.roll),
        # a grid of one entry or of floats was taken without a word
        shift = check_int("shift", shift, low=0)
        grid = check_size("SwinV2Block", "grid", grid)
        if len(grid) != 2 or min(grid) < 1:
            raise ValueError(f"SwinV2Block expected grid as (h, w) of sizes >= 1, got {grid}")
        if min(grid) <= window:
            # (why) the rule of the Swin-v2 authors' code (microsoft/Swin-Transformer, as HF's
            # Swin): this read "both sides", so a (8, 32) grid kept a window of 16 and filled half
            # of every window with zero padding. Poseidon (HF's Swinv2 port) clips to the height
            # alone, the same window on its square grids.
            window, shift = min(grid), 0
        if not 0 <= shift < window:
            raise ValueError(f"expected 0 <= shift < window={window}, got shift={shift}")
        self.grid, self.window, self.shift = tuple(grid), window, shift
        self.attn = WindowAttention(dim, num_heads, window, qkv_bias=qkv_bias)
        self.norm1 = layer_norm(dim, conditional=conditional, eps=eps)
        hidden = int(mlp_ratio * dim)
        if hidden < 1:
            raise ValueError(
                f"expected mlp_ratio with int(mlp_ratio * dim) >= 1 hidden channels, got "
                f"mlp_ratio={mlp_ratio} at dim={dim}"
            )
        self.mlp = nn.Sequential(nn.Linear(dim, hidden), nn.GELU(), nn.Linear(hidden, dim))
        self.norm2 = layer_norm(dim, conditional=conditional, eps=eps)
        self.drop_path = DropPath(drop_path)
        self._masks: dict[tuple, torch.Tensor] = {}

    def _mask(self, h: int, w: int, like: torch.Tensor) -> torch.Tensor | None:
        if self.shift == 0:
            return None
        key = (h, w, like.device, like.dtype)
        bypass = tracing() or transforming()  # (why) sciml/layers/_cache.py
        mask = None if bypass else self._masks.get(key)
        if mask is None:
            mask = shifted_window_mask(
                h, w, self.window, self.shift, device=like.device, dtype=like.dtype
            )
            if not bypass:
                self._masks[key] = mask
        return mask

    def forward(self, x: torch.Tensor, t: torch.Tensor | float | None = None) -> torch.Tensor:
        """``x``: ``(b, h, w, c)`` channels-last grid; ``t``: lead time (conditioned norms only).
        Returns ``(b, h, w, c)``."""
        check_tensor("SwinV2Block", "x", x)
        if x.ndim != 4 or x.shape[-1] != self.dim:
            raise ValueError(
                f"SwinV2Block expected channels-last x of shape (batch, h, w, {self.dim}), got "
                f"{tuple(x.shape)}"
            )
        check_dtype("SwinV2Block", "x", x, self.attn.qkv.weight.dtype)
        check_grid("SwinV2Block", "x", x, (1, 2))
        b, h, w, c = x.shape
        ws, s = self.window, self.shift
        pad_h, pad_w = (-h) % ws, (-w) % ws
        y = F.pad(x, (0, 0, 0, pad_w, 0, pad_h)) if pad_h or pad_w else x
        hp, wp = h + pad_h, w + pad_w
        if s:
            y = torch.roll(y, shifts=(-s, -s), dims=(1, 2))
        y = self.attn(window_partition(y, ws), self._mask(hp, wp, x))
        y = window_reverse(y, ws, hp, wp)
        if s:
            y = torch.roll(y, shifts=(s, s), dims=(1, 2))
        if pad_h or pad_w:
            y = y[:, :h, :w].contiguous()
        x = x + self.drop_path(self.norm1(y, t))
        return x + self.drop_path(self.norm2(self.mlp(x), t))

    def extra_repr(self) -> str:
        return f"grid={self.grid}, window={self.window}, shift={self.shift}"
