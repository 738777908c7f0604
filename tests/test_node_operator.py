"""The ``node`` operator family and the ``lotka_volterra`` generator."""

from __future__ import annotations

import fractions
import json

import numpy as np
import pytest
import torch
import torchdiffeq

import sciml
from sciml.data.generators import GENERATORS, generate
from sciml.data.generators.lotka_volterra import (
    generate_lotka_volterra,
    lotka_volterra_invariant,
    lotka_volterra_rhs,
)
from sciml.de import RK4, Euler
from sciml.models import NODE, NODEConfig

RATES = (1.5, 1.0, 3.0, 1.0)


def _linear_node(a: torch.Tensor, **config) -> NODE:
    """A NODE whose field is exactly ``dy/dt = a y`` (no hidden layer, zero bias)."""
    model = NODE(NODEConfig(state_dim=a.shape[0], hidden=(), **config)).double()
    lin = [m for m in model.modules() if isinstance(m, torch.nn.Linear)]
    assert len(lin) == 1
    with torch.no_grad():
        lin[0].weight.copy_(a)
        lin[0].bias.zero_()
    return model.eval()


def test_linear_field_matches_matrix_exponential():
    a = torch.tensor([[-0.3, 2.0], [-2.0, -0.1]], dtype=torch.float64)
    model = _linear_node(a, rtol=1e-8, atol=1e-10)
    y0 = torch.tensor([[1.0, 0.5], [-0.2, 2.0]], dtype=torch.float64)
    t = torch.linspace(0.0, 3.0, 7, dtype=torch.float64)
    with torch.no_grad():
        pred = model(y0, t=t)  # (batch, time, state)
    exact = torch.stack([y0 @ torch.linalg.matrix_exp(a * s).T for s in t], dim=1)
    assert pred.shape == (2, 7, 2)
    torch.testing.assert_close(pred, exact, rtol=1e-6, atol=1e-7)
    assert model.nfe > 0


def test_normalisation_is_a_change_of_variables():
    # dy/dt = s * W((y - c) / s) with W = a: z = (y - c) / s solves dz/dt = a z
    a = torch.tensor([[0.0, 1.0], [-1.0, 0.0]], dtype=torch.float64)
    c, s = (3.0, 1.5), (2.0, 0.5)
    model = _linear_node(a, rtol=1e-8, atol=1e-10, center=c, scale=s)
    z0 = torch.tensor([[0.3, -0.4]], dtype=torch.float64)
    ct, st = torch.tensor(c, dtype=torch.float64), torch.tensor(s, dtype=torch.float64)
    t = torch.linspace(0.0, 2.0, 5, dtype=torch.float64)
    with torch.no_grad():
        pred = model(ct + st * z0, t=t)
    exact = torch.stack([ct + st * (z0 @ torch.linalg.matrix_exp(a * k).T) for k in t], dim=1)
    torch.testing.assert_close(pred, exact, rtol=1e-6, atol=1e-7)


def test_float64_model_takes_the_configs_constants_in_float64():
    """``model.double()`` with ``center = (0.1, 0.7)``, ``scale = (0.3, 1.1)``: the buffers are
    the config's numbers in float64 and the prediction meets the closed form to 1e-10 (measured
    5.8e-12 at rtol = atol = 1e-12). The buffers were float32 and converted, 0.1 became
    0.10000000149, and the prediction was off by 1.0e-7."""
    a = torch.tensor([[0.0, 1.0], [-1.0, 0.0]], dtype=torch.float64)
    c, s = (0.1, 0.7), (0.3, 1.1)
    model = _linear_node(a, rtol=1e-12, atol=1e-12, center=c, scale=s)
    ct, st = torch.tensor(c, dtype=torch.float64), torch.tensor(s, dtype=torch.float64)
    field = model.ode.field.net
    assert torch.equal(field.center, ct) and torch.equal(field.scale, st)
    y0 = torch.tensor([[0.3, -0.4], [1.7, 0.2]], dtype=torch.float64)
    t = torch.linspace(0.0, 2.0, 5, dtype=torch.float64)
    with torch.no_grad():
        pred = model(y0, t=t)
    z0 = (y0 - ct) / st
    exact = torch.stack([ct + st * (z0 @ torch.linalg.matrix_exp(a * k).T) for k in t], dim=1)
    torch.testing.assert_close(pred, exact, rtol=0, atol=1e-10)
    back = model.float()  # and back: float32 buffers rounded once from the config
    assert (
        torch.equal(field.center, torch.tensor(c))
        and back.ode.field.net.scale.dtype == torch.float32
    )


