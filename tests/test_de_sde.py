"""sciml.de NeuralSDE and the stable SDE classes of Oh et al. (2024)."""

import contextlib
import math
import signal
import warnings

import pytest
import torch
from _de_fields import LinearWithUnusedParameter
from torch import nn

from sciml.de import AcceptedStepTime, EulerMaruyama, GlobalHeuristic, LocalHeuristic, NeuralSDE
from sciml.de.neural_sde import accepted_em_steps, step_doubling_error
from sciml.de.stable_sde import (
    GeometricSDE,
    LangevinSDE,
    LinearNoiseSDE,
    LinearPath,
    NaiveSDE,
    StableSDEConfig,
)

T, SHIFT, SIGMA_MAX = 5.0, 100.0, 0.1


def _run(cls, shift, seed):
    torch.manual_seed(seed)
    m = cls(StableSDEConfig(2, hidden=8, width=32), EulerMaruyama(dt=0.05))
    g = torch.Generator().manual_seed(100)
    t = torch.linspace(0, T, 26)
    x = torch.randn(16, 26, 2, generator=g) + shift
    with torch.no_grad():
        z = m.hidden_path(t, x)
    return z[0], z[-1]


def test_stable_classes_stay_bounded_where_naive_grows_with_the_shift():
    # |int sigma dW| <= 6 sd with sd <= SIGMA_MAX sqrt(T); drift |gamma| <= 1 (tanh)
    noise = 6 * SIGMA_MAX * math.sqrt(T)
    naive = {}
    for seed in range(3):
        for shift in (0.0, SHIFT):
            # Langevin: |z_T - z_0| <= T + noise whatever the input
            z0, zT = _run(LangevinSDE, shift, seed)
            assert float((zT - z0).abs().max()) <= T + noise
            # geometric: |log|z_T / z_0|| <= T (1 + sigma^2 / 2) + noise (+ Euler slack)
            z0, zT = _run(GeometricSDE, shift, seed)
            logr = (zT.abs().log() - z0.abs().log()).abs().max()
            assert float(logr) <= T * (1 + SIGMA_MAX**2 / 2) + noise + 0.5
            # linear noise: |z_T| <= e^{2 noise} (|z_0| + T)
            z0, zT = _run(LinearNoiseSDE, shift, seed)
            assert bool((zT.abs() <= math.exp(2 * noise) * (z0.abs() + T)).all())
            z0, zT = _run(NaiveSDE, shift, seed)
            naive[(seed, shift)] = float((zT - z0).abs().max())
    for seed in range(3):
        # the naive SDE's increment grows with the shift, far past the Langevin bound
        assert naive[(seed, SHIFT)] > 5 * naive[(seed, 0.0)]
        assert naive[(seed, SHIFT)] > 3 * (T + noise)


def test_linear_path_interpolates():
    t = torch.tensor([0.0, 1.0, 3.0])
    x = torch.tensor([[[0.0], [2.0], [6.0]]])
    p = LinearPath(t, x)
    assert float(p(torch.tensor(2.0))) == pytest.approx(4.0)
    assert float(p(torch.tensor(0.5))) == pytest.approx(1.0)
    with pytest.raises(ValueError, match="increasing"):
        LinearPath(torch.tensor([0.0, 0.0, 1.0]), x)


@pytest.mark.parametrize(
    "times, shown",
    [([0.0, 0.5, 0.3], r"\[0, 0.5, 0.3\]"), ([0.0, float("nan"), 1.0], r"\[0, nan, 1\]"),
     ([0.0, 1.0, float("inf")], r"\[0, 1, inf\]"),
     ([0.0, 0.0, 1.0], r"\[0, 0, 1\]; merge the observations at a repeated time into one")],
)  # fmt: skip
def test_linear_path_names_the_observation_times_it_refuses(times, shown):
    """LinearPath said only "expected strictly increasing observation times": not which times,
    and for a NaN time not that it was NaN; an inf last time passed (inf > 1) and failed later
    in the solve. Now the error names the times and asks for finite ones (and, for a repeated
    time, says to merge its observations)."""
    x = torch.zeros(1, 3, 1)
    with pytest.raises(ValueError, match=r"expected finite, strictly increasing observation "
                       rf"times t, got {shown}"):  # fmt: skip
        LinearPath(torch.tensor(times), x)


def test_linear_path_with_integer_times_interpolates():
    """Integer observation times: the query was cast to int, so X(0.5) was X(0) (piecewise
    constant); now the times are taken in x's dtype and X(0.5) is the midpoint."""
    x = torch.tensor([[[0.0], [2.0], [6.0]]])
    p = LinearPath(torch.arange(3), x)
    assert float(p(torch.tensor(0.5))) == pytest.approx(1.0)
    assert float(p(torch.tensor(1.25))) == pytest.approx(3.0)


def test_stable_model_bad_input_is_named():
    m = LangevinSDE(StableSDEConfig(2, hidden=4, width=8), EulerMaruyama(dt=0.25))
    t = torch.tensor([0.0, 0.5, 1.0])
    x = torch.randn(3, 3, 2)
    with pytest.raises(ValueError, match="expected finite observations x, got 1 NaN"):
        m(t, torch.where(torch.arange(18).reshape(3, 3, 2) == 7, float("nan"), x))
    with pytest.raises(TypeError, match="model's dtype torch.float32, got torch.float64"):
        m(t, x.double())
    # times as a list solve the same SDE as the tensor
    torch.manual_seed(5)
    a = m(t, x)
    torch.manual_seed(5)
    b = m([0.0, 0.5, 1.0], x)
    assert torch.equal(a, b)


@pytest.mark.parametrize("cls", [LangevinSDE, LinearNoiseSDE, GeometricSDE, NaiveSDE])
def test_stable_model_names_a_channel_count_that_is_not_the_configs(cls):
    """x with 2 channels for in_channels=3 failed inside the initial nn.Linear with torch's
    "mat1 and mat2 shapes cannot be multiplied (2x2 and 3x4)", naming neither x nor the config;
    with the config's channel count the same model solves."""
    m = cls(StableSDEConfig(3, hidden=4, width=8), EulerMaruyama(dt=0.25))
    t = torch.tensor([0.0, 0.5, 1.0])
    with pytest.raises(ValueError, match=r"expected x of shape \(batch, time, in_channels=3\) "
                       r"\(StableSDEConfig.in_channels\), got \(2, 3, 2\)"):  # fmt: skip
        m(t, torch.randn(2, 3, 2))
    with torch.no_grad():
        z = m.hidden_path(t, torch.zeros(2, 3, 3))
    # z(t_0) = h(x_0), the initial linear map of the first observation
    torch.testing.assert_close(z[0], m.initial(torch.zeros(2, 3)).expand(2, 4))


