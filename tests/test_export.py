"""``sciml.export``: models as ``torch.export`` programs that run without sciml.

The programs are held to the eager models' outputs at a batch size other than the example's,
after a round trip through a ``.pt2`` file loaded in a fresh interpreter that never imports
sciml; exporting must also leave the eager model working (regression: the caches of DFT bases
and GEMM plans kept tensors made while tracing, and the next eager call failed with "Could not
guard on data-dependent expression").
"""

from __future__ import annotations

import os
import subprocess
import sys
import textwrap
from pathlib import Path

import pytest
import torch
import torchdiffeq
from _fresh import run_fresh_python

import sciml
from sciml import SciMLError
from sciml.de import RK4, Dopri5, Euler
from sciml.models import FNO, T1, FNOConfig, T1Config


def _models():
    torch.manual_seed(0)
    return {
        "t1-dct": (T1(T1Config(modes=(6, 6), width=8, n_layers=2, transform="dct")), {}, (16, 16)),
        "fno-padded": (FNO(FNOConfig(modes=(5, 5), width=8, n_layers=2, padding=3)), {}, (16, 16)),
        "scot-ns2d": (sciml.load("scot-ns2d"), {"t": True}, (32, 32)),
    }


def _inputs(batch, grid, needs_t, seed):
    g = torch.Generator().manual_seed(seed)
    u = torch.randn(batch, 1, *grid, generator=g)
    return (u,), ({"t": torch.rand(batch, generator=g)} if needs_t else {})


def test_programs_run_without_sciml_and_match_the_models(tmp_path):
    """Export at batch 2, save, load in a subprocess that does not import sciml, run at batch 3:
    the same outputs as the eager models (and the eager models still run after the export)."""
    expected = {}
    for name, (model, extra, grid) in _models().items():
        model.eval()
        needs_t = "t" in extra
        a3, kw3 = _inputs(3, grid, needs_t, seed=1)
        with torch.no_grad():
            before = model(*a3, **kw3)
        a2, kw2 = _inputs(2, grid, needs_t, seed=0)
        sciml.export(model, *a2, path=tmp_path / f"{name}.pt2", **kw2)
        with torch.no_grad():
            after = model(*a3, **kw3)
        torch.testing.assert_close(after, before, rtol=0, atol=0)  # the caches are intact
        expected[name] = {"args": a3, "kwargs": kw3, "out": before}
    torch.save(expected, tmp_path / "expected.pt")
    script = textwrap.dedent(
        """
        import sys, torch
        expected = torch.load("expected.pt", weights_only=True)
        for name, e in expected.items():
            got = torch.export.load(f"{name}.pt2").module()(*e["args"], **e["kwargs"])
            err = float((got - e["out"]).abs().max())
            scale = float(e["out"].abs().max())
            print(name, err, scale)
            assert err <= 1e-5 * scale, (name, err, scale)
        assert not any(m == "sciml" or m.startswith("sciml.") for m in sys.modules)
        print("ok")
        """
    )
    env = {**os.environ, "OMP_NUM_THREADS": "1", "PYTHONPATH": ""}
    proc = subprocess.run(
        [sys.executable, "-c", script], cwd=tmp_path, env=env, capture_output=True, text=True
    )
    assert proc.returncode == 0 and proc.stdout.strip().endswith("ok"), proc.stdout + proc.stderr


def test_export_by_name_returns_a_program_with_a_free_batch():
    u = torch.randn(4, 1, 32, 32)
    program = sciml.export("fno-ns2d", u)
    model = sciml.load("fno-ns2d").eval()
    x = torch.randn(7, 1, 32, 32)
    with torch.no_grad():
        torch.testing.assert_close(program.module()(x), model(x), rtol=1e-5, atol=1e-6)


def test_a_batch_of_one_with_a_free_batch_is_refused():
    with pytest.raises(ValueError, match=r"at least 2 .*got 1"):
        sciml.export("fno-ns2d", torch.randn(1, 1, 32, 32))
    program = sciml.export("fno-ns2d", torch.randn(1, 1, 32, 32), dynamic_batch=False)
    with pytest.raises(AssertionError, match="Guard failed"):  # the batch was fixed at 1
        program.module()(torch.randn(2, 1, 32, 32))


