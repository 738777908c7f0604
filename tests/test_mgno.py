"""MgNO and its V-cycle layer: parameter count of the paper's model, the V-cycle against an
independent matrix-based classical multigrid, boundary conditions by padding, odd grids,
learning, and the Navier-Stokes variant."""

from __future__ import annotations

import dataclasses
import json
from pathlib import Path

import numpy as np
import pytest
import torch
import torch.nn.functional as F
from test_func_transforms import _rowwise_jacobian

from sciml.layers import VCycle
from sciml.models import MgNO, MgNOConfig, Normalized
from sciml.models.mgno import PAPER_DARCY_SMOOTHING, darcy_recipe

sp = pytest.importorskip("scipy.sparse")
spla = pytest.importorskip("scipy.sparse.linalg")

OMEGA = 0.8  # damped Jacobi weight (the 2D smoothing optimum for the 5-point Laplacian)


# ---------------------------------------------------------------- parameter count
def test_paper_darcy_config_has_572661_parameters():
    model = MgNO(MgNOConfig.darcy())
    c, k3, k4 = 24, 9, 16  # channels, 3x3 and 4x4 kernels
    # first V-cycle, f = the 1-channel input: S on the finest level (u = 0 there, so no A);
    # 5 restrictions (R: 1 -> 1, Pi: 24 -> 24); levels 1-4 one (A, S) pair, coarsest two;
    # 5 prolongations 24 -> 24 with 4x4 kernels. No biases in the V-cycle.
    first = 1 * c * k3 + 5 * (1 * k3 + c * c * k3) + 6 * 2 * c * k3 + 5 * c * c * k4
    later = c * c * k3 + 5 * 2 * c * c * k3 + 6 * 2 * c * c * k3 + 5 * c * c * k4
    pointwise = (1 * c + c) + 3 * (c * c + c)  # W v + b in each layer
    projection = c * 1  # no bias
    assert first == 74_853 and later == 165_312
    assert first + 3 * later + pointwise + projection == 572_661
    assert model.num_parameters() == 572_661
    assert sum(p.numel() for p in model.vcycles[0].parameters()) == first
    assert sum(p.numel() for p in model.vcycles[1].parameters()) == later
    assert MgNOConfig.darcy().smoothing == PAPER_DARCY_SMOOTHING == ((1, 0),) * 5 + ((2, 0),)


def test_navier_stokes_config_has_the_authors_biases_and_parameter_count():
    """The authors' NS script (README: ``navier.py ... --num_channel_u 32 --num_layer 5 --bias``)
    gives A and S biases; with them their MgNO_NS has 2,885,194 parameters, 1,740,800 of which
    are the per-grid-point LayerNorm affines (2 * 32 * (64^2 + 32^2 + 16^2 + 8^2) per V-cycle)
    that sciml replaces by GroupNorm(1, 32) (64 per level): 2,885,194 - 1,740,800 + 1,280."""
    model = MgNO(MgNOConfig.navier_stokes())
    c, k3, k4 = 32, 9, 16
    steps = 1 + 1 + 2 + 2  # (A, S) steps on levels 1-4 of ((1, 0),) * 3 + ((2, 0),) * 2
    # first V-cycle (f: 1 channel): finest S 1 -> c with bias; A c -> 1 (+1), S 1 -> c (+c)
    first = (c * k3 + c) + steps * ((c * k3 + 1) + (c * k3 + c))
    first += 4 * (k3 + c * c * k3) + 4 * c * c * k4 + 4 * 2 * c  # R, Pi; P; GroupNorm
    later = (c * c * k3 + c) + steps * 2 * (c * c * k3 + c)
    later += 4 * 2 * c * c * k3 + 4 * c * c * k4 + 4 * 2 * c
    assert first == 106_666 and later == 259_744
    assert model.num_parameters() == first + 4 * later + c == 1_145_674
    assert 2_885_194 - 1_740_800 + 5 * 4 * 2 * c == 1_145_674
    assert model.vcycles[0].levels[0].pre[0].S.bias is not None
    # the bias makes each V-cycle affine: V(0) is a non-zero field
    with torch.no_grad():
        for lev in model.vcycles[0].levels:
            for s in [*lev.pre, *lev.post]:
                s.S.bias.fill_(0.1)
        assert model.vcycles[0](torch.zeros(1, 1, 32, 32)).abs().max() > 0.1
        darcy = MgNO(MgNOConfig()).vcycles[0]  # no biases: V(0) = 0
        assert darcy.levels[0].pre[0].S.bias is None
        assert darcy(torch.zeros(1, 1, 64, 64)).abs().max() == 0


# ---------------------------------------------------------------- the authors' layout
def _authors_layout(v: VCycle, f: torch.Tensor) -> torch.Tensor:
    """A second implementation of the V-cycle as the authors' ``MgConv`` writes it, on even
    grids with zero padding: stride-2 3x3 convolutions with padding 1 restrict, a
    ``ConvTranspose2d(kernel_size=4, stride=2, padding=1)`` prolongs, and the per-level
    normalisation is a LayerNorm over (channels, grid) with a per-channel affine."""

    def conv(m, x, stride=1):
        return F.conv2d(x, m.weight, m.bias, stride=stride, padding=1)

    us, fs, u = [], [], None
    for lev, level in enumerate(v.levels):
        if lev > 0:
            r = v.restrictions[lev - 1]
            u, f = conv(r.Pi, u, 2), conv(r.R, f, 2)
        for s in level.pre:
            u = conv(s.S, f) if u is None else u + conv(s.S, f - conv(s.A, u))
        us.append(u)
        fs.append(f)
    for lev in range(len(v.levels) - 2, -1, -1):
        w = v.prolongations[lev].weight
        u = us[lev] + F.conv_transpose2d(us[lev + 1], w, stride=2, padding=1)
        norm = v.levels[lev].norm
        if norm is not None:
            u = F.layer_norm(u, u.shape[1:]) * norm.weight[:, None, None] + norm.bias[:, None, None]
        for s in v.levels[lev].post:
            u = u + conv(s.S, fs[lev] - conv(s.A, u))
        us[lev] = u
    return us[0]


@pytest.mark.parametrize("level_norm", [False, True])
def test_vcycle_matches_the_authors_conv_transpose_layout_on_even_grids(level_norm):
    """With zero padding on an even grid our pad-and-crop prolongation is the authors'
    ConvTranspose2d(4, stride 2, padding 1), and smoothing, restriction, biases, normalisation
    and post-smoothing sit where their MgConv puts them (checked against their code at
    64 x 64: the paper's Darcy model and, with the prolongation zero-padded, the NS model agree
    to 1e-15)."""
    torch.manual_seed(0)
    v = VCycle(2, 5, ((1, 1), (2, 1), (1, 0), (2, 0)), bias=True, level_norm=level_norm).double()
    with torch.no_grad():
        for lev in v.levels:
            if lev.norm is not None:  # not the identity affine, so a misplaced norm shows
                lev.norm.weight.uniform_(0.5, 1.5)
                lev.norm.bias.uniform_(-0.5, 0.5)
    f = torch.randn(3, 2, 32, 48, dtype=torch.float64)
    with torch.no_grad():
        ours, ref = v(f), _authors_layout(v, f)
    assert ref.abs().max() > 0.1
    torch.testing.assert_close(ours, ref, rtol=1e-12, atol=1e-12)


