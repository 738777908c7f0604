"""Exact grid symmetries: composition, the Navier-Stokes group checked against the solver,
augmentation pairs that stay solutions, group averaging."""

from fractions import Fraction

import numpy as np
import pytest
import torch

from sciml.data.generators import fno_forcing, fno_forcing_symmetries, solve_navier_stokes
from sciml.data.symmetry import (
    Augmented,
    GridSymmetry,
    RandomSymmetry,
    generate_group,
    group_average,
)


def _smooth_field(n: int, batch: int, seed: int) -> torch.Tensor:
    """Band-limited random vorticity (|k| < 5) of O(10) amplitude: a short solve is nonlinear."""
    g = torch.Generator().manual_seed(seed)
    w = torch.randn(batch, n, n, dtype=torch.float64, generator=g)
    k2 = torch.fft.fftfreq(n, 1 / n)[:, None] ** 2 + torch.fft.rfftfreq(n, 1 / n)[None, :] ** 2
    return torch.fft.irfft2(torch.fft.rfft2(w) * (k2 < 25), s=(n, n)) * 10


def _evolve(w: torch.Tensor) -> torch.Tensor:
    f = torch.as_tensor(fno_forcing(w.shape[-1]))
    return solve_navier_stokes(w, f, nu=1e-3, T=1.0, dt=1e-2, record_steps=1)[:, -1]


def test_action_matches_the_formula_and_composition_is_sequential_application():
    n = 8
    u = torch.randn(2, n, n, dtype=torch.float64)
    g = GridSymmetry((-2, 1), (Fraction(1, 4), Fraction(3, 8)), sign=-1)
    # (g u)(x0, x1) = -u(y) with y_1 = -x0 + 3/8, y_0 = x1 + 1/4 (axes[0] = -2, axes[1] = 1)
    i0, i1 = 3, 5
    expected = -u[:, (i1 + 2) % n, (-i0 + 3) % n]
    assert torch.equal(g(u)[:, i0, i1], expected)
    gens = [
        g,
        GridSymmetry((2, 1), (0, Fraction(1, 8))),
        GridSymmetry((-1, 2), (Fraction(1, 2), 0)),
    ]
    for a in gens:
        for b in gens:
            assert torch.equal((a * b)(u), a(b(u)))
    v = torch.randn(3, 6, 6, 6, dtype=torch.float64)
    a = GridSymmetry((3, -1, 2), (Fraction(1, 3), 0, Fraction(1, 2)), sign=-1)
    b = GridSymmetry((-2, 3, 1), (0, Fraction(1, 6), 0))
    assert torch.equal((a * b)(v), a(b(v)))
    # A generated group is closed and each element has its inverse in it.
    group = generate_group(
        [
            GridSymmetry((2, -1, 3), (0, Fraction(1, 2), 0), sign=-1),
            GridSymmetry((-2, 3, 1), (0, 0, 0)),
        ]
    )
    assert 2 < len(group) <= 1024
    ident = GridSymmetry.identity(3)
    assert group[0] == ident
    assert all(any(h * x == ident for h in group) for x in group)
    assert all(x * y in set(group) for x in group for y in group)


def test_navier_stokes_group_commutes_with_the_solver_and_fixes_the_forcing():
    elements, directions = fno_forcing_symmetries()
    assert len(elements) == 16 and directions == ((1, -1),)
    n = 32
    f = torch.as_tensor(fno_forcing(n))
    w0 = _smooth_field(n, 3, seed=0)
    wt = _evolve(w0)
    assert float((wt - w0).norm() / w0.norm()) > 0.1  # the solve moves the field
    for g in elements:
        assert float((g(f) - f).abs().max()) < 1e-14
        assert float((_evolve(g(w0)) - g(wt)).norm() / wt.norm()) < 1e-12
    shift = GridSymmetry.translation((Fraction(5, n), Fraction(-5, n)))
    assert float((_evolve(shift(w0)) - shift(wt)).norm() / wt.norm()) < 1e-12
    # The test can fail: a reflection of x alone is not a symmetry of this forcing.
    flip = GridSymmetry((-1, 2), (0, 0))
    assert float((_evolve(flip(w0)) - flip(wt)).norm() / wt.norm()) > 0.1


def test_random_symmetry_pairs_are_solutions_and_samples_get_their_own_maps():
    elements, directions = fno_forcing_symmetries()
    n = 32
    w0 = _smooth_field(n, 6, seed=1)
    wt = _evolve(w0)
    aug = RandomSymmetry(
        elements, shift_directions=directions, generator=torch.Generator().manual_seed(3)
    )
    x, y = aug(w0[:, None], wt[:, None])
    assert float((_evolve(x[:, 0]) - y[:, 0]).norm() / y.norm()) < 1e-12
    moved = [not torch.equal(x[i, 0], w0[i]) for i in range(6)]
    assert sum(moved) >= 4  # 16 maps x 32 shifts: the identity is drawn with probability 1/512
    again = RandomSymmetry(
        elements, shift_directions=directions, generator=torch.Generator().manual_seed(3)
    )
    assert torch.equal(again(w0[:, None], wt[:, None])[0], x)


def test_augmented_dataset_items_stay_solutions_and_other_fields_pass_through():
    elements, directions = fno_forcing_symmetries()
    w0 = _smooth_field(32, 4, seed=2)
    wt = _evolve(w0)
    items = [{"input": w0[i, None], "target": wt[i, None], "nu": 1e-3} for i in range(4)]
    aug = RandomSymmetry(
        elements, shift_directions=directions, generator=torch.Generator().manual_seed(0)
    )
    data = Augmented(items, aug)
    assert len(data) == 4
    got = [data[i] for i in range(4)]
    x = torch.stack([g["input"][0] for g in got])
    y = torch.stack([g["target"][0] for g in got])
    assert float((_evolve(x) - y).norm() / y.norm()) < 1e-12
    assert sum(not torch.equal(x[i], w0[i]) for i in range(4)) >= 3
    assert all(g["nu"] == 1e-3 for g in got) and torch.equal(items[0]["input"][0], w0[0])
    with pytest.raises(KeyError, match="no field"):
        Augmented([{"u": w0[0]}], aug)[0]


