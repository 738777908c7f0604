"""DeepONet: pairing modes agree, documented parameter counts, constraints, save/load, learning,
and the antiderivative data generator."""

from __future__ import annotations

import importlib.util
import json
import math
import os
import subprocess
import sys
import textwrap

import numpy as np
import pytest
import torch
from scipy.special import erf
from test_func_transforms import _rowwise_jacobian

import sciml
from sciml.data.generators import GENERATORS, generate_antiderivative, sample_rbf_grf
from sciml.models import DeepONet, DeepONetConfig
from sciml.models.deeponet import FourierFeatures, HardZero, MLPSpec

STRATEGIES = ["independent", "split_both", "split_branch", "split_trunk"]


def _config(**kw) -> DeepONetConfig:
    base = dict(
        sensors=12,
        coord_dim=2,
        out_channels=3,
        basis=5,
        branch=MLPSpec(hidden=(16, 8), activation="tanh"),
        trunk=MLPSpec(hidden=(9,), activation="tanh"),
    )
    return DeepONetConfig(**{**base, **kw})


@pytest.mark.parametrize("stacked", [False, True])
@pytest.mark.parametrize("strategy", STRATEGIES)
def test_cartesian_per_sample_and_pointwise_modes_agree(strategy, stacked):
    torch.manual_seed(0)
    model = DeepONet(
        _config(multi_output=strategy, stacked=stacked, fourier=FourierFeatures(n=4))
    ).double()
    with torch.no_grad():  # non-zero bias so a dropped bias would show
        model.bias.copy_(torch.tensor([0.3, -0.2, 0.1]))
    u, y = torch.randn(4, 12, dtype=torch.float64), torch.rand(7, 2, dtype=torch.float64)
    cart = model(u, x=y)  # (4, 7, 3)
    assert cart.shape == (4, 7, 3)
    torch.testing.assert_close(model(u, x=y[None]), cart, rtol=0, atol=1e-14)
    per_sample = model(u, x=y.expand(4, 7, 2).contiguous())
    torch.testing.assert_close(per_sample, cart, rtol=1e-12, atol=1e-12)
    pw = model(u.repeat_interleave(7, 0), x=y.repeat(4, 1), pointwise=True)  # (28, 3)
    torch.testing.assert_close(pw.reshape(4, 7, 3), cart, rtol=1e-12, atol=1e-12)
    # (batch, channels, sensors) is the same function flattened
    torch.testing.assert_close(model(u.reshape(4, 2, 6), x=y), cart, rtol=0, atol=0)


def _mlp(sizes):
    return sum(a * b + b for a, b in zip(sizes[:-1], sizes[1:]))


@pytest.mark.parametrize("stacked", [False, True])
@pytest.mark.parametrize("strategy", STRATEGIES)
def test_parameter_count_matches_closed_form(strategy, stacked):
    m, d, k, p, hb, ht = 12, 2, 3, 5, [16, 8], [9]

    def branch(n_out):  # stacked: n_out nets with one output each
        return n_out * _mlp([m, *hb, 1]) if stacked else _mlp([m, *hb, n_out])

    def trunk(n_out):
        return _mlp([d, *ht, n_out])

    expected = {
        "independent": k * (branch(p) + trunk(p)),
        "split_both": branch(k * p) + trunk(k * p),
        "split_branch": branch(k * p) + trunk(p),
        "split_trunk": branch(p) + trunk(k * p),
    }[strategy] + k  # one output bias per output function
    model = DeepONet(_config(multi_output=strategy, stacked=stacked))
    assert model.num_parameters() == expected
    assert DeepONet(
        _config(multi_output=strategy, stacked=stacked, bias=False)
    ).num_parameters() == (expected - k)


def test_deepxde_antiderivative_network_size():
    # DeepXDE's DeepONetCartesianProd([100, 40, 40], [1, 40, 40]) has 5,680 + 1,720 + 1 = 7,401
    assert DeepONet(DeepONetConfig()).num_parameters() == 7401


