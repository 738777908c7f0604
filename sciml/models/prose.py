"""PROSE: one multimodal transformer that predicts trajectories and writes the equations.

Liu, Zhang & Schaeffer, "PROSE: Predicting Operators and Symbolic Expressions using Multimodal
Transformers" (2023). Given the first ``T_in`` observations of a trajectory of ``du/dt = f(u)``
and a (possibly wrong) skeleton of ``f`` in prefix tokens, PROSE returns

* the trajectory at any query times ``x`` (data decoder: each query time attends to the fused
  features by cross-attention only, so queries are independent and can be anywhere), and
* the equations with their constants (symbol decoder: autoregressive, greedy or beam search).

::

    data (B, T_in, 1 + D) --Linear--> data encoder ---------+-- + type 0 --+
    skeleton tokens (B, L) --Embedding--> symbol encoder ----+-- + type 1 --+--> fusion encoder
    fusion --cross-attention--> data decoder(query times x) -> u(x)  (B, T_out, D)
    fusion --cross-attention--> causal symbol decoder      -> tokens of f

The data are normalised per sample and channel with the mean and standard deviation of the
input window (and the prediction mapped back), so one network sees Lorenz (``|u| ~ 20``) and
Thomas (``|u| ~ 2``) on the same scale. Channels beyond a system's dimension are zero in the
input and are predicted as exactly zero.
"""

from __future__ import annotations

import contextlib
import math
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

import torch
from torch import nn
from torch.nn import functional as F
from torch.nn.attention import SDPBackend, sdpa_kernel

from .._scalars import is_int, is_real
from ..layers._cache import tracing, transforming
from ..layers._checks import check_input_dtype, check_int_fields, check_tensor
from ..operator import Operator
from ..symbolic import Vocabulary

__all__ = ["PROSE", "PROSEConfig"]


@dataclass(frozen=True)
class PROSEConfig:
    """PROSE hyper-parameters. :meth:`paper` is the published size, :meth:`small` trains on a CPU.

    Attributes:
        dim: largest state dimension ``D`` (data channels; variables ``u_0 ... u_{D-1}``).
        width: model width of every transformer.
        heads: attention heads.
        data_encoder_layers: depth of the data encoder (a transformer; 0: none).
        symbol_encoder_layers: depth of the symbol encoder (0: the embeddings go straight to
            the fusion).
        fusion_layers: depth of the fusion transformer.
        data_decoder_layers: depth of the data decoder.
        symbol_decoder_layers: depth of the symbol decoder (at least 1).
        ffn_mult: feed-forward width as a multiple of ``width``.
        dropout: dropout in attention and feed-forward layers.
        max_symbol_len: longest token sequence (input skeleton or generated equations, with
            ``<bos>``/``<eos>``).
        max_exponent: float exponents ``E-m ... E+m`` in the vocabulary.
        symbol_loss_weight: weight of the symbol cross-entropy in :meth:`PROSE.training_loss`.
    """

    dim: int = 5
    width: int = 512
    heads: int = 8
    data_encoder_layers: int = 2
    symbol_encoder_layers: int = 4
    fusion_layers: int = 8
    data_decoder_layers: int = 8
    symbol_decoder_layers: int = 8
    ffn_mult: int = 4
    dropout: float = 0.0
    max_symbol_len: int = 200
    max_exponent: int = 10
    symbol_loss_weight: float = 1.0

    def __post_init__(self) -> None:
        positive = ("dim", "width", "heads", "fusion_layers", "data_decoder_layers")
        positive += ("symbol_decoder_layers", "ffn_mult", "max_symbol_len")
        optional = ("data_encoder_layers", "symbol_encoder_layers")
        check_int_fields(self, (*positive, *optional, "max_exponent"))
        for name in positive:
            if getattr(self, name) < 1:
                # a decoder sees the fused features only through its layers' cross-attention: with
                # none, its output would not depend on the input
                raise ValueError(f"expected {name} >= 1, got {getattr(self, name)}")
        for name in (*optional, "max_exponent"):
            if getattr(self, name) < 0:
                raise ValueError(f"expected {name} >= 0, got {getattr(self, name)}")
        if self.width % self.heads:
            raise ValueError(f"width {self.width} must be divisible by heads {self.heads}")

    @classmethod
    def paper(cls, **overrides) -> PROSEConfig:
        """The paper's size: width 512, 8 heads, encoders 2 (data) / 4 (symbols), fusion 8,
        decoders 8 / 8, feed-forward 2048 (104.8M parameters with the 1,055-token vocabulary of
        ``dim=5``, ``max_exponent=10``)."""
        return cls(**overrides)

    @classmethod
    def small(cls, **overrides) -> PROSEConfig:
        """A CPU-trainable size: width 64, 4 heads, depths 1 / 1 / 2 / 2 / 2 (0.6M parameters)."""
        base = dict(
            width=64, heads=4, data_encoder_layers=1, symbol_encoder_layers=1, fusion_layers=2,
            data_decoder_layers=2, symbol_decoder_layers=2, ffn_mult=4,
        )  # fmt: skip
        return cls(**{**base, **overrides})