def test_list_times_of_a_float64_model_are_the_float64_times():
    # a list became float32 times (torch's default dtype): 0.3 -> 0.30000001, and a float64
    # model solved another SDE than with the same times as a float64 tensor (4e-10 apart)
    m = LangevinSDE(StableSDEConfig(2, hidden=4, width=8), EulerMaruyama(dt=0.1)).double()
    x = torch.randn(3, 3, 2, dtype=torch.float64)
    times = [0.0, 0.3, 0.7]
    assert LinearPath(times, x).t.tolist() == times
    torch.manual_seed(5)
    a = m(torch.tensor(times, dtype=torch.float64), x)
    torch.manual_seed(5)
    b = m(times, x)
    assert torch.equal(a, b)


@pytest.mark.parametrize(
    "kw, name",
    [
        (dict(in_channels=0), "in_channels"),
        (dict(in_channels=2.0), "in_channels"),
        (dict(in_channels=2, hidden=-1), "hidden"),
    ],
)
def test_stable_config_refuses_non_positive_or_float_sizes(kw, name):
    """A size of 0 was accepted (an empty network), 2.0 and -1 failed inside nn.Linear. The
    error names the field that is wrong (``name``)."""
    from sciml.errors import ConfigError

    with pytest.raises(
        ConfigError, match=f"StableSDEConfig.{name} a positive int, got {kw[name]!r}"
    ):
        StableSDEConfig(**kw)


def test_stable_config_takes_numpy_ints_as_sizes():
    # np.int64 (a size read from an array) was refused as not an int; torch takes it
    import numpy as np

    got = StableSDEConfig(np.int64(2), hidden=np.int32(4), width=8)
    assert got == StableSDEConfig(2, hidden=4, width=8)
    assert type(got.in_channels) is int and type(got.hidden) is int


@pytest.mark.parametrize("cls", [LangevinSDE, LinearNoiseSDE, GeometricSDE, NaiveSDE])
def test_stable_classes_are_euler_maruyama_of_their_stated_sde(cls):
    """The solve equals Euler-Maruyama written out by hand from the class's stated SDE (the
    networks called directly, X(t) interpolated by hand) on the same Brownian increments."""
    import torchsde

    torch.manual_seed(0)
    b, c, dt = 3, 2, 0.125
    t = torch.tensor([0.0, 0.25, 0.5, 1.0], dtype=torch.float64)
    x = torch.randn(b, 4, c, dtype=torch.float64)
    m = cls(StableSDEConfig(c, hidden=4, width=8), EulerMaruyama(dt=dt)).double()
    bm = torchsde.BrownianInterval(0.0, 1.0, size=(b, 4), dtype=torch.float64, entropy=1)
    m.path = LinearPath(t, x)
    with torch.no_grad():
        z = z0 = m.initial(x[:, 0])
        zs = m.sde(z0, t, bm=bm)
        m.path = None
        out = [z0]
        for k in range(8):
            s0, s1 = k * dt, (k + 1) * dt
            i = min(int((s0 >= t).sum()), 3)  # X(s0) on the segment [t_{i-1}, t_i]
            w = (s0 - t[i - 1]) / (t[i] - t[i - 1])
            xs = x[:, i - 1] + w * (x[:, i] - x[:, i - 1])
            tc = torch.full((b, 1), s0, dtype=torch.float64)
            if cls is NaiveSDE:
                inp = torch.cat([tc, z, xs], -1)
                mu, g = m.f_net(inp), 0.1 * m.g_net(inp)
            else:
                zbar = m.zeta(torch.cat([tc, z, xs], -1))
                sig = 0.1 * m.sigma(tc)
                tg = torch.zeros_like(tc) if cls is LangevinSDE else tc
                gam = m.gamma(torch.cat([tg, zbar], -1))
                mu = z * gam if cls is GeometricSDE else gam
                g = sig if cls is LangevinSDE else sig * z
            z = z + mu * dt + g * bm(s0, s1)
            if s1 in (0.25, 0.5, 1.0):
                out.append(z)
    assert torch.allclose(zs, torch.stack(out), rtol=0, atol=1e-14)


@pytest.mark.parametrize("cls", [LangevinSDE, LinearNoiseSDE, GeometricSDE, NaiveSDE])
def test_drift_outside_a_solve_says_it_needs_the_control_path(cls):
    """drift / diffusion are public methods, but X(t) exists only during a solve: a direct call
    raised "'NoneType' object is not callable". Now a RuntimeError says so; with the path set
    the drift is the class's stated one (X at an observation time is that observation)."""
    torch.manual_seed(0)
    t = torch.tensor([0.0, 0.5, 1.0], dtype=torch.float64)
    x = torch.randn(3, 3, 2, dtype=torch.float64)
    m = cls(StableSDEConfig(2, hidden=4, width=8), EulerMaruyama(dt=0.25)).double()
    z = torch.randn(3, 4, dtype=torch.float64)
    s = torch.tensor(0.5, dtype=torch.float64)
    m(t, x)  # a solve leaves no path behind
    with pytest.raises(RuntimeError, match=r"expected the control path X\(t\).*model\.path ="):
        m.drift(s, z)
    if cls is NaiveSDE:
        with pytest.raises(RuntimeError, match="control path"):
            m.diffusion(s, z)
    m.path = LinearPath(t, x)
    with torch.no_grad():
        inp = torch.cat([torch.full((3, 1), 0.5, dtype=torch.float64), z, x[:, 1]], -1)
        if cls is NaiveSDE:
            want = m.f_net(inp)
        else:
            tg = torch.full((3, 1), 0.0 if cls is LangevinSDE else 0.5, dtype=torch.float64)
            want = m.gamma(torch.cat([tg, m.zeta(inp)], -1))
            want = z * want if cls is GeometricSDE else want
        assert torch.allclose(m.drift(s, z), want, rtol=0, atol=1e-15)


class _Lin(nn.Module):
    def __init__(self, a):
        super().__init__()
        self.a = nn.Parameter(torch.tensor(a, dtype=torch.float64))

    def forward(self, t, y):
        return self.a * y


def test_sde_nfe_and_ornstein_uhlenbeck_mean():
    """Fixed-step EM: one drift evaluation per step; OU mean E y(T) = y0 e^{-T}."""
    sde = NeuralSDE(_Lin(-1.0), _Const(0.3), EulerMaruyama(dt=0.01))
    y0 = torch.ones(4000, 1, dtype=torch.float64)
    with torch.no_grad():
        ys = sde(y0, torch.tensor([0.0, 1.0], dtype=torch.float64))
    assert sde.nfe_forward == 100 + 1  # + torchsde's one-off shape check of f and g
    # EM mean is (1 - dt)^N exactly; Monte Carlo sd = 0.3 sqrt((1 - e^{-2})/2) / sqrt(4000)
    assert float(ys[-1].mean()) == pytest.approx(0.99**100, abs=4 * 0.3 * 0.66 / math.sqrt(4000))


@contextlib.contextmanager
def _fails_instead_of_hanging(seconds):
    """A hang guard, not a timing assertion: the solve below takes milliseconds, and without
    the fix it never returns (so the test would stall the suite instead of failing)."""

    def stop(*_):
        raise TimeoutError(f"the solve did not return within {seconds} s")

    previous = signal.signal(signal.SIGALRM, stop)
    signal.setitimer(signal.ITIMER_REAL, seconds)
    try:
        yield
    finally:
        signal.setitimer(signal.ITIMER_REAL, 0)
        signal.signal(signal.SIGALRM, previous)


