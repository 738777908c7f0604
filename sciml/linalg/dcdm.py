"""Deep conjugate-direction method (Kaneda et al., "A Deep Conjugate Direction Method for
Iteratively Solving Linear Systems", ICML 2023).

A network ``f`` approximates the action of ``A^-1`` up to a scalar on residuals of a grid
Poisson system. The solver takes ``f(r_k / ||r_k||)`` as the next search direction, makes it
A-orthogonal to the last ``k`` directions and steps with the exact line search::

    d = f(r / ||r||);   p = d - sum_{i<=k} (d.Ap_i / p_i.Ap_i) p_i;   alpha = p.r / p.Ap
    x += alpha p;       r -= alpha Ap

(:class:`sciml.linalg.FlexibleCG` with the network as preconditioner.) Training is
unsupervised: for right-hand sides ``r`` drawn from Ritz vectors of the training matrix (with
more weight on the low end of the spectrum, where CG is slow) minimise

    L(r) = || r - s A f(r) ||^2,     s = f(r).r / f(r).A f(r)   (the optimal scale)

which is 0 exactly when ``f(r)`` is proportional to ``A^-1 r``.

The network (:class:`DCDMNet`, family ``"dcdm"``) is a residual U-Net like the paper's (3x3(x3)
convolutions, ReLU, average pooling, nearest upsampling, a linear 1x1 output) but without
biases (the authors' Keras layers have them), so it is positively homogeneous:
``f(c r) = c f(r)`` for ``c > 0``. Two more choices differ from the paper, both found necessary
in small CPU trainings (``docs/linalg.md`` lists every difference from the paper and the
authors' code):

* ``odd=True``: ``f(u) = (g(u) - g(-u)) / 2``. The target ``A^-1`` is linear, hence odd.
* ``shared=True``: every coarsening level reuses one set of weights, plus a learned gain on the
  coarse correction (a learned non-linear V-cycle).

Without them, or with more levels at test time than in training, successive network directions
became nearly parallel and the iteration stalled after a few steps. The network runs on any
grid size; its receptive field (``max_levels`` poolings) is fixed.
"""

from __future__ import annotations

import contextlib
import math
import time
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any, ClassVar

import numpy as np
import torch
import torch.nn.functional as F
from torch import nn

from .._config import check_json_fields
from .._scalars import is_int, is_real
from ..layers._checks import check_input_dtype, check_int_fields, check_real
from ..operator import Operator
from ._operator import LinearOperator, as_operator, null_basis, project_out
from ._tf32 import no_conv_tf32
from .deflation import Deflation
from .krylov import FlexibleCG, Method, _check_fields, _check_k
from .poisson import Poisson
from .solve import _PROJECTION_NOISE, _check_basis_shape, _check_orthonormal

__all__ = [
    "DCDMConfig",
    "DCDMNet",
    "DeepConjugateDirection",
    "lanczos",
    "RitzSampler",
    "dcdm_loss",
    "train_dcdm",
]


# --------------------------------------------------------------------------- network


