"""A multigrid V-cycle whose operators are learned convolutions (He, Liu & Xu, "MgNO", ICLR 2024).

Classical multigrid solves ``A u = f`` on a hierarchy of grids. :class:`VCycle` keeps the
algorithm and learns its pieces, per level ``l`` and per step (separate weights everywhere):

* smoothing step   ``u <- u + S(f - A u)``           ``A``: u-channels -> f-channels,
                                                     ``S``: f-channels -> u-channels, both k x k
                                                     convolutions (``u = 0`` before the first
                                                     step, so that step is ``u <- S f``);
* restriction      ``f_{l+1} = R(f_l)``  or  ``R(f_l - A u_l)``   ``R``: stride-2 3 x 3 conv,
                   ``u_{l+1} = Pi(u_l)`` (learned initial guess) or ``0``;
* coarsest level   its smoothing steps;
* prolongation     ``u_l <- u_l + P(u_{l+1})``       ``P``: stride-2 4 x 4 transposed conv,
                   then optional normalisation and post-smoothing steps.

The output is ``u_0``, a bounded linear map of ``f`` (affine with biases; with the per-level
normalisation of the Navier-Stokes variant no longer linear).

Boundary conditions are carried by the convolutions' padding (``padding``): ``"zeros"``
(homogeneous Dirichlet: the ghost value outside the grid is 0), ``"circular"`` (periodic),
``"reflect"`` (homogeneous Neumann: the ghost value mirrors the first interior value, the
centred difference at the boundary node vanishes), ``"replicate"``. Every convolution pads with
that mode, the prolongation included: the coarse function is padded before the transposed
convolution, so interpolation near the boundary uses the coarse ghost values.

Grids of any size: a level of ``n`` points has a coarse level of ``ceil(n / 2)`` points, coarse
point ``i`` sitting on fine point ``2 i`` (or ``floor((n - 1) / 2)`` points on ``2 i + 1`` with
``coarse_offset=1``); the prolongation's output is cropped back to ``n``. For odd ``n`` and
offset 0 both ends of the fine grid are coarse points; for even ``n`` the last fine point lies
between the last coarse point and the coarse ghost. A periodic grid (``"circular"``) has no ends:
its coarse grid is every other point, ``n / 2`` of them, so it takes offset 0 and an even ``n`` on
every level that is coarsened (``n`` a multiple of ``2 ** (levels - 1)``); the other cases are
refused (offset 1 drops the wrap point, ``[8, 3]`` for ``n = 8``; an odd level puts the two
wrap-side coarse points on neighbouring fine points). With ``A`` the 5-point Laplacian, ``S``
damped Jacobi, ``R`` full weighting and ``P`` bilinear interpolation the layer *is* a classical
geometric V-cycle (``tests/test_mgno.py`` checks it against a matrix-based one).
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from typing import Literal

import torch
import torch.nn.functional as F
from torch import nn

from ._checks import check_dtype, check_int, check_size

__all__ = ["VCycle", "PaddingMode"]

PaddingMode = Literal["zeros", "circular", "reflect", "replicate"]
_PADDING_MODES = ("zeros", "circular", "reflect", "replicate")
_CONV = {1: nn.Conv1d, 2: nn.Conv2d, 3: nn.Conv3d}
_CONV_T = {1: F.conv_transpose1d, 2: F.conv_transpose2d, 3: F.conv_transpose3d}


class _Smoother(nn.Module):
    """One smoothing step ``u <- u + S(f - A u)``; ``A`` is None where ``u`` is known to be 0."""

    def __init__(self, a: nn.Module | None, s: nn.Module) -> None:
        super().__init__()
        self.A = a
        self.S = s

    def forward(self, u: torch.Tensor | None, f: torch.Tensor) -> torch.Tensor:
        if u is None:
            return self.S(f)
        return u + self.S(f - self.A(u))


class _Level(nn.Module):
    """The smoothing steps of one level: ``pre`` before the coarse-grid correction, ``post``
    after it (and ``norm`` between, for the Navier-Stokes variant)."""

    def __init__(self, pre: list[_Smoother], post: list[_Smoother], norm: nn.Module | None):
        super().__init__()
        self.pre = nn.ModuleList(pre)
        self.post = nn.ModuleList(post)
        self.norm = norm


class _Restriction(nn.Module):
    """Fine -> coarse: ``f_c = R(f)`` or ``R(f - A u)``; ``u_c = Pi(u)`` or None (zero)."""

    def __init__(self, r: nn.Module, pi: nn.Module | None, a: nn.Module | None) -> None:
        super().__init__()
        self.R = r
        self.Pi = pi
        self.A = a

    def forward(
        self, u: torch.Tensor | None, f: torch.Tensor
    ) -> tuple[torch.Tensor | None, torch.Tensor]:
        if self.A is not None and u is not None:
            f = f - self.A(u)
        u_c = self.Pi(u) if (self.Pi is not None and u is not None) else None
        return u_c, self.R(f)


class _Prolongation(nn.Module):
    """Coarse -> fine: pad the coarse function with the boundary mode, apply a stride-2 transposed
    convolution with a 4-point kernel per dim, crop to the fine grid.

    With coarse point ``i`` on fine point ``2 i + o`` (``o``: the coarse offset), fine point ``j``
    receives ``w[k] * c[i]`` for ``j = 2 i + o - 1 + k``, ``k = 0..3``: the weights
    ``[1/2, 1, 1/2, 0]`` are vertex-centred linear interpolation, ``[1/4, 3/4, 3/4, 1/4]``
    cell-centred. With ``padding="zeros"``, ``o = 0`` and an even fine grid this is exactly
    ``ConvTranspose(kernel_size=4, stride=2, padding=1)``.
    """

    def __init__(self, channels: int, ndim: int, padding: str, offset: int) -> None:
        super().__init__()
        self.ndim = ndim
        self.padding = padding
        self.offset = offset
        self.weight = nn.Parameter(torch.empty(channels, channels, *([4] * ndim)))
        # the default init of nn.ConvTranspose (fan-in from weight.size(1) * kernel)
        nn.init.kaiming_uniform_(self.weight, a=math.sqrt(5))

    def forward(self, c: torch.Tensor, size: Sequence[int]) -> torch.Tensor:
        pad = [1] * (2 * self.ndim)
        if self.padding == "zeros":
            c = F.pad(c, pad)
        else:
            c = F.pad(c, pad, mode=self.padding)
        y = _CONV_T[self.ndim](c, self.weight, stride=2)  # (b, c, 2 m + 6, ...)
        # padded coarse index q = i + 1 lands on output index 2 q + k = j + 3 - offset
        start = 3 - self.offset
        return y[(..., *(slice(start, start + n) for n in size))]


def _conv_keys(name: str, bias: bool) -> list[str]:
    return [f"{name}.weight", *([f"{name}.bias"] if bias else [])]


class VCycle(nn.Module):
    """A learned multigrid V-cycle ``u = V(f)`` on 1D, 2D or 3D grids (see the module docstring).

    Args:
        in_channels: channels of the right-hand side ``f``.
        out_channels: channels of the solution ``u``.
        smoothing: ``(pre, post)`` smoothing steps per level, finest level first; its length is
            the number of levels. On the coarsest level the ``pre + post`` steps run back to
            back. The paper's Darcy setting: ``((1, 0),) * 5 + ((2, 0),)``.
        ndim: number of spatial dims (1, 2 or 3).
        padding: boundary condition by padding mode: ``"zeros"`` (Dirichlet), ``"circular"``
            (periodic), ``"reflect"`` (Neumann) or ``"replicate"``.
        kernel_size: odd stencil width of ``A`` and ``S``.
        bias: give ``A`` and ``S`` biases.
        restrict_guess: start each coarse level from ``Pi(u)`` with a learned stride-2
            convolution ``Pi`` (as the paper does); False starts it from 0 (classical).
        residual_restriction: restrict the residual ``f - A u`` (classical); False restricts ``f``
            itself (the paper's Darcy models).
        level_norm: apply a ``GroupNorm(1, out_channels)`` (layer norm over channels and grid,
            per-channel affine) after each coarse-grid correction, as the paper's Navier-Stokes
            model does.
        coarse_offset: coarse point ``i`` sits on fine point ``2 i + coarse_offset``. 0 (the
            paper): ``ceil(n / 2)`` coarse points, both ends of an odd grid are coarse points
            (the vertex-centred hierarchy when the boundary nodes are part of the grid, as for
            Neumann / ``"reflect"`` on ``2^k + 1`` points). 1: ``floor((n - 1) / 2)`` coarse
            points, the hierarchy of a Dirichlet problem on ``2^k - 1`` interior points whose
            walls are the zero ghost points (``"zeros"``): the coarse walls coincide with the
            fine ones. With offset 0 and ``"zeros"`` the coarse walls sit one fine cell further
            out per level, which a learned model does not mind but which makes the classical
            Dirichlet V-cycle diverge. ``"circular"`` with more than one level takes only 0
            (and grids whose coarsened levels are even, see :meth:`min_size`).

    Attributes (for inspection or to set classical weights): ``levels[l].pre[i].A / .S``,
    ``levels[l].post[i].A / .S``, ``restrictions[l].R / .Pi / .A`` (level ``l`` -> ``l + 1``;
    ``Pi`` and ``A`` are None where they are switched off or ``u`` is still 0 there, as after a
    level without pre-smoothing that started from 0; so is a first step's ``A``),
    ``prolongations[l].weight`` (level ``l + 1`` -> ``l``).
    """

    def __init__(
        self,
        in_channels: int,
        out_channels: int,
        smoothing: Sequence[tuple[int, int]],
        *,
        ndim: int = 2,
        padding: PaddingMode = "zeros",
        kernel_size: int = 3,
        bias: bool = False,
        restrict_guess: bool = True,
        residual_restriction: bool = False,
        level_norm: bool = False,
        coarse_offset: int = 0,
    ) -> None:
        super().__init__()
        smoothing = tuple(check_size("VCycle", "each smoothing pair", pair) for pair in smoothing)
        in_channels = check_int("in_channels", in_channels)
        out_channels = check_int("out_channels", out_channels)
        # (why) a bool passed the range checks as 1 (ndim=True built a 1D V-cycle, coarse_offset
        # True the offset-1 hierarchy), a float failed deep in the convolutions' construction
        ndim = check_int("ndim", ndim)
        kernel_size = check_int("kernel_size", kernel_size)
        coarse_offset = check_int("coarse_offset", coarse_offset, low=0)
        _check_args(in_channels, out_channels, smoothing, ndim, padding, kernel_size)
        if coarse_offset not in (0, 1):
            raise ValueError(f"expected coarse_offset 0 or 1, got {coarse_offset}")
        if padding == "circular" and coarse_offset == 1 and len(smoothing) > 1:
            # (why) floor((n - 1) / 2) points on the odd fine points is the hierarchy of walls
            # at both ends; on a periodic grid it drops the wrap point (8 -> 3, not 4) and the
            # coarse spacing is not uniform across the wrap. The authors' periodic model uses
            # offset 0 on 64 = 2^6 points; offset 1 would only be that hierarchy shifted by one.
            raise ValueError(
                "VCycle with padding='circular' (periodic) needs coarse_offset=0, got "
                "coarse_offset=1: its coarse grid of floor((n - 1) / 2) points on the odd fine "
                "points drops the wrap point (n=8 gives 3 coarse points, a periodic grid has 4); "
                "use coarse_offset=0 (every other point, n / 2 of them)"
            )
        self.coarse_offset = coarse_offset
        self.in_channels, self.out_channels = in_channels, out_channels
        self.smoothing = smoothing
        self.ndim = ndim
        self.padding = padding
        self.kernel_size = kernel_size
        conv = _CONV[ndim]

        def stencil(cin: int, cout: int) -> nn.Module:
            return conv(
                cin, cout, kernel_size, padding=kernel_size // 2, bias=bias, padding_mode=padding
            )

        def coarsen(channels: int) -> nn.Module:
            return conv(
                channels,
                channels,
                3,
                stride=2,
                padding=1 - coarse_offset,
                bias=False,
                padding_mode=padding,
            )

        def step(u_is_zero: bool) -> _Smoother:
            a = None if u_is_zero else stencil(out_channels, in_channels)
            return _Smoother(a, stencil(in_channels, out_channels))

        n_levels = len(smoothing)
        levels, restrictions, prolongations = [], [], []
        # (why) checkpoints written before the dead weights below were dropped hold them; they
        # never changed the output, so loading takes and discards them (_load_from_state_dict)
        dead: list[str] = []
        u_zero = True  # u = 0 on entering the finest level
        for lev, (n_pre, n_post) in enumerate(smoothing):
            coarsest = lev == n_levels - 1
            # u on entering a coarse level is Pi(u) of the level above, or 0 without
            # restrict_guess; Pi of a u that is still 0 (no pre-smoothing there) is 0 as well
            u_zero = u_zero or not restrict_guess
            if u_zero and lev > 0 and restrict_guess and n_pre + (n_post if coarsest else 0):
                dead += _conv_keys(f"levels.{lev}.pre.0.A", bias)  # was built for a u != 0
            pre = []
            for _ in range(n_pre + (n_post if coarsest else 0)):
                pre.append(step(u_zero))
                u_zero = False
            post = [] if coarsest else [step(False) for _ in range(n_post)]
            norm = nn.GroupNorm(1, out_channels) if (level_norm and not coarsest) else None
            levels.append(_Level(pre, post, norm))
            if not coarsest:
                # no Pi and no A u where u is still 0: they would be parameters without a
                # gradient (dead weights, and an error under DistributedDataParallel)
                if u_zero and restrict_guess:
                    dead += _conv_keys(f"restrictions.{lev}.Pi", False)
                if u_zero and residual_restriction:
                    dead += _conv_keys(f"restrictions.{lev}.A", bias)
                restrictions.append(
                    _Restriction(
                        coarsen(in_channels),
                        coarsen(out_channels) if (restrict_guess and not u_zero) else None,
                        stencil(out_channels, in_channels)
                        if (residual_restriction and not u_zero)
                        else None,
                    )
                )
                prolongations.append(_Prolongation(out_channels, ndim, padding, coarse_offset))
        self.levels = nn.ModuleList(levels)
        self.restrictions = nn.ModuleList(restrictions)
        self.prolongations = nn.ModuleList(prolongations)
        #: state-dict keys of older checkpoints that this V-cycle accepts and drops (see
        #: :func:`sciml.operator.obsolete_state_keys`)
        self.obsolete_state_keys = tuple(dead)

    def _load_from_state_dict(
        self, state_dict, prefix, local_metadata, strict, missing_keys, unexpected_keys, errors
    ):
        # the dead weights of an older checkpoint: removed before the submodules, which no
        # longer have them, would report them as unexpected
        for key in self.obsolete_state_keys:
            state_dict.pop(prefix + key, None)
        super()._load_from_state_dict(
            state_dict, prefix, local_metadata, strict, missing_keys, unexpected_keys, errors
        )

    @property
    def n_levels(self) -> int:
        """The number of grid levels, finest included: one per ``smoothing`` pair."""
        return len(self.smoothing)

    def level_sizes(self, n: int) -> list[int]:
        """Grid points per dim on each level, finest first, for a fine grid of ``n`` points:
        ``ceil(n / 2)`` per coarsening (offset 0) or ``floor((n - 1) / 2)`` (offset 1)."""
        sizes = [n]
        for _ in range(self.n_levels - 1):
            m = sizes[-1]
            sizes.append((m + 1) // 2 if self.coarse_offset == 0 else (m - 1) // 2)
        return sizes

    def min_level_size(self) -> int:
        """Fewest points per dim on any level: 2, and more where the ``A`` / ``S`` stencils'
        padding needs them (a reflection must be shorter than the grid, a wrap no longer)."""
        half = self.kernel_size // 2
        return max(2, {"reflect": half + 1, "circular": half}.get(self.padding, 0))

    def min_size(self) -> int:
        """Smallest grid size per dim: every level keeps :meth:`min_level_size` points (and, for
        ``"circular"``, every coarsened level has an even number: a multiple of
        ``2 ** (levels - 1)``)."""
        n = least = self.min_level_size()
        while min(self.level_sizes(n)) < least or self._odd_periodic_level(n) is not None:
            n += 1
        return n

    def _odd_periodic_level(self, n: int) -> int | None:
        """The first coarsened level of odd size on a periodic grid of ``n`` points, or None."""
        if self.padding != "circular":
            return None
        sizes = self.level_sizes(n)[:-1]  # the coarsest level is not coarsened
        return next((lev for lev, m in enumerate(sizes) if m % 2), None)

    def forward(self, f: torch.Tensor) -> torch.Tensor:
        """One V-cycle from ``u = 0``.

        Args:
            f: ``(batch, in_channels, *spatial)`` with ``ndim`` spatial dims, each of at least
                :meth:`min_size` points (any size, odd included; with ``"circular"`` a multiple
                of ``2 ** (levels - 1)``).

        Returns:
            ``u``: ``(batch, out_channels, *spatial)``.
        """
        self._check_input(f)
        us: list[torch.Tensor | None] = []
        fs: list[torch.Tensor] = []
        u: torch.Tensor | None = None
        for lev, level in enumerate(self.levels):
            for smoother in level.pre:
                u = smoother(u, f)
            us.append(u)
            fs.append(f)
            if lev < self.n_levels - 1:
                u, f = self.restrictions[lev](u, f)
        u_coarse = us[-1]
        for lev in range(self.n_levels - 2, -1, -1):
            level, u, f = self.levels[lev], us[lev], fs[lev]
            correction = self.prolongations[lev](u_coarse, f.shape[2:])
            u = correction if u is None else u + correction
            if level.norm is not None:
                u = level.norm(u)
            for smoother in level.post:
                u = smoother(u, f)
            u_coarse = u
        return u_coarse

    def _check_input(self, f: torch.Tensor) -> None:
        # the coarsest level always has a smoothing step: its weight sets the dtype
        check_dtype("VCycle", "f", f, self.levels[-1].pre[0].S.weight.dtype)
        if f.ndim != self.ndim + 2 or f.shape[1] != self.in_channels:
            raise ValueError(
                f"VCycle expected f of shape (batch, {self.in_channels}, {self.ndim} spatial "
                f"dims), got {tuple(f.shape)}"
            )
        least = self.min_level_size()
        if any(min(self.level_sizes(n)) < least for n in f.shape[2:]):
            raise ValueError(
                f"VCycle with {self.n_levels} levels needs at least {self.min_size()} grid points "
                f"per dim (every level keeps >= {least} points), got spatial shape "
                f"{tuple(f.shape[2:])}; use fewer levels or a finer grid"
            )
        for n in f.shape[2:]:
            lev = self._odd_periodic_level(n)
            if lev is not None:
                # (why) ceil(m / 2) coarse points on the even points of an odd periodic level
                # put coarse points on fine points m - 1 and 0, neighbours across the wrap
                step = 2 ** (self.n_levels - 1)
                raise ValueError(
                    f"VCycle with padding='circular' (periodic), coarse_offset=0 and "
                    f"{self.n_levels} levels needs each spatial dim to be a multiple of {step} "
                    f"(every coarsened level even), got n={n} in spatial shape "
                    f"{tuple(f.shape[2:])}: level {lev} has {self.level_sizes(n)[lev]} points, "
                    f"whose two wrap-side coarse points would be neighbours; use a multiple of "
                    f"{step} points (e.g. {-(-n // step) * step}) or fewer levels"
                )

    def extra_repr(self) -> str:
        return (
            f"{self.in_channels}, {self.out_channels}, smoothing={self.smoothing}, "
            f"ndim={self.ndim}, padding={self.padding!r}"
        )


def _check_args(
    in_channels: int,
    out_channels: int,
    smoothing: tuple[tuple[int, ...], ...],
    ndim: int,
    padding: str,
    kernel_size: int,
) -> None:
    if in_channels < 1 or out_channels < 1:
        raise ValueError(
            f"expected in_channels, out_channels >= 1, got {in_channels}, {out_channels}"
        )
    if not smoothing or any(len(p) != 2 or min(p) < 0 for p in smoothing):
        raise ValueError(
            "expected smoothing as a non-empty sequence of (pre, post) pairs of non-negative "
            f"step counts, one per level, got {smoothing}"
        )
    if sum(smoothing[-1]) < 1:
        raise ValueError(f"the coarsest level needs at least one smoothing step, got {smoothing}")
    if ndim not in _CONV:
        raise ValueError(f"VCycle supports 1, 2 or 3 spatial dims, got ndim={ndim}")
    if padding not in _PADDING_MODES:
        raise ValueError(f"expected padding in {_PADDING_MODES}, got {padding!r}")
    if kernel_size < 1 or kernel_size % 2 == 0:
        raise ValueError(f"expected an odd kernel_size >= 1, got {kernel_size}")