@pytest.mark.skipif(not hasattr(signal, "setitimer"), reason="needs signal.setitimer")
def test_a_fixed_step_solve_whose_last_step_is_a_rounding_sliver_returns():
    """EulerMaruyama(dt=0.05) on [0, 5] in float64 never returned (6 GB after 3 minutes):
    torchsde's steps add up to 4.99999999999999, its 101st Brownian query is the sliver up to
    5, and a BrownianInterval without a ``dt`` hint sizes its dependency tree on its first
    query after 100 (pieces of 1e-14 over [0, 5]). The default path now gets the solver's
    ``dt``. The OU mean is the Euler-Maruyama one, E y(5) = 0.95^100 y0."""
    torch.manual_seed(0)
    sde = NeuralSDE(_Lin(-1.0), _Const(0.3), EulerMaruyama(dt=0.05))
    y0 = torch.ones(2000, 1, dtype=torch.float64)
    with torch.no_grad(), _fails_instead_of_hanging(60):
        ys = sde(y0, torch.tensor([0.0, 5.0], dtype=torch.float64))
    assert sde.nfe_forward == 100 + 1 + 1  # the sliver step and torchsde's shape check
    # stationary sd of the EM chain 0.3 / sqrt(h (2 - h)) sqrt(h) ~ 0.215; mean over 2000
    assert float(ys[-1].mean()) == pytest.approx(0.95**100, abs=4 * 0.215 / math.sqrt(2000))


@pytest.mark.skipif(not hasattr(signal, "setitimer"), reason="needs signal.setitimer")
def test_a_callers_brownian_interval_without_a_dt_hint_does_not_hang_on_the_sliver():
    """The sliver hang above, with the caller's ``BrownianInterval(0, 5, size)`` (no ``dt``
    hint, as torchsde's examples make it): it never returned (the hang guard fired). The
    path now gets the solver's ``dt`` as its hint, and the solve is Euler-Maruyama written
    out by hand on that same path (the 1e-14 sliver step, which the hand loop skips, moves
    y by ~0.3 x 1e-7)."""
    import torchsde

    torch.manual_seed(0)
    sde = NeuralSDE(_Lin(-1.0), _Const(0.3), EulerMaruyama(dt=0.05))
    y0 = torch.ones(50, 1, dtype=torch.float64)
    ts = torch.tensor([0.0, 5.0], dtype=torch.float64)
    bm = torchsde.BrownianInterval(0.0, 5.0, size=(50, 1), dtype=torch.float64, entropy=5)
    with torch.no_grad(), _fails_instead_of_hanging(20):
        ys = sde(y0, ts, bm=bm)
    assert bm.dt == 0.05 and sde.nfe_forward == 100 + 1 + 1
    ref = _em_by_hand(_Lin(-1.0), _Const(0.3), y0, ts, bm, 0.05)
    torch.testing.assert_close(ys, ref, rtol=0, atol=1e-6)


@pytest.mark.skipif(not hasattr(signal, "setitimer"), reason="needs signal.setitimer")
def test_a_fixed_step_below_the_times_spacing_is_refused_instead_of_hanging():
    """Float32 times near 1e8 are 8 apart, so torchsde's t + dt with dt = 0.05 stayed at 1e8
    and the solve never returned (the hang guard fired). It is refused, naming the spacing;
    the same times shifted to start at 0 solve (with no noise, Euler's (1 - dt)^160 y0)."""
    sde = NeuralSDE(_Lin(-1.0), _Const(0.0), EulerMaruyama(dt=0.05))
    y0 = torch.ones(2, 1)
    t = torch.tensor([1e8, 1e8 + 8.0])
    want = r"expected a dt that advances torch.float32 times near 1e\+08 \(their spacing there"
    with _fails_instead_of_hanging(20), pytest.raises(ValueError, match=want + r" is 8\)"):
        sde(y0, t)
    with torch.no_grad(), _fails_instead_of_hanging(20):
        ys = sde(y0, t - t[0])
    torch.testing.assert_close(ys[-1], torch.full((2, 1), 0.95**160), rtol=1e-4, atol=0)


class _LinSeesTimes(nn.Module):
    """``a y``, recording the dtypes of the times it is called with."""

    def __init__(self, a):
        super().__init__()
        self.a, self.dtypes = a, set()

    def forward(self, t, y):
        self.dtypes.add(t.dtype)
        return self.a * y


@pytest.mark.skipif(not hasattr(signal, "setitimer"), reason="needs signal.setitimer")
@pytest.mark.parametrize("dtype", [torch.bfloat16, torch.float16])
def test_a_half_precision_state_steps_on_its_float32_times(dtype):
    """The times were cast to the state's dtype: from t = 100 in bfloat16, 100 + dt rounds to
    100 for dt = 0.1 and torchsde's fixed steps never advanced (the hang guard fired), and the
    output time 100.3 was 100.5. Now the solve steps on float32 times: with no noise it is
    Euler's y(100.3) = 0.9^3 y0 (plus a float32 sliver step of 8e-6), within 4 machine
    epsilons of the state's dtype; the networks see times in the state's dtype."""
    drift, diffusion = _LinSeesTimes(-1.0), _LinSeesTimes(0.0)
    sde = NeuralSDE(drift, diffusion, EulerMaruyama(dt=0.1))
    y0 = torch.ones(3, 1, dtype=dtype)
    with torch.no_grad(), _fails_instead_of_hanging(20):
        ys = sde(y0, torch.tensor([100.0, 100.3]))
    assert ys.dtype == dtype and drift.dtypes == diffusion.dtypes == {dtype}
    eps = torch.finfo(dtype).eps
    torch.testing.assert_close(ys[-1].float(), torch.full((3, 1), 0.9**3), rtol=4 * eps, atol=0)


@pytest.mark.parametrize("reg, per_solve", [(GlobalHeuristic(1.0), 16), (LocalHeuristic(1.0), 2)])
def test_sde_regulariser_cost_is_two_drift_evaluations_per_step(reg, per_solve):
    """The step-doubling estimate evaluates the drift (and the diffusion) at the step's start
    and at its midpoint: 2 per step, 16 for GlobalHeuristic over the 8 steps of dt = 1/8 on
    [0, 1], 2 for LocalHeuristic's one step (the module docstring said three)."""
    sde = NeuralSDE(_Lin(-1.0), _Const(0.3), EulerMaruyama(dt=0.125), regulariser=reg)
    sde(torch.ones(2, 1, dtype=torch.float64), torch.tensor([0.0, 1.0], dtype=torch.float64))
    assert sde.nfe_forward == 8 + 1 and sde.nfe_regulariser == per_solve