def test_prolongation_contains_the_authors_odd_grid_kernels():
    """The authors' code for odd grids (MgConv_DC_smooth, 211 x 211) prolongs odd levels with a
    ConvTranspose2d(3, stride 2, padding 1); ours uses one 4-tap kernel on every grid, and its
    last tap set to zero gives theirs (coarse 27 -> fine 53). On even grids the 4 taps are their
    ConvTranspose2d(4, stride 2, padding 1)."""
    torch.manual_seed(0)
    v = VCycle(3, 3, ((1, 0), (1, 0)), padding="zeros").double()
    p = v.prolongations[0]
    c = torch.randn(2, 3, 27, 14, dtype=torch.float64)
    k3 = torch.randn(3, 3, 3, 3, dtype=torch.float64)
    with torch.no_grad():
        p.weight.zero_()
        p.weight[..., :3, :3] = k3
        ours = p(c[..., :7], (53, 13))  # odd -> odd in both dims
        ref = F.conv_transpose2d(c[..., :7], k3, stride=2, padding=1)
        torch.testing.assert_close(ours, ref, rtol=1e-13, atol=1e-13)
        assert ref.shape[-2:] == (53, 13)
        p.weight.normal_()
        torch.testing.assert_close(
            p(c, (54, 28)), F.conv_transpose2d(c, p.weight, stride=2, padding=1)
        )
    for ndim, conv_t in ((1, F.conv_transpose1d), (3, F.conv_transpose3d)):  # same in 1D, 3D
        p = VCycle(2, 2, ((1, 0), (1, 0)), ndim=ndim).double().prolongations[0]
        c = torch.randn(2, 2, *(5, 4, 3)[:ndim], dtype=torch.float64)
        with torch.no_grad():
            out = p(c, [2 * n for n in c.shape[2:]])
            torch.testing.assert_close(out, conv_t(c, p.weight, stride=2, padding=1))


# ---------------------------------------------------------------- classical multigrid reference
def _ghost(j: int, n: int, mode: str) -> int | None:
    """Index that grid point ``j`` (possibly outside ``0..n-1``) reads under a padding mode."""
    if 0 <= j < n:
        return j
    if mode == "zeros":
        return None
    if mode == "circular":
        return j % n
    if mode == "reflect":
        return -j if j < 0 else 2 * (n - 1) - j
    return 0 if j < 0 else n - 1  # replicate


def _coarse(n: int, offset: int) -> int:
    return (n + 1) // 2 if offset == 0 else (n - 1) // 2


def _lap1(n: int, mode: str):
    """1D ``2 u_i - u_{i-1} - u_{i+1}`` with ghost values from the padding mode."""
    L = sp.lil_matrix((n, n))
    for i in range(n):
        L[i, i] += 2
        for j in (i - 1, i + 1):
            g = _ghost(j, n, mode)
            if g is not None:
                L[i, g] -= 1
    return L.tocsr()


def _restrict1(n: int, mode: str, offset: int):
    """1D full weighting ``[1/2, 1, 1/2]`` onto coarse point ``i`` at fine ``2 i + offset``."""
    m = _coarse(n, offset)
    R = sp.lil_matrix((m, n))
    for i in range(m):
        for j, w in ((2 * i + offset - 1, 0.5), (2 * i + offset, 1.0), (2 * i + offset + 1, 0.5)):
            g = _ghost(j, n, mode)
            if g is not None:
                R[i, g] += w
    return R.tocsr()


def _prolong1(n: int, mode: str, offset: int):
    """1D linear interpolation; coarse ghosts (i = -1, m) take their padding-mode values."""
    m = _coarse(n, offset)
    P = sp.lil_matrix((n, m))
    for i in range(-1, m + 1):
        src = _ghost(i, m, mode)
        if src is None:
            continue
        for j, w in ((2 * i + offset - 1, 0.5), (2 * i + offset, 1.0), (2 * i + offset + 1, 0.5)):
            if 0 <= j < n:
                P[j, src] += w
    return P.tocsr()


def _reference_hierarchy(n, mode, levels, shift, offset):
    """Matrices of the classical geometric multigrid for ``(L + shift 4^l) u = f`` (unscaled
    5-point stencil on every level, so the coarse right-hand side is 4 x full weighting)."""
    sizes = [n]
    for _ in range(levels - 1):
        sizes.append(_coarse(sizes[-1], offset))
    A, R, P = [], [], []
    for lev, s in enumerate(sizes):
        eye = sp.identity(s)
        lap = _lap1(s, mode)
        A.append(
            (sp.kron(lap, eye) + sp.kron(eye, lap) + shift * 4**lev * sp.identity(s * s)).tocsr()
        )
        if lev < levels - 1:
            R.append(sp.kron(_restrict1(s, mode, offset), _restrict1(s, mode, offset)).tocsr())
            P.append(sp.kron(_prolong1(s, mode, offset), _prolong1(s, mode, offset)).tocsr())
    return A, R, P


def _reference_vcycle(f, smoothing, A, R, P):
    """Textbook V-cycle from u = 0: damped Jacobi pre/post smoothing, residual restriction,
    linear-interpolation correction; the coarsest level only smooths."""

    def cycle(lev, rhs):
        d = A[lev].diagonal()
        u = np.zeros_like(rhs)
        pre, post = smoothing[lev]
        last = lev == len(A) - 1
        for _ in range(pre + (post if last else 0)):
            u = u + OMEGA / d * (rhs - A[lev] @ u)
        if last:
            return u
        u = u + P[lev] @ cycle(lev + 1, R[lev] @ (rhs - A[lev] @ u))
        for _ in range(post):
            u = u + OMEGA / d * (rhs - A[lev] @ u)
        return u

    return cycle(0, f.ravel()).reshape(f.shape)