@dataclass(frozen=True)
class DCDMConfig:
    """Hyper-parameters of :class:`DCDMNet`.

    Attributes:
        dim: spatial dims, 2 or 3.
        channels: feature channels at every level (the paper uses 16).
        blocks: residual blocks before and after the coarse-grid correction of each level.
        max_levels: most coarsening levels (each halves the grid).
        coarsest: stop coarsening when a side would drop below this many cells.
        shared: reuse one set of level weights at every level (resolution independent).
        activation: ``"relu"`` (the paper) or ``"linear"`` (a linear network, for tests).
        odd: return ``(g(u) - g(-u)) / 2`` for the U-Net g, so ``f(-u) = -f(u)`` like ``A^-1``.
            A ReLU net without the symmetry puts a large part of its output into a rectified,
            nearly input-independent smooth field; successive directions then become parallel
            and the iteration stalls after a few steps. Costs a second pass (batched).
        gain: initial weight of the coarse-grid correction (learned). The coarse operator is
            about a quarter of the fine one, so 4 matches a Galerkin coarse solve for 1-2
            levels; with many levels the correction compounds (``gain^levels``) and the output
            starts as a near-constant field in A's null space, so deep nets start lower.
    """

    dim: int = 3
    channels: int = 8
    blocks: int = 1
    max_levels: int = 2
    coarsest: int = 2
    shared: bool = True
    odd: bool = True
    activation: str = "relu"
    gain: float = 4.0

    def __post_init__(self) -> None:
        # (why) before the range checks: channels='8' or blocks=None failed in them with
        # Python's "'<' not supported between instances of 'str' and 'int'", dim='3' with
        # 'dim must be 2 or 3, got 3'
        check_int_fields(self, ("dim", "channels", "blocks", "max_levels", "coarsest"))
        if self.dim not in (2, 3):
            raise ValueError(f"dim must be 2 or 3, got {self.dim}")
        for name in ("channels", "blocks", "coarsest"):
            if getattr(self, name) < 1:
                raise ValueError(f"{name} must be >= 1, got {getattr(self, name)}")
        if self.activation not in ("relu", "linear"):
            raise ValueError(f"activation must be 'relu' or 'linear', got {self.activation!r}")
        if self.max_levels < 0:
            raise ValueError(f"max_levels must be >= 0, got {self.max_levels}")
        # (why) as the other families' configs: max_levels=1.5, gain='4', shared='no' built a
        # network whose checkpoint sciml.load refused
        check_json_fields(self)


class _ResBlock(nn.Module):
    def __init__(self, conv: type[nn.Module], c: int, act: Callable) -> None:
        super().__init__()
        self.a = conv(c, c, 3, padding=1, bias=False)
        self.b = conv(c, c, 3, padding=1, bias=False)
        self.act = act

    def forward(self, h: torch.Tensor) -> torch.Tensor:
        return h + self.b(self.act(self.a(self.act(h))))


def _identity(h: torch.Tensor) -> torch.Tensor:
    return h


class _Level(nn.Module):
    def __init__(self, conv: type[nn.Module], c: int, blocks: int, act: Callable) -> None:
        super().__init__()
        self.pre = nn.Sequential(*[_ResBlock(conv, c, act) for _ in range(blocks)])
        self.post = nn.Sequential(*[_ResBlock(conv, c, act) for _ in range(blocks)])