@pytest.mark.filterwarnings("error:Numerical solution is not guaranteed to converge")
def test_default_brownian_path_follows_torch_seed():
    """The default Brownian path (and so an adaptive solve's NFE) is fixed by torch.manual_seed
    alone; torchsde by itself would draw its entropy from numpy's global generator. The noise is
    declared additive, so torchsde does not warn about adaptive Euler-Maruyama (an error here)."""
    import numpy as np

    sde = NeuralSDE(
        _Lin(-1.0),
        _Const(0.5),
        EulerMaruyama(dt=0.1, adaptive=True, rtol=1e-3),
        noise_type="additive",
    )
    y0, t = torch.ones(8, 1), torch.tensor([0.0, 2.0])

    def solve(torch_seed, numpy_seed):
        np.random.seed(numpy_seed)
        torch.manual_seed(torch_seed)
        with torch.no_grad():
            return sde(y0, t)[-1], sde.nfe_forward

    (a, na), (b, nb), (c, _) = solve(0, 1), solve(0, 2), solve(1, 1)
    assert torch.equal(a, b) and na == nb
    assert not torch.allclose(a, c)


class _Const(nn.Module):
    def __init__(self, s):
        super().__init__()
        self.s = s

    def forward(self, t, y):
        return torch.full_like(y, self.s)


def test_step_doubling_error_of_linear_drift_is_exact():
    """For dy = a y dt (no noise) the step-doubling difference is y a^2 h^2 / 4."""
    sde = NeuralSDE(_Lin(-0.7), _Const(0.0))
    y = torch.tensor([[1.0, -2.0]], dtype=torch.float64)
    h, a = 0.3, -0.7
    e = step_doubling_error(sde.sde, 0.0, y, h, rtol=0.0, atol=1.0)
    exact = (y * a * a * h * h / 4).pow(2).mean().sqrt()
    assert float(e.detach()) == pytest.approx(float(exact), rel=1e-12)


def test_global_sde_penalty_leaves_out_the_rounding_sliver_of_the_last_step():
    """torchsde's fixed steps add up in floating point: dt = 0.1 on [0, 1] stops at
    0.9999999999999999 and takes a last step of 1.1e-16, which counted as an 11th step and
    made GlobalHeuristic's mean over steps 10/11 of the penalty of the 10 steps. For
    dy = a y dt (no noise) each step's step-doubling difference is y_k a^2 h^2 / 4 with
    y_k = y0 (1 + a h)^k, so the penalty is the mean over k < 10 of E_k h."""
    a, h, rtol, atol = -0.7, 0.1, 1e-2, 1e-3
    solver = EulerMaruyama(dt=h, rtol=rtol, atol=atol)
    sde = NeuralSDE(_Lin(a), _Const(0.0), solver, regulariser=GlobalHeuristic(1.0))
    y0 = torch.tensor([[1.0, -2.0]], dtype=torch.float64)
    sde(y0, torch.tensor([0.0, 1.0], dtype=torch.float64))
    by_hand = []
    for k in range(10):
        y = y0 * (1 + a * h) ** k
        full, half = y * (1 + a * h), y * (1 + a * h / 2) ** 2
        tol = atol + rtol * torch.maximum(full.abs(), half.abs())
        by_hand.append(float(((half - full) / tol).pow(2).mean().sqrt()) * h)
    assert float(sde.regularisation.detach()) == pytest.approx(sum(by_hand) / 10, rel=1e-9)
    steps = accepted_em_steps(sde.sde.calls, 1.0, adaptive=False)
    assert len(steps) == 10 and all(s[1] == pytest.approx(h, rel=1e-12) for s in steps)


@pytest.mark.parametrize("reg", [LocalHeuristic(1.0), GlobalHeuristic(1.0)])
def test_sde_regulariser_gradient_matches_finite_differences(reg):
    """d R / d a for dy = a y dt + 0 dW, same Brownian draws: autograd vs central differences."""

    def run(a):
        sde = NeuralSDE(_Lin(a), _Const(0.0), EulerMaruyama(dt=0.1), regulariser=reg)
        torch.manual_seed(4)
        sde(
            torch.tensor([[1.0, 0.5]], dtype=torch.float64),
            torch.tensor([0.0, 1.0], dtype=torch.float64),
        )
        return sde

    sde = run(-0.9)
    sde.regularisation.backward()
    g = float(sde.sde.drift.a.grad)
    fd = (run(-0.9 + 1e-6).regularisation - run(-0.9 - 1e-6).regularisation).item() / 2e-6
    assert g == pytest.approx(fd, rel=1e-5)


class _Sin(nn.Module):
    def forward(self, t, y):
        return 2.0 * torch.sin(3.0 * y)


@pytest.mark.filterwarnings("ignore:Numerical solution is not guaranteed")
@pytest.mark.parametrize("adaptive", [True, False])
def test_accepted_em_steps_are_the_solvers_steps(adaptive):
    """Regression: the SDE regularisers used the spacing of the drift-evaluation times as the step
    size, which for adaptive EM is half the accepted step (and mixes in rejected attempts).
    With zero noise, the state at each recovered step start must be what two EM half steps of
    the recovered size give from the previous start, and the steps must tile [t0, t_end].
    (The drift evaluations are kept for an active regulariser only; AcceptedStepTime adds no
    output time, so the solve is the one without it.)"""
    solver = EulerMaruyama(dt=0.1, adaptive=adaptive, rtol=1e-2, atol=1e-2)
    reg = LocalHeuristic(1.0, sampling=AcceptedStepTime())
    sde = NeuralSDE(_Sin(), _Const(0.0), solver, regulariser=reg)
    y0 = torch.tensor([[1.0, -0.4], [0.3, 2.0]], dtype=torch.float64)
    ys = sde(y0, torch.tensor([0.0, 1.0], dtype=torch.float64))
    steps = accepted_em_steps(sde.sde.calls, 1.0, adaptive)
    assert steps[0][0] == 0.0 and len(steps) >= 5
    assert steps[-1][0] + steps[-1][1] == pytest.approx(1.0, abs=1e-12)
    f = _Sin()
    for (s0, h0, y_s), (s1, _, y_next) in zip(steps[:-1], steps[1:]):
        assert s1 == pytest.approx(s0 + h0, abs=1e-12)
        if adaptive:  # torchsde propagates the two-half-step solution
            y_m = y_s + f(None, y_s) * (h0 / 2)
            y_pred = y_m + f(None, y_m) * (h0 / 2)
        else:
            y_pred = y_s + f(None, y_s) * h0
        torch.testing.assert_close(y_next, y_pred, rtol=1e-12, atol=1e-12)
    s_last, h_last, y_last = steps[-1]
    if adaptive:
        y_m = y_last + f(None, y_last) * (h_last / 2)
        torch.testing.assert_close(ys[-1], y_m + f(None, y_m) * (h_last / 2))
    else:
        torch.testing.assert_close(ys[-1], y_last + f(None, y_last) * h_last)


