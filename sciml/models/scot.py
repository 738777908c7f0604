"""scOT: the scalable operator transformer of Poseidon (Herde et al., "Poseidon: Efficient
Foundation Models for PDEs", NeurIPS 2024).

A U-shaped Swin-v2 transformer on a ``G x G`` token grid (``G = image_size / patch_size``)::

    z_0 = PatchEmbed(u)                                    (b, G, G, C)
    encoder stage l = 0..L-1 (grid G / 2^l, width C 2^l):
        s_l = Blocks_l(z_l, t);  z_{l+1} = PatchMerging(s_l + z_l, t)        (not after the last)
    skips:   s_l <- ConvNeXt^{k_l}(s_l, t)                 k_l = config.skip_blocks[l]
    decoder stage l = L-1..0:
        y = s_{L-1} (l = L-1),  y = y + s_l (l < L-1);  y = Blocks'_l(y, t);  y = PatchUnmerging(y, t)
    G(u)(t) = PatchRecovery(y)  (+ u when learn_residual)

Every norm is a time-conditioned LayerNorm when ``time_conditioning`` (the lead time ``t`` enters
only there), blocks alternate unshifted / shifted windows, and windows are clipped to a stage's
grid when it is no larger than the window. Inputs of another resolution are resampled in Fourier
space to ``image_size`` and the output back (:func:`sciml.layers.fourier_resample`).

``ScOT.from_pretrained(dir)`` also reads the public Poseidon checkpoints' layout (HF
``config.json`` + ``model.safetensors`` / ``pytorch_model.bin``); see
:mod:`sciml.pretrained.poseidon`.
"""

from __future__ import annotations

import functools
import math
import os
from collections.abc import Callable
from dataclasses import dataclass, replace
from typing import Any

import torch
from torch import nn

from .._config import check_json_fields
from .._scalars import is_real
from ..layers._cache import tracing, transforming
from ..layers._checks import check_input_dtype, check_int_fields, check_ints
from ..layers.conditional_norm import _compute_dtype, _past, lead_time
from ..layers.convnext import ConvNeXtBlock
from ..layers.fourier_resample import fourier_resample
from ..layers.patch import PatchEmbed, PatchMerging, PatchRecovery, PatchUnmerging
from ..layers.window_attention import SwinV2Block
from ..operator import Operator
from ._rollout import Autoregressive

__all__ = ["ScOT", "ScOTConfig", "POSEIDON_PRESETS"]