class _NoLayers(nn.Module):
    """An encoder of no layers: the identity, taking (and ignoring) the padding mask that the
    transformer encoders take (``nn.Identity`` refuses the keyword)."""

    def forward(self, x: torch.Tensor, src_key_padding_mask: torch.Tensor | None = None):
        return x


def _encoder(cfg: PROSEConfig, layers: int) -> nn.Module:
    if layers == 0:
        return _NoLayers()
    layer = nn.TransformerEncoderLayer(
        cfg.width, cfg.heads, cfg.ffn_mult * cfg.width, cfg.dropout, activation="gelu",
        batch_first=True, norm_first=True,
    )  # fmt: skip
    return nn.TransformerEncoder(layer, layers, enable_nested_tensor=False)


def _check_tokens(name: str, tokens: torch.Tensor, batch: int | None) -> torch.Tensor:
    """Token ids ``name`` as ``torch.long``; a clear error unless they are an integer tensor of
    shape ``(batch, length)`` (``batch`` None: any batch).

    (why) static checks only (type, ndim, shape, dtype): no graph break under compile. The cast:
    the embedding takes only long / int32 ids and the cross-entropy only long targets."""
    check_tensor("PROSE", name, tokens)
    if tokens.ndim != 2 or (batch is not None and tokens.shape[0] != batch):
        expected = "batch" if batch is None else f"batch={batch}"
        raise ValueError(
            f"expected {name} of shape ({expected}, length), got {tuple(tokens.shape)}"
        )
    if tokens.is_floating_point() or tokens.is_complex() or tokens.dtype == torch.bool:
        raise TypeError(
            f"expected integer token ids in {name} (torch.long), got dtype {tokens.dtype}"
        )
    return tokens.long()


def _trim_padding(tokens: torch.Tensor, pad_id: int) -> torch.Tensor:
    """Drop the trailing columns of ``tokens`` ``(B, L)`` that are padding in every row.

    Batches are padded to ``max_symbol_len`` (200) while the equations are 20-110 tokens long;
    padded positions are masked out of every attention, so cutting them changes no output, only
    the work (timing in ``benchmarks/README.md``, PROSE section).

    Under ``torch.compile`` / ``torch.export`` the tokens are returned whole: the cut width is
    data-dependent (``nonzero`` and ``int`` break the graph, and each new width recompiles), and
    the outputs are those of the cut tokens all the same. A compiled step runs at the width it
    is given, so its batches come cut to a bucket width (:meth:`PROSE.bucket_batch`; the
    batches of ``PROSEData`` through a ``DataLoader`` or the ``Trainer`` are)."""
    if tracing():
        return tokens
    used = (tokens != pad_id).any(dim=0).nonzero()
    return tokens[:, : int(used[-1]) + 1] if used.numel() else tokens[:, :1]


def _nothing_to_predict(target_symbols: torch.Tensor | None) -> str:
    """The error for ``target_symbols`` ``(B, L)`` with no token to predict after ``<bos>``
    (None: their shape left out).

    (why) with none, the decoder input ``target[:, :-1]`` is empty or all padding and the
    mean cross-entropy over no tokens is NaN. ``vocab.ids(..., bos=True, eos=True)`` (and so
    ``PROSEData``) always gives ``<eos>`` after ``<bos>``."""
    expected = (
        "expected target_symbols with at least one token after <bos> to predict (rows <bos> f "
        "<eos> <pad>..., as model.vocab.ids(tokens, bos=True, eos=True)), got "
    )
    if target_symbols is None:  # (why) in a compiled graph's assert: a constant message
        return expected + "only <pad> after column 0"
    shape = tuple(target_symbols.shape)
    return expected + f"shape {shape}" + (" with only <pad> after column 0" if shape[1] > 1 else "")