_DEEPXDE_SCRIPT = textwrap.dedent(
    """
    import json
    import deepxde as dde
    import numpy as np
    import torch
    from sciml.models import DeepONet, DeepONetConfig, PODDeepONet, PODDeepONetConfig
    from sciml.models.deeponet import MLPSpec

    m, d, k, p = 12, 2, 3, 5
    spec_b, spec_t = MLPSpec((16, 8), "tanh"), MLPSpec((9,), "tanh")
    out = {}

    def copy(ours, theirs):
        for a, b in zip(ours.layers, theirs.linears, strict=True):
            a.load_state_dict(b.state_dict())

    # the same torch seed gives DeepXDE's initial weights (docs/deeponet.md), in DeepXDE's
    # default float32; `independent` draws branch 1, trunk 1, branch 2, ... as DeepXDE does
    widths = {"independent": (p, p), "split_both": (k * p, k * p),
              "split_branch": (k * p, p), "split_trunk": (p, k * p)}
    for strategy, (nb, nt) in [("single", (p, p)), *widths.items()]:
        kk, strat = (1, None) if strategy == "single" else (k, strategy)
        torch.manual_seed(3)
        theirs = dde.nn.DeepONetCartesianProd([m, 16, 8, nb], [d, 9, nt], "tanh",
                                              "Glorot normal", num_outputs=kk,
                                              multi_output_strategy=strat)
        torch.manual_seed(3)
        ours = DeepONet(DeepONetConfig(sensors=m, coord_dim=d, out_channels=kk, basis=p,
                                       multi_output=strat or "split_both", branch=spec_b,
                                       trunk=spec_t))
        tb, tt = theirs.branch, theirs.trunk
        tb = list(tb) if isinstance(tb, torch.nn.ModuleList) else [tb]
        tt = list(tt) if isinstance(tt, torch.nn.ModuleList) else [tt]
        pairs = [(a, b) for nets, refs in ((ours.branches, tb), (ours.trunks, tt))
                 for net, ref in zip(nets, refs, strict=True)
                 for a, b in zip(net.layers, ref.linears, strict=True)]
        out[f"init/{strategy}"] = max((a.weight - b.weight).abs().max().item()
                                      for a, b in pairs)

    torch.set_default_dtype(torch.float64)

    for strategy, (nb, nt) in widths.items():
        for cls, pointwise in ((dde.nn.DeepONetCartesianProd, False), (dde.nn.DeepONet, True)):
            theirs = cls([m, 16, 8, nb], [d, 9, nt], "tanh", "Glorot normal", num_outputs=k,
                         multi_output_strategy=strategy).double()
            ours = DeepONet(DeepONetConfig(sensors=m, coord_dim=d, out_channels=k, basis=p,
                                           multi_output=strategy, branch=spec_b, trunk=spec_t)
                            ).double()
            tb, tt = theirs.branch, theirs.trunk
            tb = list(tb) if isinstance(tb, torch.nn.ModuleList) else [tb]
            tt = list(tt) if isinstance(tt, torch.nn.ModuleList) else [tt]
            with torch.no_grad():
                for a, b in zip(ours.branches, tb, strict=True):
                    copy(a, b)
                for a, b in zip(ours.trunks, tt, strict=True):
                    copy(a, b)
                for i in range(k):
                    theirs.b[i].fill_(0.1 * (i + 1))
                    ours.bias[i] = 0.1 * (i + 1)
                u, y = torch.randn(4, m), torch.rand(4 if pointwise else 7, d)
                ref = theirs((u, y))
                got = ours(u, x=y, pointwise=pointwise)
            out[f"{strategy}/{cls.__name__}"] = [
                list(got.shape), list(ref.shape), (got - ref).abs().max().item(),
                ref.abs().max().item()]

    # POD-DeepONet: the authors' basis (eigenvectors of the covariance, times sqrt(P)) and
    # DeepXDE's PODDeepONet with their output transform branch / modes + mean
    rng = np.random.default_rng(0)
    n, points, modes = 40, 30, 6
    grid = np.linspace(0, 1, points)
    s = 0.3 + rng.standard_normal((n, 8)) @ np.sin(np.outer(np.arange(1, 9), np.pi * grid))
    c = s - s.mean(0)
    w, v = np.linalg.eigh(c.T @ c / (n - 1))
    basis = np.fliplr(v)[:, :modes] * points**0.5
    pod = PODDeepONet(PODDeepONetConfig(sensors=m, points=points, modes=modes,
                                        branch=MLPSpec((16,), "tanh"), bias=False)).double()
    pod.fit_basis(torch.from_numpy(s), torch.from_numpy(grid)[:, None])
    phi = pod.pod_basis[:, 0].numpy()
    sign = np.sign((phi * basis).sum(0))
    out["pod_basis"] = np.abs(phi - basis * sign).max().item()
    theirs = dde.nn.PODDeepONet(basis, [m, 16, modes], "tanh", "Glorot normal").double()
    theirs.pod_basis = torch.from_numpy(basis)
    theirs.apply_output_transform(lambda inputs, y: y / modes + torch.from_numpy(s.mean(0)))
    with torch.no_grad():
        copy(pod.branch, theirs.branch)
        # their coefficient b_i / modes on their basis is ours on our (sign-flipped) basis
        last = pod.branch.layers[-1]
        last.weight.mul_(torch.from_numpy(sign)[:, None] / modes)
        last.bias.mul_(torch.from_numpy(sign) / modes)
        u = torch.randn(5, m)
        ref, got = theirs((u, torch.from_numpy(grid)[:, None])), pod(u)[..., 0]
    out["pod"] = [(got - ref).abs().max().item(), ref.abs().max().item()]
    print(json.dumps(out))
    """
)