class DCDMNet(Operator, family="dcdm"):
    """Residual U-Net mapping a residual grid to a search direction (see module docstring).

    ``forward(u)``: ``u: (batch, 1, *spatial)`` with 2 or 3 spatial dims, any size; returns the
    same shape. Zeros in solid cells of ``u`` are expected; the solver masks the output.
    """

    config: DCDMConfig
    config_class = DCDMConfig
    resolution_invariant = False  # runs at any grid size, but its receptive field is fixed

    def __init__(self, config: DCDMConfig) -> None:
        super().__init__(config)
        conv = nn.Conv2d if config.dim == 2 else nn.Conv3d
        c = config.channels
        self.lift = conv(1, c, 3, padding=1, bias=False)
        n_levels = 1 if config.shared else config.max_levels + 1
        act = F.relu if config.activation == "relu" else _identity
        self.levels = nn.ModuleList([_Level(conv, c, config.blocks, act) for _ in range(n_levels)])
        # scale of the coarse correction: A on a grid twice as coarse is ~1/4 of A, so the
        # coarse solution needs ~4x the weight; learned, one scalar for all levels
        self.gain = nn.Parameter(torch.tensor(float(config.gain)))
        self.proj = conv(c, 1, 1, bias=False)
        self._pool = F.avg_pool2d if config.dim == 2 else F.avg_pool3d

    def forward(self, u: torch.Tensor, *, x: Any = None, t: Any = None) -> torch.Tensor:
        """The search direction for a residual grid.

        Args:
            u: ``(batch, 1, *spatial)`` with ``config.dim`` spatial dims of any size.
            x: must be None (the :class:`~sciml.Operator` signature; a ``ValueError`` otherwise).
            t: must be None.

        Returns:
            ``(batch, 1, *spatial)``: ``(g(u) - g(-u)) / 2`` with ``config.odd``, else ``g(u)``,
            for the U-Net ``g``; trained to approximate ``A^-1 u`` up to a scalar.
        """
        if x is not None or t is not None:
            raise ValueError("DCDMNet takes no query points x or lead time t; pass only u")
        # (why) a float64, integer or complex u failed inside conv ("expected scalar type
        # Double but found Float"), a NumPy array with "no attribute 'dim'"
        check_real("DCDMNet", "u", u)
        d = self.config.dim
        if u.dim() != d + 2 or u.shape[1] != 1:
            raise ValueError(
                f"expected u of shape (batch, 1, *spatial) with {d} spatial dims, "
                f"got {tuple(u.shape)}"
            )
        check_input_dtype("DCDMNet", "u", u, self.proj.weight.dtype)
        if self.config.odd:
            y = self._unet(torch.cat([u, -u]))
            return 0.5 * (y[: u.shape[0]] - y[u.shape[0] :])
        return self._unet(u)

    def _unet(self, u: torch.Tensor) -> torch.Tensor:
        return self.proj(self._cycle(self.lift(u), 0))

    def _cycle(self, h: torch.Tensor, level: int) -> torch.Tensor:
        cfg = self.config
        block = self.levels[0 if cfg.shared else level]
        h = block.pre(h)
        size = h.shape[2:]
        if level < cfg.max_levels and min(size) >= 2 * cfg.coarsest:
            coarse = self._pool(h, 2, ceil_mode=True)
            coarse = self._cycle(coarse, level + 1)
            h = h + self.gain * F.interpolate(coarse, size=size, mode="nearest")
        return block.post(h)


# --------------------------------------------------------------------------- solver