@torch.no_grad()
def test_group_average_makes_any_model_exactly_equivariant():
    elements, _ = fno_forcing_symmetries()
    torch.manual_seed(0)
    n = 16
    lin = torch.nn.Linear(n * n, n * n, dtype=torch.float64)

    def model(u):  # (b, 1, n, n) -> (b, 1, n, n), no symmetry at all
        return torch.tanh(lin(u.flatten(1))).view_as(u)

    u = torch.randn(2, 1, n, n, dtype=torch.float64)
    avg = group_average(model, u, elements)
    for g in elements[1:]:
        assert float((model(g(u)) - g(model(u))).norm() / model(u).norm()) > 0.1
        assert float((group_average(model, g(u), elements) - g(avg)).abs().max()) < 1e-13
    assert torch.equal(group_average(model, u, elements[:1]), model(u))


def test_bad_input_raises_with_what_was_expected():
    with pytest.raises(ValueError, match="signed permutation"):
        GridSymmetry((1, 1), (0, 0))
    with pytest.raises(ValueError, match="one per axis"):
        GridSymmetry((1, 2), (0,))
    with pytest.raises(ValueError, match="multiple of the grid spacing"):
        GridSymmetry.translation((Fraction(1, 3), 0))(torch.zeros(8, 8))
    with pytest.raises(ValueError, match="same size"):
        GridSymmetry((2, 1), (0, 0))(torch.zeros(8, 6))
    elements, directions = fno_forcing_symmetries()
    with pytest.raises(ValueError, match="one size N"):
        RandomSymmetry(elements[:1], shift_directions=directions)(torch.zeros(2, 1, 8, 6))
    with pytest.raises(ValueError, match="batch 2"):
        RandomSymmetry(elements)(torch.zeros(2, 1, 8, 8), torch.zeros(3, 1, 8, 8))
    with pytest.raises(ValueError, match="more than 1024"):
        generate_group([GridSymmetry.translation((Fraction(1, 2048), 0))])
    with pytest.raises(ValueError, match="no inverse"):
        group_average(lambda u: u, torch.zeros(1, 1, 8, 8), elements[1:2])
    with pytest.raises(ValueError, match="elements is empty"):
        group_average(lambda u: u, torch.zeros(1, 1, 8, 8), [])


def _worker_draws(n_workers: int) -> list[torch.Tensor]:
    elements, directions = fno_forcing_symmetries()
    aug = RandomSymmetry(
        elements, shift_directions=directions, generator=torch.Generator().manual_seed(3)
    )
    field = torch.arange(16.0).reshape(1, 4, 4)  # no symmetry of the group fixes it
    data = Augmented([{"input": field, "target": field}] * 8, aug)
    torch.manual_seed(0)
    loader = torch.utils.data.DataLoader(data, batch_size=1, num_workers=n_workers)
    return [batch["input"][0] for batch in loader]


def test_augmented_workers_draw_different_maps():
    """Each DataLoader worker holds a copy of the generator; without reseeding per worker, the
    workers would apply the same sequence of maps (items 0 and 1, 2 and 3, ... identical)."""
    out = _worker_draws(2)
    pairs = [torch.equal(out[2 * k], out[2 * k + 1]) for k in range(4)]
    assert not all(pairs)
    # in one process the draws follow the generator as before
    single = _worker_draws(0)
    assert len({tuple(x.flatten().tolist()) for x in single}) > 1


def test_random_symmetry_pickles_with_its_generator_state():
    """A RandomSymmetry holding a torch.Generator killed spawn DataLoader workers: the generator
    went through shared memory ("unable to resize file"). It pickles as bytes, and the copy
    draws what the original draws next."""
    import pickle
    from multiprocessing.reduction import ForkingPickler

    import torch.multiprocessing  # noqa: F401 - registers torch's reductions (shared memory)

    elements, directions = fno_forcing_symmetries()
    aug = RandomSymmetry(
        elements, shift_directions=directions, generator=torch.Generator().manual_seed(3)
    )
    u = torch.arange(2 * 16.0).reshape(2, 1, 4, 4)
    aug(u)  # advance the stream
    for dumps in (pickle.dumps, ForkingPickler.dumps):
        copy = pickle.loads(dumps(aug))
        assert torch.equal(copy(u)[0], aug(u)[0])
        assert torch.equal(copy(u)[0], aug(u)[0])
    assert pickle.loads(pickle.dumps(RandomSymmetry(elements))).generator is None
    # what a spawn worker receives refers to no shared-memory storage (the fd did not survive)
    assert b"rebuild_storage" not in bytes(ForkingPickler.dumps(aug))


@pytest.mark.slow
def test_augmented_data_with_a_generator_loads_in_spawn_workers():
    elements, directions = fno_forcing_symmetries()
    aug = RandomSymmetry(
        elements, shift_directions=directions, generator=torch.Generator().manual_seed(3)
    )
    field = torch.arange(16.0).reshape(1, 4, 4)
    data = Augmented([{"input": field, "target": -field}] * 4, aug)
    loader = torch.utils.data.DataLoader(
        data, batch_size=2, num_workers=2, multiprocessing_context="spawn"
    )
    batches = list(loader)
    assert sum(len(b["input"]) for b in batches) == 4
    for b in batches:  # input and target moved by the same map
        torch.testing.assert_close(b["target"], -b["input"], rtol=0, atol=0)


# -- vector fields ----------------------------------------------------------------------------
TWO_PI = 2 * torch.pi


def _grid(n: int) -> tuple[torch.Tensor, torch.Tensor]:
    x = torch.arange(n, dtype=torch.float64) / n
    return torch.meshgrid(x, x, indexing="ij")


def _point_map(g: GridSymmetry, x0, x1):
    """The definition y_p = sign(axes[a]) x_a + b_p, evaluated at the points (no grid indices)."""
    x = (x0, x1)
    y = [None, None]
    for a, ax in enumerate(g.axes):
        p = abs(ax) - 1
        y[p] = (1 if ax > 0 else -1) * x[a] + float(g.shift[p])
    return y