@pytest.mark.slow
@pytest.mark.skipif(importlib.util.find_spec("deepxde") is None, reason="needs deepxde")
def test_matches_deepxde_for_every_strategy_pairing_and_pod():
    """DeepXDE's own DeepONet / DeepONetCartesianProd (every multi-output strategy) and
    PODDeepONet, weights copied into ours, give the same outputs; run in a child process because
    importing DeepXDE changes torch's global defaults (its device on a GPU machine)."""
    env = {**os.environ, "DDE_BACKEND": "pytorch", "CUDA_VISIBLE_DEVICES": ""}
    proc = subprocess.run(
        [sys.executable, "-c", _DEEPXDE_SCRIPT],
        capture_output=True,
        text=True,
        env=env,
        timeout=300,
    )
    assert proc.returncode == 0, proc.stderr[-3000:]
    out = json.loads(proc.stdout.strip().splitlines()[-1])
    for strategy in STRATEGIES:
        for cls, shape in (("DeepONetCartesianProd", [4, 7, 3]), ("DeepONet", [4, 3])):
            got_shape, ref_shape, diff, scale = out[f"{strategy}/{cls}"]
            assert got_shape == ref_shape == shape
            assert scale > 0.1 and diff <= 1e-14 * scale, (strategy, cls, diff)
    assert all(out[f"init/{s}"] == 0.0 for s in ["single", *STRATEGIES]), out
    assert out["pod_basis"] < 1e-10  # same basis up to each mode's sign
    diff, scale = out["pod"]
    assert scale > 0.1 and diff < 1e-12 * scale


def test_split_strategies_reduce_to_single_output_blocks():
    """split_branch output k is a single-output DeepONet with branch rows k*p:(k+1)*p."""
    torch.manual_seed(1)
    model = DeepONet(_config(multi_output="split_branch")).double()
    u, y = torch.randn(3, 12, dtype=torch.float64), torch.rand(5, 2, dtype=torch.float64)
    b = model.branches[0](u)  # (3, k*p)
    t = model.trunks[0](y)  # (5, p)
    for k in range(3):
        ref = b[:, 5 * k : 5 * (k + 1)] @ t.T + model.bias[k]
        torch.testing.assert_close(model(u, x=y)[..., k], ref)