@dataclass(frozen=True, eq=False)
class DeepConjugateDirection(Method):
    """The DCDM solver: :class:`FlexibleCG` whose direction is ``model(r / ||r||)``.

    On a singular ``A`` (``A.null_space``, e.g. an all-Neumann Poisson grid) the direction's
    null-space part is removed first: it does not change ``A d`` or the step, only the part of
    ``x`` that the solve drops at the end, and a large one swamps ``x`` in float32 rounding.

    Args:
        model: maps ``(1, 1, *grid)`` to ``(1, 1, *grid)``: a :class:`DCDMNet`, or any module
            (``torch.nn.Identity()`` gives CG when ``k = 1``).
        k: directions kept for A-orthogonalisation (the paper uses 2; with the shipped
            network 16 took 11-12x fewer iterations than CG at 64^3-128^3, against 5-10x for 2,
            see ``docs/linalg.md``).
        problem: the :class:`Poisson` grid of the unknowns; taken from a stencil operator when
            omitted.
        dot_dtype: accumulation dtype of inner products.
        deflation: a :class:`sciml.linalg.Deflation` coarse space removed from every direction
            (a sciml extension, not in the paper; see ``docs/linalg.md``).
    """

    model: nn.Module
    k: int = 2
    problem: Poisson | None = None
    dot_dtype: torch.dtype = torch.float64
    deflation: Deflation | None = None

    def __post_init__(self) -> None:
        # (why) any callable passed: a function or a module class failed in the solve on
        # model.parameters(); a tuple problem on problem.n
        if not isinstance(self.model, nn.Module):
            got = (
                f"the class {self.model.__name__}"
                if isinstance(self.model, type)
                else type(self.model).__name__
            )
            raise TypeError(
                "model: expected a torch module (an instance, such as "
                f"sciml.load('dcdm-poisson3d') or torch.nn.Identity()), got {got}"
            )
        if self.problem is not None and not isinstance(self.problem, Poisson):
            raise TypeError(
                f"problem: expected a Poisson grid such as poisson(shape, walls=...), or None, "
                f"got {self.problem!r}"
            )
        object.__setattr__(self, "k", _check_k(self.k))
        _check_fields(self)

    # the iteration is FlexibleCG's; only the direction differs
    _iterate = FlexibleCG._iterate
    _network_directions: ClassVar[bool] = True  # for _iterate's messages

    def _grid(self) -> Poisson | None:
        return self.problem

    def _directions(self, A: LinearOperator) -> Callable[[torch.Tensor], torch.Tensor]:
        problem = self.problem if self.problem is not None else A.problem
        if problem is None:
            raise ValueError(
                "DeepConjugateDirection needs the grid of the unknowns: pass "
                "DeepConjugateDirection(model, problem=poisson(shape, ...)) or solve(..., "
                "problem=...), or give A as a Poisson stencil"
            )
        if problem.n != A.n:
            raise ValueError(
                f"the grid has {problem.n} unknowns but A is {A.n} x {A.n}; pass the grid A "
                "was assembled on"
            )
        model = self.model
        dim = getattr(getattr(model, "config", None), "dim", None)
        if isinstance(model, DCDMNet) and dim != problem.dim:
            # (why) it failed inside the network ("expected u ... with 3 spatial dims, got
            # (1, 1, 16, 16)"), naming neither dimension: the shipped network is 3-D
            raise ValueError(
                f"DeepConjugateDirection: a {dim}-D network (DCDMConfig(dim={dim})) on a "
                f"{problem.dim}-D grid {problem.shape}: use a network trained for "
                f"{problem.dim}-D grids (train_dcdm with DCDMConfig(dim={problem.dim}))"
            )
        param = next(iter(model.parameters()), None)
        mdtype = param.dtype if param is not None else None
        mdevice = param.device if param is not None else None
        # (why) the grid follows the first parameter, so a network spread over devices (a CPU
        # first layer, the rest on CUDA) runs CUDA convolutions on a CPU grid: TF32 goes off
        # where any parameter or buffer is on CUDA too
        network_on_cuda = any(t.is_cuda for t in (*model.parameters(), *model.buffers()))
        # A's null space (constants per region on an all-Neumann grid), as the solve uses it
        null = None if A.null_space is None else null_basis(A.null_space, A.device)

        @torch.no_grad()
        def direction(r: torch.Tensor) -> torch.Tensor:
            v = r / torch.linalg.vector_norm(r)
            v = v.to(dtype=mdtype or v.dtype, device=mdevice or v.device)
            grid = problem.to_grid(v)[None, None]  # (1, 1, *shape)
            # full float32 convolutions: cuDNN's default TF32 (10-bit mantissa) makes the
            # directions too noisy to keep conjugacy (measured on an H100: the iteration stalled
            # near 1e-2 .. 1e-4 with TF32; the same network converged in float32 on the CPU).
            # (why) on CUDA only: turning it off and back writes the conv precision as it read,
            # and a conv setting that followed torch.backends.fp32_precision then no longer
            # does (after a CPU solve, torch.backends.fp32_precision = "ieee" left cuDNN
            # convolutions in TF32)
            on_cuda = grid.is_cuda or network_on_cuda
            with no_conv_tf32() if on_cuda else contextlib.nullcontext():
                out = model(grid)
            if not isinstance(out, torch.Tensor) or out.shape != grid.shape:
                got = tuple(out.shape) if isinstance(out, torch.Tensor) else type(out).__name__
                raise ValueError(
                    f"the model must map a residual grid {tuple(grid.shape)} to a direction of "
                    f"the same shape, got {got}: use a model for grids (batch, 1, *spatial) "
                    "that keeps the size, such as DCDMNet"
                )
            d = problem.from_grid(out[0, 0]).to(device=r.device)
            if null is None:
                return d.to(r.dtype)
            # (why) the null-space part of a direction does not change A d, r or alpha, but x
            # collects it: a large one buries the useful part of x in float32 rounding and makes
            # p.Ap look like rounding noise (measured: a network output offset by a constant,
            # float32, 12x10x9 Neumann grid, STAGNATED at 1e-4 where CG converges to 1e-5)
            d64 = d.to(torch.float64)
            left = project_out(d64, null.to(d.device))
            if torch.linalg.vector_norm(left) <= _PROJECTION_NOISE * torch.linalg.vector_norm(d64):
                # (why) a direction wholly in the null space leaves rounding noise, not 0: the
                # solve stepped along it or stopped with "p.Ap ... is rounding noise ... use
                # float64" by the luck of the rounding (a constant output on 6x5 / 4x5x3 Neumann
                # grids, float64 and float32); 0 is the vanished direction it is
                left.zero_()
            return left.to(r.dtype)

        return direction


