"""Deep operator network (Lu et al., "Learning nonlinear operators via DeepONet based on the
universal approximation theorem of operators", Nature Machine Intelligence 2021).

An input function ``u`` sampled at ``m`` fixed sensors feeds the branch net, a query location
``y`` in ``R^d`` feeds the trunk net, and the output is their inner product plus a bias::

    G(u)(y) = sum_{i=1}^{p} b_i(u(s_1), ..., u(s_m)) * t_i(y) + b_0

With ``K`` output functions, DeepXDE's four strategies pair the nets as follows (``p`` is
``config.basis``, ``N_b`` / ``N_t`` the branch / trunk output widths):

==============  ================================================  ========  ========
strategy        output k uses                                      N_b       N_t
==============  ================================================  ========  ========
independent     K separate (branch, trunk) pairs                  K x p     K x p
split_both      branch group k . trunk group k                     K p       K p
split_branch    branch group k . the shared trunk                  K p       p
split_trunk     the shared branch . trunk group k                  p         K p
==============  ================================================  ========  ========

Each output gets its own trainable bias ``b_0``. As in DeepXDE, the trunk's last layer is
followed by the activation (``trunk_output_activation``), the branch's last layer is linear.
The *stacked* form (``stacked=True``) replaces the branch MLP by ``N_b`` independent MLPs with one
output each; the default is the unstacked form (one branch MLP with ``N_b`` outputs).
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field
from typing import Literal

import torch
from torch import nn
from torch.nn import functional as F

from .._config import check_json_fields
from ..layers import activation as _activation
from ..layers._checks import check_input_dtype, check_int_fields, check_ints
from ..layers.mlp import _ACTIVATIONS
from ..operator import Operator

__all__ = [
    "DeepONet",
    "DeepONetConfig",
    "MLPSpec",
    "FourierFeatures",
    "HardZero",
    "mlp_num_parameters",
]

Strategy = Literal["independent", "split_both", "split_branch", "split_trunk"]
Activation = Literal["gelu", "relu", "tanh", "silu"]


@dataclass(frozen=True)
class MLPSpec:
    """A fully connected net: ``hidden`` widths between the input and the output layer.

    Attributes:
        hidden: widths of the hidden layers (DeepXDE's ``[100, 40, 40]`` branch is
            ``hidden=(40,)`` with ``basis=40``).
        activation: one of gelu, relu, tanh, silu.
        init: ``"glorot_normal"`` (weights ``N(0, 2 / (fan_in + fan_out))``, biases zero, as in
            DeepXDE's examples) or ``"torch_default"`` (``nn.Linear``'s uniform init).
    """

    hidden: tuple[int, ...] = (40,)
    activation: Activation = "relu"
    init: Literal["glorot_normal", "torch_default"] = "glorot_normal"

    def __post_init__(self) -> None:
        check_ints("hidden", self.hidden, low=None)
        if any(w < 1 for w in self.hidden):
            raise ValueError(f"hidden widths must be >= 1, got {self.hidden}")
        if self.activation not in _ACTIVATIONS:
            raise ValueError(
                f"activation: expected one of {sorted(_ACTIVATIONS)}, got {self.activation!r}"
            )
        if self.init not in ("glorot_normal", "torch_default"):
            raise ValueError(
                f"init: expected 'glorot_normal' or 'torch_default', got {self.init!r}"
            )
        check_json_fields(self)


@dataclass(frozen=True)
class FourierFeatures:
    """Random Fourier features of the trunk input: ``y -> [cos(2 pi y B), sin(2 pi y B)]``.

    ``B`` is a fixed ``(d, n)`` matrix with ``N(0, scale^2)`` entries drawn from ``seed`` (a
    buffer, saved with the weights).

    Attributes:
        n: number of frequencies (the trunk gets ``2 n`` features, plus ``d`` with
            ``keep_input``).
        scale: standard deviation of the entries of ``B`` (finite, > 0).
        seed: seed of the generator that draws ``B``.
        keep_input: also pass ``y`` itself to the trunk.
    """

    n: int = 16
    scale: float = 1.0
    seed: int = 0
    keep_input: bool = True

    def __post_init__(self) -> None:
        check_int_fields(self, ("n", "seed"))
        # (why) written so that NaN fails too: scale=nan or inf passed "scale <= 0" and every
        # output of the model was NaN
        if self.n < 1 or not 0 < self.scale < math.inf:
            raise ValueError(
                f"expected n >= 1 and a finite scale > 0, got n={self.n}, scale={self.scale}"
            )
        check_json_fields(self)


@dataclass(frozen=True)
class HardZero:
    """Hard constraint ``G(u)(y) = 0`` on the hyperplane ``y[axis] = value``, imposed by the
    output transform ``G(u)(y) = (y[axis] - value) * net(u, y)`` (e.g. ``s(0) = 0`` for the
    antiderivative ``s(x) = int_0^x u``).

    Attributes:
        axis: the coordinate of ``y`` that the hyperplane fixes (``0 <= axis < coord_dim``).
        value: where the hyperplane lies on that axis (finite).
    """

    axis: int = 0
    value: float = 0.0

    def __post_init__(self) -> None:
        check_int_fields(self, ("axis",))
        check_json_fields(self)
        if not math.isfinite(self.value):  # (why) NaN made every output NaN, inf most of them
            raise ValueError(f"HardZero.value: expected a finite number, got {self.value}")


@dataclass(frozen=True)
class DeepONetConfig:
    """Hyper-parameters of :class:`DeepONet`.

    Attributes:
        sensors: ``m``, number of sensor values of the input function (the branch input size;
            ``u`` of shape ``(batch, channels, *spatial)`` is flattened to it).
        coord_dim: ``d``, dimension of the query locations ``y``.
        out_channels: ``K``, number of output functions.
        basis: ``p``, the latent dimension of the inner product (per output).
        branch: the branch MLP (its output width is set by ``basis`` and the strategy).
        trunk: the trunk MLP.
        multi_output: how ``K > 1`` outputs share the nets (see the module docstring); ignored
            for ``K = 1``.
        stacked: ``N_b`` separate branch MLPs with one output each instead of one branch MLP.
        bias: a trainable output bias per output function.
        trunk_output_activation: apply the trunk activation after the trunk's last layer
            (DeepXDE does).
        fourier: random Fourier features of ``y`` before the trunk, or None.
        hard_zero: the output transform imposing ``G(u)(y) = 0`` on a hyperplane, or None.
    """

    sensors: int = 100
    coord_dim: int = 1
    out_channels: int = 1
    basis: int = 40
    branch: MLPSpec = field(default_factory=MLPSpec)
    trunk: MLPSpec = field(default_factory=MLPSpec)
    multi_output: Strategy = "split_both"
    stacked: bool = False
    bias: bool = True
    trunk_output_activation: bool = True
    fourier: FourierFeatures | None = None
    hard_zero: HardZero | None = None

    def __post_init__(self) -> None:
        check_int_fields(self, ("sensors", "coord_dim", "out_channels", "basis"))
        for name in ("sensors", "coord_dim", "out_channels", "basis"):
            if getattr(self, name) < 1:
                raise ValueError(f"{name} must be >= 1, got {getattr(self, name)}")
        strategies = ("independent", "split_both", "split_branch", "split_trunk")
        if self.multi_output not in strategies:
            raise ValueError(
                f"multi_output: expected one of {strategies}, got {self.multi_output!r}"
            )
        if self.hard_zero is not None and not 0 <= self.hard_zero.axis < self.coord_dim:
            raise ValueError(
                f"hard_zero.axis={self.hard_zero.axis} is not a coordinate axis of "
                f"coord_dim={self.coord_dim}"
            )
        check_json_fields(self)

    @property
    def strategy(self) -> str:
        """The effective strategy: ``"single"`` for one output, else ``multi_output``."""
        return "single" if self.out_channels == 1 else self.multi_output

    @property
    def trunk_in(self) -> int:
        """Width of the trunk input after the Fourier features."""
        f = self.fourier
        if f is None:
            return self.coord_dim
        return 2 * f.n + (self.coord_dim if f.keep_input else 0)


_FUNCTIONAL = {"relu": torch.relu, "tanh": torch.tanh, "gelu": F.gelu, "silu": F.silu}


def mlp_num_parameters(sizes: list[int] | tuple[int, ...]) -> int:
    """Parameters of a fully connected net with layer sizes ``sizes`` (weights and biases)."""
    return sum(a * b + b for a, b in zip(sizes[:-1], sizes[1:]))


class _MLP(nn.Module):
    """Fully connected net on the last dim; ``copies > 1`` runs that many independent nets in
    one batched matmul (the stacked branch): ``(..., in) -> (..., copies * out)``."""

    def __init__(
        self, sizes: list[int], spec: MLPSpec, *, activate_output: bool, copies: int = 1
    ) -> None:
        super().__init__()
        self.copies = copies
        self.act = _activation(spec.activation)
        self._act_fn = _FUNCTIONAL.get(spec.activation, self.act)
        self.activate_output = activate_output
        if copies == 1:
            self.layers = nn.ModuleList()
            for a, b in zip(sizes[:-1], sizes[1:]):
                # build and initialise layer by layer (not all layers, then all inits): the
                # random stream is then consumed as DeepXDE's FNN does, so the same torch seed
                # gives DeepXDE's initial weights (a paired comparison, see benchmarks/deeponet.py)
                lin = nn.Linear(a, b)
                if spec.init == "glorot_normal":
                    nn.init.xavier_normal_(lin.weight)
                    nn.init.zeros_(lin.bias)
                self.layers.append(lin)
            return
        self.weights = nn.ParameterList()
        self.biases = nn.ParameterList()
        for a, b in zip(sizes[:-1], sizes[1:]):
            w = torch.empty(copies, a, b)
            for c in range(copies):  # init each copy as its own (b, a) Linear weight
                lin_w = torch.empty(b, a)
                if spec.init == "glorot_normal":
                    nn.init.xavier_normal_(lin_w)
                else:
                    nn.init.kaiming_uniform_(lin_w, a=math.sqrt(5))
                w[c] = lin_w.T
            bias = torch.zeros(copies, 1, b)
            if spec.init != "glorot_normal":
                nn.init.uniform_(bias, -1 / math.sqrt(a), 1 / math.sqrt(a))
            self.weights.append(nn.Parameter(w))
            self.biases.append(nn.Parameter(bias))

    @property
    def dtype(self) -> torch.dtype:
        return (self.layers[0].weight if self.copies == 1 else self.weights[0]).dtype

    def forward(self, v: torch.Tensor) -> torch.Tensor:
        if self.copies == 1:
            # functional calls, not module calls: this net is small enough that per-call Python
            # overhead is a visible part of a training step on CPU
            n, act = len(self.layers), self._act_fn
            for i, lin in enumerate(self.layers):
                v = F.linear(v, lin.weight, lin.bias)
                if i < n - 1 or self.activate_output:
                    v = act(v)
            return v
        lead = v.shape[:-1]
        h = v.reshape(1, -1, v.shape[-1])  # (1, rows, in), broadcast over copies
        n = len(self.weights)
        for i, (w, b) in enumerate(zip(self.weights, self.biases)):
            h = torch.baddbmm(b, h.expand(self.copies, -1, -1) if i == 0 else h, w)
            if i < n - 1 or self.activate_output:
                h = self.act(h)
        # h: (copies, rows, out) -> (..., copies * out)
        return h.permute(1, 0, 2).reshape(*lead, -1)


class DeepONet(Operator, family="deeponet"):
    """DeepONet ``G(u)(y) = branch(u) . trunk(y) + b_0`` with ``K`` outputs.

    Not resolution-invariant: the branch net takes the input function at exactly
    ``config.sensors`` fixed sensor locations.
    """

    config_class = DeepONetConfig
    config: DeepONetConfig

    def __init__(self, config: DeepONetConfig) -> None:
        super().__init__(config)
        c = config
        k, p = c.out_channels, c.basis
        n_b, n_t = {
            "single": (p, p),
            "independent": (p, p),
            "split_both": (k * p, k * p),
            "split_branch": (k * p, p),
            "split_trunk": (p, k * p),
        }[c.strategy]
        pairs = k if c.strategy == "independent" else 1
        branches, trunks = [], []
        for _ in range(pairs):  # branch, trunk, branch, ...: DeepXDE's order of random draws
            branches.append(self._branch(n_b))
            trunks.append(
                _MLP(
                    [c.trunk_in, *c.trunk.hidden, n_t],
                    c.trunk,
                    activate_output=c.trunk_output_activation,
                )
            )
        self.branches = nn.ModuleList(branches)
        self.trunks = nn.ModuleList(trunks)
        self.bias = nn.Parameter(torch.zeros(k)) if c.bias else None
        if c.fourier is not None:
            g = torch.Generator().manual_seed(c.fourier.seed)
            freqs = torch.randn(c.coord_dim, c.fourier.n, generator=g) * c.fourier.scale
            self.register_buffer("fourier_freqs", freqs)

    def _branch(self, n_out: int) -> _MLP:
        c = self.config
        if c.stacked:
            return _MLP(
                [c.sensors, *c.branch.hidden, 1], c.branch, activate_output=False, copies=n_out
            )
        return _MLP([c.sensors, *c.branch.hidden, n_out], c.branch, activate_output=False)

    # ------------------------------------------------------------------ pieces
    def _check_u(self, u: torch.Tensor) -> None:
        c = self.config
        if u.ndim < 2 or math.prod(u.shape[1:]) != c.sensors:
            raise ValueError(
                f"DeepONet expected u of shape (batch, {c.sensors}) (the input function at "
                f"{c.sensors} sensors; (batch, channels, *spatial) is flattened), got "
                f"{tuple(u.shape)}"
            )

    def branch_features(self, u: torch.Tensor) -> torch.Tensor:
        """Branch coefficients ``(batch, K or 1, p)`` of ``u``: ``(batch, sensors)`` or
        ``(batch, channels, *spatial)`` with ``channels * prod(spatial) = sensors``."""
        c = self.config
        self._check_u(u)
        u = u.reshape(u.shape[0], c.sensors)
        b = _cat([net(u) for net in self.branches])
        return b.reshape(u.shape[0], b.shape[1] // c.basis, c.basis)  # (batch, K or 1, p)

    def trunk_features(self, y: torch.Tensor) -> torch.Tensor:
        """Trunk basis ``(..., K or 1, p)`` at locations ``y`` of shape ``(..., coord_dim)``."""
        c = self.config
        if y.ndim < 1 or y.shape[-1] != c.coord_dim:
            raise ValueError(
                f"expected y with last dim coord_dim={c.coord_dim}, got shape {tuple(y.shape)}"
            )
        if c.fourier is not None:
            # phases in the input's precision: under bfloat16 autocast their 8 bits would move
            # the features by percents
            with torch.autocast(y.device.type, enabled=False):
                z = 2 * math.pi * (y @ self.fourier_freqs.to(y.dtype))
            parts = [y] if c.fourier.keep_input else []
            y = torch.cat([*parts, torch.cos(z), torch.sin(z)], dim=-1)
        t = _cat([net(y) for net in self.trunks])
        # (why) the group count spelled out, not -1: with zero query points -1 is ambiguous
        # and reshape failed ("cannot reshape tensor of 0 elements")
        return t.reshape(*t.shape[:-1], t.shape[-1] // c.basis, c.basis)  # (..., K or 1, p)

    # ------------------------------------------------------------------ forward
    def forward(
        self,
        u: torch.Tensor,
        *,
        x: torch.Tensor | None = None,
        t: torch.Tensor | None = None,
        pointwise: bool = False,
    ) -> torch.Tensor:
        """Evaluate ``G(u)(y) = sum_i b_i(u) t_i(y) + b_0`` for each output (see module doc).

        Args:
            u: the input functions at the sensors, ``(batch, sensors)`` or
                ``(batch, channels, *spatial)`` with ``sensors`` values per sample.
            x: query locations. Which ``y`` pairs with which ``u`` is decided by ``pointwise``
                and ``x.ndim``, never guessed from sizes:

                * ``pointwise=False`` (default), Cartesian product:
                  ``(points, d)`` or ``(1, points, d)``: every function at the same points;
                  ``(batch, points, d)``: each function at its own points (the layout of
                  :class:`sciml.data.PointSamples` batches). Returns ``(batch, points, K)``.
                * ``pointwise=True``, one location per function (DeepXDE's unaligned
                  ``DeepONet``): ``x`` of shape ``(batch, d)``. Returns ``(batch, K)``.
            t: unused; must be None.
            pointwise: select point-wise pairing (see ``x``).
        """
        c = self.config
        if t is not None:
            raise ValueError("DeepONet takes no lead time t; pass u and x")
        if x is None:
            raise ValueError(
                f"DeepONet needs query locations x: (points, {c.coord_dim}) or "
                f"(batch or 1, points, {c.coord_dim}), or (batch, {c.coord_dim}) with "
                "pointwise=True"
            )
        dtype = self.branches[0].dtype
        check_input_dtype("DeepONet", "u", u, dtype)
        check_input_dtype("DeepONet", "x", x, dtype)
        if x.shape[-1] != c.coord_dim:
            raise ValueError(
                f"expected x with last dim coord_dim={c.coord_dim}, got shape {tuple(x.shape)}"
            )
        k = c.out_channels
        if (
            k == 1
            and not pointwise
            and c.fourier is None
            and (x.ndim == 2 or (x.ndim == 3 and x.shape[0] == 1))
        ):
            # the common case (one output, all functions at shared points) as one addmm on the
            # un-reshaped features: fewer autograd nodes per step
            self._check_u(u)
            bf = self.branches[0](u.reshape(u.shape[0], c.sensors))  # (B, p)
            tf = self.trunks[0](x.reshape(-1, c.coord_dim))  # (P, p)
            out = bf @ tf.T if self.bias is None else torch.addmm(self.bias, bf, tf.T)
            out = out.unsqueeze(-1)  # (B, P, 1)
            if c.hard_zero is not None:
                out = out * (
                    x.reshape(1, -1, c.coord_dim)[..., c.hard_zero.axis : c.hard_zero.axis + 1]
                    - c.hard_zero.value
                )
            return out
        b = self.branch_features(u)  # (B, Kb, p)
        batch = b.shape[0]
        if pointwise:
            if x.ndim != 2 or x.shape[0] != batch:
                raise ValueError(
                    f"pointwise=True expects x of shape (batch={batch}, {c.coord_dim}), got "
                    f"{tuple(x.shape)}; for all functions at shared points use pointwise=False"
                )
            tr = self.trunk_features(x)  # (B, Kt, p)
            out = torch.einsum("bkp,bkp->bk", *_match(b, tr, k))
        elif x.ndim == 2 or (x.ndim == 3 and x.shape[0] == 1):
            tr = self.trunk_features(x.reshape(-1, c.coord_dim))  # (P, Kt, p)
            if k == 1:  # the common case as one plain matmul (fewer autograd nodes)
                out = (b[:, 0] @ tr[:, 0].T).unsqueeze(-1)
            else:
                out = torch.einsum("bkp,nkp->bnk", *_match(b, tr, k))  # a bmm over K groups
            x = x.reshape(1, -1, c.coord_dim)
        elif x.ndim == 3 and x.shape[0] == batch:
            tr = self.trunk_features(x)  # (B, P, Kt, p)
            bb, tt = _match(b, tr, k)
            out = torch.einsum("bkp,bnkp->bnk", bb, tt)
        else:
            raise ValueError(
                f"expected x of shape (points, {c.coord_dim}), (1, points, {c.coord_dim}) or "
                f"(batch={batch}, points, {c.coord_dim}); got {tuple(x.shape)}"
            )
        if self.bias is not None:
            out = out + self.bias
        if c.hard_zero is not None:
            out = out * (x[..., c.hard_zero.axis : c.hard_zero.axis + 1] - c.hard_zero.value)
        return out


def _cat(parts: list[torch.Tensor]) -> torch.Tensor:
    return parts[0] if len(parts) == 1 else torch.cat(parts, dim=-1)


def _match(b: torch.Tensor, tr: torch.Tensor, k: int) -> tuple[torch.Tensor, torch.Tensor]:
    """Expand a shared branch (``split_trunk``) or trunk (``split_branch``) to ``k`` groups."""
    if b.shape[1] != k:
        b = b.expand(-1, k, -1)
    if tr.shape[-2] != k:
        tr = tr.expand(*tr.shape[:-2], k, tr.shape[-1])
    return b, tr