def test_hard_zero_constraint_is_exact():
    model = DeepONet(_config(hard_zero=HardZero(axis=1, value=0.25)))
    u = torch.randn(4, 12)
    y = torch.rand(6, 2)
    y[:, 1] = 0.25
    assert torch.count_nonzero(model(u, x=y)) == 0
    assert torch.count_nonzero(model(u, x=y + 0.1)) > 0


def test_fourier_features_change_trunk_input_and_round_trip(tmp_path):
    config = _config(fourier=FourierFeatures(n=3, scale=2.0, seed=7), hard_zero=HardZero())
    model = DeepONet(config).eval()
    assert model.trunks[0].layers[0].in_features == 2 + 2 * 3
    u, y = torch.randn(2, 12), torch.rand(5, 2)
    before = model(u, x=y)
    model.save_pretrained(tmp_path / "ckpt")
    loaded = sciml.load(tmp_path / "ckpt")
    assert isinstance(loaded, DeepONet) and loaded.config == config
    assert torch.equal(loaded(u, x=y), before)
    assert DeepONet.from_config(model.config_dict()).config == config


def test_shape_errors_say_what_was_expected():
    model = DeepONet(_config())
    u = torch.randn(4, 12)
    with pytest.raises(ValueError, match="needs query locations x"):
        model(u)
    with pytest.raises(ValueError, match="pointwise=True expects x of shape"):
        model(u, x=torch.rand(5, 2), pointwise=True)
    with pytest.raises(ValueError, match=r"\(batch, 12\)"):
        model(torch.randn(4, 11), x=torch.rand(5, 2))
    with pytest.raises(ValueError, match="coord_dim=2"):
        model(u, x=torch.rand(5, 3))
    with pytest.raises(ValueError, match="expected x of shape"):
        model(u, x=torch.rand(3, 5, 2))


def test_learns_the_antiderivative():
    """m = 40 sensors, 200 training functions (l = 0.2), 600 full-batch Adam steps: test
    relative L2 below 8% (measured 5.3%; an untrained net is at about 100%)."""
    m = 40
    train = generate_antiderivative(200, m, seed=0, length_scale=0.2)["static_fields"]
    test = generate_antiderivative(100, m, seed=1, length_scale=0.2)["static_fields"]
    x = torch.linspace(0, 1, m).unsqueeze(-1)
    v, u = torch.from_numpy(train["v"]), torch.from_numpy(train["u"]).unsqueeze(-1)
    torch.manual_seed(0)
    spec = MLPSpec(hidden=(40,), activation="relu")
    model = DeepONet(DeepONetConfig(sensors=m, basis=40, branch=spec, trunk=spec))
    opt = torch.optim.Adam(model.parameters(), lr=3e-3)
    for _ in range(600):
        opt.zero_grad()
        loss = torch.nn.functional.mse_loss(model(v, x=x), u)
        loss.backward()
        opt.step()
    with torch.no_grad():
        pred = model(torch.from_numpy(test["v"]), x=x)[..., 0]
    target = torch.from_numpy(test["u"])
    rel = ((pred - target).norm(dim=1) / target.norm(dim=1)).mean().item()
    assert rel < 0.08, rel


# ---------------------------------------------------------------------- data generator
def test_rbf_grf_covariance_matches_kernel():
    pts = np.linspace(0, 1, 9)
    v = sample_rbf_grf(20000, pts, length_scale=0.2, seed=3)
    emp = np.cov(v, rowvar=False)
    kernel = np.exp(-0.5 * ((pts[:, None] - pts[None]) / 0.2) ** 2)
    assert np.abs(emp - kernel).max() < 0.05  # sampling sd ~ sqrt(2 / 20000) ~ 0.01