def _psi(x, y):
    """A stream function with a few Fourier modes: v = (d psi/dy, -d psi/dx) is divergence-free."""
    return (
        torch.sin(TWO_PI * x) * torch.cos(2 * TWO_PI * y)
        + 0.3 * torch.cos(TWO_PI * (x + 2 * y))
        + 0.2 * torch.sin(TWO_PI * (3 * x - y))
    )


def _d(f: torch.Tensor, axis: int) -> torch.Tensor:
    """Spectral derivative on the periodic unit grid (exact for these few modes)."""
    n = f.shape[axis]
    k = torch.fft.fftfreq(n, 1 / n, dtype=torch.float64) * TWO_PI
    shape = [1] * f.ndim
    shape[axis] = n
    return torch.fft.ifft(torch.fft.fft(f, dim=axis) * 1j * k.view(shape), dim=axis).real


def _velocity(psi: torch.Tensor) -> torch.Tensor:  # (..., 2, n, n)
    return torch.stack([_d(psi, -1), -_d(psi, -2)], dim=-3)


def _div(v: torch.Tensor) -> torch.Tensor:
    return _d(v[..., 0, :, :], -2) + _d(v[..., 1, :, :], -1)


def _curl(v: torch.Tensor) -> torch.Tensor:
    return _d(v[..., 1, :, :], -2) - _d(v[..., 0, :, :], -1)


def test_vector_components_are_swapped_and_negated_as_hand_computed():
    """GridSymmetry moved u_x and u_y as two scalars: a transpose left u_x in the x slot and a
    reflection of x kept its sign. With vectors=[(0, 1)] the closed forms hold exactly."""
    n = 16
    x0, x1 = _grid(n)

    def f(a, b):
        return torch.sin(TWO_PI * a) * torch.cos(2 * TWO_PI * b) + 0.5

    def h(a, b):
        return 0.7 * torch.cos(TWO_PI * (a - b)) + 0.25 * torch.sin(3 * TWO_PI * b)

    def p(a, b):
        return torch.cos(TWO_PI * (2 * a + b))

    v = torch.stack([f(x0, x1), h(x0, x1), p(x0, x1)])  # channels (u_x, u_y, p)
    q = 0.25
    cases = {
        # transpose (x, y) -> (y, x): u_x(x, y) <- u_y(y, x)
        GridSymmetry((2, 1), (0, 0)): (h(x1, x0), f(x1, x0), p(x1, x0)),
        # reflection x -> -x: u_x changes sign
        GridSymmetry((-1, 2), (0, 0)): (-f(-x0, x1), h(-x0, x1), p(-x0, x1)),
        # rotation by 90 degrees and a shift: y = (x1 + 1/4, -x0), v~ = (-u_y, u_x)
        GridSymmetry((-2, 1), (Fraction(1, 4), 0)): (
            -h(x1 + q, -x0),
            f(x1 + q, -x0),
            p(x1 + q, -x0),
        ),
        # sign -1 multiplies the scalar channel only
        GridSymmetry((2, 1), (0, 0), sign=-1): (h(x1, x0), f(x1, x0), -p(x1, x0)),
    }
    for g, expected in cases.items():
        got = g(v, vectors=[(0, 1)])
        torch.testing.assert_close(got, torch.stack(expected), rtol=0, atol=1e-12)
        # a batch axis in front and negative channel indices give the same
        torch.testing.assert_close(g(v[None], vectors=[(-3, -2)])[0], got, rtol=0, atol=0)
        # without vectors every channel is a scalar, as before (documented)
        assert torch.equal(g(v), torch.stack([g(c) for c in v]))
    assert not torch.allclose(GridSymmetry((2, 1), (0, 0))(v), v)  # the cases move the field


def test_transformed_velocity_is_the_velocity_of_the_transformed_stream_function():
    """For every map of the Navier-Stokes group and a few more, g(v) equals the velocity of the
    transformed stream function det(A) psi(A x + b), evaluated analytically at the mapped points
    and differentiated spectrally; it stays divergence-free, and its vorticity is g(vorticity)
    with the group's sign (det A: vorticity is a pseudo-scalar). Moving the components as
    scalars breaks all three."""
    n = 32
    x0, x1 = _grid(n)
    v = _velocity(_psi(x0, x1))
    scale = float(v.abs().max())
    assert float(_div(v).abs().max()) < 1e-12 * scale * n
    elements, _ = fno_forcing_symmetries()
    extra = [
        GridSymmetry((2, 1), (0, 0)),
        GridSymmetry((-1, 2), (Fraction(3, 32), 0)),
        GridSymmetry((-2, 1), (Fraction(1, 4), Fraction(5, 32))),
    ]
    for g in elements + extra:
        det = round(float(torch.det(torch.tensor(g.matrix(), dtype=torch.float64))))
        reference = _velocity(det * _psi(*_point_map(g, x0, x1)))
        got = g(v, vectors=[(0, 1)])
        torch.testing.assert_close(got, reference, rtol=0, atol=1e-11 * scale)
        assert float(_div(got).abs().max()) < 1e-11 * scale * n
        if g in elements:
            assert g.sign == det
            torch.testing.assert_close(_curl(got), g(_curl(v)), rtol=0, atol=1e-10 * scale * n)
        if any(a != i + 1 for i, a in enumerate(g.axes)):  # not a pure translation
            wrong = g(v)  # components moved as scalars
            assert float((wrong - reference).abs().max()) > 0.1 * scale
    # the vector action composes like the scalar one: (a * b)(v) = a(b(v))
    for a in extra + elements[:4]:
        for b in extra + elements[:4]:
            torch.testing.assert_close(
                (a * b)(v, vectors=[(0, 1)]), a(b(v, vectors=[(0, 1)]), vectors=[(0, 1)])
            )