def test_save_load_keeps_normalisation_and_outputs(tmp_path):
    torch.manual_seed(0)
    model = NODE(NODEConfig(hidden=(8,), center=(3.0, 1.5), scale=(1.2, 0.8))).eval()
    model.save_pretrained(tmp_path)
    loaded = sciml.load(tmp_path)
    y0, t = torch.rand(3, 2) + 1, torch.linspace(0, 1, 4)
    assert isinstance(loaded, NODE) and loaded.config == model.config
    with torch.no_grad():
        assert torch.equal(model(y0, t=t), loaded(y0, t=t))


def test_bad_inputs_say_what_was_expected():
    model = NODE(NODEConfig(hidden=(4,)))
    with pytest.raises(ValueError, match=r"expected u of shape \(batch, 2\)"):
        model(torch.rand(3, 5), t=torch.linspace(0, 1, 3))
    with pytest.raises(ValueError, match="needs the output times"):
        model(torch.rand(3, 2))
    with pytest.raises(ValueError, match="scale: expected 2 values"):
        NODEConfig(scale=(1.0,))


def test_normalisation_constants_from_numpy_are_the_configs_floats():
    """``center=data.mean(0)`` (a float64 NumPy array) made float64 buffers in a float32 model:
    every forward failed with "mat1 and mat2 must have the same dtype". The constants are now
    a tuple of Python floats, and the model equals the one built from the same tuples."""
    mean, spread = np.array([0.1, 0.2]), np.array([2.0, 0.5], dtype=np.float32)
    config = NODEConfig(hidden=(4,), center=mean, scale=spread)
    assert config.center == (0.1, 0.2) and config.scale == (2.0, 0.5)
    assert all(type(v) is float for v in (*config.center, *config.scale))
    torch.manual_seed(0)
    model = NODE(config).eval()
    torch.manual_seed(0)
    same = NODE(NODEConfig(hidden=(4,), center=(0.1, 0.2), scale=(2.0, 0.5))).eval()
    u, t = torch.rand(3, 2), torch.linspace(0, 1, 3)
    with torch.no_grad():
        assert torch.equal(model(u, t=t), same(u, t=t))


@pytest.mark.parametrize(
    "kw, match",
    [
        (
            dict(center=(float("nan"), 0.0)),
            r"center: expected 2 finite real numbers .*got \(nan, 0.0\)",
        ),
        (
            dict(scale=(float("inf"), 1.0)),
            r"scale: expected 2 finite real numbers .*got \(inf, 1.0\)",
        ),
        (
            dict(center=(True, False)),
            r"center: expected 2 finite real numbers .*got \(True, False\)",
        ),
        (dict(scale="ab"), r"scale: expected 2 finite real numbers .*got 'ab'"),
    ],
)
def test_normalisation_constants_must_be_finite_numbers(kw, match):
    """A NaN or inf center / scale failed every solve as "shrank its step to zero ... the field
    is stiff", a bool center failed in torch's bool subtraction, a string in torch.tensor."""
    with pytest.raises(ValueError, match=match):
        NODEConfig(**kw)