def test_antiderivative_matches_the_exact_integral_statistics():
    """Var u(1) = int_0^1 int_0^1 k = 2 l^2 (exp(-1 / (2 l^2)) - 1) + l sqrt(2 pi) erf(1 / (sqrt2 l))."""
    ell, n = 0.2, 8000
    data = generate_antiderivative(n, 11, seed=5, length_scale=ell)
    u, v = data["static_fields"]["u"], data["static_fields"]["v"]
    assert u.shape == v.shape == (n, 11) and np.all(u[:, 0] == 0)
    exact = 2 * ell**2 * (math.exp(-1 / (2 * ell**2)) - 1) + ell * math.sqrt(2 * math.pi) * erf(
        1 / (math.sqrt(2) * ell)
    )
    assert abs(u[:, -1].var() / exact - 1) < 0.06  # sampling sd sqrt(2 / n) ~ 1.6%
    # the integral of a sample: trapezoid on the sensors agrees to O(h^2) with the fine-grid one
    h = 0.1
    coarse = np.concatenate([[0], np.cumsum(0.5 * h * (v[0, 1:] + v[0, :-1]))])
    assert np.abs(coarse - u[0]).max() < 0.05 * np.abs(u[0]).max() + 1e-3


def test_antiderivative_is_registered_and_writes_point_samples(tmp_path):
    assert GENERATORS["antiderivative"] is generate_antiderivative
    path = sciml.data.generators.generate(
        "antiderivative", n=4, resolution=20, out=tmp_path / "a.h5", seed=0
    )
    ds = sciml.data.open(path)
    view = sciml.data.PointSamples(ds, inputs=["v"], targets=["u"], n_points=7)
    item = view[0]
    assert item["input"].shape == (1, 20) and item["x"].shape == (7, 1)
    assert item["target"].shape == (7, 1)
    model = DeepONet(DeepONetConfig(sensors=20, basis=4, branch=MLPSpec((8,)), trunk=MLPSpec((8,))))
    batch = {k: torch.stack([view[i][k] for i in range(4)]) for k in item}
    assert model(batch["input"], x=batch["x"]).shape == batch["target"].shape


@pytest.mark.parametrize("bias", [True, False])
@pytest.mark.parametrize("hard_zero", [None, HardZero(axis=1, value=0.5)])
def test_single_output_fast_path_agrees_with_the_general_path(bias, hard_zero):
    """One output at shared points takes a separate (addmm) path; per-sample points and the
    point-wise form take the general one."""
    torch.manual_seed(2)
    model = DeepONet(_config(out_channels=1, bias=bias, hard_zero=hard_zero)).double()
    if bias:
        with torch.no_grad():
            model.bias.fill_(0.4)
    u, y = torch.randn(4, 12, dtype=torch.float64), torch.rand(7, 2, dtype=torch.float64)
    fast = model(u, x=y)
    general = model(u, x=y.expand(4, 7, 2).contiguous())
    torch.testing.assert_close(fast, general, rtol=1e-12, atol=1e-12)
    b = model.branches[0](u)
    t = model.trunks[0](y)
    ref = b @ t.T + (0.4 if bias else 0.0)
    if hard_zero is not None:
        ref = ref * (y[:, 1] - 0.5)
    torch.testing.assert_close(fast[..., 0], ref)