def test_random_symmetry_augmented_and_group_average_move_vectors():
    n = 16
    x0, x1 = _grid(n)
    v = _velocity(_psi(x0, x1))  # (2, n, n)
    scale = float(v.abs().max())
    elements, directions = fno_forcing_symmetries()
    p = torch.cos(TWO_PI * x0)[None]
    items = [{"input": torch.cat([v, p]), "target": 2 * v} for _ in range(6)]
    aug = RandomSymmetry(
        elements, shift_directions=directions, generator=torch.Generator().manual_seed(0)
    )
    data = Augmented(items, aug, vectors={"input": [(0, 1)], "target": [(0, 1)]})
    moved = 0
    for k in range(6):
        item = data[k]
        x, y = item["input"], item["target"]
        torch.testing.assert_close(y, 2 * x[:2], rtol=0, atol=0)  # one map for both
        assert float(_div(x[:2]).abs().max()) < 1e-11 * scale * n
        # the velocity and the scalar were moved by the same point map: find it
        g = next(
            g
            for g in generate_group(elements + [GridSymmetry.translation((1 / n, -1 / n))])
            if torch.allclose(g(p), x[2:], atol=1e-12)
            and torch.allclose(g(v, vectors=[(0, 1)]), x[:2], atol=1e-12)
        )
        moved += g != GridSymmetry.identity(2)
    assert moved >= 4
    plain = Augmented(items, RandomSymmetry(elements[1:2]))  # the diagonal reflection
    assert float(_div(plain[0]["input"][:2]).abs().max()) > 0.1 * scale  # scalars: not div-free

    # group averaging with vectors: exactly equivariant under the vector action
    torch.manual_seed(0)
    lin = torch.nn.Linear(2 * n * n, 2 * n * n, dtype=torch.float64)

    def model(u):
        return torch.tanh(lin(u.flatten(1))).view_as(u)

    u = v[None]
    avg = group_average(model, u, elements, vectors=[(0, 1)])
    for g in elements[1:]:
        g_avg = group_average(model, g(u, vectors=[(0, 1)]), elements, vectors=[(0, 1)])
        torch.testing.assert_close(g_avg, g(avg, vectors=[(0, 1)]), rtol=0, atol=1e-13)


def test_vectors_bad_input_raises_with_what_was_expected():
    g = GridSymmetry((2, 1), (0, 0))
    u = torch.zeros(3, 4, 4)
    with pytest.raises(ValueError, match=r"name the 2 channels \(of 3\).*got \[0\]"):
        g(u, vectors=[(0,)])
    with pytest.raises(ValueError, match=r"got \[0, 3\]"):
        g(u, vectors=[(0, 3)])
    with pytest.raises(ValueError, match="uses a channel twice"):
        g(u, vectors=[(0, 1), (1, 2)])
    with pytest.raises(ValueError, match="needs a channel axis"):
        g(torch.zeros(4, 4), vectors=[(0, 1)])
    elements, _ = fno_forcing_symmetries()
    with pytest.raises(ValueError, match=r"one entry per tensor \(2\), got 1"):
        RandomSymmetry(elements)(u[None], u[None], vectors=[[(0, 1)]])
    with pytest.raises(ValueError, match=r"vectors names \['x'\].*expected a subset of keys"):
        Augmented([], RandomSymmetry(elements), vectors={"x": [(0, 1)]})


def test_vectors_given_flat_or_with_non_integer_channels_is_refused_with_the_nesting():
    """``vectors=(0, 1)`` (one vector's channels without the enclosing list, or, for
    RandomSymmetry and one tensor, ``[(0, 1)]`` without the per-tensor list) raised
    ``TypeError: 'int' object is not iterable`` from inside; a float channel was truncated. Now
    a ValueError says what was expected, and numpy integers still name channels."""
    g = GridSymmetry((2, 1), (0, 0))  # the transpose
    u = torch.arange(2 * 3 * 3, dtype=torch.float64).reshape(2, 3, 3)  # (u_x, u_y) on 3 x 3
    # hand-computed: transposed grid, components swapped (A^T v(A x), A the swap)
    expected = torch.stack([u[1].T, u[0].T])
    torch.testing.assert_close(g(u, vectors=[(0, 1)]), expected, rtol=0, atol=0)
    torch.testing.assert_close(g(u, vectors=[(np.int64(0), np.int64(1))]), expected, rtol=0, atol=0)
    elements, _ = fno_forcing_symmetries()
    with pytest.raises(ValueError, match=r"expected a list of channel groups.*\[\(0, 1\)\]"):
        g(u, vectors=(0, 1))
    with pytest.raises(ValueError, match=r"integer channel indices"):
        g(u, vectors=[(0.0, 1.0)])
    with pytest.raises(ValueError, match=r"vectors\[0\] \(one list of channel groups per tensor"):
        RandomSymmetry(elements)(u[None], vectors=[(0, 1)])
    with pytest.raises(ValueError, match=r"vectors\['input'\]: expected a list of channel"):
        Augmented([], RandomSymmetry(elements), vectors={"input": (0, 1)})
    with pytest.raises(ValueError, match=r"expected a list of channel groups"):
        group_average(lambda v: v, u[None], elements, vectors=(0, 1))


def test_vectors_as_an_integer_array_or_tensor_name_the_channels():
    """``vectors=np.array([[0, 1]])`` (or a tensor) raised 'the truth value of an array ... is
    ambiguous' from ``if not vectors``; it is read as the list of channel groups it holds."""
    g = GridSymmetry((-2, 1), (0, 0))  # x' = -y, y' = x (a quarter turn)
    u = torch.arange(2 * 4 * 4, dtype=torch.float64).reshape(2, 4, 4)  # (u_x, u_y) on 4 x 4
    # hand-computed A^T v(A x): axis 0 reads input axis 1 reversed, axis 1 reads axis 0, and
    # component 0 is -u_y, component 1 is u_x, each moved like a scalar
    rev = (-torch.arange(4)) % 4
    moved = torch.stack([c.T[rev, :] for c in u])  # out[i, j] = c[j, -i mod 4], each channel
    expected = torch.stack([-moved[1], moved[0]])
    torch.testing.assert_close(g(u, vectors=[(0, 1)]), expected, rtol=0, atol=0)
    for vectors in (np.array([[0, 1]]), torch.tensor([[0, 1]])):
        torch.testing.assert_close(g(u, vectors=vectors), expected, rtol=0, atol=0)
    torch.testing.assert_close(g(u, vectors=np.zeros((0, 2), dtype=int)), moved, rtol=0, atol=0)