# --------------------------------------------------------------------------- training data


def lanczos(
    A: Any,
    m: int,
    *,
    v0: torch.Tensor | None = None,
    null_space: np.ndarray | None = None,
    generator: torch.Generator | None = None,
) -> tuple[torch.Tensor, torch.Tensor]:
    """Ritz pairs of a symmetric A from ``m`` Lanczos steps with full reorthogonalisation.

    ``T_m = Q^T A Q`` (tridiagonal) is diagonalised, ``T_m = S diag(theta) S^T``, and the Ritz
    vectors are ``Y = Q S``. Each new Lanczos vector is orthogonalised twice against all
    previous ones (and against ``null_space``), which keeps Q orthonormal to rounding.

    Args:
        A: the ``(n, n)`` symmetric matrix or operator, anything :func:`as_operator` wraps.
        m: Lanczos steps, ``1 <= m <= n``.
        v0: the start vector ``(n,)``; a random one (from ``generator``) when omitted.
        null_space: ``(k, n)`` orthonormal basis kept out of the Krylov space; the operator's
            own (a Poisson stencil's) when omitted.
        generator: the torch generator of the random start vector, on any device: the vector
            is drawn where the generator is and moved to A's device, so a CPU generator gives
            the same start vector (and Ritz pairs, to rounding) whatever A's device.

    Returns:
        ``(theta, Y)``: Ritz values ``(m',)`` ascending and Ritz vectors ``(m', n)`` as rows,
        float64; ``m' < m`` when the Krylov space is exhausted early.

    Raises:
        ValueError: ``m`` outside ``[1, n]``, or a ``v0`` of another shape or with nothing
            left after its null-space component is removed.
    """
    op = as_operator(A)
    n = op.n
    if not is_int(m):  # (why) True passed the range check and failed in torch.zeros(True, n)
        raise TypeError(f"m: expected an int, 1 <= m <= n = {n} Lanczos steps, got {m!r}")
    if not 1 <= m <= n:
        raise ValueError(f"m: expected 1 <= m <= n = {n} Lanczos steps, got {m}")
    m = int(m)
    if null_space is not None:
        # (why) the projections assume orthonormal rows: np.ones(n) gave Ritz values of -785
        # for a semi-definite A; another length failed in torch's matvec ('size mismatch')
        _check_basis_shape(null_space, n)
        _check_orthonormal(null_basis(null_space, torch.device("cpu")))
    basis = op.null_space if null_space is None else null_space
    dev = op.device  # the basis Q lives where A does (a GPU stencil keeps it all on the GPU)
    f64 = dict(dtype=torch.float64, device=dev)
    N = torch.as_tensor(np.atleast_2d(basis), **f64) if basis is not None else None

    def mv(v: torch.Tensor) -> torch.Tensor:
        return op(v.to(dtype=op.dtype)).to(torch.float64)

    if v0 is None:
        # (why) drawn on the generator's own device: a CUDA generator (one made beside a GPU
        # stencil) made torch.randn fail, as the vector was drawn on the CPU
        where = generator.device if generator is not None else None
        q = torch.randn(n, dtype=torch.float64, generator=generator, device=where)
    else:
        q = torch.as_tensor(v0, dtype=torch.float64)
        if q.shape != (n,):
            raise ValueError(f"v0: expected a vector of shape ({n},), got {tuple(q.shape)}")
    q = q.to(dev)
    start = float(torch.linalg.vector_norm(q))
    if N is not None:
        q = q - N.T @ (N @ q)
    norm = float(torch.linalg.vector_norm(q))
    if not norm > 1e-12 * start:  # also catches NaN and a zero v0
        raise ValueError(
            "v0: expected a start vector with a component outside A's null space, got one of "
            f"norm {start:.3e} that has {norm:.3e} left after removing the null space (pass "
            "another v0, or none for a random one)"
        )
    q = q / norm
    Q = torch.zeros(m, n, **f64)
    alphas, betas = [], []
    for j in range(m):
        Q[j] = q
        w = mv(q)
        alphas.append(float(q @ w))
        for _ in range(2):  # classical Gram-Schmidt, twice
            w = w - Q[: j + 1].T @ (Q[: j + 1] @ w)
            if N is not None:
                w = w - N.T @ (N @ w)
        beta = float(torch.linalg.vector_norm(w))
        if j == m - 1 or beta < 1e-10 * max(abs(a) for a in alphas):
            break
        betas.append(beta)
        q = w / beta
    k = len(alphas)
    T = torch.diag(torch.tensor(alphas, dtype=torch.float64))
    if k > 1:
        off = torch.tensor(betas[: k - 1], dtype=torch.float64)
        T = T + torch.diag(off, 1) + torch.diag(off, -1)
    theta, S = torch.linalg.eigh(T)
    return theta, (S.T.to(dev) @ Q[:k]).cpu()