def test_regularised_training_step_has_a_penalty_and_gradients():
    from sciml.de import LocalHeuristic

    torch.manual_seed(0)
    model = NODE(NODEConfig(hidden=(8,)), regulariser=LocalHeuristic(error_weight=1.0)).train()
    pred = model(torch.rand(4, 2), t=torch.linspace(0, 1, 3))
    assert float(model.regularisation.detach()) > 0
    (pred.pow(2).mean() + model.regularisation).backward()
    assert all(p.grad is not None for p in model.parameters())


def test_lotka_volterra_conserves_its_invariant_and_matches_rk4():
    out = generate_lotka_volterra(6, 41, seed=3, t_final=4.0)
    traj = np.stack([out["fields"]["prey"], out["fields"]["predator"]], -1).astype(np.float64)
    v = lotka_volterra_invariant(traj, *RATES)
    # float32 storage: relative rounding ~6e-8 of V ~ 3
    assert np.abs(v - v[:, :1]).max() < 2e-6
    np.testing.assert_allclose(traj[:, 0], out["params"]["initial_state"], rtol=1e-7)
    # an independent fixed-step RK4 in float64 (200 steps per output interval of 0.1)
    y, h = out["params"]["initial_state"].copy(), 0.1 / 200
    for _ in range(200 * 40):
        k1 = lotka_volterra_rhs(y, *RATES)
        k2 = lotka_volterra_rhs(y + h / 2 * k1, *RATES)
        k3 = lotka_volterra_rhs(y + h / 2 * k2, *RATES)
        k4 = lotka_volterra_rhs(y + h * k3, *RATES)
        y = y + h / 6 * (k1 + 2 * k2 + 2 * k3 + k4)
    np.testing.assert_allclose(traj[:, -1], y, rtol=1e-6)


def test_lotka_volterra_generator_writes_the_sciml_layout(tmp_path):
    assert "lotka_volterra" in GENERATORS
    path = generate("lotka_volterra", n=5, resolution=11, out=tmp_path / "lv.h5", seed=1)
    ds = sciml.data.open(path)
    data = ds.read(slice(None), None, ["prey", "predator"])
    assert data.shape == (5, 11, 2)
    assert ds.attrs["generator_settings"]["seed"] == 1
    np.testing.assert_allclose(ds.time, np.linspace(0, 5, 11))
    with pytest.raises(ValueError, match="ic_low <= ic_high"):
        generate_lotka_volterra(2, 5, ic_low=2.0, ic_high=1.0)


@pytest.mark.parametrize("solver, interp", [("rk4", "cubic"), ("euler", "linear")])
def test_a_fixed_step_node_from_its_config_is_torchdiffeqs_fixed_step_solve(solver, interp):
    """``NODEConfig(solver="rk4" or "euler", step_size=h)`` integrates its field with that
    fixed step (there was no fixed-step choice in the config): in float64 the trajectory equals
    torchdiffeq's own ``odeint(method=..., options=dict(step_size=h))`` on the same field (RK4
    with the cubic Hermite outputs sciml's RK4 reads off a step, Euler with torchdiffeq's
    default line) to round-off, output times between grid points included; the cost is the
    steps' (RK4: 4 per step, plus 1 for the output inside the last step)."""
    torch.manual_seed(0)
    config = NODEConfig(
        hidden=(8,), solver=solver, step_size=0.1, center=(0.5, -0.2), scale=(2.0, 0.5)
    )
    model = NODE(config).double().eval()
    u = torch.randn(3, 2, dtype=torch.float64)
    t = torch.tensor([0.0, 0.25, 0.5, 0.93, 1.0], dtype=torch.float64)
    with torch.no_grad():
        got = model(u, t=t)
        want = torchdiffeq.odeint(
            model.ode.field.net, u, t, method=solver, options={"step_size": 0.1, "interp": interp}
        )
    torch.testing.assert_close(got, want.transpose(0, 1), rtol=0, atol=1e-14)
    assert model.nfe == {"rk4": 4 * 10 + 1, "euler": 10}[solver]
    # and it is not the adaptive solve: a tight dopri5 solve is the steps' error away (RK4
    # 2.3e-9, far above the round-off the comparison above allows)
    tight = NODE(NODEConfig(hidden=(8,), rtol=1e-12, atol=1e-12, center=config.center,
                            scale=config.scale)).double().eval()  # fmt: skip
    tight.load_state_dict(model.state_dict())
    with torch.no_grad():
        assert float((tight(u, t=t) - got).abs().max()) > 1e-10