def test_no_example_and_a_model_that_is_not_reproduced_are_named(tmp_path):
    with pytest.raises(ValueError, match="expected an example input"):
        sciml.export("fno-ns2d")

    class Drifting(torch.nn.Module):  # a different answer on every call: the check must catch it
        def __init__(self):
            super().__init__()
            self.register_buffer("calls", torch.zeros(()))

        def forward(self, u):
            self.calls += 1
            return u * self.calls

    with pytest.raises(SciMLError, match="does not reproduce the model"):
        sciml.export(Drifting(), torch.randn(2, 3), path=tmp_path / "d.pt2")
    assert not list(tmp_path.iterdir())  # nothing written


def test_a_node_with_its_adaptive_solver_is_refused_naming_the_fixed_step_option():
    """NODE's dopri5 decides its steps from tensor values, which torch.export cannot capture;
    the error said only "Could not guard on data-dependent expression Eq(u0, 1)" (raised by
    the time-direction test before any step) with a generic hint."""
    node, u, t = sciml.load("node-lotka-volterra"), torch.rand(4, 2) + 1.0, torch.linspace(0, 1, 5)
    with pytest.raises(
        SciMLError, match=r"NODE with its adaptive solver Dopri5 .*solver=sciml.de.RK4\(step_size"
    ):
        sciml.export(node, u, t=t)
    with pytest.raises(TypeError, match="expected solver a fixed-step .* got Dopri5"):
        sciml.export(node, u, t=t, solver=Dopri5())
    with pytest.raises(ValueError, match="solver= replaces a NODE's ODE solver, got a Normalized"):
        sciml.export("fno-ns2d", torch.randn(2, 1, 32, 32), solver=RK4())


@pytest.mark.parametrize(
    "solver", [RK4(step_size=0.25), Euler(step_size=0.1), RK4(step_size=0.3, interp="linear")]
)
@pytest.mark.parametrize("direction", [1, -1])
def test_a_fixed_step_node_exports_and_equals_torchdiffeqs_solve(solver, direction, tmp_path):
    """With ``solver=`` the NODE's field is integrated by the fixed-step solver unrolled at the
    example's times (output times between grid points included: cubic Hermite for RK4, the
    straight line for Euler and interp="linear"; decreasing times, which torchdiffeq solves as
    ``-f(-s, y)`` in ``s = -t`` and the export refused). The saved program, at the example's
    batch, twice it and another, equals torchdiffeq's own ``rk4`` / ``euler`` on the same field
    (independent: NeuralODE's own RK4 / Euler share the export's output schedule,
    ``sciml.de.solvers._output_schedule``, so a fault there would pass a comparison with them)."""
    node = sciml.load("node-lotka-volterra").eval()
    t = torch.tensor([0.0, 0.13, 0.5, 0.71, 1.0])
    t = t if direction == 1 else t.flip(0)
    g = torch.Generator().manual_seed(0)
    center, scale = torch.tensor(node.config.center), torch.tensor(node.config.scale)
    u = center + scale * torch.randn(4, 2, generator=g)  # states where it was trained
    sciml.export(node, u, t=t, solver=solver, path=tmp_path / "node.pt2")
    assert not any(m.training for m in node.modules())  # left in eval mode, as it was
    program = torch.export.load(tmp_path / "node.pt2").module()
    field, method = node.ode.field.net, {RK4: "rk4", Euler: "euler"}[type(solver)]
    options = {"step_size": solver.step_size, "interp": solver.interp}
    for v in (u, torch.cat([u, u]), center + scale * torch.randn(3, 2, generator=g)):
        with torch.no_grad():
            want = torchdiffeq.odeint(field, v, t, method=method, options=options)
        torch.testing.assert_close(program(v), want.transpose(0, 1), rtol=0, atol=1e-6)