class RitzSampler:
    """Right-hand sides for DCDM training (the paper's recipe).

    ``b = sum_i c_i y_i / ||.||`` over Ritz vectors ``y_i`` (sorted by ascending Ritz value), with
    ``c_i ~ N(0, low_weight^2)`` for the lowest ``low_fraction`` of them and ``c_i ~ N(0, 1)``
    for the rest: the low end of the spectrum, where CG converges slowly, dominates. Ritz
    values below ``1e-8 * max`` (the null space) are dropped.
    """

    def __init__(
        self,
        theta: torch.Tensor,
        vectors: torch.Tensor,
        *,
        low_fraction: float = 0.55,
        low_weight: float = 9.0,
        dtype: torch.dtype = torch.float32,
    ) -> None:
        if theta.dim() != 1 or vectors.dim() != 2 or vectors.shape[0] != theta.shape[0]:
            raise ValueError(
                "expected Ritz values (m,) and Ritz vectors (m, n) as rows (what lanczos() "
                f"returns), got shapes {tuple(theta.shape)} and {tuple(vectors.shape)}"
            )
        # (why) low_weight=inf made every sample NaN (inf / inf), True ran as 1, a string failed
        # in the comparison
        if not is_real(low_fraction):
            raise TypeError(f"low_fraction: expected a fraction in [0, 1], got {low_fraction!r}")
        if not 0.0 <= low_fraction <= 1.0:
            raise ValueError(f"low_fraction: expected a fraction in [0, 1], got {low_fraction}")
        if not is_real(low_weight):
            raise TypeError(f"low_weight: expected a finite weight > 0, got {low_weight!r}")
        if not 0 < low_weight < math.inf:
            raise ValueError(f"low_weight: expected a finite weight > 0, got {low_weight}")
        # ascending, so that the low weight goes to the low end whatever order the pairs came in
        # (Ritz pairs of several Lanczos runs, concatenated)
        order = torch.argsort(theta)
        theta, vectors = theta[order], vectors[order]
        keep = theta > 1e-8 * theta.abs().max()
        if not bool(keep.any()):
            raise ValueError(
                f"all {theta.shape[0]} Ritz values are <= 1e-8 * max |theta| (null space or a "
                "zero matrix): nothing to sample from; run lanczos() on the training matrix "
                "with more steps"
            )
        self.vectors = vectors[keep].to(dtype)  # (m, n)
        m = self.vectors.shape[0]
        self.weights = torch.ones(m, dtype=dtype)
        self.weights[: int(math.ceil(low_fraction * m))] = low_weight

    def to(self, device: str | torch.device) -> RitzSampler:
        """Keep the Ritz vectors on ``device`` (samples are drawn there; the coefficients still
        come from the generator given to :meth:`sample`: a seeded CPU generator gives the same
        samples whatever this device)."""
        self.vectors = self.vectors.to(device)
        self.weights = self.weights.to(device)
        return self

    def sample(self, batch: int, generator: torch.Generator | None = None) -> torch.Tensor:
        """``(batch, n)`` unit right-hand sides; the coefficients are drawn from ``generator``
        on its own device (any device) and moved to the Ritz vectors'."""
        where = generator.device if generator is not None else None
        c = torch.randn(
            batch,
            self.weights.shape[0],
            generator=generator,
            dtype=self.weights.dtype,
            device=where,
        )
        b = (c.to(self.vectors.device) * self.weights) @ self.vectors
        return b / torch.linalg.vector_norm(b, dim=1, keepdim=True)