def test_a_fixed_step_node_saves_and_loads_its_solver(tmp_path):
    """The fixed-step choice travels with the checkpoint: config.json holds solver and
    step_size, and the loaded NODE solves with RK4(step_size=0.05) to the same numbers."""
    torch.manual_seed(0)
    model = NODE(NODEConfig(hidden=(8,), solver="rk4", step_size=0.05)).eval()
    model.save_pretrained(tmp_path)
    saved = json.loads((tmp_path / "config.json").read_text())["config"]
    assert (saved["solver"], saved["step_size"]) == ("rk4", 0.05)
    loaded = sciml.load(tmp_path)
    assert loaded.config == model.config and loaded.ode.solver == RK4(step_size=0.05)
    y0, t = torch.rand(3, 2) + 1, torch.linspace(0, 1, 4)
    with torch.no_grad():
        assert torch.equal(model(y0, t=t), loaded(y0, t=t))


@pytest.mark.parametrize(
    "fields, message",
    [
        ({"solver": "rk4"}, r"step_size: solver 'rk4' takes fixed steps and expected a finite "
                            r"step_size > 0, got None; pass e.g. NODEConfig\(solver='rk4', "
                            r"step_size=0.01\)"),
        ({"solver": "euler", "step_size": 0.0}, r"expected a finite step_size > 0, got 0.0"),
        ({"solver": "rk4", "step_size": -0.1}, r"expected a finite step_size > 0, got -0.1"),
        ({"solver": "rk4", "step_size": float("inf")}, r"step_size > 0, got inf"),
        ({"solver": "rk4", "step_size": "0.1"}, r"step_size > 0, got '0.1'"),
        ({"step_size": 0.1}, r"step_size: solver 'dopri5' is adaptive .*expected step_size "
                             r"None, got 0.1; for fixed steps pick solver 'rk4' or 'euler'"),
        ({"solver": "rk45"}, r"solver: expected one of \['bosh3', 'dopri5', 'euler', 'rk4'\]"),
    ],
)  # fmt: skip
def test_a_bad_solver_choice_says_what_was_expected(fields, message):
    with pytest.raises(ValueError, match=message):
        NODEConfig(**fields)


@pytest.mark.parametrize("solver", ["rk4", "euler"])
@pytest.mark.parametrize("step", [0.0, -0.1, float("inf"), float("nan"), "0.1", True, None])
def test_a_bad_step_size_gets_one_message_from_the_solver_and_from_the_config(solver, step):
    """The rule for a fixed step (a real number, finite, > 0) lives in the solver; NODEConfig
    quotes its message and says where it came from. Before, the two checked apart: RK4 took
    ``step_size=True`` (a step of 1) and refused ``"0.1"`` or ``None`` with a bare TypeError
    from ``>``, and its message for 0 or nan left out "finite"."""
    cls = {"rk4": RK4, "euler": Euler}[solver]
    want = f"expected a finite step_size > 0, got {step!r}"
    with pytest.raises(ValueError) as direct:
        cls(step_size=step)
    assert str(direct.value) == want
    with pytest.raises(ValueError) as config:
        NODEConfig(solver=solver, step_size=step)
    assert str(config.value) == (
        f"step_size: solver {solver!r} takes fixed steps and {want}; pass e.g. "
        f"NODEConfig(solver={solver!r}, step_size=0.01)"
    )


