"""POD-DeepONet (Lu et al., "A comprehensive and fair comparison of two neural operators (with
practical extensions) based on FAIR data", CMAME 2022): the trunk net is replaced by the leading
proper orthogonal decomposition (POD) modes of the training outputs.

All output functions are sampled at the same ``P`` points ``y_1..y_P`` (the training grid). With
training outputs stacked as rows ``S`` of shape ``(N, P * K)`` (``K`` output channels), the data
mean ``mean = S.mean(0)`` and the SVD of the centred outputs ``S - mean = U diag(sigma) V^T``, the
model is

    G(u)(y_j) = mean_j + sum_{i=1}^{p} b_i(u) phi_i(y_j) [+ sum_{i=1}^{q} c_i(u) t_i(y_j)] + b_0

with the POD modes ``phi_i = sqrt(P K) V[:, i]`` (scaled so that ``mean_j phi_i(y_j)^2 = 1`` and
the branch outputs ``b_i`` are of the size of the data's coefficients, ``sigma_i / sqrt(N P K)``),
an optional trunk net ``t`` with ``q`` extra outputs (concatenated with the POD basis) and a
trainable bias ``b_0`` per output channel. The data mean is a buffer, not learned. Because the
POD modes are orthonormal, the best (least-squares) coefficients of a target ``s`` are its
projection ``b_i = <s - mean, phi_i> / (P K)``, and the projection error of the training set is
the truncation error ``sum_{i > p} sigma_i^2`` (Eckart-Young).

The basis is computed from data by :meth:`PODDeepONet.fit_basis` and saved with the weights.
"""

from __future__ import annotations

import math
import warnings
from dataclasses import dataclass, field

import torch
from torch import nn

from .._config import check_json_fields
from ..layers._checks import check_dtype, check_input_dtype, check_int_fields, check_real
from ..operator import Operator
from .deeponet import _MLP, MLPSpec

__all__ = ["PODDeepONet", "PODDeepONetConfig"]


@dataclass(frozen=True)
class PODDeepONetConfig:
    """Hyper-parameters of :class:`PODDeepONet`.

    Attributes:
        sensors: ``m``, values of the input function fed to the branch net.
        points: ``P``, number of output locations (the fixed grid the POD basis lives on).
        coord_dim: ``d``, dimension of the output locations.
        out_channels: ``K``, output functions (POD is taken over all ``P * K`` values jointly).
        modes: ``p``, number of POD modes kept.
        branch: the branch MLP (output width ``modes + trunk_basis``).
        trunk: an optional trunk MLP whose ``trunk_basis`` outputs are concatenated with the POD
            modes, or None. With ``K > 1`` the same ``q`` functions and coefficients serve every
            output channel: the trunk term is one field added to all of them.
        trunk_basis: ``q``, extra trunk basis functions (ignored when ``trunk`` is None).
        bias: a trainable output bias per output channel.
    """

    sensors: int = 100
    points: int = 100
    coord_dim: int = 1
    out_channels: int = 1
    modes: int = 10
    branch: MLPSpec = field(default_factory=MLPSpec)
    trunk: MLPSpec | None = None
    trunk_basis: int = 0
    bias: bool = True

    def __post_init__(self) -> None:
        check_int_fields(
            self, ("sensors", "points", "coord_dim", "out_channels", "modes", "trunk_basis")
        )
        for name in ("sensors", "points", "coord_dim", "out_channels", "modes"):
            if getattr(self, name) < 1:
                raise ValueError(f"{name} must be >= 1, got {getattr(self, name)}")
        if self.modes > self.points * self.out_channels:
            raise ValueError(
                f"modes={self.modes} exceeds points * out_channels = "
                f"{self.points * self.out_channels}, the rank of any POD basis on this grid"
            )
        if self.trunk_basis < 0:  # (why) accepted and ignored without a trunk, so it saved too
            raise ValueError(f"trunk_basis must be >= 0, got {self.trunk_basis}")
        if self.trunk is not None and self.trunk_basis < 1:
            raise ValueError("a trunk net needs trunk_basis >= 1 extra basis functions")
        check_json_fields(self)

    @property
    def extra(self) -> int:
        """The number of trunk basis functions in use: ``trunk_basis`` with a ``trunk``, 0 without
        one (the branch net outputs ``modes + extra`` coefficients)."""
        return self.trunk_basis if self.trunk is not None else 0