@pytest.mark.parametrize("pod", [False, True], ids=["deeponet", "pod_deeponet"])
def test_torch_func_transforms_match_rowwise_autograd_and_the_loop(pod):
    """docs/spectral.md lists DeepONet and PODDeepONet as running under jacrev, jacfwd and vmap:
    the Jacobian in the input function equals row-by-row autograd, and vmap over samples equals
    the loop (DeepONet with 3 outputs and per-sample query points)."""
    from torch.func import jacfwd, jacrev, vmap

    from sciml.models import PODDeepONet, PODDeepONetConfig

    torch.manual_seed(0)
    if pod:
        model = PODDeepONet(
            PODDeepONetConfig(sensors=12, points=7, out_channels=2, modes=4, branch=MLPSpec((9,)))
        ).double()
        model.fit_basis(torch.randn(20, 7, 2, dtype=torch.float64), torch.rand(7, 1))
        x = None
    else:
        model = DeepONet(_config(multi_output="split_trunk")).double()
        x = torch.rand(4, 7, 2, dtype=torch.float64)  # each function at its own points

    def f(v, i=0):
        return model(v[None])[0] if x is None else model(v[None], x=x[i : i + 1])[0]

    v = torch.randn(12, dtype=torch.float64)
    want = _rowwise_jacobian(f, v)
    torch.testing.assert_close(jacrev(f)(v), want, rtol=1e-12, atol=1e-14)
    torch.testing.assert_close(jacfwd(f)(v), want, rtol=1e-12, atol=1e-14)
    u = torch.randn(4, 12, dtype=torch.float64)
    with torch.no_grad():
        if x is None:
            got = vmap(lambda a: model(a[None])[0])(u)
        else:
            got = vmap(lambda a, b: model(a[None], x=b[None])[0])(u, x)
        loop = torch.stack([f(u[i], i) for i in range(4)])
    torch.testing.assert_close(got, loop, rtol=1e-12, atol=1e-14)


@pytest.mark.parametrize("value", [float("nan"), float("inf"), -float("inf")])
def test_transforms_refuse_a_non_finite_number(value):
    # each built a model whose outputs were NaN (an infinite HardZero value: inf or NaN)
    with pytest.raises(ValueError, match=rf"finite scale > 0, got n=16, scale={value}"):
        FourierFeatures(scale=value)
    with pytest.raises(ValueError, match=rf"HardZero.value: expected a finite number, got {value}"):
        HardZero(value=value)


def test_config_sub_blocks_are_public_in_sciml_models():
    # (why) MLPSpec / FourierFeatures / HardZero, needed to build any DeepONetConfig other than
    # the default, were importable only from the submodule sciml.models.deeponet
    import sciml.models as public
    from sciml.models import deeponet

    for name in ("MLPSpec", "FourierFeatures", "HardZero"):
        assert name in public.__all__, name
        assert getattr(public, name) is getattr(deeponet, name), name
    # a config built from the public names is the one built from the submodule's
    config = public.DeepONetConfig(
        branch=public.MLPSpec((8,)),
        fourier=public.FourierFeatures(n=3),
        hard_zero=public.HardZero(value=0.5),
    )
    assert config == DeepONetConfig(
        branch=MLPSpec((8,)), fourier=FourierFeatures(n=3), hard_zero=HardZero(value=0.5)
    )


@pytest.mark.parametrize("out_channels", [1, 3])
@pytest.mark.parametrize("strategy", STRATEGIES)
def test_zero_query_points_give_an_empty_output_in_every_layout(strategy, out_channels):
    """Query points are independent: the output at ``x`` split into two sets is the two outputs
    side by side, also when one set is empty. An empty set failed in trunk_features' reshape
    ("cannot reshape tensor of 0 elements ... -1 ... ambiguous") on every path but the one-output
    shared-points one, which returned (batch, 0, 1)."""
    torch.manual_seed(0)
    config = _config(multi_output=strategy, out_channels=out_channels, hard_zero=HardZero())
    model = DeepONet(config).double()
    u, y = torch.randn(4, 12, dtype=torch.float64), torch.rand(7, 2, dtype=torch.float64)
    full = model(u, x=y)
    for x in (y[:0], y[None, :0], y.expand(4, 7, 2)[:, :0]):
        empty = model(u, x=x)
        assert empty.shape == (4, 0, out_channels)
        both = model(u, x=torch.cat([x, y.expand(*x.shape[:-2], 7, 2)], dim=-2))
        torch.testing.assert_close(both, torch.cat([empty, full], dim=1), rtol=1e-12, atol=1e-12)