@pytest.mark.parametrize(
    "step", [np.float32(0.25), np.float64(0.25), np.int64(1), fractions.Fraction(1, 4)]
)
def test_a_numpy_or_fraction_step_size_is_a_float_that_saves_and_solves(step, tmp_path):
    """The solvers take any real step (``numbers.Real``: numpy scalars, Fractions) and hold it
    as a Python float. Before, NODEConfig kept the numpy scalar, so ``save_pretrained`` failed
    at the end of training (ConfigError: not JSON-serialisable), and a Fraction step failed in
    torchdiffeq's grid (``Tensor / Fraction``)."""
    h = float(step)
    y0, t = torch.tensor([[1.0, -2.0]], dtype=torch.float64), torch.tensor([0.0, 0.5, 1.0])
    got = torchdiffeq.odeint(lambda s, y: -y, y0, t.double(), **RK4(step_size=step).odeint_kwargs())
    want = torchdiffeq.odeint(
        lambda s, y: -y, y0, t.double(), method="rk4", options={"step_size": h}
    )
    assert type(RK4(step_size=step).step_size) is float and torch.equal(got[-1], want[-1])
    config = NODEConfig(hidden=(8,), solver="euler", step_size=step)
    assert type(config.step_size) is float and config.step_size == h
    assert config == NODEConfig(hidden=(8,), solver="euler", step_size=h)
    model = NODE(config).eval()
    model.save_pretrained(tmp_path)
    assert json.loads((tmp_path / "config.json").read_text())["config"]["step_size"] == h
    loaded = sciml.load(tmp_path)
    assert loaded.config == config and loaded.ode.solver == Euler(step_size=h)
    u = torch.rand(3, 2) + 1
    with torch.no_grad():
        assert torch.equal(model(u, t=t), loaded(u, t=t))


def test_node_config_tolerances_follow_the_solvers_rule():
    """NODEConfig's rtol / atol check is the adaptive solvers' (one message for both), also
    for a fixed-step solver, which ignores them."""
    from sciml.de import Dopri5

    want = r"expected rtol > 0 and atol > 0, got rtol=1e-05, atol=0.0"
    with pytest.raises(ValueError, match=want):
        Dopri5(rtol=1e-5, atol=0.0)
    for solver, step in (("dopri5", None), ("rk4", 0.1)):
        with pytest.raises(ValueError, match=want):
            NODEConfig(solver=solver, step_size=step, rtol=1e-5, atol=0.0)


def test_a_fixed_step_node_refuses_the_regularisers_that_need_an_adaptive_pair():
    """LocalHeuristic reads the embedded pair's error estimate, which RK4 does not have."""
    from sciml.de import LocalHeuristic
    from sciml.errors import ConfigError

    with pytest.raises(ConfigError, match="LocalHeuristic needs an adaptive embedded RK solver"):
        NODE(NODEConfig(solver="rk4", step_size=0.1), regulariser=LocalHeuristic())


class _DecayData(torch.utils.data.Dataset):
    """``dy/dt = a y`` from 16 initial states: input ``y(0)``, target ``y`` at 4 times."""

    def __init__(self) -> None:
        g = torch.Generator().manual_seed(5)
        a = torch.tensor([[-0.5, 1.0], [-1.0, -0.5]], dtype=torch.float64)
        self.t = torch.linspace(0, 1, 4)
        self.y0 = torch.randn(16, 2, generator=g, dtype=torch.float64)
        props = torch.stack([torch.linalg.matrix_exp(a * s) for s in self.t.double()])
        self.y = torch.einsum("kij,nj->nki", props, self.y0).float()  # (16, 4, 2)
        self.y0 = self.y0.float()

    def __len__(self) -> int:
        return 16

    def __getitem__(self, i: int) -> dict[str, torch.Tensor]:
        return {"input": self.y0[i], "t": self.t, "target": self.y[i]}