@pytest.mark.parametrize("adjoint", [False, True])
def test_a_solve_without_regulariser_keeps_no_state_per_step(adjoint, tensors_held):
    """Regression: NeuralSDE kept the state of every drift evaluation on the module until the
    next forward, with or without a regulariser (the only reader), so a training step held
    O(steps) states after backward, also with the adjoint, whose forward otherwise keeps O(1)
    (measured: 102 states, 6.4 MiB, for 100 steps of a (256, 64) state). Now a solve of 100
    steps leaves the module holding as many tensors as one of 10 (the regularisation and
    nothing per step), where it held 103 and 12; with a regulariser the steps are kept."""
    torch.manual_seed(0)
    held = {}
    for dt in (0.1, 0.01):
        sde = NeuralSDE(_Sin(), _Const(0.1), EulerMaruyama(dt=dt), adjoint=adjoint)
        y0 = torch.randn(3, 2, requires_grad=True)
        ys = sde(y0, torch.tensor([0.0, 1.0]), adjoint_params=[y0] if adjoint else None)
        ys[-1].sum().backward()
        held[dt] = tensors_held(sde)
    assert held[0.1] == held[0.01] == 1  # sde.regularisation
    local = LocalHeuristic(1.0, sampling=AcceptedStepTime())
    reg = NeuralSDE(_Sin(), _Const(0.1), EulerMaruyama(dt=0.01), regulariser=local)
    reg(torch.randn(3, 2), torch.tensor([0.0, 1.0]))
    # the regularisation and the state of each of the 102 drift evaluations it samples from
    assert reg.nfe_forward == 102 and tensors_held(reg) == 1 + 102


@pytest.mark.parametrize("adjoint", [False, True])
def test_a_uniform_time_local_regulariser_keeps_no_state_per_step(
    adjoint, monkeypatch, tensors_held
):
    """Regression: with LocalHeuristic's default UniformTime sampling active, NeuralSDE kept the
    state of every drift evaluation until the next forward (103 tensors after a 100-step solve
    and backward, also with the adjoint), though the penalty reads y(t*) off the solve and only
    the step sizes from the evaluations. Now the module holds the regularisation alone after
    a 10- and a 100-step solve, and the penalty is, bit for bit, the one of the same solve with
    every state kept (the reference: _SDEFunc.reset made to keep them)."""
    from sciml.de.neural_sde import _SDEFunc

    def run(dt):
        torch.manual_seed(0)
        sde = NeuralSDE(
            _Sin(), _Const(0.1), EulerMaruyama(dt=dt), adjoint=adjoint, regulariser=LocalHeuristic()
        )
        y0 = torch.randn(3, 2, requires_grad=True)
        ys = sde(y0, torch.tensor([0.0, 1.0]), adjoint_params=[y0] if adjoint else None)
        (ys[-1].sum() + sde.regularisation).backward()
        return tensors_held(sde), sde.regularisation.detach(), y0.grad, sde.nfe_forward

    ours = {dt: run(dt) for dt in (0.1, 0.01)}
    assert ours[0.1][0] == ours[0.01][0] == 1  # sde.regularisation
    assert ours[0.01][3] > 100
    reset = _SDEFunc.reset
    monkeypatch.setattr(
        _SDEFunc, "reset", lambda self, keep: reset(self, "states" if keep == "times" else keep)
    )
    for dt, (_, penalty, grad, nfe) in ours.items():
        held, want, want_grad, _ = run(dt)
        assert held == 1 + nfe  # the reference kept every evaluation's state
        assert float(want) > 0 and torch.equal(penalty, want) and torch.equal(grad, want_grad)


class _Tanh(nn.Module):
    def __init__(self):
        super().__init__()
        self.lin = nn.Linear(2, 2)

    def forward(self, t, y):
        return torch.tanh(self.lin(y))


@pytest.mark.parametrize(
    "reg, kept",
    [
        (None, None),
        (LocalHeuristic(1.0), "times"),
        (LocalHeuristic(1.0, sampling=AcceptedStepTime()), "detached"),
        (GlobalHeuristic(1.0), "graph"),
    ],
)
def test_each_regulariser_keeps_what_it_reads_of_the_drift_evaluations(reg, kept, tensors_held):
    """What a training forward leaves in ``sde.sde.calls``, one entry per forward drift
    evaluation (``nfe_forward``, 21 for 20 steps of 0.05 plus torchsde's shape check): nothing
    without a regulariser; the times alone for UniformTime (it reads y(t*) off the solve); the
    detached states for AcceptedStepTime (it starts its step there); the states with their graph
    for GlobalHeuristic (it differentiates through them). In eval mode nothing is kept."""
    torch.manual_seed(0)
    sde = NeuralSDE(_Tanh(), _Const(0.1), EulerMaruyama(dt=0.05), regulariser=reg)
    y0, t = torch.randn(3, 2), torch.tensor([0.0, 1.0])
    ys = sde(y0, t)
    calls = sde.sde.calls
    if kept is None:
        assert calls == [] and tensors_held(sde) == 1
    else:
        assert sde.nfe_forward == 21 and len(calls) == 21
        states = [y for _, y in calls]
        if kept == "times":
            assert all(y is None for y in states) and tensors_held(sde) == 1
        else:
            assert tensors_held(sde) == 1 + 21
            # the first two evaluations (torchsde's shape check, the first step) are at y0
            assert torch.equal(states[0], y0) and torch.equal(states[1], y0)
            assert all((y.grad_fn is not None) == (kept == "graph") for y in states[2:])
        assert float(sde.regularisation.detach()) > 0 and ys.shape == (2, 3, 2)
    sde.eval()
    sde(y0, t)
    assert sde.sde.calls == [] and tensors_held(sde) == 1


class _Matrix(nn.Module):
    """Diffusion ``(batch, state, m)``: ``B`` plus, if ``scale``, ``scale * y`` in column 0."""

    def __init__(self, b, scale=0.0):
        super().__init__()
        self.b, self.scale = b, scale

    def forward(self, t, y):
        g = self.b.to(y).expand(y.shape[0], *self.b.shape).clone()
        if self.scale:
            g[:, :, 0] = g[:, :, 0] + self.scale * y
        return g


def _em_by_hand(f, g, y0, ts, bm, dt):
    """Fixed-step Euler-Maruyama from the same Brownian path: ``y += f dt + g(y) dW``."""
    y, out, t = y0, [y0], float(ts[0])
    for t_next in ts[1:].tolist():
        while t < t_next - 1e-12:
            h = min(dt, t_next - t)
            dw = bm(t, t + h)
            gy = g(None, y)
            y = (
                y
                + f(None, y) * h
                + (gy * dw if gy.dim() == 2 else torch.einsum("bsm,bm->bs", gy, dw))
            )
            t += h
        out.append(y)
    return torch.stack(out)


