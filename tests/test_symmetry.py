"""Exact grid symmetries: composition, the Navier-Stokes group checked against the solver,
augmentation pairs that stay solutions, group averaging."""

from fractions import Fraction

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
