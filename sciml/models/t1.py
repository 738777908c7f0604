"""Transform once (T1): operator learning directly on a truncated spectrum.

Poli, Massaroli, Berto, Park, Dao, Re, Ermon, "Transform Once: Efficient Operator Learning in
Frequency Domain", NeurIPS 2022. An FNO pays a forward and an inverse FFT in every layer; T1
transforms the input once, computes every layer on the kept coefficients, and (optionally)
transforms back once::

    z_0     = L s T_K(u) + b                           T_K: kept coefficients of an orthonormal
                                                       transform (DCT-II default, real FFT option)
    z_{l+1} = z_l + F_d ... F_1 act(C_l z_l)           C_l: channel mixing, one matrix per mode
                                                       F_a: frequency mixing along axis a, one
                                                            (m_a x m_a) matrix per channel
    G(u)    = T_K^{-1}( Q(z_L) / s )                   Q: two-layer channel MLP per mode

``s = sqrt(M / N)`` with ``N`` grid points and ``M`` kept coefficients, so ``z`` holds
discretisation-independent coefficients (``mean_j x_j^2 = E(z) / M`` by Parseval for a field in
the kept band, ``E`` the coefficient energy of :meth:`RealTransform.energy`: ``sum_k z_k^2`` for
the DCT, last-axis bins ``k > 0`` counted twice for the real FFT), of unit variance for a
normalised field whose energy lies in the kept band, and the same weights apply at any resolution
that contains the kept modes. Activations act on coefficients (on real and imaginary parts for
the real FFT). The kept set ``K`` is a tensor product of per-axis index sets: the ``m`` lowest
frequencies (low-pass, ``config.modes``) or any sets, e.g. those holding most of the training
data's energy (:func:`select_modes`, stored in ``config.kept``).

Initialisation (variance preserving). The paper shows that a mixing weight that reads ``n``
orthonormal coefficients per input channel and writes ``m`` keeps the activation variance when
its entries have variance ``gain * n / (m * fan_in)`` (half of it per real/imaginary part for
complex weights). Inside T1 every layer reads and writes the same kept set (``n = m``), so:

* channel mixing ``C``: variance ``1 / width`` (pre-activation variance = input variance);
* frequency mixing ``F_a``: ``1 / m_a``, and the last one times ``1 / (g L)`` where
  ``g = E[act(h)^2]`` for ``h ~ N(0, 1)`` undoes the activation's shrinkage and ``L`` is the
  number of layers: each residual branch then adds ``1 / L`` of the variance, so after ``l``
  layers ``Var(z_l) = (1 + 1/L)^l Var(z_0)``, at most ``e Var(z_0)``, for any depth
  (``tests/test_t1.py`` checks this through 8 layers).

Translations (``config.shift_equivariant``, real FFT only). A shift by ``s`` multiplies coefficient
``k`` by ``exp(-2 pi i k . s)``, which the per-coefficient activation and the frequency mixing do
not commute with: plain T1 must learn every position of a pattern separately, where FNO's
physical-space layers are translation equivariant by construction. For the directions ``d_j``
along which the problem is invariant, T1 reads a phase ``theta_j`` off reference coefficients,
multiplies the input coefficients by ``exp(-i sum_j (k . d_j) theta_j)`` (the input moved to a
canonical position) and the output by the conjugate (moved back): exactly equivariant, one phase
per kept coefficient, no extra transform (:meth:`T1.canonical_phase`).

Loss: :class:`SpectralL2Loss` is the physical relative L2 error of ``T_K^{-1}`` of the predicted
coefficients, computed without any inverse transform by Parseval (see its docstring); the model's
``training_loss`` uses it whenever it is the Trainer's loss.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Literal

import numpy as np
import torch
from torch import nn

from .._config import check_json_fields
from ..layers import activation as _activation
from ..layers._checks import (
    as_input_precision,
    check_input_dtype,
    check_int_fields,
    check_ints,
    check_size,
)
from ..layers._complex import ComplexCasts
from ..layers.mlp import _ACTIVATIONS
from ..layers.transforms import TRANSFORMS, RealTransform, _as_kept
from ..operator import Operator
from ._rollout import Autoregressive

__all__ = ["T1", "T1Config", "T1Block", "SpectralL2Loss", "select_modes"]

Activation = Literal["gelu", "relu", "tanh", "silu", "sin"]


@dataclass(frozen=True)
class T1Config:
    """Hyper-parameters of :class:`T1`.

    Attributes:
        in_channels: input function channels.
        out_channels: output function channels.
        modes: low-pass modes per spatial dim (its length sets 1D, 2D or 3D); see the
            transform's ``low_pass`` (DCT: ``0..m-1``; real FFT: ``-(m-1)..m-1`` on all dims but
            the last, ``0..m-1`` on the last).
        kept: explicit kept index set per dim (e.g. from :func:`select_modes`); overrides the
            values of ``modes`` (whose length must still match).
        width: channels of the spectral activations.
        n_layers: number of T1 blocks.
        projection_channels: hidden channels of the per-mode output MLP.
        transform: ``"dct"`` (orthonormal DCT-II, real coefficients), ``"dst"`` or ``"rfft"``
            (orthonormal real FFT, complex coefficients).
        activation: nonlinearity on coefficients: gelu, relu, tanh, silu or sin.
        positional_embedding: a learned per-mode, per-channel bias after the lifting (a learned
            band-limited function: the spectral counterpart of FNO's appended grid).
        inverse: return the physical field (inverse transform at the end); False returns the
            kept coefficients ``(batch, out_channels, *kept sizes)``.
        shift_equivariant: integer lattice directions ``d`` (one tuple of ``len(modes)`` entries
            each) along which the operator to learn commutes with translations, e.g.
            ``((1, -1),)`` for Navier-Stokes with a forcing of ``x + y``, ``((1, 0), (0, 1))``
            for an unforced periodic problem. T1 then shifts each input to a canonical position
            along them (a phase per coefficient, see :meth:`T1.canonical_phase`) and shifts the
            output back, so it is exactly equivariant to those translations. Real FFT only.
    """

    in_channels: int = 1
    out_channels: int = 1
    modes: tuple[int, ...] = (16, 16)
    kept: tuple[tuple[int, ...], ...] | None = None
    width: int = 32
    n_layers: int = 4
    projection_channels: int = 128
    transform: Literal["dct", "dst", "rfft"] = "dct"
    activation: Activation = "gelu"
    positional_embedding: bool = True
    inverse: bool = True
    shift_equivariant: tuple[tuple[int, ...], ...] | None = None

    def __post_init__(self) -> None:
        check_int_fields(
            self, ("in_channels", "out_channels", "width", "n_layers", "projection_channels")
        )
        check_ints(
            "modes", self.modes, low=None, per="spatial dim"
        )  # the range check below names the bound
        if not 1 <= len(self.modes) <= 3 or any(m < 1 for m in self.modes):
            raise ValueError(
                f"modes must have 1 to 3 positive entries (one per spatial dim), got {self.modes}"
            )
        for name in ("in_channels", "out_channels", "width", "n_layers", "projection_channels"):
            if getattr(self, name) < 1:
                raise ValueError(f"{name} must be >= 1, got {getattr(self, name)}")
        if self.transform not in TRANSFORMS:
            raise ValueError(
                f"transform must be one of {sorted(TRANSFORMS)}, got {self.transform!r}"
            )
        if self.activation not in (*_ACTIVATIONS, "sin"):
            raise ValueError(
                f"activation: expected one of {sorted((*_ACTIVATIONS, 'sin'))}, got "
                f"{self.activation!r}"
            )
        if self.kept is not None and len(self.kept) != len(self.modes):
            raise ValueError(
                f"kept has {len(self.kept)} index sets but modes has {len(self.modes)} dims; "
                "give one index set per spatial dim"
            )
        if self.kept is not None:
            for a, idx in enumerate(self.kept):
                check_ints(f"kept[{a}]", idx, low=None)
        if self.shift_equivariant is not None:
            if self.transform != "rfft":
                raise ValueError(
                    "shift_equivariant needs transform='rfft' (a translation is a phase per "
                    f"Fourier coefficient), got transform={self.transform!r}"
                )
            dirs = self.shift_equivariant
            if not dirs or any(
                len(d) != len(self.modes) or not any(d) or any(int(a) != a for a in d) for d in dirs
            ):
                raise ValueError(
                    f"shift_equivariant must hold non-zero integer directions of {len(self.modes)} "
                    f"entries (one per spatial dim), e.g. ((1, -1),), got {dirs}"
                )
        check_json_fields(self)

    def kept_indices(self) -> tuple[tuple[int, ...], ...]:
        """The kept index set per dim (``kept`` or the low-pass set of ``modes``)."""
        if self.kept is not None:
            return tuple(tuple(int(k) for k in idx) for idx in self.kept)
        t = TRANSFORMS[self.transform]
        d = len(self.modes)
        # A size that admits every low-pass set; only the indices matter here.
        return tuple(t.low_pass(4 * m + 2, m, last=(a == d - 1)) for a, m in enumerate(self.modes))


# (why) the rule that sets T1's smallest grid, per transform: the message named the DST's rule
# for every transform, and a real-FFT model refused an even grid for a reason it did not say
_GRID_RULE = {
    "dct": "the kept dct indices must be indices of the grid (k < n)",
    "dst": "the kept dst indices must lie below n - 1, whose coefficient depends on the resolution",
    "rfft": "the kept rfft frequencies must lie below the grid's Nyquist frequency n / 2 "
    "(|k| <= (n - 1) // 2), whose bin holds a cosine only",
}


def _scale(sizes: Sequence[int], kept: Sequence[Sequence[int]]) -> float:
    """T1's coefficients are ``sqrt(M / N)`` times the orthonormal ones (``N`` grid points,
    ``M`` kept coefficients): independent of the resolution, and of unit variance for a
    unit-variance field whose energy lies in the kept band (the regime the initialisation's
    activation gain is computed for)."""
    # (why) lists, not generators: torch.compile cannot pass a generator to math.prod and broke
    # the compiled graph here (twice per spectral-loss call)
    return math.sqrt(math.prod([len(k) for k in kept]) / math.prod([int(n) for n in sizes]))


def _rescale(z: torch.Tensor, scale: float, *, divide: bool = False) -> torch.Tensor:
    """``z * scale`` (or ``z / scale``) for T1's real ``scale``, a complex ``z`` through its real
    pairs: the product bit for bit, the quotient each part divided (exactly rounded; complex
    division can differ by one unit in the last place). (why) under ``torch.compile`` with
    dynamic shapes the scale is a symbolic float, and a complex tensor times a symbolic float
    makes it a Python complex, whose guard fails on the frame that made it (torch 2.13: "Guard
    failed on the same frame it was created", T1 compiled at 64 x 64, then called at 256 x 256).
    A lazily conjugated ``z`` is resolved first (``view_as_real`` refuses one)."""
    x = torch.view_as_real(z.resolve_conj()) if z.is_complex() else z
    x = x / scale if divide else x * scale
    return torch.view_as_complex(x) if z.is_complex() else x


def _gain(name: str) -> float:
    """``E[act(h)^2]`` for ``h ~ N(0, 1)`` by 40-point Gauss-Hermite quadrature."""
    nodes, weights = np.polynomial.hermite_e.hermegauss(40)
    # (why) on the CPU: a number is read back, which a model built under
    # `with torch.device('meta'):` could not do
    h = torch.tensor(nodes, dtype=torch.float64, device="cpu")
    act = torch.sin if name == "sin" else _activation(name)
    weights = torch.tensor(weights, device="cpu")
    return float((act(h) ** 2 * weights).sum() / math.sqrt(2 * math.pi))


def _randn(shape: Sequence[int], var: float, complex_: bool) -> torch.Tensor:
    """Entries of variance ``var`` (split equally between real and imaginary parts)."""
    if complex_:
        s = math.sqrt(var / 2)
        return torch.complex(torch.randn(*shape) * s, torch.randn(*shape) * s)
    return torch.randn(*shape) * math.sqrt(var)


class T1Block(ComplexCasts):
    """One T1 layer on kept coefficients ``z: (batch, width, m_1, ..., m_d)``::

        z + F_d(... F_1(act(C z)))

    ``C``: ``(width, width, m_1, ..., m_d)``, a channel-mixing matrix per mode;
    ``F_a``: ``(width, m_a, m_a)``, a frequency-mixing matrix along axis ``a`` per channel.
    """

    def __init__(
        self,
        width: int,
        sizes: Sequence[int],
        *,
        activation: str = "gelu",
        complex_: bool = False,
        n_layers: int = 1,
    ) -> None:
        super().__init__()
        self.width, self.sizes, self.complex = width, tuple(sizes), complex_
        self.act_name = activation
        self.act = torch.sin if activation == "sin" else _activation(activation)
        self.n_layers = n_layers
        dtype = torch.cfloat if complex_ else torch.float
        self.channel = nn.Parameter(torch.empty(width, width, *self.sizes, dtype=dtype))
        self.freq = nn.ParameterList(
            nn.Parameter(torch.empty(width, m, m, dtype=dtype)) for m in self.sizes
        )
        d = len(self.sizes)
        letters = "xyz"[:d]
        self._channel_eq = f"bi{letters},io{letters}->bo{letters}"
        self._freq_eq = [
            f"bc{letters},cq{letters[a]}->bc{letters.replace(letters[a], 'q')}" for a in range(d)
        ]
        self.reset_parameters()

    def reset_parameters(self) -> None:
        """Variance-preserving initialisation (see the module docstring)."""
        with torch.no_grad():
            self.channel.copy_(_randn(self.channel.shape, 1.0 / self.width, self.complex))
            last = len(self.sizes) - 1
            for a, (f, m) in enumerate(zip(self.freq, self.sizes)):
                var = 1.0 / m
                if a == last:
                    var /= _gain(self.act_name) * self.n_layers
                f.copy_(_randn(f.shape, var, self.complex))

    def _act(self, z: torch.Tensor) -> torch.Tensor:
        if z.is_complex():
            return torch.complex(self.act(z.real), self.act(z.imag))
        return self.act(z)

    def forward(self, z: torch.Tensor) -> torch.Tensor:
        """``z: (batch, width, m_1, ..., m_d)`` -> same shape."""
        y = self._act(torch.einsum(self._channel_eq, z, self.channel.to(z.dtype)))
        for eq, f in zip(self._freq_eq, self.freq):
            y = torch.einsum(eq, y, f.to(y.dtype))
        return z + y


class T1(Autoregressive, Operator, family="t1"):
    """Transform-once frequency-domain operator (see the module docstring for the math).

    Resolution-invariant: coefficients are scaled by ``sqrt(M / N)``, so the same weights
    evaluate a function sampled on any grid that contains the kept modes.
    """

    config_class = T1Config
    config: T1Config
    resolution_invariant = True

    def __init__(self, config: T1Config) -> None:
        super().__init__(config)
        c = config
        self.transform: RealTransform = TRANSFORMS[c.transform]
        self.kept = c.kept_indices()
        self.ndim = len(self.kept)
        # the smallest grid per dim that holds the kept indices (the input's and the output's)
        min_sizes = []
        for a, idx in enumerate(self.kept):
            last = a == self.ndim - 1
            n = self.transform.min_size(idx, last=last) if idx else 1
            try:  # the sign, symmetry and distinctness rules of the transform
                self.transform.check_indices(n, idx, last=last)
            except ValueError as exc:
                raise ValueError(f"T1Config.kept[{a}] is not a valid index set: {exc}") from None
            min_sizes.append(n)
        self._min_sizes = tuple(min_sizes)
        sizes = tuple(len(idx) for idx in self.kept)
        cplx = self.transform.is_complex
        self.lift = nn.Parameter(torch.empty(c.in_channels, c.width))
        dtype = torch.cfloat if cplx else torch.float
        self.bias = (
            nn.Parameter(torch.zeros(c.width, *sizes, dtype=dtype))
            if c.positional_embedding
            else None
        )
        self.blocks = nn.ModuleList(
            T1Block(c.width, sizes, activation=c.activation, complex_=cplx, n_layers=c.n_layers)
            for _ in range(c.n_layers)
        )
        self.act = torch.sin if c.activation == "sin" else _activation(c.activation)
        self.proj1 = nn.Parameter(torch.empty(c.width, c.projection_channels))
        self.proj2 = nn.Parameter(torch.empty(c.projection_channels, c.out_channels))
        self._shifts = c.shift_equivariant is not None
        if self._shifts:
            self._setup_shifts(c.shift_equivariant)
        self.reset_parameters()

    def _setup_shifts(self, directions: Sequence[Sequence[int]]) -> None:
        """Buffers for :meth:`canonical_phase`: ``k . d_j`` per kept mode and direction, and the
        reference modes of each direction (``k . d_j = +-1``, ``k . d_i = 0`` for ``i != j``)."""
        # (why) computed on the CPU (the checks below read values back) and moved to the device
        # the parameters are made on, the meta device under `with torch.device('meta'):`
        device = torch.empty(0).device
        grids = torch.meshgrid(
            *(torch.tensor(idx, dtype=torch.float64, device="cpu") for idx in self.kept),
            indexing="ij",
        )
        kd = torch.stack([sum(a * g for a, g in zip(d, grids)) for d in directions])  # (J, *m)
        ref = []
        for j in range(len(directions)):
            others = torch.ones_like(kd[j], dtype=torch.bool)
            for i in range(len(directions)):
                if i != j:
                    others &= kd[i] == 0
            plus, minus = others & (kd[j] == 1), others & (kd[j] == -1)
            if not (plus | minus).any():
                raise ValueError(
                    f"shift_equivariant direction {tuple(directions[j])}: no kept mode k has "
                    f"k . d = +-1 (and k . d' = 0 for the other directions); keep more modes"
                )
            ref.append(plus.double() - minus.double())
        self.register_buffer("shift_kd", kd.float().to(device), persistent=False)
        self.register_buffer("shift_ref", torch.stack(ref).float().to(device), persistent=False)

    def reset_parameters(self) -> None:
        """Lifting and projection: variance ``1 / fan_in`` (per-mode pointwise maps)."""
        with torch.no_grad():
            for w in (self.lift, self.proj1, self.proj2):
                w.copy_(torch.randn_like(w) / math.sqrt(w.shape[0]))

    # ------------------------------------------------------------------ pieces
    def _check(self, u: torch.Tensor) -> None:
        c = self.config
        check_input_dtype("T1", "u", u, self.lift.dtype)
        if u.ndim != self.ndim + 2 or u.shape[1] != c.in_channels:
            raise ValueError(
                f"T1 expected u of shape (batch, {c.in_channels}, {self.ndim} spatial dims), "
                f"got {tuple(u.shape)}; the spatial dims are set by the config: "
                f"in_channels={c.in_channels}, modes={tuple(c.modes)}"
            )
        self._check_grid("u on a grid", tuple(u.shape[2:]))

    def _check_grid(self, what: str, sizes: tuple[int, ...]) -> None:
        """``what`` (``u`` or ``out_shape``) must hold the kept indices on every axis."""
        if len(sizes) != self.ndim:
            raise ValueError(f"T1 expected {what} with {self.ndim} entries, got {sizes}")
        if any(n < m for n, m in zip(sizes, self._min_sizes)):
            raise ValueError(
                f"T1 expected {what} of at least {self._min_sizes} points, got {sizes}; "
                f"{_GRID_RULE[self.config.transform]}"
            )

    def _channels(self, z: torch.Tensor, w: torch.Tensor) -> torch.Tensor:
        """Apply a ``(c_in, c_out)`` map to ``z: (b, c_in, *m)`` at every mode."""
        zt = z.movedim(1, -1)
        out = zt @ w.to(zt.dtype)
        return out.movedim(-1, 1)

    def _act(self, z: torch.Tensor) -> torch.Tensor:
        if z.is_complex():
            return torch.complex(self.act(z.real), self.act(z.imag))
        return self.act(z)

    def encode(self, u: torch.Tensor) -> torch.Tensor:
        """The one forward transform, the canonical shift (``shift_equivariant``) and the lifting.

        Args:
            u: ``(batch, in_channels, *spatial)``.

        Returns:
            ``z_0: (batch, width, m_1, ..., m_d)`` (complex for the real FFT).
        """
        return self._encode(u)[0]

    def _encode(self, u: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor | None]:
        """``z_0`` and the canonical phase (None without ``shift_equivariant``)."""
        self._check(u)
        z = _rescale(self.transform.forward(u, self.kept), _scale(u.shape[2:], self.kept))
        phase = None
        if self._shifts:
            phase = self.canonical_phase(z)
            z = z * phase
        z = self._channels(z, self.lift)
        if self.bias is not None:
            z = z + self.bias.to(z.dtype)
        return z, phase

    def canonical_phase(self, z: torch.Tensor) -> torch.Tensor:
        """Per-sample phase that moves ``z`` to its canonical position along the shift directions.

        A translation by ``s`` multiplies coefficient ``k`` by ``exp(-2 pi i k . s)``. For each
        direction ``d_j``, ``theta_j = arg(sum_ref z_k)`` over the reference modes (``k . d_j = 1``;
        those with ``k . d_j = -1`` enter conjugated), summed over channels, turns by ``-2 pi t_j``
        under the shift ``s = sum_j t_j d_j`` (and not under the others), so
        ``exp(-i sum_j (k . d_j) theta_j) z_k`` is invariant to those shifts.

        Args:
            z: kept coefficients ``(batch, channels, m_1, ..., m_d)`` (complex).

        Returns:
            ``(batch, 1, m_1, ..., m_d)`` unit complex numbers; multiply by it to canonicalise and
            by its conjugate to shift back.
        """
        zs = z.sum(1).flatten(1)  # (b, M)
        ref = self.shift_ref.flatten(1).to(zs.real.dtype)  # (J, M): +1, -1 or 0
        plus, minus = (ref > 0).to(zs.dtype), (ref < 0).to(zs.dtype)
        theta = torch.angle(zs @ plus.T + zs.conj() @ minus.T)  # (b, J)
        kd = self.shift_kd.flatten(1).to(theta.dtype)  # (J, M)
        angle = (theta @ kd).reshape(z.shape[0], 1, *z.shape[2:])
        return torch.polar(torch.ones_like(angle), -angle)

    def _rollout_check(self) -> None:
        if not self.config.inverse:
            raise ValueError(
                "rollout: this T1 returns coefficients (inverse=False), not states on the grid; "
                "roll out a model built with inverse=True"
            )

    def spectrum(self, u: torch.Tensor) -> torch.Tensor:
        """The predicted kept coefficients (in the normalisation of :func:`_scale`).

        Args:
            u: ``(batch, in_channels, *spatial)``.

        Returns:
            ``(batch, out_channels, m_1, ..., m_d)``.
        """
        z, phase = self._encode(u)
        for block in self.blocks:
            z = block(z)
        out = self._channels(self._act(self._channels(z, self.proj1)), self.proj2)
        return out if phase is None else out * phase.conj()

    def decode(self, z: torch.Tensor, out_shape: Sequence[int]) -> torch.Tensor:
        """The one inverse transform: coefficients ``(batch, c, *m)`` -> ``(batch, c, *out_shape)``."""
        out_shape = check_size("T1", "out_shape", out_shape)
        self._check_grid("out_shape", out_shape)
        z = _rescale(z, _scale(out_shape, self.kept), divide=True)
        return self.transform.inverse(z, self.kept, out_shape)

    def forward(
        self,
        u: torch.Tensor,
        *,
        x: torch.Tensor | None = None,
        t: torch.Tensor | None = None,
        out_shape: Sequence[int] | None = None,
    ) -> torch.Tensor:
        """Map input functions to output functions.

        Args:
            u: ``(batch, in_channels, *spatial)``.
            x: unused; must be None.
            t: unused; must be None.
            out_shape: output grid (default: the input's); a finer grid evaluates the
                band-limited output there (super-resolution). Refused with ``inverse=False``.

        Returns:
            ``(batch, out_channels, *out_shape)`` when ``config.inverse``, else the coefficients
            of :meth:`spectrum`.
        """
        if x is not None or t is not None:
            raise ValueError("T1 takes no query points x or lead time t; pass only u")
        if not self.config.inverse and out_shape is not None:
            # (why) the coefficients do not depend on the grid: an out_shape was ignored silently
            raise ValueError(
                f"T1 with inverse=False returns the kept coefficients, on no grid; got "
                f"out_shape={tuple(out_shape)}. Build the model with inverse=True, or call "
                "model.decode(model(u), out_shape)"
            )
        z = self.spectrum(u)
        if not self.config.inverse:
            return z
        return as_input_precision(
            self.decode(z, out_shape if out_shape is not None else u.shape[2:]), u
        )

    def spectral_loss(self) -> SpectralL2Loss:
        """The Parseval relative L2 loss for this model's transform and kept set."""
        return SpectralL2Loss(self.transform, self.kept)

    def training_loss(self, batch: dict, loss_fn) -> torch.Tensor:
        """Trainer hook: with a :class:`SpectralL2Loss`, skip the inverse transform."""
        if isinstance(loss_fn, SpectralL2Loss):
            return loss_fn(self.spectrum(batch["input"]), batch["target"])
        return loss_fn(self(batch["input"]), batch["target"])


class SpectralL2Loss:
    """Relative L2 error of predicted kept coefficients against a physical target, by Parseval.

    For a prediction ``z`` (T1's coefficients, as :meth:`T1.spectrum` returns) and a target ``y``
    on ``N`` points, let ``Z = z / s`` be its orthonormal coefficients (``s = sqrt(M / N)``),
    ``Y = T_K(y)`` and ``E(.)`` the Parseval energy of a coefficient block. Then, with
    ``x = T_K^{-1}(Z)`` the physical prediction, exactly (up to round-off)::

        ||x - y||^2 = E(Z - Y) + (||y||^2 - E(Y))

    since ``y - P_K y`` is orthogonal to the kept band. The loss per sample is
    ``sqrt(that) / ||y||`` (sums over channels and points): the physical relative L2 error,
    computed from one truncated forward transform of the target and no inverse transform.

    Args:
        transform: the orthonormal transform.
        kept: the kept index set per dim.
        reduction: ``"mean"``, ``"sum"`` or ``"none"`` over the batch.

    Call: ``loss(z, y)`` with ``z: (batch, c, *m)``, ``y: (batch, c, *spatial)``.
    """

    def __init__(
        self, transform: RealTransform, kept: Sequence[Sequence[int]], *, reduction: str = "mean"
    ) -> None:
        if reduction not in ("mean", "sum", "none"):
            raise ValueError(f"reduction must be 'mean', 'sum' or 'none', got {reduction!r}")
        self.transform = transform
        self.kept = _as_kept("SpectralL2Loss", kept)  # (why) int() truncated 1.5 to 1
        self.reduction = reduction

    def __call__(self, z: torch.Tensor, y: torch.Tensor) -> torch.Tensor:
        d = len(self.kept)
        m = tuple(len(idx) for idx in self.kept)
        if y.ndim != z.ndim or tuple(z.shape[-d:]) != m or z.shape[:2] != y.shape[:2]:
            raise ValueError(
                f"expected coefficients (batch, c, {', '.join(map(str, m))}) and a target "
                f"(batch, c, *spatial) with the same batch and channels, got {tuple(z.shape)} "
                f"and {tuple(y.shape)}"
            )
        target = self.transform.forward(y, self.kept)
        pred = _rescale(z, _scale(y.shape[-d:], self.kept), divide=True)
        flat = tuple(range(1, z.ndim - d))  # channel dims, summed with the modes
        err = self.transform.energy(pred - target.to(pred.dtype), self.kept).sum(flat)
        kept_energy = self.transform.energy(target, self.kept).sum(flat)
        total = (y**2).sum(dim=tuple(range(1, y.ndim)))
        loss = torch.sqrt(err + (total - kept_energy).clamp_min(0.0)) / torch.sqrt(total)
        if self.reduction == "mean":
            return loss.mean()
        if self.reduction == "sum":
            return loss.sum()
        return loss


def select_modes(
    data: torch.Tensor,
    modes: Sequence[int],
    *,
    transform: str | RealTransform = "dct",
) -> tuple[tuple[int, ...], ...]:
    """Per-axis kept index sets holding the most energy of ``data``'s spectrum.

    The energy ``E(k) = mean over samples and channels of |T(u)(k)|^2`` is summed over all axes
    but ``a`` (the marginal energy of axis ``a``), and the ``modes[a]`` largest are kept. For the
    real FFT, ``k`` and ``-k`` are ranked together on all axes but the last and kept as a pair,
    and a last-axis bin ``k > 0`` counts twice (it holds ``+k`` and ``-k``), so ``E`` is the
    field's physical energy at ``k`` (Parseval, as :meth:`RFFT.energy`). Candidates are the
    indices that T1 accepts on the data's grid (``transform.min_size``): no real-FFT Nyquist bin
    and no DST index ``n - 1``.

    Args:
        data: ``(n, channels, *spatial)`` training fields (inputs or targets).
        modes: number of indices (DCT/DST, last rfft axis) or of frequency magnitudes (other rfft
            axes) to keep per axis.
        transform: ``"dct"``, ``"dst"``, ``"rfft"`` or a :class:`RealTransform`.

    Returns:
        The index sets, ascending (rfft: non-negative then negative), for ``T1Config(kept=...)``.
    """
    t = TRANSFORMS[transform] if isinstance(transform, str) else transform
    d = len(modes)
    if data.ndim != d + 2:
        raise ValueError(
            f"expected data (n, channels, {d} spatial dims) for {d} modes, got {tuple(data.shape)}"
        )
    sizes = tuple(data.shape[2:])
    full_kept = []
    for a, n in enumerate(sizes):
        last = a == d - 1
        if t.is_complex:
            cap = (n + 1) // 2
            full_kept.append(t.low_pass(n, cap, last=last))
        else:
            # (why) only the indices that T1 accepts on the data's own grid: the DST's n - 1
            # was selectable, and T1 then refused that grid ("at least (n + 1,) points")
            full_kept.append(tuple(k for k in range(n) if t.min_size((k,), last=last) <= n))
            if not full_kept[-1]:
                raise ValueError(
                    f"select_modes: a grid of {n} points on axis {a} holds no {t.name} index that "
                    f"T1 accepts there (its smallest grid is {t.min_size((0,), last=last)}), got "
                    f"data of shape {tuple(data.shape)}"
                )
    coeffs = t.forward(data.double(), full_kept, method="fft")
    energy = (coeffs.abs() ** 2).mean(dim=(0, 1))  # (*spectrum sizes)
    if t.is_complex:  # a half-spectrum bin k > 0 stands for +k and -k: twice |c|^2 (Parseval)
        last = torch.tensor([1.0 if k == 0 else 2.0 for k in full_kept[-1]], dtype=energy.dtype)
        energy = energy * last
    kept = []
    for a in range(d):
        other = tuple(b for b in range(d) if b != a)
        marginal = energy.sum(dim=other) if other else energy
        idx = full_kept[a]
        last = a == d - 1
        if t.is_complex and not last:
            mags = sorted({abs(k) for k in idx})
            score = {k: sum(float(marginal[idx.index(s)]) for s in {k, -k}) for k in mags}
            if modes[a] > len(mags):
                raise ValueError(f"at most {len(mags)} magnitudes on axis {a}, got {modes[a]}")
            top = sorted(sorted(mags, key=lambda k: -score[k])[: modes[a]])
            kept.append(tuple(top) + tuple(sorted(-k for k in top if k > 0)))
        else:
            if modes[a] > len(idx):
                raise ValueError(f"at most {len(idx)} indices on axis {a}, got {modes[a]}")
            order = torch.argsort(marginal, descending=True)[: modes[a]].tolist()
            kept.append(tuple(sorted(idx[i] for i in order)))
    return tuple(kept)