@pytest.mark.parametrize(
    "noise_type, diffusion, m",
    [
        ("general", _Matrix(torch.tensor([[0.3, -0.2, 0.1], [0.05, 0.4, -0.3]]), scale=0.5), 3),
        ("additive", _Matrix(torch.tensor([[0.3, -0.2, 0.1], [0.05, 0.4, -0.3]])), 3),
        ("additive", _Const(0.4), 2),
        ("scalar", _Matrix(torch.tensor([[0.3], [-0.5]]), scale=0.2), 1),
        ("scalar", _Const(0.4), 1),
        ("diagonal", _Lin(0.3), 2),
    ],
)
def test_noise_types_match_euler_maruyama_by_hand(noise_type, diffusion, m):
    """Every noise type: fixed-step EM from a given Brownian path of ``m`` channels equals the
    same recursion written out, ``y += f(y) dt + sigma(y) dW`` (2-D outputs as the docstring
    says: the diagonal for ``"additive"``, the column for ``"scalar"``)."""
    import torchsde

    torch.manual_seed(0)
    y0 = torch.randn(5, 2, dtype=torch.float64)
    ts = torch.tensor([0.0, 0.35, 1.0], dtype=torch.float64)
    bm = torchsde.BrownianInterval(0.0, 1.0, size=(5, m), dtype=torch.float64, entropy=3)
    sde = NeuralSDE(_Lin(-0.8), diffusion, EulerMaruyama(dt=0.05), noise_type=noise_type)
    with torch.no_grad():
        ys = sde(y0, ts, bm=bm)
    g = diffusion
    if noise_type == "scalar" and isinstance(diffusion, _Const):
        g = lambda t, y: torch.full_like(y, 0.4).unsqueeze(-1)  # noqa: E731 (the column)
    ref = _em_by_hand(_Lin(-0.8), g, y0, ts, bm, 0.05)
    torch.testing.assert_close(ys, ref, rtol=1e-12, atol=1e-12)


def test_general_noise_ornstein_uhlenbeck_covariance():
    """``dy = -y dt + B dW`` with ``B`` 2 x 3: ``Cov y(T) = B B^T (1 - e^{-2T}) / 2`` from
    ``y0 = 0`` (EM's discretisation error at dt = 0.01 is ~1% of it; 8000 paths)."""
    b = torch.tensor([[0.6, -0.3, 0.2], [0.1, 0.5, -0.4]], dtype=torch.float64)
    sde = NeuralSDE(_Lin(-1.0), _Matrix(b), EulerMaruyama(dt=0.01), noise_type="general")
    torch.manual_seed(1)
    with torch.no_grad():
        y = sde(torch.zeros(8000, 2, dtype=torch.float64), torch.tensor([0.0, 1.0]))[-1]
    cov = torch.cov(y.T)
    exact = b @ b.T * (1 - math.exp(-2.0)) / 2
    torch.testing.assert_close(cov, exact, rtol=0, atol=0.02)
    assert float(y.mean(0).abs().max()) < 4 * math.sqrt(float(exact.diagonal().max()) / 8000)


def test_additive_diagonal_equals_diagonal_and_langevin_declares_additive():
    """A 2-D additive diffusion solves the same SDE as the diagonal declaration: equal paths
    and equal adaptive NFE from the same Brownian path; LangevinSDE declares its noise additive,
    the other stable classes (multiplicative noise) diagonal."""
    import torchsde

    y0 = torch.tensor([[1.0, -0.5], [0.2, 0.8]], dtype=torch.float64)
    t = torch.tensor([0.0, 2.0], dtype=torch.float64)
    solver = EulerMaruyama(dt=0.1, adaptive=True, rtol=1e-3, atol=1e-3)
    out = {}
    for kind in ("diagonal", "additive"):
        bm = torchsde.BrownianInterval(0.0, 2.0, size=(2, 2), dtype=torch.float64, entropy=7)
        sde = NeuralSDE(_Sin(), _Const(0.3), solver, noise_type=kind)
        with warnings.catch_warnings(record=True) as caught:
            warnings.simplefilter("always")
            with torch.no_grad():
                out[kind] = (sde(y0, t, bm=bm), sde.nfe_forward)
        assert any("not guaranteed to converge" in str(w.message) for w in caught) == (
            kind == "diagonal"
        )
    assert torch.equal(out["diagonal"][0], out["additive"][0])
    assert out["diagonal"][1] == out["additive"][1] > 10
    kinds = [
        c(StableSDEConfig(2)).sde.noise_type
        for c in (LangevinSDE, LinearNoiseSDE, GeometricSDE, NaiveSDE)
    ]
    assert kinds == ["additive", "diagonal", "diagonal", "diagonal"]


def test_step_doubling_error_with_general_noise_by_hand():
    """``dy = a y dt + B dW``: ``y_half - y_full = a (h/2) (a y h/2 + B dW_1)``, with ``dW_1``
    the first of the function's two draws."""
    a, h = -0.7, 0.3
    b = torch.tensor([[0.3, -0.2, 0.1], [0.05, 0.4, -0.3]], dtype=torch.float64)
    sde = NeuralSDE(_Lin(a), _Matrix(b), noise_type="general")
    y = torch.tensor([[1.0, -2.0], [0.5, 0.1]], dtype=torch.float64)
    torch.manual_seed(5)
    e = step_doubling_error(sde.sde, 0.0, y, h, rtol=0.0, atol=1.0)
    torch.manual_seed(5)
    dw1 = torch.randn(2, 3, dtype=torch.float64) * math.sqrt(h / 2)
    diff = a * (h / 2) * (a * y * h / 2 + dw1 @ b.T)
    assert float(e.detach()) == pytest.approx(float(diff.pow(2).mean().sqrt()), rel=1e-12)


@pytest.mark.parametrize(
    "noise_type, diffusion, match",
    [
        ("diagonal", _Matrix(torch.zeros(2, 2)), r"\(batch, state\) for noise_type='diagonal'"),
        ("general", _Const(0.1), r"\(batch, state, m\) for noise_type='general'"),
        ("scalar", _Matrix(torch.zeros(2, 2)), r"noise_type='scalar'.*got \(3, 2, 2\)"),
        ("additive", _Matrix(torch.zeros(3, 2)), r"got \(3, 3, 2\)"),
    ],
)
def test_diffusion_of_the_wrong_shape_is_named(noise_type, diffusion, match):
    sde = NeuralSDE(_Lin(-1.0), diffusion, EulerMaruyama(dt=0.1), noise_type=noise_type)
    with pytest.raises(ValueError, match=match):
        sde(torch.ones(3, 2, dtype=torch.float64), torch.tensor([0.0, 1.0]))


@pytest.mark.parametrize(
    "reg", [LocalHeuristic(stiffness_weight=1.0), GlobalHeuristic(stiffness_weight=0.5)]
)
def test_a_stiffness_weight_is_refused_not_dropped(reg):
    """The SDE penalty is w_E E |h| alone: a stiffness weight used to be dropped silently (the
    penalty equalled the one without it). Zero weights, numbers or ConstantWeight(0), pass."""
    from sciml.de import ConstantWeight, LinearWeight
    from sciml.errors import ConfigError

    with pytest.raises(ConfigError, match="stiffness_weight=.* would be ignored"):
        NeuralSDE(_Lin(-1.0), _Const(0.1), regulariser=reg)
    # 0 at iteration 0 but not after: refused too (LangevinSDE hands it to its NeuralSDE)
    ramped = LocalHeuristic(stiffness_weight=LinearWeight(0.0, 1.0, 5))
    with pytest.raises(ConfigError, match="step-doubling error only"):
        LangevinSDE(StableSDEConfig(2), regulariser=ramped)
    for ok in (0, 0.0, ConstantWeight(0.0)):
        NeuralSDE(_Lin(-1.0), _Const(0.1), regulariser=LocalHeuristic(0.1, stiffness_weight=ok))