def test_a_node_trained_with_a_fixed_step_exports_as_it_is_without_solver():
    """``NODEConfig(solver="rk4", step_size=h)``: ``export(node, u, t=t)`` needs no ``solver=``
    (it was refused as an adaptive NODE is) and the program is the eager model to the bit, at
    the example's batch and another, in float64; both are torchdiffeq's own ``rk4`` with cubic
    Hermite outputs to round-off (the independent check: the program and the eager solve share
    their step loop, ``sciml.de.solvers._step_through``). A ``solver=`` given anyway wins: the
    program is then torchdiffeq's solve with that step (a deployment may take a coarser one).
    And the export no longer runs the model's own solve only to check the example (for an
    adaptive NODE exported with ``solver=``, a dopri5 solve for nothing): the model's evaluation
    count stays 0."""
    from sciml.models import NODE, NODEConfig

    torch.manual_seed(0)
    config = NODEConfig(hidden=(8,), solver="rk4", step_size=0.125, center=(3.0, 1.5))
    node = NODE(config).double().eval()
    field = node.ode.field.net
    t = torch.tensor([0.0, 0.2, 0.5, 0.9, 1.0], dtype=torch.float64)
    g = torch.Generator().manual_seed(0)
    u = 3.0 + torch.randn(4, 2, generator=g, dtype=torch.float64)
    program = sciml.export(node, u, t=t).module()
    assert node.nfe == 0  # exported without running the model (it ran the model's own solve)
    for v in (u, 3.0 + torch.randn(3, 2, generator=g, dtype=torch.float64)):
        with torch.no_grad():
            got, eager = program(v), node(v, t=t)
            want = torchdiffeq.odeint(
                field, v, t, method="rk4", options={"step_size": 0.125, "interp": "cubic"}
            )
        torch.testing.assert_close(got, eager, rtol=0, atol=0)
        torch.testing.assert_close(got, want.transpose(0, 1), rtol=0, atol=1e-14)
    coarser = sciml.export(node, u, t=t, solver=RK4(step_size=0.25)).module()
    with torch.no_grad():
        want = torchdiffeq.odeint(
            field, u, t, method="rk4", options={"step_size": 0.25, "interp": "cubic"}
        )
        torch.testing.assert_close(coarser(u), want.transpose(0, 1), rtol=0, atol=1e-14)
        assert float((coarser(u) - node(u, t=t)).abs().max()) > 1e-9  # not the model's step


def test_the_exported_rk4_node_converges_to_the_adaptive_node_at_fourth_order():
    """Halving RK4's step divides the program's distance to a tight dopri5 solve of the same
    field (rtol = atol = 1e-12, float64) by about 2**4 (grid-aligned outputs, so the
    interpolant plays no part)."""
    t = torch.linspace(0.0, 1.0, 5, dtype=torch.float64)
    node64 = sciml.load("node-lotka-volterra").double().eval()
    node64.ode.solver = Dopri5(rtol=1e-12, atol=1e-12)  # the reference: dopri5, tight
    u = torch.tensor([[2.5, 1.2], [3.5, 1.9], [3.0, 1.0]], dtype=torch.float64)
    with torch.no_grad():
        exact = node64(u, t=t)
    errors = []
    for h in (0.25, 0.125):  # 8.7e-4, 6.2e-5
        program = sciml.export(node64, u, t=t, solver=RK4(step_size=h)).module()
        with torch.no_grad():
            errors.append(float((program(u) - exact).abs().max()))
    assert 12 < errors[0] / errors[1] < 20, errors


def test_query_points_stay_free_when_the_example_has_as_many_points_as_functions():
    """DeepONet's ``x (points, d)`` is not tied to the batch: a program exported from 3
    functions at 3 points evaluates any number of functions at any number of points; with
    ``x (batch, points, d)`` its dim 0 follows the batch."""
    model = sciml.load("deeponet-antiderivative").eval()
    program = sciml.export(model, torch.randn(3, 100), x=torch.rand(3, 1)).module()
    per_sample = sciml.export(model, torch.randn(3, 100), x=torch.rand(3, 20, 1)).module()
    with torch.no_grad():
        for b, p in ((5, 8), (2, 2), (7, 1)):
            u, x = torch.randn(b, 100), torch.rand(p, 1)
            torch.testing.assert_close(program(u, x=x), model(u, x=x), rtol=1e-5, atol=1e-6)
        u, x = torch.randn(6, 100), torch.rand(6, 20, 1)
        torch.testing.assert_close(per_sample(u, x=x), model(u, x=x), rtol=1e-5, atol=1e-6)


def test_an_example_the_model_refuses_raises_the_models_own_error():
    with pytest.raises(ValueError, match=r"FNO expected u of shape \(batch, 1, 2 spatial dims\)"):
        sciml.export("fno-ns2d", torch.randn(2, 3, 32, 32))