def _classical_vcycle(smoothing, mode, shift, offset) -> VCycle:
    """A VCycle whose A is the 5-point Laplacian (+ shift), S damped Jacobi, R full weighting,
    P bilinear interpolation, coarse guesses zero and residual restriction: classical MG."""
    v = VCycle(
        1,
        1,
        smoothing,
        padding=mode,
        restrict_guess=False,
        residual_restriction=True,
        coarse_offset=offset,
    ).double()
    lap = torch.tensor([[0.0, -1, 0], [-1, 4, -1], [0, -1, 0]], dtype=torch.float64)
    half = torch.tensor([0.5, 1.0, 0.5], dtype=torch.float64)
    interp = torch.tensor([0.5, 1.0, 0.5, 0.0], dtype=torch.float64)
    with torch.no_grad():
        for lev, level in enumerate(v.levels):
            stencil = lap.clone()
            stencil[1, 1] += shift * 4**lev
            for smoother in [*level.pre, *level.post]:
                if smoother.A is not None:
                    smoother.A.weight.copy_(stencil)
                smoother.S.weight.zero_()
                smoother.S.weight[..., 1, 1] = OMEGA / stencil[1, 1]
            if lev < len(v.restrictions):
                v.restrictions[lev].A.weight.copy_(stencil)
                v.restrictions[lev].R.weight.copy_(torch.outer(half, half))
                v.prolongations[lev].weight.copy_(torch.outer(interp, interp))
    return v


def _apply(v: VCycle, r: np.ndarray) -> np.ndarray:
    with torch.no_grad():
        return v(torch.from_numpy(r)[None, None])[0, 0].numpy()


def _smoothing(v_levels: int, nu: int, coarse_steps: int = 60):
    return ((nu, nu),) * (v_levels - 1) + ((coarse_steps, 0),)


# (padding, coarse offset, grid, levels, shift): the standard hierarchies (Dirichlet on 2^k - 1
# interior points, Neumann on 2^k + 1 nodes, periodic on 2^k) and odd sizes that are neither
CASES = [
    ("zeros", 1, 63, 5, 0.0),
    ("reflect", 0, 65, 6, 0.01),
    ("circular", 0, 64, 5, 0.01),
    ("zeros", 1, 85, 5, 0.0),
    ("reflect", 0, 211, 7, 0.01),
]


@pytest.mark.parametrize("mode, offset, n, levels, shift", CASES)
def test_one_vcycle_reduces_the_error_as_a_classical_vcycle(mode, offset, n, levels, shift):
    smoothing = _smoothing(levels, nu=1)
    A, R, P = _reference_hierarchy(n, mode, levels, shift, offset)
    f = np.random.default_rng(0).standard_normal((n, n))
    exact = spla.spsolve(A[0].tocsc(), f.ravel()).reshape(n, n)
    reference = _reference_vcycle(f, smoothing, A, R, P)
    ours = _apply(_classical_vcycle(smoothing, mode, shift, offset), f)
    factor_ref = np.linalg.norm(exact - reference) / np.linalg.norm(exact)
    factor = np.linalg.norm(exact - ours) / np.linalg.norm(exact)
    assert np.abs(ours - reference).max() <= 1e-12 * np.abs(reference).max()
    assert factor == pytest.approx(factor_ref, rel=1e-10)
    assert factor < 0.4  # one cycle from u = 0 removes most of the error (0.15-0.39 measured)


@pytest.mark.parametrize(
    "mode, offset, sizes, shift",
    [
        ("zeros", 1, (63, 127), 0.0),
        ("reflect", 0, (65, 129), 0.01),
        ("circular", 0, (64, 128), 0.01),
    ],
)
def test_vcycle_convergence_factor_is_small_and_grid_independent(mode, offset, sizes, shift):
    """Iterate u <- u + V(f - A u) (V(2,2), damped Jacobi, coarsest grid <= 4 points): the
    asymptotic error reduction per cycle stays at ~0.17-0.19 as the grid is refined."""
    factors = []
    for n in sizes:
        levels, m = 1, n
        while m > 4:
            levels, m = levels + 1, _coarse(m, offset)
        v = _classical_vcycle(_smoothing(levels, nu=2), mode, shift, offset)
        assert v.level_sizes(n)[-1] <= 4
        A = _reference_hierarchy(n, mode, 1, shift, offset)[0][0]
        f = np.random.default_rng(1).standard_normal((n, n))
        exact = spla.spsolve(A.tocsc(), f.ravel()).reshape(n, n)
        u, errors = np.zeros_like(f), []
        for _ in range(10):
            u = u + _apply(v, f - (A @ u.ravel()).reshape(n, n))
            errors.append(np.linalg.norm(exact - u))
        factors.append((errors[-1] / errors[4]) ** (1 / 5))  # mean rate over cycles 6-10
    assert max(factors) < 0.2, factors
    assert abs(factors[0] - factors[1]) < 0.02, factors


# ---------------------------------------------------------------- boundary conditions
def _bc_problem(mode: str, n: int):
    """Grid and smooth solution u of -Lap u + c u = F meeting the boundary condition that the
    padding mode imposes, on the unit square."""
    if mode == "zeros":  # Dirichlet u = 0 at the ghost points x = 0, 1
        h = 1 / (n + 1)
        x = (np.arange(n) + 1) * h
        u = np.outer(np.sin(np.pi * x), np.sin(np.pi * x))
        k2 = 2 * np.pi**2
    elif mode == "circular":  # periodic
        h = 1 / n
        x = np.arange(n) * h
        u = np.outer(np.sin(2 * np.pi * x), np.cos(2 * np.pi * x))
        k2 = 8 * np.pi**2
    elif mode == "reflect":  # Neumann at the boundary nodes x = 0, 1 (ghost mirrors x = h)
        h = 1 / (n - 1)
        x = np.arange(n) * h
        u = np.outer(np.cos(np.pi * x), np.cos(np.pi * x))
        k2 = 2 * np.pi**2
    else:
        raise ValueError(mode)
    return h, u, k2


def _solve_with_vcycles(mode, offset, n, levels, c=1.0, cycles=40):
    h, u_exact, k2 = _bc_problem(mode, n)
    shift = c * h**2
    v = _classical_vcycle(_smoothing(levels, nu=2), mode, shift, offset)
    A = v.levels[0].post[0].A  # the layer's own fine-level operator (its padding = the BC)
    f = torch.from_numpy(h**2 * (k2 + c) * u_exact)[None, None]
    u = torch.zeros_like(f)
    with torch.no_grad():
        for _ in range(cycles):
            u = u + v(f - A(u))
        residual = (f - A(u)).abs().max().item() / f.abs().max().item()
    return u[0, 0].numpy(), u_exact, residual


@pytest.mark.parametrize(
    "mode, offset, grids",
    [
        ("zeros", 1, ((31, 4), (63, 5))),
        ("circular", 0, ((32, 4), (64, 5))),
        ("reflect", 0, ((33, 5), (65, 6))),
    ],
)
def test_each_padding_mode_solves_its_boundary_value_problem(mode, offset, grids):
    """V-cycles with the classical weights converge to the discrete solution, which matches the
    analytic solution of the boundary value problem to second order in h."""
    errors = []
    for n, levels in grids:
        u, exact, residual = _solve_with_vcycles(mode, offset, n, levels)
        assert residual < 1e-7
        errors.append(np.abs(u - exact).max())
    assert errors[1] < 5e-3
    assert errors[0] / errors[1] == pytest.approx(4.0, rel=0.15)  # O(h^2)