def _check_batch_keys(where: str, batch: Any, keys: tuple[str, ...]) -> None:
    """A clear error unless ``batch`` is a mapping holding ``keys`` (``symbols``: optional).

    (why) static (type and key names): no graph break under compile."""
    if not isinstance(batch, Mapping):
        raise TypeError(f"PROSE.{where} expected a batch dict, got {type(batch).__name__}")
    missing = [k for k in keys if k not in batch]
    if missing:
        raise ValueError(
            f"PROSE.{where} expected a batch with keys {list(keys)} (and optional 'symbols'), "
            f"got keys {list(batch)}: missing {missing}"
        )


def _bucket_width(longest: int, max_symbol_len: int) -> int:
    """The smallest of 16, 32, 64, ... (powers of two) and ``max_symbol_len`` that holds
    ``longest`` tokens: the widths a compiled PROSE step sees (16, 32, 64, 128, 200 for the
    default ``max_symbol_len``), so that ``torch.compile`` makes one graph per bucket (5 at
    most, under its default limit of 8 recompiles) where eager cuts to the longest row."""
    width = 16
    while width < longest:
        width *= 2
    return max(min(width, max_symbol_len), longest)


def _used_width(tokens: torch.Tensor, pad_id: int) -> int:
    """1 + the last column of ``tokens`` ``(B, L)`` with a token that is not padding (0: none)."""
    used = (tokens != pad_id).any(dim=0).nonzero()
    return int(used[-1]) + 1 if used.numel() else 0


def _to_width(tokens: torch.Tensor, width: int, pad_id: int) -> torch.Tensor:
    if tokens.shape[1] >= width:
        return tokens[:, :width]
    return F.pad(tokens, (0, width - tokens.shape[1]), value=pad_id)


class _CrossBlock(nn.Module):
    """``q <- q + Attn(LN q, mem); q <- q + FFN(LN q)``: no self-attention between queries."""

    def __init__(self, cfg: PROSEConfig) -> None:
        super().__init__()
        self.norm1 = nn.LayerNorm(cfg.width)
        self.attn = nn.MultiheadAttention(cfg.width, cfg.heads, cfg.dropout, batch_first=True)
        self.norm2 = nn.LayerNorm(cfg.width)
        self.ffn = nn.Sequential(
            nn.Linear(cfg.width, cfg.ffn_mult * cfg.width),
            nn.GELU(),
            nn.Linear(cfg.ffn_mult * cfg.width, cfg.width),
        )

    def forward(self, q: torch.Tensor, mem: torch.Tensor, mem_pad: torch.Tensor | None):
        h = self.norm1(q)
        q = q + self.attn(h, mem, mem, key_padding_mask=mem_pad, need_weights=False)[0]
        return q + self.ffn(self.norm2(q))


def _time_frequencies(dtype: torch.dtype, device: torch.device | None) -> torch.Tensor:
    """The 32 geometric frequencies ``0.1 .. 50`` of :class:`_TimeEmbedding` in ``dtype``:
    computed in float64 for float64, else in float32 and rounded (what the float32 and float64
    builds computed before, so older checkpoints' values are these)."""
    work = torch.float64 if dtype == torch.float64 else torch.float32
    freq = torch.exp(torch.linspace(math.log(0.1), math.log(50.0), 32, dtype=work))
    return freq.to(dtype=dtype, device=device)