def test_an_example_missing_a_required_input_names_the_model_and_its_forward():
    """PROSE's query times x are required: export(prose, u) said only "missing a required
    argument: 'x'" (inspect's words), naming neither the model nor what forward takes."""
    from sciml.models import PROSE, PROSEConfig

    torch.manual_seed(0)
    model = PROSE(PROSEConfig.small())
    with pytest.raises(TypeError) as info:
        sciml.export(model, torch.randn(2, 10, 6))
    message = str(info.value)
    assert message.startswith("expected an example for PROSE.forward(u: ")
    assert message.endswith(
        "given as export(model, u, name=value, ...): missing a required argument: 'x'"
    )
    assert "x: 'torch.Tensor'" in message  # the signature, with x keyword-only and required
    program = sciml.export(model, torch.randn(2, 10, 6), x=torch.rand(5))  # with x it exports
    u, x = torch.randn(3, 10, 6), torch.rand(4)
    with torch.no_grad():
        torch.testing.assert_close(program.module()(u, x=x), model.eval()(u, x=x))


EXAMPLES = {  # an example batch for every shipped model
    "dcdm-poisson3d": ((torch.randn(2, 1, 16, 16, 16),), {}),
    "deeponet-antiderivative": ((torch.randn(3, 100),), {"x": torch.rand(1, 20, 1)}),
    "deeponet-pendulum": ((torch.randn(3, 100),), {"x": torch.rand(1, 20, 1)}),
    "fno-ns2d": ((torch.randn(2, 1, 32, 32),), {}),
    "mgno-darcy": ((torch.randn(2, 1, 64, 64),), {}),
    "scot-ns2d": ((torch.randn(2, 1, 32, 32),), {"t": torch.rand(2)}),
    "t1-ns2d": ((torch.randn(2, 1, 32, 32),), {}),
}
NODE_EXAMPLE = (
    (torch.rand(4, 2) + 1.0,),
    {"t": torch.linspace(0, 1, 5), "solver": RK4(step_size=0.25)},
)


def test_every_shipped_model_exports():
    """What the docs state: each shipped model exports (and passes export's own check at the
    example's batch and twice it), the NODE with a fixed-step solver."""
    assert set(EXAMPLES) | {"node-lotka-volterra"} == set(sciml.pretrained.names())
    for name, (args, kwargs) in {**EXAMPLES, "node-lotka-volterra": NODE_EXAMPLE}.items():
        sciml.export(name, *args, **kwargs)


@pytest.mark.slow
def test_every_shipped_model_but_the_node_compiles():
    """What docs/trainer.md states: ``torch.compile`` (inductor) of each shipped model gives the
    eager outputs and leaves the eager model intact; the NODE's torchdiffeq solve does not
    lower (``torch.unique`` in its step control). About two minutes on one CPU thread."""
    for name, (args, kwargs) in EXAMPLES.items():
        model = sciml.load(name).eval()
        with torch.no_grad():
            want = model(*args, **kwargs)
            got = torch.compile(model)(*args, **kwargs)
            torch.testing.assert_close(got, want, rtol=1e-5, atol=1e-5 * float(want.abs().max()))
            torch.testing.assert_close(model(*args, **kwargs), want, rtol=0, atol=0)
        torch._dynamo.reset()
    node = sciml.load("node-lotka-volterra").eval()
    with torch.no_grad(), pytest.raises(Exception, match="unique"):  # noqa: B017 (inductor's)
        torch.compile(node)(torch.rand(3, 2) + 1.0, t=torch.linspace(0.0, 1.0, 5))
    torch._dynamo.reset()


def test_keyword_inputs_through_a_wrapper_keep_a_free_batch():
    """A lead time passed through ``Normalized.forward(u, **kwargs)`` gets the free batch too."""
    from sciml.models import Normalized

    model = Normalized.wrap(
        sciml.load("scot-ns2d"), in_mean=[0.1], in_std=[2.0], out_mean=[-0.1], out_std=[3.0]
    ).train()  # in training mode (sciml.load gives eval), which the export must leave as it was
    program = sciml.export(model, torch.randn(2, 1, 32, 32), t=torch.rand(2))
    assert model.training and model.inner.training
    model.eval()
    u, t = torch.randn(5, 1, 32, 32), torch.rand(5)
    with torch.no_grad():
        torch.testing.assert_close(program.module()(u, t=t), model(u, t=t), rtol=1e-5, atol=1e-6)