@dataclass(frozen=True)
class ScOTConfig:
    """Hyper-parameters of :class:`ScOT` (defaults: Poseidon-T).

    Attributes:
        in_channels, out_channels: input / output function channels (Poseidon: 4, rho, u, v, p).
        image_size: model resolution (square); other input sizes are Fourier-resampled.
        patch_size: pixels per patch side.
        embed_dim: channels ``C`` of the first stage (doubled at each later stage).
        depths: Swin-v2 blocks per stage (encoder and decoder alike).
        num_heads: attention heads per stage.
        window_size: attention window side (clipped to a stage's grid when larger).
        skip_blocks: ConvNeXt blocks on each stage's skip connection (0: identity skip).
        mlp_ratio: MLP width over the channels inside the blocks.
        time_conditioning: time-conditioned norms; ``forward`` then needs ``t``.
        learn_residual: add the input's first ``out_channels`` channels to the output.
        absolute_position_embedding: a learned embedding added to the patch tokens.
        drop_path_rate: largest stochastic-depth rate (linear over the blocks, training only).
    """

    in_channels: int = 4
    out_channels: int = 4
    image_size: int = 128
    patch_size: int = 4
    embed_dim: int = 48
    depths: tuple[int, ...] = (4, 4, 4, 4)
    num_heads: tuple[int, ...] = (3, 6, 12, 24)
    window_size: int = 16
    skip_blocks: tuple[int, ...] = (2, 2, 2, 0)
    mlp_ratio: float = 4.0
    time_conditioning: bool = True
    learn_residual: bool = False
    absolute_position_embedding: bool = False
    drop_path_rate: float = 0.0

    def __post_init__(self) -> None:
        sizes = ("in_channels", "out_channels", "image_size", "patch_size", "embed_dim")
        check_int_fields(self, (*sizes, "window_size"))
        for name in ("depths", "num_heads", "skip_blocks"):
            check_ints(name, getattr(self, name), low=0)
        for name in sizes:
            if getattr(self, name) < 1:
                raise ValueError(f"{name} must be >= 1, got {getattr(self, name)}")
        n = len(self.depths)
        if n < 1 or len(self.num_heads) != n or len(self.skip_blocks) != n:
            raise ValueError(
                "depths, num_heads and skip_blocks need one entry per stage; got "
                f"{self.depths}, {self.num_heads}, {self.skip_blocks}"
            )
        if min(self.depths) < 1 or min(self.num_heads) < 1 or min(self.skip_blocks) < 0:
            raise ValueError(
                "depths and num_heads must be >= 1 and skip_blocks >= 0, got "
                f"{self.depths}, {self.num_heads}, {self.skip_blocks}"
            )
        if self.image_size % self.patch_size:
            raise ValueError(
                f"image_size={self.image_size} must be a multiple of patch_size={self.patch_size}"
            )
        grid = self.image_size // self.patch_size
        if grid % 2 ** (n - 1):
            raise ValueError(
                f"the token grid {grid} (image_size / patch_size) must be divisible by "
                f"2^(stages - 1) = {2 ** (n - 1)}"
            )
        for i, h in enumerate(self.num_heads):
            if (self.embed_dim * 2**i) % h:
                raise ValueError(
                    f"stage {i}: width {self.embed_dim * 2**i} is not divisible by {h} heads"
                )
        # (why) written so that NaN and inf fail here: mlp_ratio=nan passed "<= 0" and int(nan)
        # raised "cannot convert float NaN to integer" with no field named
        if self.window_size < 1 or not 0 < self.mlp_ratio < math.inf:
            raise ValueError(
                f"expected window_size >= 1 and a finite mlp_ratio > 0, got window_size="
                f"{self.window_size}, mlp_ratio={self.mlp_ratio}"
            )
        if not 0 <= self.drop_path_rate < 1:
            raise ValueError(f"expected 0 <= drop_path_rate < 1, got {self.drop_path_rate}")
        if int(self.mlp_ratio * self.embed_dim) < 1:
            # (why) the blocks' MLPs have int(mlp_ratio * width) hidden channels: 0 built MLPs
            # that returned their output bias whatever the input
            raise ValueError(
                f"mlp_ratio={self.mlp_ratio} gives no hidden channel at embed_dim="
                f"{self.embed_dim} (int(mlp_ratio * embed_dim) = 0); expected mlp_ratio >= "
                f"1 / embed_dim"
            )
        if self.learn_residual and self.in_channels < self.out_channels:
            raise ValueError(
                f"learn_residual adds the input to the output: needs in_channels >= out_channels, "
                f"got {self.in_channels} < {self.out_channels}"
            )
        check_json_fields(self)

    @property
    def grid(self) -> int:
        """Token grid side ``image_size / patch_size`` of the first stage."""
        return self.image_size // self.patch_size

    @classmethod
    def poseidon(cls, size: str = "T", **overrides: Any) -> ScOTConfig:
        """The Poseidon-T / -B / -L architecture (``size`` in ``"T", "B", "L"``), with overrides
        such as ``in_channels=1``."""
        try:
            base = POSEIDON_PRESETS[size.upper()]
        except KeyError:
            raise ValueError(f"unknown Poseidon size {size!r}; expected one of T, B, L") from None
        return replace(base, **overrides)


POSEIDON_PRESETS: dict[str, ScOTConfig] = {
    "T": ScOTConfig(embed_dim=48, depths=(4, 4, 4, 4)),
    "B": ScOTConfig(embed_dim=96, depths=(8, 8, 8, 8)),
    "L": ScOTConfig(embed_dim=192, depths=(8, 8, 8, 8)),
}


class _EncoderStage(nn.Module):
    def __init__(self, blocks: list[SwinV2Block], merge: PatchMerging | None) -> None:
        super().__init__()
        self.blocks = nn.ModuleList(blocks)
        self.merge = merge

    def forward(self, x: torch.Tensor, t: Any) -> tuple[torch.Tensor, torch.Tensor]:
        skip = x
        for block in self.blocks:
            skip = block(skip, t)
        # the stage's input is added around all its blocks before merging, as in the reference
        return (skip if self.merge is None else self.merge(skip + x, t)), skip