def _regularised_node_trainer(out_dir, callbacks=()):
    from sciml.de import LinearWeight, LocalHeuristic
    from sciml.train import TrainConfig, Trainer

    torch.manual_seed(0)
    # the error weight ramps 0 -> 1 over the run's 8 steps: a schedule that restarts at 0 on
    # resume weighs the penalty differently from step 5 on
    reg = LocalHeuristic(error_weight=LinearWeight(0.0, 1.0, 8), stiffness_weight=0.5)
    model = NODE(NODEConfig(hidden=(8,), rtol=1e-4, atol=1e-5), regulariser=reg)

    def loss(pred, target):
        return (pred - target).pow(2).mean() + model.regularisation

    config = TrainConfig(epochs=2, batch_size=4, lr=1e-2, checkpoint_every=2, seed=3)
    return Trainer(
        model, _DecayData(), loss=loss, config=config, out_dir=out_dir, callbacks=callbacks,
        progress=False,
    )  # fmt: skip


def test_a_crashed_regularised_run_resumes_its_weight_schedule_bit_for_bit(tmp_path):
    from _crash import CrashAt
    from safetensors.torch import load_file

    ref = _regularised_node_trainer(tmp_path / "ref")
    ref_result = ref.fit()
    assert ref.step == 8 and ref.model.ode.iteration == 8
    with pytest.raises(RuntimeError, match="crash"):
        _regularised_node_trainer(tmp_path / "run", [CrashAt(5)]).fit()
    saved = load_file(str(tmp_path / "run" / "last" / "model.safetensors"))
    assert saved["ode.iteration"].item() == 4  # the step-4 checkpoint: 4 training passes
    resumed = _regularised_node_trainer(tmp_path / "run")
    result = resumed.fit(resume="auto")
    assert resumed.step == 8 and resumed.model.ode.iteration == 8
    assert result.train_loss == ref_result.train_loss  # bitwise
    w_ref = ref.model.state_dict()
    w_res = resumed.model.state_dict()
    assert w_ref.keys() == w_res.keys()
    assert all(torch.equal(w_ref[k], w_res[k]) for k in w_ref)


def test_the_iteration_of_the_schedules_is_saved_and_old_weights_load_with_iteration_0(
    tmp_path,
):
    from safetensors.torch import load_file

    from sciml.de import LinearWeight, LocalHeuristic
    from sciml.operator import optional_state_keys

    # the shipped weights predate the saved iteration: they load (iteration 0) and compute what
    # their tensors copied in by hand compute
    shipped = sciml.load("node-lotka-volterra")
    folder = sciml.pretrained.path_of("node-lotka-volterra")
    config = json.loads((folder / "config.json").read_text())["config"]
    tensors = load_file(str(folder / "model.safetensors"))
    assert "ode.iteration" not in tensors
    by_hand = NODE.from_config(config)
    with torch.no_grad():
        for name, p in by_hand.named_parameters():
            p.copy_(tensors.pop(name))
    assert not tensors  # every saved tensor is a parameter
    y0, t = torch.tensor([[3.0, 1.2], [2.5, 1.8]]), torch.linspace(0, 2, 5)
    assert shipped.ode.iteration == 0
    with torch.no_grad():
        assert torch.equal(shipped(y0, t=t), by_hand.eval()(y0, t=t))

    # a trained model's iteration goes into its checkpoint and comes back with sciml.load and
    # load_state_dict; the schedule continues: LinearWeight(0, 1, 10) is 1 after 10 passes
    torch.manual_seed(0)
    reg = LocalHeuristic(error_weight=LinearWeight(0.0, 1.0, 10))
    model = NODE(NODEConfig(hidden=(8,)), regulariser=reg).train()
    for _ in range(10):
        model(torch.rand(3, 2) + 1, t=torch.linspace(0, 0.5, 3))
    assert model.ode.iteration == 10
    model.save_pretrained(tmp_path / "m")
    assert sciml.load(tmp_path / "m").ode.iteration == 10
    fresh = NODE(NODEConfig(hidden=(8,)), regulariser=reg)
    fresh.load_state_dict(model.state_dict())
    assert fresh.ode.iteration == 10
    assert reg.weights(fresh.ode.iteration)[0] == 1.0

    # the rule is for that key alone: a file without it loads with iteration 0 (strict), a file
    # without a weight is still refused, and a damaged iteration is named
    assert optional_state_keys(model) == {"ode.iteration"}
    state = load_file(str(tmp_path / "m" / "model.safetensors"))
    for name, edit, match in [
        ("old", lambda s: s.pop("ode.iteration"), None),
        ("no-weight", lambda s: s.pop("ode.field.net.net.0.weight"), "ode.field.net.net.0.weight"),
        ("float", lambda s: s.update({"ode.iteration": torch.tensor(2.5)}), "0-dim integer"),
        ("negative", lambda s: s.update({"ode.iteration": torch.tensor(-1)}), "0-dim integer"),
    ]:
        edited = dict(state)
        edit(edited)
        fresh = NODE(NODEConfig(hidden=(8,)))
        fresh.ode.iteration = 7
        if match is None:
            fresh.load_state_dict(edited)  # strict
            assert fresh.ode.iteration == 0, name
        else:
            with pytest.raises(RuntimeError, match=match):
                fresh.load_state_dict(edited)

    # NeuralSDE saves its iteration the same way
    from sciml.de import NeuralSDE

    class Linear(torch.nn.Module):
        def __init__(self):
            super().__init__()
            self.lin = torch.nn.Linear(2, 2)

        def forward(self, t, y):
            return self.lin(y)

    sde = NeuralSDE(Linear(), Linear())
    sde.iteration = 12
    fresh = NeuralSDE(Linear(), Linear())
    fresh.load_state_dict(sde.state_dict())
    assert sde.state_dict()["iteration"].item() == fresh.iteration == 12