def test_a_mismatched_padding_misses_the_boundary_condition():
    # the Neumann test function solved with the Dirichlet padding is off by O(1): the BC test
    # above can fail
    h, exact, k2 = _bc_problem("reflect", 33)
    v = _classical_vcycle(_smoothing(5, nu=2), "zeros", h**2, 0)
    f = torch.from_numpy(h**2 * (k2 + 1) * exact)[None, None]
    u = torch.zeros_like(f)
    with torch.no_grad():
        for _ in range(40):
            u = u + v(f - v.levels[0].post[0].A(u))
    assert np.abs(u[0, 0].numpy() - exact).max() > 0.3


def test_circular_vcycle_commutes_with_shifts_of_the_coarsest_spacing():
    v = VCycle(2, 3, ((1, 1), (1, 0), (2, 0)), padding="circular").double()
    f = torch.randn(2, 2, 16, 24, dtype=torch.float64)
    shifted = torch.roll(f, shifts=(4, -8), dims=(2, 3))
    with torch.no_grad():
        out, out_shifted = v(f), v(shifted)
    torch.testing.assert_close(torch.roll(out, shifts=(4, -8), dims=(2, 3)), out_shifted)


@pytest.mark.parametrize(
    "restrict_guess, residual_restriction", [(True, False), (True, True), (False, True)]
)
def test_levels_without_pre_smoothing_build_no_dead_weights(restrict_guess, residual_restriction):
    """With no pre-smoothing on a level, u is still 0 when it is restricted: Pi(u), A u and the
    A of the next level's first step are 0 there and must not exist (they were parameters that
    never got a gradient, which DistributedDataParallel refuses). Counted by hand for
    ((0, 1), (0, 1), (2, 0)), 1 -> 2 channels: post-smoothing (A, S) on levels 0 and 1 (2 x 36),
    coarsest S then (A, S) (18 + 36), R 1 -> 1 (2 x 9), P 2 -> 2 with 4 x 4 taps (2 x 64)."""
    torch.manual_seed(0)
    v = VCycle(
        1,
        2,
        ((0, 1), (0, 1), (2, 0)),
        restrict_guess=restrict_guess,
        residual_restriction=residual_restriction,
    )
    v(torch.randn(2, 1, 16, 16)).square().sum().backward()
    assert [n for n, p in v.named_parameters() if p.grad is None] == []
    assert all(p.grad.abs().sum() > 0 for p in v.parameters())
    assert sum(p.numel() for p in v.parameters()) == 2 * 36 + 18 + 36 + 2 * 9 + 2 * 64 == 272
    # u enters level 1 as Pi(u_0), non-zero, so level 1 restricts it even without smoothing; from
    # a zero start (restrict_guess=False) level 1 has no u to restrict
    w = VCycle(1, 2, ((1, 0), (0, 1), (2, 0)), residual_restriction=True)
    assert all(r.Pi is not None and r.A is not None for r in w.restrictions)
    w = VCycle(1, 2, ((1, 0), (0, 1), (2, 0)), restrict_guess=False, residual_restriction=True)
    assert w.restrictions[0].A is not None and w.restrictions[1].A is None


DEAD_WEIGHTS = Path(__file__).parent / "data" / "mgno_dead_weights"


def test_checkpoints_with_the_dead_weights_of_older_sciml_still_load(tmp_path):
    """Checkpoints written before levels without pre-smoothing stopped building Pi / A (see
    tests/data/mgno_dead_weights/README.md, written by the older sciml) hold those tensors:
    they load to the same outputs as the older sciml computed (they were refused as
    'unexpected'), through sciml.load and through a strict load_state_dict, and any other
    unknown key is still refused."""
    from safetensors.torch import load_file, save_file

    import sciml
    from sciml.errors import CheckpointError
    from sciml.operator import _sha256

    io = load_file(str(DEAD_WEIGHTS / "io.safetensors"))
    model = sciml.load(DEAD_WEIGHTS / "mgno")
    # (why) a tolerance, not torch.equal: the stored outputs were computed on another CPU, and
    # oneDNN's convolution kernels differ by instruction set (3.6e-7 off on an AMD EPYC at
    # outputs of size 2.5); a dead weight wrongly used would be O(1) off
    with torch.no_grad():
        torch.testing.assert_close(model(io["mgno_u"]), io["mgno_y"], rtol=1e-5, atol=1e-6)
    assert sorted(model.vcycles[0].obsolete_state_keys) == [
        "levels.2.pre.0.A.weight",
        "restrictions.0.A.weight",
        "restrictions.0.Pi.weight",
        "restrictions.1.A.weight",
        "restrictions.1.Pi.weight",
    ]
    v = VCycle(1, 2, ((0, 1), (1, 0), (2, 0)), bias=True, residual_restriction=True)
    state = {k.removeprefix("vcycle."): t for k, t in io.items() if k.startswith("vcycle.")}
    assert "restrictions.0.A.bias" in state and "levels.1.pre.0.A.bias" in state
    v.load_state_dict(state, strict=True)
    with torch.no_grad():
        torch.testing.assert_close(v(io["vcycle_f"]), io["vcycle_u"], rtol=1e-5, atol=1e-6)
    # a new save holds none of them; another unknown key is refused as before
    model.save_pretrained(tmp_path / "new")
    saved = load_file(str(tmp_path / "new" / "model.safetensors"))
    assert not [k for k in saved if ".Pi." in k or "restrictions.0.A" in k]
    with pytest.raises(RuntimeError, match="Unexpected key"):
        v.load_state_dict({**state, "restrictions.1.Q.weight": torch.zeros(1)}, strict=True)
    bad = tmp_path / "bad"
    model.save_pretrained(bad)
    save_file(
        {**saved, "vcycles.0.restrictions.0.Q.weight": torch.zeros(1)}, bad / "model.safetensors"
    )
    record = json.loads((bad / "config.json").read_text())
    record["weights"]["sha256"] = _sha256(bad / "model.safetensors")
    (bad / "config.json").write_text(json.dumps(record))
    with pytest.raises(
        CheckpointError, match=r"unexpected \['vcycles.0.restrictions.0.Q.weight'\]"
    ):
        sciml.load(bad)