def test_prose_exports_with_its_sequence_lengths_free():
    """PROSE's program took only the example's numbers of observation times, query times and
    skeleton tokens ("Guard failed: symbols.size()[1] == 12" for any other width). They are
    free now (``export_free_sizes``): a program exported at one length equals eager at others to
    1e-5, skeleton rows of any padding included (eager cuts the padding, the program masks it),
    and it keeps the model's bounds: at least 2 observations (one gave NaN), at most
    ``max_symbol_len`` tokens, a skeleton of at least one token."""
    from sciml.models import PROSE, PROSEConfig

    torch.manual_seed(0)
    model = PROSE(PROSEConfig.small()).eval()
    d = 1 + model.config.dim
    u, x = torch.randn(2, 10, d), torch.rand(2, 7, 1)
    symbols = torch.randint(1, 20, (2, 12))
    symbols[:, 9:] = 0
    program = sciml.export(model, u, x=x, symbols=symbols).module()
    for batch, times, points, width in ((3, 5, 9, 4), (2, 31, 3, 40), (4, 2, 1, 1), (1, 3, 2, 200)):
        u2, x2 = torch.randn(batch, times, d), torch.rand(batch, points, 1)
        s2 = torch.randint(1, 20, (batch, width))
        s2[0, max(width // 2, 1) :] = 0  # a shorter row, padded
        s2[-1] = 0 if batch > 1 else s2[-1]  # a sample without skeleton
        with torch.no_grad():
            want = model(u2, x=x2, symbols=s2)
        got = program(u2, x=x2, symbols=s2)
        torch.testing.assert_close(got, want, rtol=1e-5, atol=1e-5)
    with pytest.raises(RuntimeError, match="expected u with at least 2 observation times, got 1"):
        program(u[:, :1], x=x, symbols=symbols)
    with pytest.raises(AssertionError, match=r"Guard failed: symbols.size\(\)\[1\] <= 200"):
        program(u, x=x, symbols=torch.randint(1, 20, (2, 201)))
    with pytest.raises(RuntimeError, match="expected symbols of at least one token in an export"):
        program(u, x=x, symbols=symbols[:, :0])
    # data only, with a fixed batch (dynamic_batch=False): the lengths stay free
    fixed = sciml.export(model, u, x=x, dynamic_batch=False).module()
    u3, x3 = torch.randn(2, 17, d), torch.rand(2, 11, 1)
    with torch.no_grad():
        torch.testing.assert_close(fixed(u3, x=x3), model(u3, x=x3), rtol=1e-5, atol=1e-5)
    with pytest.raises(AssertionError, match=r"Guard failed.*\[0\] == 2"):  # the batch fixed
        fixed(torch.randn(3, 10, d), x=torch.rand(3, 7, 1))


@pytest.mark.parametrize("name", ["node-lotka-volterra", "fno-ns2d"])
def test_export_gives_every_submodule_its_own_training_mode_back(name):
    """A model in training mode with a submodule in eval mode (a frozen part) comes back from
    export as it went in; export set every submodule to the top module's mode, switching the
    frozen part to training."""
    model = sciml.load(name).train()
    frozen = next(m for m in model.modules() if list(m.children()) and m is not model)
    frozen.eval()
    before = {n: m.training for n, m in model.named_modules()}
    assert any(before.values()) and not all(before.values())
    if name == "fno-ns2d":
        sciml.export(model, torch.randn(2, 1, 32, 32))
    else:
        u, t = torch.tensor([[3.0, 1.5], [2.5, 1.0]]), torch.linspace(0.0, 1.0, 3)
        sciml.export(model, u, t=t, solver=RK4(step_size=0.5))
    assert {n: m.training for n, m in model.named_modules()} == before


def test_a_torch_without_dim_auto_gets_an_error_naming_the_version(monkeypatch):
    """On a torch older than 2.5 (no ``torch.export.Dim.AUTO``), a free batch with a second
    tensor input raised ``AttributeError: type object 'Dim' has no attribute 'AUTO'``; it now
    raises an error naming torch 2.5 and the way out, and what does not need ``Dim.AUTO`` (one
    tensor input, or ``dynamic_batch=False``) still exports and matches the model."""
    model = sciml.load("deeponet-antiderivative").eval()
    u, x = torch.randn(3, 100), torch.rand(4, 1)
    monkeypatch.delattr(torch.export.Dim, "AUTO")
    with pytest.raises(SciMLError, match=r"torch >= 2\.5 .*got torch .*dynamic_batch=False"):
        sciml.export(model, u, x=x)
    fixed = sciml.export(model, u, x=x, dynamic_batch=False).module()
    with torch.no_grad():
        torch.testing.assert_close(fixed(u, x=x), model(u, x=x), rtol=1e-5, atol=1e-6)
    fno = sciml.load("fno-ns2d").eval()
    program = sciml.export(fno, torch.randn(2, 1, 32, 32)).module()
    v = torch.randn(3, 1, 32, 32)
    with torch.no_grad():
        torch.testing.assert_close(program(v), fno(v), rtol=1e-5, atol=1e-6)


def test_type_hints_of_export_resolve_without_importing_sciml_de_or_triton():
    """``typing.get_type_hints(sciml.export)`` raised ``NameError: name 'ODESolver' is not
    defined`` (imported only under TYPE_CHECKING); it now resolves to the class, and importing
    ``sciml._export`` still imports neither ``sciml.de`` (torchdiffeq, torchsde) nor Triton
    (checked in a fresh interpreter)."""
    code = """
        import sys, typing
        import sciml._export
        before = [m for m in ("sciml.de", "triton") if m in sys.modules]
        hints = typing.get_type_hints(sciml._export.export)
        from sciml.de import ODESolver
        print(before, hints["solver"] == (ODESolver | None), "triton" in sys.modules)
    """
    assert run_fresh_python(code).split() == ["[]", "True", "False"]


def test_the_python_api_checks_its_path_as_the_cli_checks_out(tmp_path, monkeypatch):
    """``sciml.export(..., path='e.txt')`` wrote a .pt2 program under any name, and a path under
    a file or naming a folder failed only after the export ("[Errno 17] File exists",
    "Is a directory"). The API now refuses them first, with the CLI's words for ``path``;
    nothing is written, and a save that fails removes the folders it made."""
    monkeypatch.chdir(tmp_path)
    torch.manual_seed(0)
    model, u = torch.nn.Linear(3, 2), torch.randn(2, 3)
    (tmp_path / "taken").write_text("mine")
    (tmp_path / "dir.pt2").mkdir()
    cases = {
        "e.txt": "path expects a torch.export file name ending in .pt2, got 'e.txt' (the file "
        "is a .pt2 program whatever its name: name it so that tools recognise it)",
        "e.pt2.bak": "path expects a torch.export file name ending in .pt2, got 'e.pt2.bak'",
        "taken/sub/x.pt2": f"expected path in a folder, got taken/sub/x.pt2, where "
        f"{tmp_path / 'taken'} is a file",
        "dir.pt2": "expected path to name the .pt2 file to write, got the folder dir.pt2",
    }
    for path, message in cases.items():
        for given in (path, tmp_path / path if path == "dir.pt2" else Path(path)):
            with pytest.raises(ValueError) as err:
                sciml.export(model, u, path=given)
            want = message.replace("dir.pt2", str(given)) if path == "dir.pt2" else message
            assert str(err.value).startswith(want), (given, str(err.value))
    assert sorted(p.name for p in tmp_path.iterdir()) == ["dir.pt2", "taken"]
    assert not list((tmp_path / "dir.pt2").iterdir())
    # the CLI says the same of --out (its own test pins the whole line)
    from sciml.cli import main

    assert main(["export", "fno-ns2d", "--shape", "2,1,32,32", "--out", "e.txt"]) == 2

    # a save that fails leaves neither a temporary file nor the folders it made
    def broken(program, f):
        with open(f, "wb") as fh:
            fh.write(b"half")
        raise OSError("disk full")

    monkeypatch.setattr(torch.export, "save", broken)
    with pytest.raises(OSError, match="disk full"):
        sciml.export(model, u, path="new/deeper/m.pt2")
    assert sorted(p.name for p in tmp_path.iterdir()) == ["dir.pt2", "taken"]
    monkeypatch.undo()
    monkeypatch.chdir(tmp_path)
    sciml.export(model, u, path="new/deeper/M.PT2")  # the suffix in any case, as the CLI's
    got = torch.export.load("new/deeper/M.PT2").module()(u)
    torch.testing.assert_close(got, model(u), rtol=0, atol=0)