def _admits(hint, value) -> bool:
    """Whether ``value`` has the type ``hint`` (the forms the symmetry hints use), checked
    structurally as a type checker reads them: an ndarray is no Sequence, an np.int64 no int."""
    import collections.abc
    import types
    import typing

    origin, args = typing.get_origin(hint), typing.get_args(hint)
    if origin in (typing.Union, types.UnionType):
        return any(_admits(a, value) for a in args)
    if hint is type(None):
        return value is None
    if origin in (collections.abc.Iterable, collections.abc.Sequence):
        return isinstance(value, origin) and all(_admits(args[0], v) for v in value)
    if origin is collections.abc.Mapping:
        return isinstance(value, origin) and all(
            _admits(args[0], k) and _admits(args[1], v) for k, v in value.items()
        )
    if origin is tuple:  # tuple[()] of the () defaults, tuple[X, ...]
        return isinstance(value, tuple) and all(_admits(args[0], v) for v in value)
    return isinstance(value, hint)  # int, str, typing.SupportsIndex (runtime-checkable)


def test_vectors_hints_admit_the_integer_arrays_the_runtime_accepts():
    """GridSymmetry's vectors hint was Sequence[Sequence[int]]: a type checker refused a (k, d)
    integer array or tensor (no Sequence; np.int64 no int), which the runtime takes. The hints
    of GridSymmetry, RandomSymmetry, Augmented and group_average now admit every form the
    runtime accepts (it gives what the list [(0, 1)] gives) and refuse the forms it refuses."""
    import typing

    g = GridSymmetry((-2, 1), (Fraction(1, 4), Fraction(0)))  # a rotation: moves components
    u = torch.randn(2, 3, 8, 8, dtype=torch.float64)
    want = g(u, vectors=[(0, 1)])
    accepted = [
        [(0, 1)],
        ((0, 1),),
        [[np.int64(0), np.int64(1)]],
        np.array([[0, 1]]),
        np.array([[0, 1]], dtype=np.int32),
        torch.tensor([[0, 1]]),
    ]
    refused = ["01", [(0.0, 1.0)], [("0", "1")]]
    hint = typing.get_type_hints(GridSymmetry.__call__)["vectors"]
    for v in accepted:
        torch.testing.assert_close(g(u, vectors=v), want, rtol=0, atol=0)
        assert _admits(hint, v), v
    for v in refused:
        with pytest.raises(ValueError, match="expected a list of channel groups"):
            g(u, vectors=v)
        assert not _admits(hint, v), v
    others = {
        "RandomSymmetry": (typing.get_type_hints(RandomSymmetry.__call__)["vectors"], list),
        "Augmented": (typing.get_type_hints(Augmented.__init__)["vectors"], "dict"),
        "group_average": (typing.get_type_hints(group_average)["vectors"], None),
        "group_average out": (typing.get_type_hints(group_average)["out_vectors"], None),
    }
    for name, (h, wrap) in others.items():
        for v in accepted:
            value = [v, v] if wrap is list else {"input": v} if wrap == "dict" else v
            assert _admits(h, value), (name, v)
        assert not _admits(h, [["01"]] if wrap is list else {"input": "01"} if wrap else "01")


def test_group_average_reads_one_shot_vectors_once():
    """group_average passed ``vectors`` on to every element's g(...), which iterated it again: a
    one-shot iterable (a generator, zip(...), iter([...])), which the ChannelGroups hint admits,
    moved the vector in the first pass only, and the average was silently not equivariant (max
    difference from the list's result here 0.66 for vectors, 1.03 for out_vectors). Each form now gives the list's result, which
    is exactly equivariant under the vector action of the quarter-turn group."""
    elements = generate_group([GridSymmetry((-2, 1), (Fraction(0), Fraction(0)))])
    assert len(elements) == 4
    torch.manual_seed(0)
    conv = torch.nn.Conv2d(2, 2, 3, padding=1, padding_mode="circular", dtype=torch.float64)
    u = torch.randn(2, 2, 8, 8, dtype=torch.float64)
    want = group_average(conv, u, elements, vectors=[(0, 1)])
    for g in elements:  # the reference's own property: g avg(u) = avg(g u)
        torch.testing.assert_close(
            group_average(conv, g(u, vectors=[(0, 1)]), elements, vectors=[(0, 1)]),
            g(want, vectors=[(0, 1)]),
            rtol=0,
            atol=1e-12,
        )
    one_shot = {
        "generator": lambda: ((0, 1) for _ in range(1)),
        "zip": lambda: zip([0], [1], strict=True),
        "iter": lambda: iter([(0, 1)]),
        "inner iterators": lambda: [iter((0, 1))],
        "map": lambda: map(tuple, [[0, 1]]),
    }
    for name, make in one_shot.items():
        got = group_average(conv, u, elements, vectors=make())
        torch.testing.assert_close(got, want, rtol=0, atol=0, msg=name)
        got = group_average(conv, u, elements, vectors=[(0, 1)], out_vectors=make())
        torch.testing.assert_close(got, want, rtol=0, atol=0, msg=name)


def test_shift_directions_must_be_integers_not_truncated():
    """``int()`` truncated a direction (0.5, 0) to (0, 0), a shift by nothing, silently; a
    non-integer is refused now, and integer arrays still give the plain tuples."""
    elements, _ = fno_forcing_symmetries()
    with pytest.raises(TypeError, match=r"integer lattice directions such as \[\(1, 0\)\]"):
        RandomSymmetry(elements, shift_directions=[(0.5, 0)])
    aug = RandomSymmetry(elements, shift_directions=np.array([[1, 0], [0, 1]]))
    assert aug.shift_directions == [(1, 0), (0, 1)]
    assert all(type(a) is int for v in aug.shift_directions for a in v)