class PODDeepONet(Operator, family="pod_deeponet"):
    """POD-DeepONet ``G(u)(y_j) = mean_j + b(u) . phi(y_j) [+ c(u) . t(y_j)] + b_0``.

    Buffers (saved with the weights): ``pod_basis`` ``(P, K, p)``, ``pod_mean`` ``(P, K)``,
    ``pod_singular_values`` ``(P K,)`` (the ``min(N, P K)`` singular values of the centred
    training outputs, zero-padded) and ``coords`` ``(P, d)``, the grid. Call :meth:`fit_basis`
    before training.
    """

    config_class = PODDeepONetConfig
    config: PODDeepONetConfig

    def __init__(self, config: PODDeepONetConfig) -> None:
        super().__init__(config)
        c = config
        pk = c.points * c.out_channels
        self.branch = _MLP(
            [c.sensors, *c.branch.hidden, c.modes + c.extra], c.branch, activate_output=False
        )
        self.trunk = (
            None
            if c.trunk is None
            else _MLP([c.coord_dim, *c.trunk.hidden, c.extra], c.trunk, activate_output=True)
        )
        self.bias = nn.Parameter(torch.zeros(c.out_channels)) if c.bias else None
        self.register_buffer("pod_basis", torch.zeros(c.points, c.out_channels, c.modes))
        self.register_buffer("pod_mean", torch.zeros(c.points, c.out_channels))
        self.register_buffer("pod_singular_values", torch.zeros(pk))
        self.register_buffer("coords", torch.zeros(c.points, c.coord_dim))
        # (why) a Python flag, not a check of the buffer in forward: a data-dependent branch
        # would break torch.export / torch.compile of a fitted model
        self._basis_fitted = False

    def _load_from_state_dict(
        self, state_dict, prefix, local_metadata, strict, missing_keys, unexpected_keys, errors
    ):
        super()._load_from_state_dict(
            state_dict, prefix, local_metadata, strict, missing_keys, unexpected_keys, errors
        )
        saved = state_dict.get(prefix + "pod_basis")
        if isinstance(saved, torch.Tensor) and not saved.is_meta:
            # a fitted basis has orthonormal columns, never all zeros: the weights of a model
            # saved before fit_basis stay refused
            self._basis_fitted = bool(saved.count_nonzero() > 0)

    @torch.no_grad()
    def fit_basis(self, outputs: torch.Tensor, coords: torch.Tensor) -> torch.Tensor:
        """Compute the data mean and the POD basis from training outputs.

        Args:
            outputs: ``(N, P)`` or ``(N, P, K)`` training output functions at the grid.
            coords: ``(P, d)`` the grid (stored; the trunk net is evaluated there).

        Returns:
            all singular values ``sigma`` of the centred outputs (descending), float64.
        """
        c = self.config
        # (why) any real precision (the SVD runs in float64); a complex outputs lost its
        # imaginary part with only torch's warning, a NumPy array failed with "no attribute"
        check_real("PODDeepONet.fit_basis", "outputs", outputs)
        check_real("PODDeepONet.fit_basis", "coords", coords)
        s = self._outputs(outputs)
        if tuple(coords.shape) != (c.points, c.coord_dim):
            raise ValueError(
                f"expected coords of shape ({c.points}, {c.coord_dim}), got {tuple(coords.shape)}"
            )
        flat = s.reshape(s.shape[0], -1).double()  # (N, P K)
        # (why) the mean is removed first, so N outputs span at most N - 1 directions: with
        # N == modes the last mode was an arbitrary direction (sigma ~1e-16)
        if flat.shape[0] - 1 < c.modes:
            raise ValueError(
                f"{c.modes} POD modes need >= {c.modes + 1} training outputs (N outputs less "
                f"their mean span at most N - 1 directions), got {len(s)}"
            )
        mean = flat.mean(0)
        _, sigma, vt = torch.linalg.svd(flat - mean, full_matrices=False)
        tol = sigma[0] * max(flat.shape) * torch.finfo(torch.float64).eps
        rank = int((sigma > tol).sum())
        if rank < c.modes:
            # (why) a warning, not an error: keeping every mode (modes = P K) of low-rank data
            # still reconstructs it exactly, the extra modes are only unused
            warnings.warn(
                f"PODDeepONet.fit_basis: the {len(s)} centred training outputs have rank {rank} "
                f"< modes={c.modes}: the last {c.modes - rank} POD modes are arbitrary "
                "directions orthogonal to the data (use modes <= rank or more varied outputs)",
                stacklevel=3,
            )
        pk = flat.shape[1]
        phi = vt[: c.modes].T * pk**0.5  # (P K, p), mean over points of phi_i^2 = 1
        self.pod_basis.copy_(phi.reshape(c.points, c.out_channels, c.modes))
        self.pod_mean.copy_(mean.reshape(c.points, c.out_channels))
        self.pod_singular_values.zero_()
        self.pod_singular_values[: len(sigma)] = sigma
        self.coords.copy_(coords)
        self._basis_fitted = True
        return sigma

    def _outputs(self, outputs: torch.Tensor) -> torch.Tensor:
        """``outputs`` ``(N, P)`` (one channel) or ``(N, P, K)`` as ``(N, P, K)``, checked."""
        c = self.config
        s = outputs.unsqueeze(-1) if outputs.ndim == 2 else outputs
        if s.ndim != 3 or s.shape[1:] != (c.points, c.out_channels):
            raise ValueError(
                f"expected outputs of shape (N, points={c.points}, out_channels="
                f"{c.out_channels}), got {tuple(outputs.shape)}"
            )
        return s

    def project(self, outputs: torch.Tensor) -> torch.Tensor:
        """POD coefficients ``(N, p)`` of ``outputs`` ``(N, P[, K])``: ``<s - mean, phi_i> / (P K)``."""
        # (why) float64 outputs against a float32 basis failed in einsum ("expected scalar
        # type Double but found Float")
        check_dtype("PODDeepONet.project", "outputs", outputs, self.pod_basis.dtype)
        s = self._outputs(outputs)
        pk = self.pod_basis.shape[0] * self.pod_basis.shape[1]
        return torch.einsum("npk,pki->ni", s - self.pod_mean, self.pod_basis) / pk

    def reconstruct(self, coefficients: torch.Tensor) -> torch.Tensor:
        """``mean + sum_i a_i phi_i`` for coefficients ``(N, p)``: ``(N, P, K)``."""
        check_dtype("PODDeepONet.reconstruct", "coefficients", coefficients, self.pod_basis.dtype)
        if coefficients.ndim != 2 or coefficients.shape[1] != self.config.modes:
            raise ValueError(
                f"expected coefficients of shape (N, modes={self.config.modes}), got "
                f"{tuple(coefficients.shape)}"
            )
        return self.pod_mean + torch.einsum("ni,pki->npk", coefficients, self.pod_basis)

    def forward(
        self, u: torch.Tensor, *, x: torch.Tensor | None = None, t: torch.Tensor | None = None
    ) -> torch.Tensor:
        """Evaluate ``G(u)`` at the ``P`` grid points (see module doc).

        Args:
            u: ``(batch, sensors)`` or ``(batch, channels, *spatial)`` with ``sensors`` values.
            x: None, or the grid itself as ``(P, d)`` / ``(1 or batch, P, d)`` (checked against
                the stored ``coords``): POD modes exist only at the training grid.
            t: unused; must be None.

        Returns:
            ``(batch, P, K)``.
        """
        c = self.config
        if t is not None:
            raise ValueError("PODDeepONet takes no lead time t")
        check_input_dtype("PODDeepONet", "u", u, self.branch.dtype)
        if u.ndim < 2 or math.prod(u.shape[1:]) != c.sensors:
            raise ValueError(
                f"PODDeepONet expected u of shape (batch, {c.sensors}), got {tuple(u.shape)}"
            )
        if x is not None:
            check_real("PODDeepONet", "x", x)
            grid = x.reshape(-1, *x.shape[-2:])
            if grid.shape[-2:] != self.coords.shape or not torch.allclose(
                grid, self.coords.to(grid.dtype).expand_as(grid)
            ):
                raise ValueError(
                    f"PODDeepONet evaluates only at its {c.points} training points (coords "
                    f"{tuple(self.coords.shape)}); got x of shape {tuple(x.shape)} with other "
                    "locations. Pass x=None or the training grid."
                )
        if not self._basis_fitted:
            # (why) the zero basis of a fresh model made the output the bias alone: training
            # went on and fitted only it, without an error
            raise RuntimeError(
                "PODDeepONet has no POD basis yet: call fit_basis(outputs, coords) with the "
                "training outputs before training or evaluating it (or load a fitted model)"
            )
        coef = self.branch(u.reshape(u.shape[0], c.sensors))  # (B, p + q)
        out = self.pod_mean + torch.einsum("bi,pki->bpk", coef[:, : c.modes], self.pod_basis)
        if self.trunk is not None:
            basis = self.trunk(self.coords)  # (P, q): shared by the K outputs
            out = out + (coef[:, c.modes :] @ basis.T).unsqueeze(-1)
        if self.bias is not None:
            out = out + self.bias
        return out