class _TimeEmbedding(nn.Module):
    """``t -> MLP([sin(w_k t), cos(w_k t)])`` with geometric frequencies ``w_k``."""

    # PROSE checkpoints written while freq was persistent hold it; sciml.load accepts this
    # documented key (sciml.operator.obsolete_state_keys) and still refuses any other unknown one.
    obsolete_state_keys = ("freq",)

    def __init__(self, width: int) -> None:
        super().__init__()
        # a constant of the architecture, not a weight: non-persistent, so new checkpoints do
        # not carry it (older ones do; _load_from_state_dict takes their values)
        freq = _time_frequencies(torch.get_default_dtype(), None)
        self.register_buffer("freq", freq, persistent=False)
        self.mlp = nn.Sequential(nn.Linear(64, width), nn.GELU(), nn.Linear(width, width))

    def _apply(self, fn, recurse=True):
        dtype, was_meta = self.freq.dtype, self.freq.is_meta
        super()._apply(fn, recurse)
        if self.freq.dtype != dtype or (was_meta and not self.freq.is_meta):
            # (why) recomputed in the new precision, not the old values cast: the checkpoint does
            # not hold them, so a float64 model built under set_default_dtype(torch.float64) and
            # the float32-built one that sciml.load casts to float64 must hold the same values;
            # and off the meta device (to_empty), where no state dict would fill them in
            self.freq = _time_frequencies(self.freq.dtype, self.freq.device)
        return self

    def _load_from_state_dict(
        self, state_dict, prefix, local_metadata, strict, missing_keys, unexpected_keys, errors
    ):
        # An older checkpoint's freq: copied in rather than dropped, so the loaded model is the
        # function that was saved even where the stored values differ from the rebuilt ones (a
        # model built under torch.set_default_dtype(torch.float64) stored float64 frequencies;
        # rebuilding in float32 and casting would round them).
        old = state_dict.pop(prefix + "freq", None)
        if old is not None:
            if old.shape != self.freq.shape:
                errors.append(
                    f"size mismatch for {prefix}freq: the checkpoint holds {tuple(old.shape)}, "
                    f"the model has {tuple(self.freq.shape)}"
                )
            else:
                with torch.no_grad():
                    self.freq.copy_(old)
        super()._load_from_state_dict(
            state_dict, prefix, local_metadata, strict, missing_keys, unexpected_keys, errors
        )

    def forward(self, t: torch.Tensor) -> torch.Tensor:  # (..., 1) -> (..., width)
        a = t * self.freq
        return self.mlp(torch.cat([a.sin(), a.cos()], dim=-1))