def test_shift_hint_admits_the_ints_the_runtime_takes():
    """GridSymmetry.shift was hinted tuple[Fraction, ...], so a type checker refused the ints
    that __post_init__ takes (GridSymmetry((2, 1), (0, 1)) is the identity shift, mod 1). The
    hint now admits them; an int entry gives the map of the equal Fraction, exactly: a swap of
    the axes after a quarter shift in y is u[j, i + N/4] by hand."""
    import typing

    import sciml.data.symmetry as sym

    hint = typing.get_type_hints(GridSymmetry)["shift"]
    assert _admits(hint, (1, Fraction(1, 4)))
    assert not _admits(hint, ("1", Fraction(1, 4)))
    g = GridSymmetry((2, 1), (1, Fraction(1, 4)))
    assert g == GridSymmetry((2, 1), (Fraction(0), Fraction(1, 4)))
    assert all(type(b) is Fraction for b in g.shift)
    u = torch.arange(64.0).reshape(8, 8)
    i, j = torch.meshgrid(torch.arange(8), torch.arange(8), indexing="ij")
    torch.testing.assert_close(g(u), u[j, (i + 2) % 8], rtol=0, atol=0)
    # the vectors alias these hints use is public, as their type
    assert "ChannelGroups" in sym.__all__
    assert typing.get_type_hints(GridSymmetry.__call__)["vectors"] == sym.ChannelGroups


def test_augmented_views_move_static_fields_with_the_state_and_pairs_stay_solutions(tmp_path):
    """Augmentation of a view with ``static_fields`` (the forcing appended to the input) was
    untested. Vorticity forced by a per-sample, non-invariant ``f`` is a solution pair only if
    ``f`` is moved by the same map as the state, sign included (``-f`` under a reflection,
    as ``w``): the augmented items of SnapshotPairs and unflattened Windows, evolved by the
    solver with the forcing read from the item's own static channel, give the item's target."""
    import sciml.data as sd

    n, b = 16, 4
    w0 = _smooth_field(n, b, seed=4)
    f = _smooth_field(n, b, seed=5) * 0.05  # a different forcing per sample, no symmetry
    traj = solve_navier_stokes(w0, f, nu=1e-3, T=0.5, dt=1e-2, record_steps=1)  # (b, 2, n, n)
    path = tmp_path / "ns.h5"
    sd.write(path, fields={"w": traj.numpy()}, static_fields={"f": f.numpy()}, dtype=np.float64)
    ds = sd.open(path)
    elements, directions = fno_forcing_symmetries()
    views = {
        "snapshots": sd.SnapshotPairs(ds, 0, -1, static_fields=["f"], lead_time=False),
        "windows": sd.Windows(ds, 1, 1, static_fields=["f"], flatten_time=False),
    }
    for name, view in views.items():
        gen = torch.Generator().manual_seed(1)
        data = Augmented(view, RandomSymmetry(elements, shift_directions=directions, generator=gen))
        items = [data[i] for i in range(b)]
        x = torch.stack([it["input"].reshape(2, n, n) for it in items]).double()  # (b, w + f)
        y = torch.stack([it["target"].reshape(n, n) for it in items]).double()
        assert sum(not torch.equal(x[i, 0], w0[i].float().double()) for i in range(b)) >= 3, name
        moved = solve_navier_stokes(x[:, 0], x[:, 1], nu=1e-3, T=0.5, dt=1e-2, record_steps=1)
        assert float((moved[:, -1] - y).norm() / y.norm()) < 1e-5, name
        # the unmoved forcing beside the moved state is no solution pair: the test can fail
        wrong = solve_navier_stokes(x[:, 0], f, nu=1e-3, T=0.5, dt=1e-2, record_steps=1)
        assert float((wrong[:, -1] - y).norm() / y.norm()) > 1e-3, name


def test_an_experiment_refuses_augmenting_point_samples_before_training(tmp_path):
    """``DataSpec(view="points", augment="fno_forcing")`` failed at the first training batch,
    in the DataLoader, with "expected tensors (batch, ..., *grid) ... got shape (1, 20, 1)":
    the targets of PointSamples are values at query points, which a grid symmetry cannot move.
    It is a ConfigError naming data.augment and the view now, before any run file is written."""
    import sciml.data as sd
    from sciml.errors import ConfigError
    from sciml.experiment import DataSpec, Experiment, ModelSpec, augment_view, run

    w = _smooth_field(16, 4, seed=6)
    path = tmp_path / "ns.h5"
    sd.write(path, fields={"w": torch.stack([w, w], 1).numpy()}, static_fields={"f": w.numpy()})
    spec = DataSpec(path=str(path), view="points", inputs=("w",), targets=("w",), n_points=20,
                    static_fields=("f",), split=(0.5, 0.25, 0.25), augment="fno_forcing")  # fmt: skip
    exp = Experiment(
        model=ModelSpec("deeponet", {"sensors": 512, "coord_dim": 2}),
        data=spec,
        train={"epochs": 1, "batch_size": 2},
        out=str(tmp_path / "run"),
    )
    message = r"data\.augment: 'fno_forcing' moves functions on the grid .* data\.view points"
    with pytest.raises(ConfigError, match=message):
        run(exp, progress=False)
    assert not (tmp_path / "run").exists()
    view = sd.PointSamples(sd.open(path), inputs=["w"], targets=["w"], n_points=20)
    with pytest.raises(ConfigError, match=message):
        augment_view(view, "fno_forcing", seed=0)
    grid = augment_view(sd.SnapshotPairs(sd.open(path), static_fields=["f"]), "fno_forcing", seed=0)
    assert grid[0]["input"].shape == (2, 16, 16)  # grid views are still augmented