def test_unknown_noise_type_is_named():
    with pytest.raises(ValueError, match=r"expected noise_type in .*got 'diag'"):
        NeuralSDE(_Lin(-1.0), _Const(0.1), noise_type="diag")


class _Scale(nn.Module):
    """A learnable constant diffusion ``b`` (additive noise)."""

    def __init__(self, b):
        super().__init__()
        self.b = nn.Parameter(torch.tensor(b, dtype=torch.float64))

    def forward(self, t, y):
        return self.b * torch.ones_like(y)


class _LearnedMatrix(nn.Module):
    def __init__(self):
        super().__init__()
        b = [[0.3, -0.2, 0.1], [0.05, 0.4, -0.3]]
        self.b = nn.Parameter(torch.tensor(b, dtype=torch.float64))

    def forward(self, t, y):
        return self.b.expand(y.shape[0], 2, 3)


@pytest.mark.parametrize(
    "noise_type, diffusion, m", [("additive", _Scale, 2), ("general", _LearnedMatrix, 3)]
)
def test_adjoint_gradients_agree_with_direct_for_matrix_noise(noise_type, diffusion, m):
    """torchsde's stochastic adjoint against backprop through the same EM solve on the same
    Brownian path: drift gradients agree to O(dt) (measured 4e-4 relative at dt = 1e-3),
    diffusion gradients (exact for additive noise) to 1e-8 of their largest entry (for
    general noise they differ by 1.4e-9 with or without the path's dt hint, but how that
    splits over the entries depends on how the hint cuts the path's tree)."""
    import torchsde

    grads = []
    for adjoint in (False, True):
        torch.manual_seed(0)
        sde = NeuralSDE(
            _Lin(-0.8), diffusion(0.3) if diffusion is _Scale else diffusion(),
            EulerMaruyama(dt=1e-3), adjoint=adjoint, noise_type=noise_type,
        )  # fmt: skip
        y0 = torch.tensor([[1.0, -0.5], [0.3, 0.7]], dtype=torch.float64)
        bm = torchsde.BrownianInterval(0.0, 1.0, size=(2, m), dtype=torch.float64, entropy=3)
        ys = sde(y0, torch.tensor([0.0, 1.0], dtype=torch.float64), bm=bm)
        (ys[-1] ** 2).sum().backward()
        grads.append((sde.sde.drift.a.grad.clone(), sde.sde.diffusion.b.grad.clone()))
    (da, db), (aa, ab) = grads
    torch.testing.assert_close(aa, da, rtol=2e-3, atol=0)
    torch.testing.assert_close(ab, db, rtol=1e-8, atol=1e-8 * float(db.abs().max()))


def test_adaptive_adjoint_steps_adaptively_and_agrees_with_direct():
    """An adaptive solver with ``adjoint=True``: backprop through the adaptive EM solve against
    the adjoint on the same Brownian path agree to 3e-3 (measured 2.3e-3 for the drift's ``a``,
    7.7e-4 for the diffusion's ``b``). The adjoint's backward solve used torchsde's fixed steps
    of ``dt`` (here the first step's size 0.5: 2 steps), and ``b``'s gradient was 13.5% off."""
    import torchsde

    grads = []
    solver = EulerMaruyama(dt=0.5, adaptive=True, rtol=1e-4, atol=1e-5)
    for adjoint in (False, True):
        torch.manual_seed(0)
        sde = NeuralSDE(_Lin(-0.8), _Scale(0.3), solver, adjoint=adjoint, noise_type="additive")
        y0 = torch.tensor([[1.0, -0.5], [0.3, 0.7]], dtype=torch.float64)
        bm = torchsde.BrownianInterval(0.0, 1.0, size=(2, 2), dtype=torch.float64, entropy=3)
        ys = sde(y0, torch.tensor([0.0, 1.0], dtype=torch.float64), bm=bm)
        (ys[-1] ** 2).sum().backward()
        grads.append(torch.stack([sde.sde.drift.a.grad, sde.sde.diffusion.b.grad]))
        if adjoint:  # the backward solve steps as finely as the forward one
            assert sde.nfe_backward > 0.5 * sde.nfe_forward
    torch.testing.assert_close(grads[1], grads[0], rtol=3e-3, atol=0)


@pytest.mark.parametrize("cls", [LangevinSDE, LinearNoiseSDE, GeometricSDE])
def test_stable_classes_adjoint_gradients_agree_with_direct(cls):
    """The stable classes with ``adjoint=True`` against backprop through the same EM solve on the
    same Brownian path (``torch.manual_seed`` fixes it), for one forward pass and for two before
    one backward: the gradients agree to the EM error (all of them together 0.2-1.3% at
    dt = 0.01, falling with dt; each tensor within 13%, sigma the worst), and every network
    gets one. The adjoint's backward solve found the path cleared (TypeError: 'NoneType' object
    is not callable) and was not given the drift's and diffusion's parameters, which the model,
    not its NeuralSDE, holds."""
    t = torch.linspace(0, 1, 5, dtype=torch.float64)
    g = torch.Generator().manual_seed(1)
    xs = [torch.randn(3, 5, 2, generator=g, dtype=torch.float64) for _ in range(2)]

    def grads(adjoint, n):
        torch.manual_seed(0)
        m = cls(StableSDEConfig(2, hidden=4, width=8), EulerMaruyama(dt=0.01), adjoint=adjoint)
        m = m.double()
        m.noise_scale = 1.0  # a diffusion that matters
        loss = 0.0
        for i in range(n):
            torch.manual_seed(10 + i)
            loss = loss + (m(t, xs[i]) ** 2).sum()
        loss.backward()
        assert m.path is None
        return {k: p.grad for k, p in m.named_parameters()}

    for n in (1, 2):
        direct, adjoint = grads(False, n), grads(True, n)
        for k, gd in direct.items():
            assert float(gd.norm()) > 0, k
            rel = float((adjoint[k] - gd).norm() / gd.norm())
            assert rel < 0.15, (k, rel)
        d, a = (torch.cat([v.flatten() for v in gr.values()]) for gr in (direct, adjoint))
        assert float((a - d).norm() / d.norm()) < 0.03