def test_a_damaged_iteration_in_a_checkpoint_is_a_checkpoint_error_naming_file_and_key(tmp_path):
    """ode.iteration = tensor(2.5) in model.safetensors came out of sciml.load and a Trainer
    resume as torch's RuntimeError 'Error(s) in loading state_dict for NODE', naming no file,
    and the resume had copied every other weight into the model by then."""
    import hashlib

    from safetensors.torch import load_file, save_file

    from sciml.errors import CheckpointError

    def damage(path):
        state = load_file(str(path))
        state["ode.iteration"] = torch.tensor(2.5)
        save_file(state, str(path))

    torch.manual_seed(0)
    model = NODE(NODEConfig(hidden=(8,)))
    model.save_pretrained(tmp_path / "m")
    weights = tmp_path / "m" / "model.safetensors"
    damage(weights)
    record = json.loads((tmp_path / "m" / "config.json").read_text())
    record["weights"]["sha256"] = hashlib.sha256(weights.read_bytes()).hexdigest()
    (tmp_path / "m" / "config.json").write_text(json.dumps(record))
    message = "ode.iteration: expected the training iteration as a 0-dim integer tensor >= 0, got"
    with pytest.raises(CheckpointError, match=f"^{weights}: {message} tensor\\(2.5000\\)$"):
        sciml.load(tmp_path / "m")

    _regularised_node_trainer(tmp_path / "run").fit()
    damage(tmp_path / "run" / "last" / "model.safetensors")
    resumed = _regularised_node_trainer(tmp_path / "run")
    before = {k: v.clone() for k, v in resumed.model.state_dict().items()}
    last = (tmp_path / "run" / "last").resolve() / "model.safetensors"  # a link to ckpt-8
    with pytest.raises(CheckpointError, match=f"^{last}: {message} tensor\\(2.5000\\)$"):
        resumed.fit(resume="auto")
    after = resumed.model.state_dict()
    assert all(torch.equal(before[k], after[k]) for k in before)  # the model is untouched
    assert resumed.model.ode.iteration == 0