def test_seeded_augmentation_draws_by_epoch_and_index_so_a_resumed_run_is_exact(tmp_path):
    """``Augmented(seed=s)`` (what ``sciml train``'s ``augment:`` builds) draws the map of item
    ``i`` in epoch ``e`` from ``(s, e, i)``: reading the items twice, or in another order (other
    DataLoader workers, other torchrun ranks), gives the same pairs, the next epoch others.
    augment_view drew from one generator stream that no checkpoint held, so an FNO run crashed
    at step 3 and resumed from its step-2 checkpoint trained on other maps than the
    uninterrupted run (the docs said so); now its history and weights equal that run's
    bitwise. Fails on the old code (a second read of an item gave another map)."""
    from _crash import CrashAt
    from safetensors.torch import load_file

    from sciml.data.generators import generate
    from sciml.experiment import DataSpec, augment_view, build_views
    from sciml.models import FNO, FNOConfig
    from sciml.train import Constant, TrainConfig, Trainer

    path = generate(
        "navier_stokes", n=8, resolution=16, T=0.2, dt=1e-2, record_steps=1,
        out=tmp_path / "ns.h5", seed=0,
    )  # fmt: skip
    view = build_views(DataSpec(path=str(path), view="snapshots", inputs=("w",), targets=("w",)))
    data = augment_view(view, "fno_forcing", seed=4)

    def pairs(d, order=range(8)):
        items = {i: d[i] for i in order}
        return torch.stack([torch.cat([items[i]["input"], items[i]["target"]]) for i in range(8)])

    epoch0 = pairs(data)
    assert torch.equal(pairs(data), epoch0)
    assert torch.equal(data[-1]["target"], epoch0[7, 1:])
    assert torch.equal(
        pairs(augment_view(view, "fno_forcing", seed=4), order=range(7, -1, -1)), epoch0
    )
    unmoved = torch.stack([torch.cat([view[i]["input"], view[i]["target"]]) for i in range(8)])
    assert sum(not torch.equal(a, b) for a, b in zip(epoch0, unmoved)) >= 6
    data.set_epoch(1)
    assert sum(not torch.equal(a, b) for a, b in zip(pairs(data), epoch0)) >= 6
    with pytest.raises(TypeError, match=r"expected seed as an int >= 0 or None, got 1.5"):
        Augmented(view, RandomSymmetry(fno_forcing_symmetries()[0]), seed=1.5)

    def fit(run, callbacks=(), resume=False):
        torch.manual_seed(0)
        model = FNO(FNOConfig(modes=(4, 4), width=8, n_layers=2))
        config = TrainConfig(epochs=2, batch_size=2, lr=1e-2, schedule=Constant(), seed=3,
                             checkpoint_every=2, log_every=1)  # fmt: skip
        trainer = Trainer(model, augment_view(view, "fno_forcing", seed=4), config=config,
                          out_dir=run, callbacks=callbacks, progress=False)  # fmt: skip
        return trainer.fit(resume=resume)

    ref = fit(tmp_path / "ref")
    with pytest.raises(RuntimeError, match="simulated"):
        fit(tmp_path / "run", [CrashAt(3)])
    resumed = fit(tmp_path / "run", resume="auto")
    assert resumed.step == ref.step == 8

    def stable(history):
        return [
            {k: v for k, v in r.items() if k not in ("time_s", "samples_per_s")} for r in history
        ]

    assert stable(resumed.history) == stable(ref.history)
    w_ref, w = (load_file(str(tmp_path / r / "last" / "model.safetensors")) for r in ("ref", "run"))
    assert all(torch.equal(w_ref[k], w[k]) for k in w_ref)


def _diffuse(u: torch.Tensor, c: torch.Tensor, steps: int = 20, dt: float = 0.1) -> torch.Tensor:
    """``u_t = div(c grad u)`` on a periodic grid (spacing 1), conservative fluxes with ``c``
    averaged onto the faces, explicit Euler: exactly equivariant under the square's grid maps,
    and linear in ``u`` (``u -> -u`` is a symmetry) but not in ``c``."""
    for _ in range(steps):
        div = 0
        for ax in (-2, -1):
            face = (c + torch.roll(c, -1, ax)) / 2  # c at i + 1/2
            flux = face * (torch.roll(u, -1, ax) - u)
            div = div + flux - torch.roll(flux, 1, ax)
        u = u + dt * div
    return u


def test_keep_sign_moves_a_coefficient_without_negating_it(tmp_path):
    """A coefficient appended to the input (a diffusivity or wave speed as a static field) was
    negated with the state by every map of sign -1, such as the odd symmetry u -> -u of a
    linear PDE: the augmented pair had c < 0 and was no solution pair, and nothing could say
    otherwise. keep_sign names such channels: moved, never negated. Augmented SnapshotPairs of
    u_t = div(c grad u) stay solution pairs with it (and are not without), and group_average
    of the solver (an equivariant model) returns the solver's output."""
    import sciml.data as sd

    n, b = 12, 6
    g = torch.Generator().manual_seed(7)
    u0 = torch.randn(b, n, n, dtype=torch.float64, generator=g)
    c = 0.4 + 0.5 * torch.rand(b, n, n, dtype=torch.float64, generator=g)  # 0.4 .. 0.9
    ut = _diffuse(u0, c)
    path = tmp_path / "heat.h5"
    sd.write(path, fields={"u": torch.stack([u0, ut], 1).numpy()}, static_fields={"c": c.numpy()},
             dtype=np.float64)  # fmt: skip
    view = sd.SnapshotPairs(sd.open(path), 0, -1, static_fields=["c"], lead_time=False)
    gens = [
        GridSymmetry((2, 1), (0, 0)),  # transpose
        GridSymmetry((-1, 2), (0, 0)),  # reflection of x
        GridSymmetry((1, 2), (0, 0), sign=-1),  # u -> -u
    ]
    elements = generate_group(gens)
    assert len(elements) == 16 and sum(e.sign < 0 for e in elements) == 8

    def errors(**kw):
        aug = RandomSymmetry(elements, shift_directions=((1, 0), (0, 1)),
                             generator=torch.Generator().manual_seed(3))  # fmt: skip
        items = [Augmented(view, aug, **kw)[i] for i in range(b)]
        x = torch.stack([it["input"] for it in items]).double()  # (b, 2: u and c, n, n)
        y = torch.stack([it["target"][0] for it in items]).double()
        moved = _diffuse(x[:, 0], x[:, 1])
        return (moved - y).flatten(1).norm(dim=1) / y.flatten(1).norm(dim=1), x[:, 1]

    kept, c_kept = errors(keep_sign={"input": [1]})
    assert float(kept.max()) < 1e-6 and bool((c_kept > 0).all())
    negated, c_negated = errors()  # the old behaviour: c moved and negated as the state
    assert bool((c_negated < 0).any()) and float(negated.max()) > 1e-2

    def model(x):  # (batch, u and c, n, n) -> (batch, 1, n, n): exactly equivariant
        return _diffuse(x[:, 0], x[:, 1])[:, None]

    x = torch.stack([u0, c], 1)
    avg = group_average(model, x, elements, keep_sign=[1])
    torch.testing.assert_close(avg, model(x), rtol=0, atol=1e-12)
    assert float((group_average(model, x, elements) - model(x)).abs().max()) > 1e-2

    u = torch.arange(3 * 4 * 4, dtype=torch.float64).reshape(3, 4, 4)
    flip = GridSymmetry((-1, 2), (0, 0), sign=-1)
    out = flip(u, keep_sign=[1])
    torch.testing.assert_close(out[0], -u[0].flip(0).roll(1, 0), rtol=0, atol=0)
    torch.testing.assert_close(out[1], u[1].flip(0).roll(1, 0), rtol=0, atol=0)
    torch.testing.assert_close(out[2], -u[2].flip(0).roll(1, 0), rtol=0, atol=0)
    torch.testing.assert_close(flip(u, keep_sign=[-2]), out, rtol=0, atol=0)
    with pytest.raises(
        ValueError,
        match=r"keep_sign to name scalar channels of the 3, got "
        r"channel 0 in keep_sign=\[0\], a vector component",
    ):
        GridSymmetry((2, 1), (0, 0))(u, vectors=[(0, 1)], keep_sign=[0])
    with pytest.raises(ValueError, match="got channel 3 in keep_sign=.3., not among the 3"):
        flip(u, keep_sign=[3])
    with pytest.raises(ValueError, match=r"keep_sign: expected a list of integer channel"):
        flip(u, keep_sign=1)
    with pytest.raises(ValueError, match=r"keep_sign names \['x'\], which are not among"):
        Augmented(view, RandomSymmetry(elements), keep_sign={"x": [0]})