def test_naive_sde_adjoint_gradients_are_those_of_backprop_for_a_mixing_diffusion():
    """NaiveSDE's g(t, z, X) reads every hidden channel: torchsde's diagonal-noise Ito adjoint
    corrects the drift by J^T g, diag(J) g only where channel i of g reads z_i alone, and its
    gradients were wrong (initial.weight off by 0.54 of 0.72, g_net.2.weight by 3.9 of 0.088).
    Solved as general noise, diag(g), under the adjoint: hand-set networks give g = (c z_2, 0)
    and f = 0, so z_2 stays z_2(0) and z_1(T) = z_1(0) + c z_2 W(T) exactly for any dt, and the
    gradients that do not meet a quadratic variation (all but g_net.0's) are backprop's to
    1e-6; the forward solve is the same. Direct backprop keeps diagonal noise."""
    cfg = StableSDEConfig(1, hidden=2, width=2, out_channels=1)
    t = torch.tensor([0.0, 0.5, 1.0], dtype=torch.float64)
    x = torch.tensor([[[1.0], [0.0], [0.0]], [[-0.5], [0.0], [0.0]]], dtype=torch.float64)
    c = 1.5

    def run(adjoint):
        m = NaiveSDE(cfg, EulerMaruyama(dt=0.05), adjoint=adjoint).double()
        m.noise_scale = 1.0
        with torch.no_grad():
            for p in m.parameters():
                p.zero_()
            m.initial.weight.copy_(torch.tensor([[0.3], [1.0]]))
            m.initial.bias.copy_(torch.tensor([0.1, 0.4]))
            # g_1 = c (relu(z_2) - relu(-z_2)) = c z_2, g_2 = 0 (inputs t, z_1, z_2, X)
            m.g_net[0].weight.copy_(torch.tensor([[0.0, 0.0, 1.0, 0.0], [0.0, 0.0, -1.0, 0.0]]))
            m.g_net[2].weight.copy_(torch.tensor([[c, -c], [0.0, 0.0]]))
            m.readout.weight.copy_(torch.tensor([[1.0, 0.0]]))  # the output is z_1(T)
        torch.manual_seed(0)
        out = m(t, x)
        (out**2).sum().backward()
        grads = {k: p.grad for k, p in m.named_parameters() if p.grad is not None}
        return out.detach(), grads, (m.noise_type, m.sde.noise_type)

    (out_d, direct, kinds_d), (out_a, adjoint, kinds_a) = run(False), run(True)
    torch.testing.assert_close(out_a, out_d, rtol=0, atol=1e-14)
    for k in ("initial.weight", "initial.bias", "g_net.2.weight", "g_net.2.bias", "f_net.2.bias"):
        assert float(direct[k].abs().max()) > 1e-3, k
        torch.testing.assert_close(adjoint[k], direct[k], rtol=1e-6, atol=1e-8, msg=k)
    assert kinds_d == ("diagonal", "diagonal") and kinds_a == ("diagonal", "general")


def test_local_time_drawn_onto_an_output_time(monkeypatch):
    """``t*`` landing on an output time added a repeated time, which torchsde refuses
    ("Evaluation times `ts` must be strictly increasing"). That output is ``y(t*)``: on the same
    Brownian path the penalty equals the one for the same ``t*`` added to ``[0, 1]``."""
    import torchsde

    monkeypatch.setattr(torch, "rand", lambda *a, **k: torch.tensor(0.5, dtype=torch.float64))
    y0 = torch.tensor([[1.0, 0.5], [0.2, -0.3]], dtype=torch.float64)

    def run(times, reg):
        bm = torchsde.BrownianInterval(0.0, 1.0, size=(2, 2), dtype=torch.float64, entropy=3)
        sde = NeuralSDE(_Lin(-0.9), _Lin(0.4), EulerMaruyama(dt=0.05), regulariser=reg)
        torch.manual_seed(0)  # the step-doubling draws
        ys = sde(y0, torch.tensor(times, dtype=torch.float64), bm=bm)
        return ys, sde.regularisation

    ys, pen = run([0.0, 0.5, 1.0], LocalHeuristic(1.0))
    _, pen_added = run([0.0, 1.0], LocalHeuristic(1.0))
    plain, _ = run([0.0, 0.5, 1.0], None)
    assert ys.shape == (3, 2, 2) and torch.equal(ys, plain)
    pen, pen_added = float(pen.detach()), float(pen_added.detach())
    assert pen > 0 and pen == pytest.approx(pen_added, rel=1e-12)


def test_euler_maruyama_names_dt_in_its_error():
    """EulerMaruyama's step is ``dt``; a bad one was reported as ``step_size``, a field it does
    not have. It follows the fixed-step rule (a real number, finite, > 0): ``dt=inf`` with
    ``adaptive=True`` was accepted and torchsde's solve never returned; ``dt=True`` was a step
    of 1."""
    for dt in (0.0, -0.1, float("nan"), float("inf"), True, "0.1", None):
        for adaptive in (False, True):
            with pytest.raises(ValueError) as err:
                EulerMaruyama(dt=dt, adaptive=adaptive)
            assert str(err.value) == f"expected a finite dt > 0, got {dt!r}"


def test_an_unused_parameter_gets_zeros_under_the_adjoint_and_none_under_backprop():
    """As for NeuralODE (documented in NeuralSDE's ``adjoint``): torchsde's adjoint gives a
    parameter the drift or diffusion never uses a ``grad`` of zeros, direct backprop None.
    With sigma = 0 the used drift parameter's gradient is the ODE's: dy = a y dt, a = -1,
    d/da sum_b y_b(1) = 2/e (Euler-Maruyama at dt = 0.01: within 1%)."""

    class Diffusion(nn.Module):
        def __init__(self):
            super().__init__()
            self.s = nn.Parameter(torch.tensor(0.0, dtype=torch.float64))
            self.unused = nn.Parameter(torch.ones(2, dtype=torch.float64))

        def forward(self, t, y):
            return self.s * torch.ones_like(y)

    for adjoint in (False, True):
        f, g = LinearWithUnusedParameter(), Diffusion()
        model = NeuralSDE(f, g, EulerMaruyama(dt=0.01), adjoint=adjoint)
        y0 = torch.ones(2, 1, dtype=torch.float64)
        model(y0, torch.tensor([0.0, 1.0], dtype=torch.float64))[-1].sum().backward()
        assert float(f.a.grad) == pytest.approx(2 / math.e, rel=1e-2)
        if adjoint:
            assert torch.equal(f.unused.grad, torch.zeros(3, dtype=torch.float64))
            assert torch.equal(g.unused.grad, torch.zeros(2, dtype=torch.float64))
        else:
            assert f.unused.grad is None and g.unused.grad is None
    assert "never uses" in NeuralSDE.__doc__ and "zeros under the adjoint" in NeuralSDE.__doc__


def test_a_single_output_time_returns_y0_as_neural_ode_does():
    """NeuralSDE at one time is y0[None], as NeuralODE and torchdiffeq give (it was refused
    with 'time >= 2'): no drift or diffusion evaluation, penalty 0, gradient w.r.t. y0 the
    weights; an empty t is still refused."""
    reg = GlobalHeuristic(1.0)
    sde = NeuralSDE(_Lin(-1.0), _Const(0.3), EulerMaruyama(dt=0.125), regulariser=reg)
    sde.train()
    y0 = torch.tensor([[1.0, -2.0], [0.5, 3.0]], dtype=torch.float64, requires_grad=True)
    ys = sde(y0, torch.tensor([0.25], dtype=torch.float64))
    assert ys.shape == (1, 2, 2) and torch.equal(ys[0], y0.detach())
    assert sde.nfe_forward == 0 and float(sde.regularisation) == 0.0
    w = torch.tensor([[1.0, 2.0], [3.0, 4.0]], dtype=torch.float64)
    (ys[0] * w).sum().backward()
    assert torch.equal(y0.grad, w)
    with pytest.raises(ValueError, match=r"time >= 1, got \(0,\)"):
        sde(y0, torch.tensor([], dtype=torch.float64))