def dcdm_loss(
    r: torch.Tensor, y: torch.Tensor, A: Callable[[torch.Tensor], torch.Tensor]
) -> torch.Tensor:
    """Mean over the batch of ``||r - s A y||^2`` with ``s = y.r / y.Ay``.

    Args:
        r: residuals ``(batch, n)``.
        y: network outputs ``(batch, n)``.
        A: batched matvec, ``(batch, n) -> (batch, n)``.

    Returns:
        the scalar loss.
    """
    Ay = A(y)
    s = (y * r).sum(1, keepdim=True) / (y * Ay).sum(1, keepdim=True)
    return ((r - s * Ay) ** 2).sum(1).mean()


def train_dcdm(
    model: DCDMNet,
    problem: Poisson,
    *,
    sampler: RitzSampler,
    steps: int = 500,
    batch_size: int = 8,
    lr: float = 1e-3,
    seed: int = 0,
    log_every: int = 50,
    log: Callable[[str], Any] | None = print,
) -> list[float]:
    """Train ``model`` with :func:`dcdm_loss` on ``problem`` (Adam, cosine-decayed lr).

    The loss needs the matrix inside the graph, so this is a small loop of its own rather than
    :class:`sciml.train.Trainer`. Returns the loss per step.
    """
    # (why) checked before any step: log_every=0 failed after the first step ('integer modulo
    # by zero'), steps=-1 returned [] silently, batch_size=0 failed in a reshape
    for name, value, low in (
        ("steps", steps, 0),
        ("batch_size", batch_size, 1),
        ("log_every", log_every, 1),
    ):
        if not is_int(value) or value < low:
            raise (ValueError if is_int(value) else TypeError)(
                f"{name}: expected an int >= {low}, got {value!r}"
            )
    if sampler.vectors.shape[1] != problem.n:
        raise ValueError(
            f"the sampler's Ritz vectors have {sampler.vectors.shape[1]} entries but the problem "
            f"has {problem.n} unknowns: run lanczos() on this problem's matrix"
        )
    param = next(model.parameters())
    op = problem.stencil(dtype=param.dtype, device=param.device)
    opt = torch.optim.Adam(model.parameters(), lr=lr)
    sched = torch.optim.lr_scheduler.CosineAnnealingLR(opt, steps)
    gen = torch.Generator().manual_seed(seed)
    history = []
    t0 = time.perf_counter()
    model.train()
    for step in range(steps):
        r = sampler.sample(batch_size, gen).to(device=param.device, dtype=param.dtype)
        y = problem.from_grid(model(problem.to_grid(r)[:, None])[:, 0])
        loss = dcdm_loss(r, y, op)
        opt.zero_grad(set_to_none=True)
        loss.backward()
        opt.step()
        sched.step()
        history.append(loss.item())
        if log is not None and (step % log_every == 0 or step == steps - 1):
            recent = history[-log_every:]
            log(
                f"step {step:5d}  loss {sum(recent) / len(recent):.4e}  "
                f"{time.perf_counter() - t0:7.1f} s"
            )
    model.eval()
    return history