# ---------------------------------------------------------------- odd sizes, dims, errors
def test_odd_grid_sizes_round_trip_through_the_paper_model():
    model = MgNO(MgNOConfig.darcy()).eval()
    with torch.no_grad():
        for n in (64, 85, 211):
            assert model(torch.randn(1, 1, n, n)).shape == (1, 1, n, n)
        out = model(torch.randn(1, 1, 85, 211))
    assert out.shape == (1, 1, 85, 211) and torch.isfinite(out).all()
    assert model.vcycles[0].level_sizes(85) == [85, 43, 22, 11, 6, 3]
    assert model.vcycles[0].level_sizes(211) == [211, 106, 53, 27, 14, 7]


@pytest.mark.parametrize("ndim, shape", [(1, (37,)), (3, (9, 12, 17))])
def test_vcycle_in_1d_and_3d_is_linear_with_odd_sizes(ndim, shape):
    v = VCycle(2, 3, ((1, 1), (1, 0), (2, 0)), ndim=ndim, padding="reflect").double()
    a, b = (torch.randn(2, 2, *shape, dtype=torch.float64) for _ in range(2))
    with torch.no_grad():
        out = v(a)
        assert out.shape == (2, 3, *shape)
        torch.testing.assert_close(v(2 * a - 3 * b), 2 * out - 3 * v(b))  # bias-free: linear


def test_vcycle_1d_matches_a_dense_classical_vcycle():
    """1D: the classical-weight layer equals a dense-matrix V-cycle (Dirichlet, odd grid)."""
    n, smoothing = 31, ((1, 1), (1, 1), (1, 1), (20, 0))
    v = VCycle(
        1, 1, smoothing, ndim=1, restrict_guess=False, residual_restriction=True, coarse_offset=1
    ).double()
    # unscaled stencils: the 1D coarse right-hand side is (2h / h)^2 x full weighting = [1, 2, 1]
    lap, weighting, interp = [-1.0, 2, -1], [1.0, 2, 1], [0.5, 1, 0.5, 0]
    with torch.no_grad():
        for lev, level in enumerate(v.levels):
            for s in [*level.pre, *level.post]:
                if s.A is not None:
                    s.A.weight.copy_(torch.tensor(lap, dtype=torch.float64))
                s.S.weight.copy_(torch.tensor([0.0, OMEGA / 2, 0.0], dtype=torch.float64))
            if lev < 3:
                v.restrictions[lev].A.weight.copy_(torch.tensor(lap, dtype=torch.float64))
                v.restrictions[lev].R.weight.copy_(torch.tensor(weighting, dtype=torch.float64))
                v.prolongations[lev].weight.copy_(torch.tensor(interp, dtype=torch.float64))
    sizes = v.level_sizes(n)
    A = [_lap1(s, "zeros").toarray() for s in sizes]
    R = [2 * _restrict1(s, "zeros", 1).toarray() for s in sizes[:-1]]
    P = [_prolong1(s, "zeros", 1).toarray() for s in sizes[:-1]]
    f = np.random.default_rng(2).standard_normal(n)
    reference = _reference_vcycle(f, smoothing, A, R, P)
    with torch.no_grad():
        ours = v(torch.from_numpy(f)[None, None])[0, 0].numpy()
    np.testing.assert_allclose(ours, reference, rtol=0, atol=1e-12 * np.abs(reference).max())
    exact = np.linalg.solve(A[0], f)
    assert np.linalg.norm(exact - ours) < 0.3 * np.linalg.norm(exact)


def test_bad_inputs_are_refused_with_clear_errors():
    v = VCycle(1, 4, PAPER_DARCY_SMOOTHING)
    assert v.min_size() == 33
    with pytest.raises(ValueError, match="needs at least 33 grid points"):
        v(torch.randn(1, 1, 32, 64))
    with pytest.raises(ValueError, match=r"expected f of shape \(batch, 1, 2 spatial dims\)"):
        v(torch.randn(1, 2, 64, 64))
    with pytest.raises(ValueError, match="padding"):
        VCycle(1, 1, ((1, 0),), padding="dirichlet")
    with pytest.raises(ValueError, match="pre, post"):
        VCycle(1, 1, ((1, 0, 1),))
    with pytest.raises(ValueError, match="in_channels - static_channels must be a multiple"):
        MgNOConfig(in_channels=3, out_channels=2, residual=True)
    with pytest.raises(ValueError, match=r"MgNO expected u of shape \(batch, 1"):
        MgNO(MgNOConfig(channels=4, n_layers=1, smoothing=((1, 0), (1, 0))))(torch.randn(2, 9, 9))


@pytest.mark.parametrize("smoothing", [(1, 0), 2, np.array([[1, 0], [2, 0]])])
def test_mgno_config_names_a_smoothing_that_is_not_pairs(smoothing):
    # (1, 0) failed with "object of type 'int' has no len()", the array with numpy's "truth value
    # of an array ... is ambiguous"
    with pytest.raises(TypeError, match=r"smoothing: expected a tuple of \(pre, post\) pairs"):
        MgNOConfig(smoothing=smoothing)


@pytest.mark.parametrize(
    "kwargs, error, match",
    [
        ({"ndim": True}, TypeError, "expected ndim to be an int >= 1, got True"),  # built 1D
        ({"ndim": 2.0}, TypeError, "expected ndim to be an int >= 1, got 2.0"),
        ({"kernel_size": True}, TypeError, "expected kernel_size to be an int >= 1, got True"),
        ({"kernel_size": 3.0}, TypeError, "expected kernel_size to be an int >= 1, got 3.0"),
        ({"coarse_offset": True}, TypeError, "expected coarse_offset to be an int >= 0, got True"),
    ],
)
def test_vcycle_refuses_a_bool_or_float_for_an_int_argument(kwargs, error, match):
    # the bools passed the range checks as 1 and built a V-cycle of 1 dim, a 1-point stencil or
    # the offset-1 hierarchy; the floats failed inside the convolutions' construction
    with pytest.raises(error, match=match):
        VCycle(1, 2, ((1, 0), (1, 0)), **kwargs)