class PROSE(Operator, family="prose"):
    """The PROSE network (see the module docstring for the architecture).

    ``forward(u, *, x, symbols=None) -> (B, T_out, D)``: ``u`` ``(B, T_in, 1 + D)`` holds the
    observation times in channel 0 and the (zero-padded) states in channels ``1 ... D``; ``x``
    ``(B or 1, T_out, 1)`` (or ``(T_out,)``) are the query times; ``symbols`` ``(B, L)`` token
    ids of the input skeleton (``<pad> = 0``), None for data only.
    """

    config_class = PROSEConfig
    config: PROSEConfig
    resolution_invariant = True  # the data decoder is queried at arbitrary times
    # sciml.export keeps the numbers of observation times (u), query times (x) and skeleton
    # tokens (symbols) free, besides the batch: the attention takes any sequence length
    export_free_sizes = True

    def __init__(self, config: PROSEConfig) -> None:
        super().__init__(config)
        c = config
        self.vocab = Vocabulary(max_dim=c.dim, max_exponent=c.max_exponent)
        v = len(self.vocab)
        self.data_embed = nn.Linear(1 + c.dim, c.width)
        self.time_embed = _TimeEmbedding(c.width)
        self.data_encoder = _encoder(c, c.data_encoder_layers)
        self.symbol_embed = nn.Embedding(v, c.width, padding_idx=0)
        self.position = nn.Embedding(c.max_symbol_len, c.width)
        self.symbol_encoder = _encoder(c, c.symbol_encoder_layers)
        self.modality = nn.Embedding(2, c.width)
        self.fusion = _encoder(c, c.fusion_layers)
        self.fusion_norm = nn.LayerNorm(c.width)
        self.query_embed = _TimeEmbedding(c.width)
        self.data_decoder = nn.ModuleList(_CrossBlock(c) for _ in range(c.data_decoder_layers))
        self.data_head = nn.Sequential(nn.LayerNorm(c.width), nn.Linear(c.width, c.dim))
        layer = nn.TransformerDecoderLayer(
            c.width, c.heads, c.ffn_mult * c.width, c.dropout, activation="gelu",
            batch_first=True, norm_first=True,
        )  # fmt: skip
        self.symbol_decoder = nn.TransformerDecoder(layer, c.symbol_decoder_layers)
        self.symbol_head = nn.Sequential(nn.LayerNorm(c.width), nn.Linear(c.width, v))

    # ------------------------------------------------------------------ pieces
    def _check(self, u: torch.Tensor) -> None:
        d = self.config.dim
        check_input_dtype("PROSE", "u", u, self.data_embed.weight.dtype)
        if u.ndim != 3 or u.shape[-1] != 1 + d:
            raise ValueError(
                f"expected u of shape (batch, time, 1 + dim = {1 + d}) with times in channel 0, "
                f"got {tuple(u.shape)}"
            )
        if u.shape[0] == 0:  # torch's attention cannot reshape a batch of none
            raise ValueError(f"PROSE expected at least one sample, got u of shape {tuple(u.shape)}")
        if u.shape[1] < 2:  # the standard deviation of one observation is NaN
            raise ValueError(
                "PROSE normalises each sample by the standard deviation of its observations: "
                f"expected u with at least 2 observation times, got {u.shape[1]} "
                f"(shape {tuple(u.shape)})"
            )
        if isinstance(u.shape[1], torch.SymInt):
            # (why) traced with the number of observations free (sciml.export), the tracer
            # takes a free size to be >= 2 and drops the check above, and a program given one
            # observation answered NaN; a scalar assert in the graph keeps it (on the CPU)
            torch._assert_async(
                torch.scalar_tensor(u.shape[1]) >= 2,
                "PROSE normalises each sample by the standard deviation of its observations: "
                "expected u with at least 2 observation times, got 1",
            )

    def _normalise(self, u: torch.Tensor):
        values = u[..., 1:]
        mask = (values.abs().sum(dim=1, keepdim=True) > 0).to(u.dtype)  # (B, 1, D) real channels
        mean = values.mean(dim=1, keepdim=True)
        std = values.std(dim=1, keepdim=True).clamp_min(1e-3 * (1 + mean.abs()))
        return (values - mean) / std, mean, std, mask

    def _symbol_tokens(self, symbols: torch.Tensor) -> torch.Tensor:
        if symbols.shape[1] > self.config.max_symbol_len:
            raise ValueError(
                f"symbol sequence of length {symbols.shape[1]} exceeds max_symbol_len "
                f"{self.config.max_symbol_len}"
            )
        v = self.symbol_embed.num_embeddings
        if symbols.numel() and tracing():
            # (why) int(min) would break the graph; an assert in the graph raises this message
            # when the compiled or exported program runs (on a CPU: a RuntimeError), where the
            # embedding's lookup gave "index out of range in self" or read out of bounds
            ok = ((symbols >= 0) & (symbols < v)).all()
            torch._assert_async(
                ok,
                f"expected token ids in [0, {v}) (the vocabulary of this PROSE), got an id "
                "outside it; encode equations with model.vocab",
            )
        elif symbols.numel() and not transforming():  # (why) vmap cannot read the data
            lo, hi = int(symbols.min()), int(symbols.max())
            if lo < 0 or hi >= v:
                raise ValueError(
                    f"expected token ids in [0, {v}) (the vocabulary of this PROSE), got ids "
                    f"from {lo} to {hi}; encode equations with model.vocab"
                )
        pos = torch.arange(symbols.shape[1], device=symbols.device)
        return self.symbol_embed(symbols) + self.position(pos)

    def encode(self, u: torch.Tensor, symbols: torch.Tensor | None = None):
        """Fused features ``(B, T_in + L, width)``, their padding mask and the normalisation."""
        self._check(u)
        z, mean, std, mask = self._normalise(u)
        h = self.data_embed(torch.cat([u[..., :1], z], dim=-1)) + self.time_embed(u[..., :1])
        h = self.data_encoder(h) + self.modality.weight[0]
        pad = torch.zeros(h.shape[:2], dtype=torch.bool, device=h.device)
        if symbols is not None:
            symbols = _check_tokens("symbols", symbols, u.shape[0])
            if not transforming():  # data-dependent width; under vmap the padding just stays
                symbols = _trim_padding(symbols, self.vocab.pad_id)
            if isinstance(symbols.shape[1], torch.SymInt):
                # (why) traced with the width free (sciml.export), the tracer takes it to be
                # >= 2, so the empty skeleton eager reads as none failed in the attention's
                # reshape ("cannot reshape tensor of 0 elements")
                torch._assert_async(
                    torch.scalar_tensor(symbols.shape[1]) >= 1,
                    "expected symbols of at least one token in an exported PROSE (a row of "
                    "<pad> for a sample without skeleton), got none",
                )
        if symbols is not None and symbols.shape[1]:  # an empty skeleton is no skeleton
            spad = symbols == self.vocab.pad_id
            # a row of padding only (a sample without skeleton) must not mask all its keys: the
            # fused inference kernel answers NaN there, which the fusion's masked keys would
            # still carry into the data tokens (0 * NaN); its outputs are masked out below
            s = self.symbol_encoder(
                self._symbol_tokens(symbols),
                src_key_padding_mask=spad & ~spad.all(dim=1, keepdim=True),
            )
            h = torch.cat([h, s + self.modality.weight[1]], dim=1)
            pad = torch.cat([pad, spad], dim=1)
        fused = self.fusion_norm(self.fusion(h, src_key_padding_mask=pad))
        return fused, pad, (mean, std, mask)

    def decode_data(self, fused, pad, norm, x: torch.Tensor) -> torch.Tensor:
        """The trajectory at query times ``x`` ``(B or 1, T_out, 1)`` -> ``(B, T_out, D)``."""
        mean, std, mask = norm
        check_tensor("PROSE", "query times x", x)
        if x.ndim == 1:
            x = x[None, :, None]
        if x.ndim != 3 or x.shape[-1] != 1 or x.shape[0] not in (1, fused.shape[0]):
            raise ValueError(
                f"expected query times x of shape (B={fused.shape[0]} or 1, T_out, 1), got "
                f"{tuple(x.shape)}"
            )
        q = self.query_embed(x.to(fused.dtype)).expand(fused.shape[0], -1, -1)
        for block in self.data_decoder:
            q = block(q, fused, pad)
        return (self.data_head(q) * std + mean) * mask

    def symbol_logits(self, fused, pad, tokens: torch.Tensor) -> torch.Tensor:
        """Next-token logits ``(B, L, V)`` for the decoder input ``tokens`` ``(B, L)`` (teacher
        forcing); ``L = 0`` gives ``(B, 0, V)``."""
        tokens = _check_tokens("tokens", tokens, fused.shape[0])
        n = tokens.shape[1]
        if n == 0:
            # (why) no positions, no logits: the empty prefix of any sequence's logits (the
            # attention's reshape refuses 0 tokens); a Python int, so no graph break
            return self.symbol_head(fused[:, :0])
        causal = torch.ones(n, n, dtype=torch.bool, device=tokens.device).triu(1)
        # (why) tgt_is_causal=True: what torch detects for this mask anyway, but by comparing
        # it with a causal mask it builds (bool(...) of a tensor, a graph break under compile)
        h = self.symbol_decoder(
            self._symbol_tokens(tokens), fused, tgt_mask=causal, tgt_is_causal=True,
            tgt_key_padding_mask=tokens == self.vocab.pad_id, memory_key_padding_mask=pad,
        )  # fmt: skip
        return self.symbol_head(h)

    # ------------------------------------------------------------------ interface
    def forward(
        self,
        u: torch.Tensor,
        *,
        x: torch.Tensor,
        t: torch.Tensor | None = None,
        symbols: torch.Tensor | None = None,
    ) -> torch.Tensor:
        """Predicted trajectory ``u(x)`` ``(B, T_out, D)`` (see the class docstring for shapes).

        ``t`` is the common operator call's lead time, which PROSE does not take (its query
        times are ``x``): anything but None is a ValueError (docs/conventions.md).

        Inside a ``torch.func`` transform attention runs on SDPA's math backend: the fused CPU
        kernel has no forward-mode derivative, which ``torch.func.jacfwd`` needs."""
        if t is not None:
            raise ValueError(
                "PROSE takes no lead time t: pass the query times as x (B or 1, T_out, 1) and "
                "the observation times in channel 0 of u"
            )
        math_sdpa = sdpa_kernel(SDPBackend.MATH) if transforming() else contextlib.nullcontext()
        with math_sdpa:
            fused, pad, norm = self.encode(u, symbols)
            return self.decode_data(fused, pad, norm, x)

    def predict_batch(self, batch) -> torch.Tensor:
        """The trajectory prediction for a Trainer batch (``input``, ``x``, optional ``symbols``):
        what :meth:`training_loss` compares with ``target``, used by the Trainer's validation."""
        _check_batch_keys("predict_batch", batch, ("input", "x"))
        fused, pad, norm = self.encode(batch["input"], batch.get("symbols"))
        return self.decode_data(fused, pad, norm, batch["x"])

    def bucket_batch(self, batch: Mapping[str, Any]) -> dict[str, Any]:
        """``batch`` with its token tensors (``symbols``, ``target_symbols``, those present) cut
        or padded with ``<pad>`` to one bucket width: the smallest of 16, 32, 64, ... (powers
        of two) and ``max_symbol_len`` that holds the longest row of either. Feed these batches
        to a compiled or exported step.

        Eager PROSE cuts the all-padding columns itself (to the longest row); under
        ``torch.compile`` / ``torch.export`` the tokens stay at the width given (the cut reads
        the data: a graph break), so batches padded to ``max_symbol_len`` would run at 200
        tokens. At bucket widths a compiled step sees a few static shapes (16, 32, 64, 128, 200:
        one graph each, under ``torch.compile``'s default limit of 8) and gives eager's outputs
        (padded positions are masked). ``PROSEData``'s batches, through a ``DataLoader`` or the
        ``Trainer``, come cut this way already.
        """
        _check_batch_keys("bucket_batch", batch, ())  # a dict, as training_loss takes
        keys = [k for k in ("symbols", "target_symbols") if batch.get(k) is not None]
        if not keys:
            return dict(batch)
        # (why) checked as training_loss checks them (a list said "'bool' object has no
        # attribute 'any'"); the batch is the input's, else the first token tensor's
        u = batch.get("input")
        size = u.shape[0] if isinstance(u, torch.Tensor) and u.ndim else None
        for k in keys:
            _check_tokens(k, batch[k], size)
            size = batch[k].shape[0]
        pad = self.vocab.pad_id
        target = batch.get("target_symbols")
        if target is not None and _used_width(target, pad) < 2:  # as training_loss refuses it
            raise ValueError(_nothing_to_predict(target))
        longest = max(_used_width(batch[k], pad) for k in keys)
        width = _bucket_width(longest, self.config.max_symbol_len)
        return {**batch, **{k: _to_width(batch[k], width, pad) for k in keys}}

    def training_loss(self, batch, loss_fn) -> torch.Tensor:
        """``loss_fn(u_pred, u_true) + symbol_loss_weight * CE(next tokens of the equations)``.

        ``batch``: ``input``, ``x``, ``target`` as for :meth:`forward`, ``symbols`` (input
        skeleton ids) and ``target_symbols`` ``(B, L)`` = ``<bos> f <eos> <pad>...``, with a
        token to predict after ``<bos>`` in some row (else a ValueError: the mean cross-entropy
        over no tokens is NaN).
        """
        _check_batch_keys("training_loss", batch, ("input", "x", "target", "target_symbols"))
        fused, pad, norm = self.encode(batch["input"], batch.get("symbols"))
        data_loss = loss_fn(self.decode_data(fused, pad, norm, batch["x"]), batch["target"])
        # (why) checked here, by the batch's key: symbol_logits would name its own "tokens"
        tgt = _check_tokens("target_symbols", batch["target_symbols"], fused.shape[0])
        given = tgt
        tgt = _trim_padding(tgt, self.vocab.pad_id)
        if tgt.shape[1] < 2:  # (why) the cut width, a Python int: no graph break
            raise ValueError(_nothing_to_predict(given))
        if tracing():
            # (why) compiled, nothing is cut: an all-padding target of width >= 2 is caught by
            # an assert in the graph (int(any) would break it), not left to a NaN loss
            ok = (tgt[:, 1:] != self.vocab.pad_id).any()
            torch._assert_async(ok, _nothing_to_predict(None))
        logits = self.symbol_logits(fused, pad, tgt[:, :-1])
        ce = F.cross_entropy(
            logits.reshape(-1, logits.shape[-1]).float(), tgt[:, 1:].reshape(-1),
            ignore_index=self.vocab.pad_id,
        )  # fmt: skip
        return data_loss + self.config.symbol_loss_weight * ce

    @torch.no_grad()
    def generate(
        self,
        u: torch.Tensor,
        symbols: torch.Tensor | None = None,
        *,
        beam_size: int = 1,
        max_len: int | None = None,
        length_penalty: float = 1.0,
    ) -> list[list[str]]:
        """Decode the equations: greedy (``beam_size = 1``) or beam search.

        Returns one token list per sample (without ``<bos>``/``<eos>``); feed it to
        :func:`sciml.symbolic.decode`. Beam hypotheses are ranked by
        ``log p / length^length_penalty``.

        ``beam_size``: an int >= 1; ``max_len``: the longest sequence, ``<bos>`` and ``<eos>``
        included, an int >= 2 (None, or above ``max_symbol_len``: ``max_symbol_len``);
        ``length_penalty``: a finite number.
        """
        # (why) beam_size 0 or -3 ran greedy and 2.5 failed in topk; max_len 1 or -5 gave empty
        # equations and 0 the longest (read as None); a NaN length_penalty ranked by NaN
        if not is_int(beam_size) or beam_size < 1:
            error = ValueError if is_int(beam_size) else TypeError
            raise error(f"expected beam_size as an int >= 1, got {beam_size!r}")
        if max_len is not None and (not is_int(max_len) or max_len < 2):
            error = ValueError if is_int(max_len) else TypeError
            raise error(
                "expected max_len as an int >= 2 (the longest sequence, <bos> and <eos> "
                f"included) or None for max_symbol_len, got {max_len!r}"
            )
        if not is_real(length_penalty) or not math.isfinite(length_penalty):
            error = ValueError if is_real(length_penalty) else TypeError
            raise error(f"expected a finite number as length_penalty, got {length_penalty!r}")
        limit = self.config.max_symbol_len
        max_len = limit if max_len is None else min(int(max_len), limit)
        fused, pad, _ = self.encode(u, symbols)
        if beam_size <= 1:
            return self._greedy(fused, pad, max_len)
        return [
            self._beam(fused[b : b + 1], pad[b : b + 1], max_len, beam_size, length_penalty)
            for b in range(fused.shape[0])
        ]

    def _greedy(self, fused, pad, max_len) -> list[list[str]]:
        v = self.vocab
        b = fused.shape[0]
        seq = torch.full((b, 1), v.bos_id, dtype=torch.long, device=fused.device)
        done = torch.zeros(b, dtype=torch.bool, device=fused.device)
        for _ in range(max_len - 1):
            nxt = self.symbol_logits(fused, pad, seq)[:, -1].argmax(-1)
            nxt = torch.where(done, torch.full_like(nxt, v.pad_id), nxt)
            seq = torch.cat([seq, nxt[:, None]], dim=1)
            done |= nxt == v.eos_id
            if bool(done.all()):
                break
        return [v.words(s.tolist()) for s in seq]

    def _beam(self, fused, pad, max_len, k, alpha) -> list[str]:
        v = self.vocab
        seqs = torch.full((1, 1), v.bos_id, dtype=torch.long, device=fused.device)
        scores = torch.zeros(1, device=fused.device)
        finished: list[tuple[float, list[int]]] = []
        for step in range(1, max_len):
            n = seqs.shape[0]
            logp = self.symbol_logits(fused.expand(n, -1, -1), pad.expand(n, -1), seqs)[:, -1]
            logp = logp.float().log_softmax(-1)
            logp[:, v.pad_id] = -math.inf
            logp[:, v.bos_id] = -math.inf
            total = (scores[:, None] + logp).flatten()
            top, idx = total.topk(min(2 * k, total.numel()))
            keep_seq, keep_score = [], []
            for s, i in zip(top.tolist(), idx.tolist()):
                row, tok = divmod(i, logp.shape[1])
                if tok == v.eos_id:
                    finished.append((s / (step**alpha), seqs[row, 1:].tolist()))
                else:
                    keep_seq.append(torch.cat([seqs[row], seqs.new_tensor([tok])]))
                    keep_score.append(s)
                if len(keep_seq) == k:
                    break
            if len(finished) >= k or not keep_seq:
                break
            best_open = max(keep_score) / (max_len**alpha) if alpha > 0 else max(keep_score)
            if finished and max(f[0] for f in finished) > best_open:
                break  # no open beam can overtake the best finished one
            seqs, scores = torch.stack(keep_seq), torch.tensor(keep_score, device=fused.device)
        if not finished:  # ran out of length: the best open hypothesis (will decode as invalid)
            finished.append((scores.max().item(), seqs[int(scores.argmax()), 1:].tolist()))
        return v.words(max(finished, key=lambda f: f[0])[1])

    def prediction_and_equations(
        self,
        u: torch.Tensor,
        symbols: torch.Tensor | None = None,
        *,
        x: torch.Tensor,
        beam_size: int = 1,
    ) -> tuple[torch.Tensor, list[list[str]]]:
        """``(forward(u, x=x, symbols=symbols), generate(u, symbols, beam_size=beam_size))``."""
        return self(u, x=x, symbols=symbols), self.generate(u, symbols, beam_size=beam_size)
