"""Patch layers of hierarchical vision transformers, on channels-last grids ``(b, h, w, c)``.

* :class:`PatchEmbed`: non-overlapping ``p x p`` patches -> tokens (a stride-``p`` convolution);
* :class:`PatchMerging`: ``2 x 2`` neighbours -> one token of twice the channels (downsampling);
* :class:`PatchUnmerging`: one token -> ``2 x 2`` tokens of half the channels (upsampling);
* :class:`PatchRecovery`: tokens -> ``p x p`` pixel patches (a transposed convolution) and a
  ``5 x 5`` convolution that mixes across patch borders.
"""

from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import nn

from ._checks import check_dtype, check_grid, check_int, check_tensor
from .conditional_norm import layer_norm

__all__ = ["PatchEmbed", "PatchMerging", "PatchUnmerging", "PatchRecovery"]


class PatchEmbed(nn.Module):
    """``(b, c_in, H, W)`` -> normalised tokens ``(b, ceil(H/p), ceil(W/p), dim)``.

    The input is zero-padded on the right/bottom to a multiple of ``p``.
    """

    def __init__(
        self, in_channels: int, dim: int, patch: int, *, conditional: bool = False
    ) -> None:
        super().__init__()
        self.in_channels = check_int("in_channels", in_channels)
        self.patch = check_int("patch", patch)
        self.proj = nn.Conv2d(in_channels, check_int("dim", dim), kernel_size=patch, stride=patch)
        self.norm = layer_norm(dim, conditional=conditional)

    def forward(self, u: torch.Tensor, t: torch.Tensor | float | None = None) -> torch.Tensor:
        """``u``: ``(b, c_in, H, W)`` channels-first grid; ``t``: lead time (conditioned norm
        only).

        Returns channels-last tokens ``(b, ceil(H/p), ceil(W/p), dim)``: ``Norm(Conv_p(u), t)``,
        ``Conv_p`` the ``p x p`` stride-``p`` convolution of the right/bottom zero-padded ``u``.
        """
        check_tensor("PatchEmbed", "u", u)
        if u.ndim != 4 or u.shape[1] != self.in_channels:
            raise ValueError(
                f"PatchEmbed expected u of shape (batch, {self.in_channels}, h, w), got "
                f"{tuple(u.shape)}"
            )
        check_dtype("PatchEmbed", "u", u, self.proj.weight.dtype)
        check_grid("PatchEmbed", "u", u, (2, 3))
        p = self.patch
        pad_h, pad_w = (-u.shape[-2]) % p, (-u.shape[-1]) % p
        if pad_h or pad_w:
            u = F.pad(u, (0, pad_w, 0, pad_h))
        return self.norm(self.proj(u).permute(0, 2, 3, 1), t)


class PatchMerging(nn.Module):
    """``(b, h, w, c)`` -> ``(b, ceil(h/2), ceil(w/2), 2c)``::

        y = Norm(W [x(2i, 2j), x(2i+1, 2j), x(2i, 2j+1), x(2i+1, 2j+1)], t)

    with ``W`` a bias-free ``Linear(4c, 2c)``; odd grids are zero-padded first.
    """

    def __init__(self, dim: int, *, conditional: bool = False) -> None:
        super().__init__()
        self.dim = check_int("dim", dim)
        self.reduction = nn.Linear(4 * dim, 2 * dim, bias=False)
        self.norm = layer_norm(2 * dim, conditional=conditional)

    def forward(self, x: torch.Tensor, t: torch.Tensor | float | None = None) -> torch.Tensor:
        """``x``: ``(b, h, w, c)`` channels-last tokens; ``t``: lead time (conditioned norm
        only).

        Returns ``(b, ceil(h/2), ceil(w/2), 2c)``: each ``2 x 2`` block of tokens concatenated
        to ``4c`` channels, reduced by ``W`` and normalised (see the class docstring).
        """
        _check_tokens("PatchMerging", x, self.dim, self.reduction.weight.dtype)
        h, w = x.shape[1:3]
        if h % 2 or w % 2:
            x = F.pad(x, (0, 0, 0, w % 2, 0, h % 2))
        x = torch.cat((x[:, 0::2, 0::2], x[:, 1::2, 0::2], x[:, 0::2, 1::2], x[:, 1::2, 1::2]), -1)
        return self.norm(self.reduction(x), t)