@pytest.mark.parametrize("mode, smallest", [("reflect", 3), ("circular", 2)])
def test_wide_stencils_set_the_smallest_level_and_are_exact_there(mode, smallest):
    """A 5-point stencil pads by 2: a reflection needs 3 points, a wrap 2. On the smallest grid
    two smoothing steps equal a numpy correlation of the padded arrays; one point fewer is
    refused by name (a 2-point reflect level used to fail inside torch's padding)."""
    v = VCycle(1, 1, ((2, 0),), ndim=1, padding=mode, kernel_size=5).double()
    assert v.min_size() == v.min_level_size() == smallest
    s1, a, s2 = (
        w.weight.detach()[0, 0].numpy()
        for w in (v.levels[0].pre[0].S, v.levels[0].pre[1].A, v.levels[0].pre[1].S)
    )

    def conv(w, x):
        return np.correlate(np.pad(x, 2, mode="reflect" if mode == "reflect" else "wrap"), w)

    f = np.random.default_rng(0).standard_normal(smallest)
    u1 = conv(s1, f)
    expected = u1 + conv(s2, f - conv(a, u1))
    with torch.no_grad():
        ours = v(torch.from_numpy(f)[None, None])[0, 0].numpy()
    np.testing.assert_allclose(ours, expected, rtol=1e-12, atol=1e-12)
    if smallest > 2:
        with pytest.raises(ValueError, match=f"needs at least {smallest} grid points"):
            v(torch.randn(1, 1, smallest - 1, dtype=torch.float64))
    wide = VCycle(1, 1, ((1, 0), (1, 0)), ndim=1, padding=mode, kernel_size=7)
    least = wide.min_level_size()
    if mode == "reflect":
        assert wide.min_size() == 2 * least - 1  # both levels hold the stencil
    else:  # a periodic level halves exactly: 2 x 3 points; 5 would be an odd periodic level
        assert wide.min_size() == 2 * least
        with pytest.raises(ValueError, match="needs each spatial dim to be a multiple of 2"):
            wide(torch.randn(1, 1, 2 * least - 1))
    with pytest.raises(ValueError, match=f"every level keeps >= {least} points"):
        wide(torch.randn(1, 1, 2 * least - 2))
    assert wide(torch.randn(1, 1, wide.min_size())).shape == (1, 1, wide.min_size())


# ---------------------------------------------------------------- Navier-Stokes variant
def test_navier_stokes_variant_is_residual_and_rolls_out_autoregressively():
    config = MgNOConfig(
        in_channels=2,
        out_channels=1,
        channels=6,
        n_layers=2,
        smoothing=((1, 0), (1, 0), (2, 0)),
        padding="circular",
        pointwise_skip=False,
        level_norm=True,
        residual=True,
    )
    model = MgNO(config).eval()
    assert all(lev.norm is not None for lev in model.vcycles[0].levels[:-1])
    u0 = torch.randn(3, 2, 16, 16)
    with torch.no_grad():
        traj = model.rollout(u0, steps=3)
        window, manual = u0, []
        for _ in range(3):
            nxt = model(window)
            manual.append(nxt)
            window = torch.cat([window[:, 1:], nxt], dim=1)
        torch.testing.assert_close(traj, torch.stack(manual, dim=1))
        model.project.weight.zero_()  # the network part vanishes: the state is carried over
        torch.testing.assert_close(model(u0), u0[:, 1:])
    assert traj.shape == (3, 3, 1, 16, 16)
    ns = MgNOConfig.navier_stokes()
    assert (ns.padding, ns.level_norm, ns.residual, ns.pointwise_skip) == (
        "circular",
        True,
        True,
        False,
    )


def _static_pair(**kw):
    """A residual MgNO with a 2-state window and one static channel, and the same weights
    without the residual (its output is Q v alone)."""
    config = MgNOConfig(
        in_channels=3,
        out_channels=1,
        channels=4,
        n_layers=1,
        smoothing=((1, 0), (1, 0)),
        padding="circular",
        residual=True,
        **kw,
    )
    model = MgNO(config).double().eval()
    plain = MgNO(dataclasses.replace(config, residual=False)).double().eval()
    plain.load_state_dict(model.state_dict())
    return model, plain


def test_residual_rollout_with_static_channels_adds_the_latest_state_not_the_forcing():
    """rollout feeds cat([window, static]); residual=True added the last input channel, the
    forcing f, so a step was Q v + f. With static_channels=1 each step is state + Q v, the
    state being the window's newest (a hand loop over the same weights without residual)."""
    model, plain = _static_pair(static_channels=1)
    g = torch.Generator().manual_seed(0)
    u0 = torch.randn(2, 2, 8, 8, generator=g, dtype=torch.float64)
    f = 10 + torch.randn(2, 1, 8, 8, generator=g, dtype=torch.float64)  # far from the states
    with torch.no_grad():
        traj = model.rollout(u0, 3, static=f)
        window, want = u0, []
        for _ in range(3):
            nxt = window[:, -1:] + plain(torch.cat([window, f], dim=1))
            want.append(nxt)
            window = torch.cat([window[:, 1:], nxt], dim=1)
    torch.testing.assert_close(traj, torch.stack(want, dim=1), rtol=1e-12, atol=1e-12)
    # the same through Normalized (identity statistics), which hands the check to its inner model
    wrapped = Normalized.wrap(
        model,
        in_mean=torch.zeros(3),
        in_std=torch.ones(3),
        out_mean=torch.zeros(1),
        out_std=torch.ones(1),
    ).double()
    with torch.no_grad():
        torch.testing.assert_close(wrapped.rollout(u0, 3, static=f), traj)
        with pytest.raises(ValueError, match="static_channels=1 static input channels"):
            wrapped.rollout(torch.cat([u0, f], dim=1), 1)


def test_residual_rollout_refuses_a_static_count_other_than_the_configs():
    with torch.no_grad():
        u0, f = torch.randn(1, 2, 8, 8, dtype=torch.float64), torch.randn(1, 1, 8, 8).double()
        old, _ = _static_pair()  # static_channels=0: the residual would add f
        with pytest.raises(
            ValueError,
            match=r"takes static_channels=0 static input channels .* got static with 1; pass "
            r"static of 0 channels or build the model with static_channels=1",
        ):
            old.rollout(u0, 1, static=f)
        old.rollout(torch.cat([u0, f], dim=1), 1)  # three states, no static: what it is built for
        new, _ = _static_pair(static_channels=1)
        with pytest.raises(ValueError, match="got static with 0"):
            new.rollout(torch.cat([u0, f], dim=1), 1)
    # without residual a model of static_channels=0 takes static channels as before
    plain = MgNO(MgNOConfig(in_channels=3, channels=4, n_layers=1, smoothing=((1, 0),)))
    assert plain.rollout(u0.float(), 2, static=f.float()).shape == (1, 2, 1, 8, 8)


@pytest.mark.parametrize(
    "kwargs, error, match",
    [
        ({"static_channels": True}, TypeError, "static_channels: expected an int, got True"),
        ({"static_channels": 1.0}, TypeError, "static_channels: expected an int, got 1.0"),
        ({"static_channels": -1}, ValueError, "static_channels must be >= 0 .* got -1"),
        ({"static_channels": 3}, ValueError, "below in_channels=3, got 3"),
        (
            {"static_channels": 0, "out_channels": 2, "residual": True},
            ValueError,
            r"in_channels - static_channels must be a multiple of it, got 3 - 0 = 3",
        ),
    ],
)
def test_mgno_config_checks_static_channels(kwargs, error, match):
    with pytest.raises(error, match=match):
        MgNOConfig(**{"in_channels": 3, **kwargs})
    # two states of two channels and one static channel divide
    assert MgNOConfig(in_channels=5, out_channels=2, static_channels=1, residual=True)