class _DecoderStage(nn.Module):
    def __init__(
        self, blocks: list[SwinV2Block], unmerge: PatchUnmerging | None, size: tuple[int, int]
    ) -> None:
        super().__init__()
        self.blocks = nn.ModuleList(blocks)
        self.unmerge = unmerge
        self.size = size

    def forward(self, x: torch.Tensor, t: Any) -> torch.Tensor:
        for block in self.blocks:
            x = block(x, t)
        return x if self.unmerge is None else self.unmerge(x, self.size, t)


class ScOT(Autoregressive, Operator, family="scot"):
    """Poseidon's scalable operator transformer; see the module docstring for the math.

    Example:
        >>> model = ScOT(ScOTConfig.poseidon("T", in_channels=1, out_channels=1))
        >>> y = model(u, t=torch.full((u.shape[0],), 0.5))  # u: (b, 1, 128, 128)
    """

    config_class = ScOTConfig
    config: ScOTConfig
    resolution_invariant = False  # resamples to image_size: consistent only for band-limited u

    def __init__(self, config: ScOTConfig) -> None:
        super().__init__(config)
        c = config
        cond = c.time_conditioning
        n = len(c.depths)
        g = c.grid
        total = sum(c.depths)
        # (why) on the CPU: the rates are read back as numbers, which a model built under
        # `with torch.device('meta'):` could not do
        rates = torch.linspace(0, c.drop_path_rate, 2 * total, device="cpu").tolist()
        enc_rates, dec_rates = rates[:total], rates[total:]

        self.embed = PatchEmbed(c.in_channels, c.embed_dim, c.patch_size, conditional=cond)
        self.pos = (
            nn.Parameter(torch.zeros(1, g, g, c.embed_dim))
            if c.absolute_position_embedding
            else None
        )

        def blocks(level: int, shifted: list[bool], drops: list[float]) -> list[SwinV2Block]:
            dim, side = c.embed_dim * 2**level, g // 2**level
            return [
                SwinV2Block(
                    dim,
                    c.num_heads[level],
                    (side, side),
                    window=c.window_size,
                    shift=c.window_size // 2 if s else 0,
                    mlp_ratio=c.mlp_ratio,
                    conditional=cond,
                    drop_path=p,
                )
                for s, p in zip(shifted, drops)
            ]

        self.encoder = nn.ModuleList()
        for lvl, d in enumerate(c.depths):
            start = sum(c.depths[:lvl])
            merge = PatchMerging(c.embed_dim * 2**lvl, conditional=cond) if lvl < n - 1 else None
            shifted = [i % 2 == 1 for i in range(d)]
            self.encoder.append(
                _EncoderStage(blocks(lvl, shifted, enc_rates[start : start + d]), merge)
            )
        self.skips = nn.ModuleList(
            nn.ModuleList(ConvNeXtBlock(c.embed_dim * 2**lvl, conditional=cond) for _ in range(k))
            for lvl, k in enumerate(c.skip_blocks)
        )
        # decoder[k] works on level L-1-k; its blocks are the encoder's in reverse order, so a
        # stage of odd depth starts unshifted and one of even depth starts shifted
        self.decoder = nn.ModuleList()
        for lvl in reversed(range(n)):
            d = c.depths[lvl]
            start = sum(c.depths[lvl + 1 :])
            shifted = [(d - 1 - i) % 2 == 1 for i in range(d)]
            unmerge = PatchUnmerging(c.embed_dim * 2**lvl, conditional=cond) if lvl > 0 else None
            size = (g // 2 ** max(lvl - 1, 0),) * 2
            self.decoder.append(
                _DecoderStage(blocks(lvl, shifted, dec_rates[start : start + d]), unmerge, size)
            )
        self.recovery = PatchRecovery(c.embed_dim, c.out_channels, c.patch_size)
        self.apply(_init_weights)
        if cond:
            self.register_forward_pre_hook(_lead_time_hook(), with_kwargs=True)

    def forward(
        self,
        u: torch.Tensor,
        *,
        x: torch.Tensor | None = None,
        t: torch.Tensor | float | None = None,
    ) -> torch.Tensor:
        """Map input functions to output functions (at lead time ``t``).

        Args:
            u: ``(batch, in_channels, h, w)``; sizes other than ``image_size`` are resampled
                in Fourier space to ``image_size`` and the output back to ``(h, w)``.
            x: unused; must be None.
            t: lead time, a float or ``(batch,)`` tensor, finite and ``>= 0`` (the time from
                input to output); required iff ``time_conditioning``. A float becomes a tensor
                before a ``torch.compile``-d model's graph, so one graph serves every ``t``.

        Returns:
            ``(batch, out_channels, h, w)``.
        """
        c = self.config
        check_input_dtype("ScOT", "u", u, self.recovery.mix.weight.dtype)
        if u.ndim != 4 or u.shape[1] != c.in_channels:
            raise ValueError(
                f"ScOT expected u of shape (batch, {c.in_channels}, h, w), got {tuple(u.shape)}"
            )
        if x is not None:
            raise ValueError("ScOT takes no query points x; pass u (and t)")
        if c.time_conditioning and t is None:
            raise ValueError("this ScOT is time-conditioned (config.time_conditioning); pass t")
        if not c.time_conditioning and t is not None:
            raise ValueError(
                "this ScOT has time_conditioning=False but got a lead time t; build it with "
                "time_conditioning=True or drop t"
            )
        if t is not None:
            t = _check_lead_time(t, u)
            if is_real(t):
                t = torch.full((1, 1), t, dtype=_compute_dtype(u), device=u.device)
        size = tuple(u.shape[-2:])
        native = size == (c.image_size, c.image_size)
        if not native:
            u = fourier_resample(u, (c.image_size, c.image_size))
        z = self.embed(u, t)
        if self.pos is not None:
            z = z + self.pos
        skips = []
        for stage in self.encoder:
            z, s = stage(z, t)
            skips.append(s)
        for i, convs in enumerate(self.skips):
            for block in convs:
                skips[i] = block(skips[i], t)
        n = len(skips)
        y = skips[-1]
        for k, stage in enumerate(self.decoder):
            if k:
                y = y + skips[n - 1 - k]
            y = stage(y, t)
        out = self.recovery(y, (c.image_size, c.image_size))
        if c.learn_residual:
            out = out + u[:, : c.out_channels]
        return out if native else fourier_resample(out, size)

    @classmethod
    def from_pretrained(
        cls, path: str | os.PathLike, *, map_location: str | torch.device = "cpu"
    ) -> ScOT:
        """Load a sciml checkpoint (:meth:`save_pretrained`) or a Poseidon/scOT checkpoint
        directory (HF ``config.json`` + ``model.safetensors`` or ``pytorch_model.bin``)."""
        from ..pretrained import poseidon

        if poseidon.is_poseidon_checkpoint(path):
            return poseidon.load_poseidon(path, map_location=map_location)
        return super().from_pretrained(path, map_location=map_location)


_LEAD_TIME = (
    "ScOT expected a finite lead time t >= 0 (the time from the input to the output, as the "
    "model was trained on)"
)


def _check_lead_time(t: Any, u: torch.Tensor) -> torch.Tensor | float:
    """``t`` as given (a real number) or as :func:`~sciml.layers.conditional_norm.lead_time`'s
    ``(batch or 1, 1)`` column in the dtype the norms compute in (``u``'s, or autocast's where
    that is narrower); a ValueError unless every value is finite,
    ``>= 0`` and no larger than the model's dtype holds.

    (why) a NaN lead time made every output NaN and inf most of them, without an error, and a
    negative one ran the norms at a time the model never saw (sciml's data views, the Poseidon
    checkpoints and ``sciml export --t`` give ``t >= 0`` only). The values are checked as given,
    before the cast to the model's dtype: in float16 a t of 1e5 became inf on the way and was
    reported as inf (a tensor), or ran to non-finite outputs (a number). A number is checked in
    Python; a tensor's values are read where the tensor lives (on CUDA one synchronisation, as
    PROSE's token check and NODE's time check do), except while ``torch.compile`` /
    ``torch.export`` trace, where an assert in the graph raises this message when the program
    runs (on a CPU: a RuntimeError; reading them would break the graph), and inside a
    ``torch.func`` transform, which cannot read them."""
    dtype = _compute_dtype(u)
    if is_real(t):
        # (why) traced, a float may be symbolic, which dynamo cannot format
        given = "a traced float" if tracing() else t
        if not 0 <= t < math.inf:
            raise ValueError(f"{_LEAD_TIME}, got t={given}")
        if t > torch.finfo(dtype).max:
            raise ValueError(f"{_LEAD_TIME}, got t={given}, {_past(dtype)}")
        return t
    # (b or 1, 1) in t's own dtype and on its device; its own TypeError / ValueError first
    raw = lead_time(t, u.shape[0], t if isinstance(t, torch.Tensor) else _AS_GIVEN)
    # (why) in the narrower autocast dtype where there is one (the same rounding the norms' maps
    # made), so the norms, whose cast then cannot overflow, need not read t again
    tt = raw.to(dtype=dtype).to(device=u.device)
    if transforming():
        return tt
    finite = (raw >= 0) & (raw < math.inf)
    fits = raw <= torch.finfo(dtype).max
    if tracing():
        torch._assert_async(
            (finite & fits).all(),
            f"{_LEAD_TIME}, got a negative, NaN or infinite value, or one {_past(dtype)}",
        )
    elif not bool((finite & fits).all()):
        if not bool(finite.all()):
            raise ValueError(f"{_LEAD_TIME}, got t with values {raw[~finite].tolist()[:4]}")
        raise ValueError(
            f"{_LEAD_TIME}, got t with values {raw[~fits].tolist()[:4]}, {_past(dtype)}"
        )
    return tt


# (why) a list or an array is read in float64 on the CPU, as given, before the cast
_AS_GIVEN = torch.empty(0, dtype=torch.float64, device="cpu")


def _number_lead_time(
    module: nn.Module, args: tuple[Any, ...], kwargs: dict[str, Any]
) -> tuple[tuple[Any, ...], dict[str, Any]] | None:
    """Forward pre-hook of a time-conditioned ScOT: a valid number ``t`` becomes the ``(1, 1)``
    tensor that ``forward`` makes of it, in the dtype the norms compute in, on ``u``'s device; anything else is left to
    ``forward`` to check and refuse (after its checks of ``u``, as before)."""
    t = kwargs.get("t")
    u = args[0] if args else kwargs.get("u")
    if not is_real(t) or not isinstance(u, torch.Tensor) or not u.is_floating_point():
        return None
    try:
        t = _check_lead_time(t, u)
    except ValueError:
        return None
    t = torch.full((1, 1), t, dtype=_compute_dtype(u), device=u.device)
    return args, {**kwargs, "t": t}


@functools.cache
def _lead_time_hook() -> Callable[..., Any]:
    """:func:`_number_lead_time`, run outside ``torch.compile``'s frame.

    (why) dynamo takes a Python float for a constant of the graph: a compiled ScOT traced a
    new graph for every t (0.1, 0.2, 0.3: three; from the second on the float was symbolic,
    but ``torch.as_tensor`` in every norm specialised it again). ``torch.compile`` runs a
    module's hooks before the frame it compiles, and this one is disabled for dynamo, so the
    graph is handed a tensor whatever ``t`` was: one graph. Where a ScOT is called inside a
    larger compiled module, dynamo traces the hooks with it and would break the graph at a
    disabled call: there a no-op stands in (``substitute_in_graph``) and ``forward`` makes the
    tensor (``torch.full`` keeps a symbolic float: two graphs, the first call's constant and
    then a symbolic one).
    Built on first use: it imports ``torch._dynamo``, which ``import sciml`` does not; pickled
    by the name ``_LEAD_TIME_HOOK``, which the module's ``__getattr__`` resolves."""
    hook = torch.compiler.disable(_number_lead_time)
    hook.__name__ = hook.__qualname__ = "_LEAD_TIME_HOOK"

    @torch.compiler.substitute_in_graph(hook)
    def _in_graph(module: nn.Module, args: tuple[Any, ...], kwargs: dict[str, Any]) -> None:
        return None

    return hook


def __getattr__(name: str) -> Any:
    if name == "_LEAD_TIME_HOOK":
        return _lead_time_hook()
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")


def _init_weights(m: nn.Module) -> None:
    # as the reference (HF's Swin-v2 init): N(0, 0.02) weights and zero biases for every linear
    # and conv layer -- the time maps of the conditional norms included, so that each norm starts
    # with a scale near 0 and every residual branch starts near zero (blocks start close to
    # identities). The recovery's transposed convolution is no nn.Conv2d, so the reference leaves
    # it at PyTorch's default (uniform, about 4x larger than N(0, 0.02), and a non-zero bias).
    if isinstance(m, (nn.Linear, nn.Conv2d)):
        nn.init.normal_(m.weight, std=0.02)
        if m.bias is not None:
            nn.init.zeros_(m.bias)