class PatchUnmerging(nn.Module):
    """``(b, h, w, c)`` -> ``(b, H, W, c/2)`` with ``H <= 2h``, ``W <= 2w`` (crop)::

    z = E x  (bias-free Linear(c, 2c)),  split into 2 x 2 sub-tokens of c/2 channels,
    y = M Norm(z, t)                     (M: bias-free Linear(c/2, c/2))
    """

    def __init__(self, dim: int, *, conditional: bool = False) -> None:
        super().__init__()
        if check_int("dim", dim) % 2:
            raise ValueError(f"PatchUnmerging needs an even dim, got {dim}")
        self.dim = dim
        self.expand = nn.Linear(dim, 2 * dim, bias=False)
        self.norm = layer_norm(dim // 2, conditional=conditional)
        self.mix = nn.Linear(dim // 2, dim // 2, bias=False)

    def forward(
        self, x: torch.Tensor, size: tuple[int, int], t: torch.Tensor | float | None = None
    ) -> torch.Tensor:
        """``x``: ``(b, h, w, c)`` channels-last tokens; ``size``: the output grid ``(H, W)``,
        at most ``(2h, 2w)``; ``t``: lead time (conditioned norm only).

        Returns ``(b, H, W, c/2)``: each token expanded to ``2 x 2`` sub-tokens, cropped to
        ``size``, normalised and mixed (see the class docstring).
        """
        _check_tokens("PatchUnmerging", x, self.dim, self.expand.weight.dtype)
        b, h, w, c = x.shape
        _check_size("PatchUnmerging", size, (2 * h, 2 * w))
        z = self.expand(x).view(b, h, w, 2, 2, c // 2).permute(0, 1, 3, 2, 4, 5)
        z = z.reshape(b, 2 * h, 2 * w, c // 2)[:, : size[0], : size[1]]
        return self.mix(self.norm(z, t))


class PatchRecovery(nn.Module):
    """Tokens ``(b, h, w, dim)`` -> pixels ``(b, c_out, H, W)`` (``H <= p h``, crop), then a
    bias-free ``5 x 5`` convolution (zero padding) across patch borders."""

    def __init__(self, dim: int, out_channels: int, patch: int) -> None:
        super().__init__()
        self.dim, self.patch = check_int("dim", dim), check_int("patch", patch)
        check_int("out_channels", out_channels)
        self.proj = nn.ConvTranspose2d(dim, out_channels, kernel_size=patch, stride=patch)
        self.mix = nn.Conv2d(out_channels, out_channels, kernel_size=5, padding=2, bias=False)

    def forward(self, x: torch.Tensor, size: tuple[int, int]) -> torch.Tensor:
        """``x``: ``(b, h, w, dim)`` channels-last tokens; ``size``: the output grid ``(H, W)``,
        at most ``(p h, p w)``.

        Returns channels-first ``(b, c_out, H, W)``: each token to a ``p x p`` pixel patch (a
        stride-``p`` transposed convolution), cropped to ``size``, then the ``5 x 5``
        convolution.
        """
        _check_tokens("PatchRecovery", x, self.dim, self.proj.weight.dtype)
        _check_size("PatchRecovery", size, (self.patch * x.shape[1], self.patch * x.shape[2]))
        y = self.proj(x.permute(0, 3, 1, 2))[..., : size[0], : size[1]]
        return self.mix(y)


def _check_tokens(owner: str, x: torch.Tensor, dim: int, dtype: torch.dtype) -> None:
    check_tensor(owner, "x", x)
    if x.ndim != 4 or x.shape[-1] != dim:
        raise ValueError(
            f"{owner} expected channels-last tokens of shape (batch, h, w, {dim}), got "
            f"{tuple(x.shape)}"
        )
    # integer or float32-into-float64 tokens would fail deep in a matmul with no hint of a fix
    check_dtype(owner, "x", x, dtype)
    check_grid(owner, "x", x, (1, 2))


def _check_size(owner: str, size: tuple[int, int], most: tuple[int, int]) -> None:
    """The crop ``size`` must fit in the upsampled grid ``most`` (else it would silently be
    smaller than asked for)."""
    if len(size) != 2 or not all(1 <= s <= m for s, m in zip(size, most)):
        raise ValueError(
            f"{owner} expected an output size (h, w) between (1, 1) and {most} (the upsampled "
            f"token grid), got {tuple(size)}"
        )