def test_static_channels_round_trip_and_old_checkpoints_load_without_it(tmp_path):
    import sciml

    model, _ = _static_pair(static_channels=1)
    model.save_pretrained(tmp_path / "m")
    assert (
        json.loads((tmp_path / "m" / "config.json").read_text())["config"]["static_channels"] == 1
    )
    back = sciml.load(tmp_path / "m")
    assert back.config == model.config
    u = torch.randn(1, 3, 8, 8, dtype=torch.float64)
    with torch.no_grad():
        torch.testing.assert_close(back(u), model(u), rtol=0, atol=0)
    # a config.json written before the field (tests/data) loads as static_channels = 0
    assert "static_channels" not in (DEAD_WEIGHTS / "mgno" / "config.json").read_text()
    assert sciml.load(DEAD_WEIGHTS / "mgno").config.static_channels == 0


# ---------------------------------------------------------------- learning
def test_tiny_mgno_learns_the_1d_poisson_solution_operator():
    """-u'' = f on (0, 1), u(0) = u(1) = 0, 63 interior points: the paper's recipe (H1 loss,
    one-cycle schedule, normalisation inside the model) through the common Trainer."""
    from sciml.train import LpLoss, Trainer

    n = 63
    h = 1 / (n + 1)
    x = (np.arange(n) + 1) * h
    rng = np.random.default_rng(0)
    k = np.arange(1, 9)
    coef = rng.standard_normal((240, k.size)) / k**1.5
    f = coef @ np.sin(np.pi * np.outer(k, x)) * 50  # (240, n) smooth right-hand sides
    lap = (
        np.diag(2 * np.ones(n)) - np.diag(np.ones(n - 1), 1) - np.diag(np.ones(n - 1), -1)
    ) / h**2
    u = np.linalg.solve(lap, f.T).T
    fs = torch.tensor(f, dtype=torch.float32)[:, None]
    us = torch.tensor(u, dtype=torch.float32)[:, None]
    train = [{"input": fs[i], "target": us[i]} for i in range(100)]
    test_in, test_out = fs[200:], us[200:]

    inner = MgNO(
        MgNOConfig(channels=8, n_layers=1, ndim=1, smoothing=((1, 0), (1, 0), (1, 0), (2, 0)))
    )
    model = Normalized.wrap(
        inner,
        in_mean=fs[:100].mean().reshape(1),
        in_std=fs[:100].std().reshape(1),
        out_mean=us[:100].mean().reshape(1),
        out_std=us[:100].std().reshape(1),
    )
    rel = LpLoss()
    with torch.no_grad():
        before = rel(model(test_in), test_out).item()
    recipe = darcy_recipe(epochs=30, batch_size=20, lr=1e-2)
    Trainer(model, train, loss=recipe.loss, config=recipe.config, progress=False).fit()
    with torch.no_grad():
        after = rel(model(test_in), test_out).item()
    # measured: 0.88 before, 0.11 after (150 steps)
    assert before > 0.5
    assert after < 0.2, (before, after)


def test_torch_func_transforms_match_rowwise_autograd_and_the_loop():
    """docs/spectral.md lists MgNO as running under jacrev, jacfwd and vmap: on the
    Navier-Stokes variant (circular padding, biases, level norms, residual output) the Jacobian
    equals row-by-row autograd and vmap over samples equals the loop."""
    from torch.func import jacfwd, jacrev, vmap

    torch.manual_seed(0)
    config = MgNOConfig.navier_stokes(in_channels=2, out_channels=1)
    model = MgNO(dataclasses.replace(config, channels=3, n_layers=2, smoothing=((1, 1), (1, 0))))
    model = model.double().eval()

    def f(v):
        return model(v[None])[0]

    v = torch.randn(2, 6, 4, dtype=torch.float64)
    want = _rowwise_jacobian(f, v)
    torch.testing.assert_close(jacrev(f)(v), want, rtol=1e-12, atol=1e-14)
    torch.testing.assert_close(jacfwd(f)(v), want, rtol=1e-12, atol=1e-14)
    u = torch.randn(3, 2, 6, 4, dtype=torch.float64)
    with torch.no_grad():
        torch.testing.assert_close(
            vmap(f)(u), torch.stack([f(ui) for ui in u]), rtol=1e-12, atol=1e-14
        )


# ---------------------------------------------------------------- restriction / prolongation
def _tap_matrix(n, mode, offset, k, taps, restrict):
    """The 1D matrix of one tap ``k`` of a restriction (``taps = 3``: coarse ``i`` reads fine
    ``2 i + offset - 1 + k``, ghosts by the padding mode) or prolongation (``taps = 4``: fine
    ``2 i + offset - 1 + k`` receives coarse ``i``, coarse ghosts ``i = -1, m`` by the mode)."""
    m = _coarse(n, offset)
    if restrict:
        M = np.zeros((m, n))
        for i in range(m):
            g = _ghost(2 * i + offset - 1 + k, n, mode)
            if g is not None:
                M[i, g] += 1
        return M
    M = np.zeros((n, m))
    for i in range(-1, m + 1):
        src, j = _ghost(i, m, mode), 2 * i + offset - 1 + k
        if src is not None and 0 <= j < n:
            M[j, src] += 1
    return M


@pytest.mark.parametrize("mode", ["zeros", "circular", "reflect", "replicate"])
@pytest.mark.parametrize("offset", [0, 1])
def test_restriction_and_prolongation_are_their_hand_built_matrices(mode, offset):
    """R (stride-2 3 x 3 convolution) and P (the padded, cropped 4 x 4 transposed convolution)
    with random, non-separable weights equal sum_k w[k1, k2] kron(M_k1, M_k2) of the 1D
    one-tap matrices built from the module docstring's index rules, on every grid of 3 to 12
    points per dim (odd and even, unequal dims), each padding mode and coarse offset, float64."""
    rng = np.random.default_rng(0)
    for n1 in range(3, 13):
        n2 = n1 + 3
        m1, m2 = _coarse(n1, offset), _coarse(n2, offset)
        if min(m1, m2) < 2:  # every level keeps 2 points (VCycle.min_level_size)
            continue
        if mode == "circular" and offset == 1:  # not a periodic hierarchy: refused
            with pytest.raises(ValueError, match="padding='circular'.*needs coarse_offset=0"):
                VCycle(1, 1, ((1, 0), (1, 0)), padding=mode, coarse_offset=offset)
            continue
        v = VCycle(1, 1, ((1, 0), (1, 0)), padding=mode, coarse_offset=offset).double()
        wr, wp = rng.standard_normal((3, 3)), rng.standard_normal((4, 4))
        with torch.no_grad():
            v.restrictions[0].R.weight.copy_(torch.from_numpy(wr)[None, None])
            v.prolongations[0].weight.copy_(torch.from_numpy(wp)[None, None])
            f = torch.randn(1, 1, n1, n2, dtype=torch.float64)
            c = torch.randn(1, 1, m1, m2, dtype=torch.float64)
            r = v.restrictions[0].R(f)[0, 0].numpy().ravel()
            p = v.prolongations[0](c, (n1, n2))[0, 0].numpy().ravel()
        R = sum(
            wr[a, b] * np.kron(_tap_matrix(n1, mode, offset, a, 3, True), _tap_matrix(n2, mode, offset, b, 3, True))
            for a in range(3) for b in range(3)
        )  # fmt: skip
        P = sum(
            wp[a, b] * np.kron(_tap_matrix(n1, mode, offset, a, 4, False), _tap_matrix(n2, mode, offset, b, 4, False))
            for a in range(4) for b in range(4)
        )  # fmt: skip
        np.testing.assert_allclose(r, R @ f.numpy().ravel(), rtol=0, atol=1e-12)
        np.testing.assert_allclose(p, P @ c.numpy().ravel(), rtol=0, atol=1e-12)