def test_augmenting_a_normalised_view_moves_the_physical_fields(tmp_path):
    """A view with a normalizer gives per-channel encoded items, and Augmented moved them
    encoded: a transpose swapped u_x (mean 1, std 2) and u_y (mean 0, std 0.5) as encoded
    numbers, and a map of sign -1 negated an encoded channel of nonzero mean, so a pair was no
    pair of the problem (8.7 std off). Items are decoded, moved and encoded again now: each
    equals the normalizer's encoding of the same map applied to the view without normalizer."""
    import sciml.data as sd

    rng = np.random.default_rng(8)
    n, t, x = 3, 4, 8
    ux, uy = rng.normal(1, 2, (n, t, x, x)), rng.normal(0, 0.5, (n, t, x, x))
    c = rng.normal(3, 0.1, (n, x, x))
    path = tmp_path / "vec.h5"
    sd.write(path, fields={"ux": ux, "uy": uy}, static_fields={"c": c}, dtype=np.float64)
    ds = sd.open(path)
    norm = sd.Normalizer.fit(ds)
    elements = generate_group(
        [GridSymmetry((2, 1), (0, 0)), GridSymmetry((-1, 2), (0, 0), sign=-1)]
    )
    mean = {k: norm.mean[k] for k in ("ux", "uy", "c")}
    std = {k: norm.std[k] for k in ("ux", "uy", "c")}

    def encode(a, names, axis):  # numpy, by channel name
        shape = [1] * a.ndim
        shape[axis] = -1
        mu = np.array([mean[k] for k in names]).reshape(shape)
        return (a - mu) / np.array([std[k] for k in names]).reshape(shape)

    cases = {  # view kwargs, vectors, keep_sign, (input names, axis), (target names, axis)
        "windows": (lambda **kw: sd.Windows(ds, 2, 1, static_fields=["c"], **kw),
                    {"input": [(0, 1), (2, 3)], "target": [(0, 1)]}, {"input": [4]},
                    (["ux", "uy", "ux", "uy", "c"], 0), (["ux", "uy"], 0)),
        "unflattened": (lambda **kw: sd.Windows(ds, 2, 1, static_fields=["c"], flatten_time=False, **kw),
                        {"input": [(0, 1)], "target": [(0, 1)]}, {"input": [2]},
                        (["ux", "uy", "c"], 1), (["ux", "uy"], 1)),
        "all_pairs": (lambda **kw: sd.AllPairs(ds, static_fields=["c"], **kw),
                      {"input": [(0, 1)], "target": [(0, 1)]}, {"input": [2]},
                      (["ux", "uy", "c"], 0), (["ux", "uy"], 0)),
        "snapshots": (lambda **kw: sd.SnapshotPairs(ds, 0, -1, static_fields=["c"], lead_time=False, **kw),
                      {"input": [(0, 1)], "target": [(0, 1)]}, {"input": [2]},
                      (["ux", "uy", "c"], 0), (["ux", "uy"], 0)),
    }  # fmt: skip
    for name, (make, vectors, keep, (names_in, ax_in), (names_out, ax_out)) in cases.items():

        def augmented(view, vectors=vectors, keep=keep):
            aug = RandomSymmetry(elements, generator=torch.Generator().manual_seed(2))
            return Augmented(view, aug, vectors=vectors, keep_sign=keep)

        encoded, raw = augmented(make(normalizer=norm)), augmented(make())
        for i in range(0, len(raw), 3):
            got, want = encoded[i], raw[i]
            assert got["input"].dtype == torch.float32, name
            np.testing.assert_allclose(got["input"].numpy(),
                                       encode(want["input"].numpy(), names_in, ax_in), atol=2e-5,
                                       err_msg=name)  # fmt: skip
            np.testing.assert_allclose(got["target"].numpy(),
                                       encode(want["target"].numpy(), names_out, ax_out), atol=2e-5,
                                       err_msg=name)  # fmt: skip