@pytest.mark.parametrize("mode", ["zeros", "circular", "reflect", "replicate"])
def test_vcycle_gradients_pass_gradcheck_in_float64(mode):
    """float64 gradcheck of a V-cycle with every optional piece (biases, learned coarse guess,
    residual restriction, level norm, post-smoothing) with respect to f and the prolongation
    weight, on odd and even grids, both coarse offsets."""
    torch.manual_seed(0)
    # a periodic hierarchy takes offset 0 and even grids (the others are refused)
    grids = ((0, (8, 6)),) if mode == "circular" else ((0, (9, 6)), (1, (11, 7)))
    for offset, shape in grids:
        v = VCycle(
            2, 2, ((1, 1), (1, 0)), padding=mode, coarse_offset=offset, bias=True,
            residual_restriction=True, level_norm=True,
        ).double()  # fmt: skip
        f = torch.randn(1, 2, *shape, dtype=torch.float64, requires_grad=True)
        w = v.prolongations[0].weight.detach().clone().requires_grad_(True)

        def run(f, w, v=v):
            return torch.func.functional_call(v, {"prolongations.0.weight": w}, (f,))

        assert torch.autograd.gradcheck(run, (f, w))


# ---------------------------------------------------------------- periodic hierarchy
def _periodic_restriction(n: int, w: np.ndarray) -> np.ndarray:
    """Every other point of a periodic grid: coarse ``i`` reads fine ``(2 i + k - 1) mod n``."""
    R = np.zeros((n // 2, n))
    for i in range(n // 2):
        for k in range(3):
            R[i, (2 * i + k - 1) % n] += w[k]
    return R


def _periodic_prolongation(n: int, w: np.ndarray) -> np.ndarray:
    """Fine ``(2 i + k - 1) mod n`` receives ``w[k]`` times coarse ``i``."""
    P = np.zeros((n, n // 2))
    for i in range(n // 2):
        for k in range(4):
            P[(2 * i + k - 1) % n, i] += w[k]
    return P


def _circulant(n: int, w: np.ndarray) -> np.ndarray:
    return sum(w[k] * np.roll(np.eye(n), k - 1, axis=1) for k in range(3))  # x_{i + k - 1}


def test_circular_hierarchy_equals_hand_built_periodic_matrices_and_refuses_the_rest():
    """A 3-level circular V-cycle with random weights (pre- and post-smoothing, learned coarse
    guess Pi, float64) equals a NumPy V-cycle built from periodic matrices: coarse grids of
    n / 2 points, R, Pi and P indexed mod n, on n = 8, 12, 16, 20. Combinations that are not a
    periodic hierarchy are refused by name: coarse_offset=1 (it gave 8 -> 3 coarse points, the
    wrap point dropped) and a coarsened level of odd size (10 -> 5 -> 3: coarse points 0 and 4
    of the 5-point level are neighbours across the wrap); min_size is the smallest multiple of
    4. The old code accepted all of them (min_size was 5)."""
    torch.manual_seed(0)
    v = VCycle(1, 1, ((1, 1), (1, 1), (2, 0)), ndim=1, padding="circular").double()
    assert v.min_size() == 8
    w = lambda conv: conv.weight.detach()[0, 0].numpy()  # noqa: E731
    for n in (8, 12, 16, 20):
        assert v.level_sizes(n) == [n, n // 2, n // 4]
        f = np.random.default_rng(n).standard_normal(n)
        sizes, us, fs, u, g = v.level_sizes(n), [], [], None, f
        for lev, level in enumerate(v.levels):
            m = sizes[lev]
            for s in level.pre:
                r = g if u is None else g - _circulant(m, w(s.A)) @ u
                u = _circulant(m, w(s.S)) @ r + (0 if u is None else u)
            us.append(u)
            fs.append(g)
            if lev < 2:
                r = v.restrictions[lev]
                u = _periodic_restriction(m, w(r.Pi)) @ u
                g = _periodic_restriction(m, w(r.R)) @ g
        u = us[-1]
        for lev in (1, 0):
            m, P = sizes[lev], _periodic_prolongation(sizes[lev], w(v.prolongations[lev]))
            u = us[lev] + P @ u
            for s in v.levels[lev].post:
                u = u + _circulant(m, w(s.S)) @ (fs[lev] - _circulant(m, w(s.A)) @ u)
        with torch.no_grad():
            ours = v(torch.from_numpy(f)[None, None])[0, 0].numpy()
        np.testing.assert_allclose(ours, u, rtol=0, atol=1e-12 * np.abs(u).max())
    for n in (10, 18, 9):  # a 5-, 9- or the 9-point level itself is odd
        with pytest.raises(ValueError, match=rf"padding='circular'.*multiple of 4.*got n={n}"):
            v(torch.randn(1, 1, n, dtype=torch.float64))
    two_d = VCycle(1, 1, ((1, 0), (2, 0)), padding="circular")
    with pytest.raises(ValueError, match=r"multiple of 2.*got n=7 in spatial shape \(8, 7\)"):
        two_d(torch.randn(1, 1, 8, 7))
    with pytest.raises(ValueError, match="padding='circular'.*needs coarse_offset=0.*n=8 gives 3"):
        VCycle(1, 1, ((1, 0), (2, 0)), padding="circular", coarse_offset=1)
    VCycle(1, 1, ((2, 0),), padding="circular", coarse_offset=1)  # one level: nothing coarsened
    assert VCycle(1, 1, ((2, 0),), ndim=1, padding="circular")(torch.randn(1, 1, 5)).shape[-1] == 5
