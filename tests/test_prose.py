"""PROSE: the prose-ode generator against an independent integrator, the model, the metrics."""

from __future__ import annotations

import math
import re
import warnings

import numpy as np
import pytest
import sympy as sp
import torch
from torch.nn import functional as F

import sciml
from sciml.data.generators import generate
from sciml.data.generators.prose_ode import SYSTEMS, load_prose_ode, perturb
from sciml.models import PROSE, PROSEConfig
from sciml.models.prose_data import PROSEData, evaluate_prose
from sciml.symbolic import Vocabulary, decode, encode, skeleton, state_symbols
from sciml.train import LpLoss

scipy_integrate = pytest.importorskip("scipy.integrate")


@pytest.fixture(scope="module")
def one_per_system(tmp_path_factory):
    """One sample of each of the 15 systems, written by the registered generator."""
    out = tmp_path_factory.mktemp("prose") / "ode.h5"
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        generate("prose-ode", n=len(SYSTEMS), resolution=192, out=out, seed=3)
    return load_prose_ode(out)


def test_generator_trajectories_match_an_independent_high_accuracy_integration(one_per_system):
    d = one_per_system
    assert d["u"].shape == (15, 192, 5) and d["n_input"] == 64
    assert d["t"][0] == 0 and d["t"][-1] == 6 and sorted(set(d["system"])) == list(range(15))
    for k in range(15):
        dim = int(d["dim"][k])
        got = decode(d["equations"][k], dim=dim)  # the stored text is the system that was solved
        assert got.valid, got.error
        fn = sp.lambdify([state_symbols(dim)], list(got.expressions), modules="numpy")
        rhs = lambda t, y, fn=fn, dim=dim: np.array(fn(y), dtype=float) * np.ones(dim)  # noqa: E731
        u = d["u"][k, :, :dim].astype(float)
        ref = scipy_integrate.solve_ivp(
            rhs,
            (0, 6),
            d["initial_state"][k, :dim],
            method="DOP853",
            t_eval=d["t"],
            rtol=1e-12,
            atol=1e-12,
        ).y.T
        err = np.linalg.norm(u - ref) / np.linalg.norm(ref)
        # LSODA at rtol 1e-9, amplified by chaos over [0, 6] (double pendulum: ~1e-5)
        assert err < 1e-4, (d["systems"][d["system"][k]], err)
        assert np.all(d["u"][k, :, dim:] == 0)


def test_generator_noise_is_two_percent_and_skeletons_are_consistent(one_per_system):
    d = one_per_system
    for k in range(15):
        dim = int(d["dim"][k])
        u, noisy = d["u"][k, :, :dim], d["noisy_u"][k, :, :dim]
        assert np.linalg.norm(noisy - u) / np.linalg.norm(u) == pytest.approx(0.02, rel=1e-4)
        clean = skeleton(d["equations"][k])
        shown = d["input_skeletons"][k]
        assert (shown == clean) == (d["perturbation"][k] == 0)
        assert decode(shown, dim=dim, allow_placeholders=True).valid


def test_parameters_stay_within_ten_percent_of_nominal():
    rng = np.random.default_rng(0)
    for spec in SYSTEMS.values():
        for _ in range(20):
            p = spec.sample_params(rng)
            for key, nominal in spec.nominal.items():
                assert abs(p[key] - nominal) <= 0.1 * abs(nominal) * (1 + 1e-2) + 1e-12


def test_perturbations_add_or_delete_exactly_one_term():
    rng = np.random.default_rng(1)
    lorenz = SYSTEMS["lorenz"].equations(SYSTEMS["lorenz"].nominal)

    def n_terms(system):
        return [len(f.args) if f.is_Add else 1 for f in system]

    for _ in range(20):
        added, mode = perturb(lorenz, 1, rng)
        assert mode == 1 and sum(n_terms(added)) == sum(n_terms(lorenz)) + 1
        deleted, mode = perturb(lorenz, -1, rng)
        assert mode == -1 and sum(n_terms(deleted)) == sum(n_terms(lorenz)) - 1
    pendulum = SYSTEMS["double_pendulum"].equations(SYSTEMS["double_pendulum"].nominal)
    assert perturb(pendulum, -1, rng)[1] == 0  # no top-level sum to delete from


def test_generator_refuses_bad_options(tmp_path):
    with pytest.raises(ValueError, match="unknown system"):
        generate("prose-ode", n=2, resolution=192, out=tmp_path / "x.h5", systems="lorenzz")
    with pytest.raises(ValueError, match="n_input"):
        generate("prose-ode", n=2, resolution=32, out=tmp_path / "x.h5", n_input=64)


def _tiny():
    return PROSE(
        PROSEConfig.small(
            width=32, heads=2, fusion_layers=1, data_decoder_layers=1, symbol_decoder_layers=1,
            ffn_mult=2, max_symbol_len=40,
        )
    )  # fmt: skip


def _tiny_built_in_float64(seed: int) -> PROSE:
    """``_tiny()`` in eval mode, built under ``torch.set_default_dtype(torch.float64)``."""
    previous = torch.get_default_dtype()
    torch.set_default_dtype(torch.float64)
    try:
        torch.manual_seed(seed)
        return _tiny().eval()
    finally:
        torch.set_default_dtype(previous)


@pytest.fixture(scope="module")
def four_samples(tmp_path_factory):
    out = tmp_path_factory.mktemp("prose") / "four.h5"
    generate(
        "prose-ode", n=4, resolution=48, out=out, n_input=16, add_prob=0.0, delete_prob=0.0,
        systems="lorenz,rossler,sprott_b,sprott_linz_f",
    )  # fmt: skip
    return load_prose_ode(out)


# ~8 s (15 s on a busy CPU); in the default run: it is one of the acceptance tests
def test_tiny_prose_overfits_both_outputs(four_samples):
    torch.manual_seed(0)
    model = _tiny()
    data = PROSEData(four_samples, model.vocab, max_symbol_len=40)
    batch = {k: torch.stack([data[i][k] for i in range(4)]) for k in data[0]}
    opt = torch.optim.Adam(model.parameters(), lr=3e-3)
    loss_fn = LpLoss()
    for _ in range(220):
        opt.zero_grad()
        loss = model.training_loss(batch, loss_fn)
        loss.backward()
        opt.step()
    model.eval()
    with torch.no_grad():
        pred = model(batch["input"], x=batch["x"], symbols=batch["symbols"])
        fused, pad, _ = model.encode(batch["input"], batch["symbols"])
        logits = model.symbol_logits(fused, pad, batch["target_symbols"][:, :-1])
    rel = torch.linalg.vector_norm(pred - batch["target"], dim=(1, 2)) / torch.linalg.vector_norm(
        batch["target"], dim=(1, 2)
    )
    assert rel.max() < 0.05
    ce = torch.nn.functional.cross_entropy(
        logits.transpose(1, 2), batch["target_symbols"][:, 1:], ignore_index=0
    )
    assert ce < 0.02
    assert model.generate(batch["input"], batch["symbols"]) == four_samples["equations"]
    assert (
        model.generate(batch["input"][:2], batch["symbols"][:2], beam_size=3)
        == (four_samples["equations"][:2])
    )
    metrics = evaluate_prose(model, data, n_points=64)
    assert metrics["valid"] == 1.0 and metrics["field_rel_l2"] < 1e-12
    assert metrics["traj_rel_l2"] == pytest.approx(rel.mean().item(), rel=1e-4)
    per = metrics["per_system"]  # the four samples, by system, recomputed from the torch errors
    assert sum(v["n"] for v in per.values()) == 4 and all(v["valid"] == 1.0 for v in per.values())
    names = four_samples["systems"]
    for sid in set(four_samples["system"].tolist()):
        sel = torch.as_tensor(four_samples["system"] == sid)
        assert per[names[sid]]["traj_rel_l2"] == pytest.approx(rel[sel].mean().item(), rel=1e-4)
    # the decoded equations are the true ones, so integrating them reproduces the data
    assert metrics["integrated_rel_l2"] < 1e-4 and metrics["integrated_fail"] == 0


def test_data_decoder_queries_are_independent_and_padding_channels_are_zero():
    torch.manual_seed(0)
    model = _tiny().eval()
    u = torch.randn(2, 16, 6)
    u[..., 0] = torch.linspace(0, 1, 16)
    u[..., 4:] = 0  # a 3-d system
    sym = torch.tensor([model.vocab.ids(skeleton(encode(SYSTEMS["lorenz"].equations(SYSTEMS["lorenz"].nominal))), bos=True, eos=True)] * 2)  # fmt: skip
    x = torch.linspace(1, 3, 9)
    with torch.no_grad():
        full = model(u, x=x, symbols=sym)
        part = model(u, x=x[::4], symbols=sym)
        padded = model(u, x=x, symbols=torch.nn.functional.pad(sym, (0, 7)))
    torch.testing.assert_close(part, full[:, ::4], rtol=1e-5, atol=1e-6)
    torch.testing.assert_close(padded, full, rtol=1e-5, atol=1e-6)  # padding tokens are ignored
    assert torch.all(full[..., 3:] == 0) and torch.all(full[..., :3] != 0)


def test_trimming_symbol_padding_changes_no_output_or_loss(monkeypatch):
    """The model cuts all-padding columns of the token batches (speed); compare with no cut."""
    import sciml.models.prose as prose_module

    torch.manual_seed(0)
    model = _tiny().eval()
    u = torch.randn(2, 16, 6)
    u[..., 0] = torch.linspace(0, 1, 16)
    lorenz, thomas = (SYSTEMS[n].equations(SYSTEMS[n].nominal) for n in ("lorenz", "thomas"))
    rows = [model.vocab.ids(encode(eq), bos=True, eos=True) for eq in (lorenz, thomas)]
    width = 40  # both shorter, different lengths: trimming keeps the longer one's length
    ids = torch.tensor([r + [model.vocab.pad_id] * (width - len(r)) for r in rows])
    assert max(map(len, rows)) < width and len(rows[0]) != len(rows[1])
    batch = {"input": u, "x": torch.linspace(1, 3, 9)[None, :, None].expand(2, -1, -1),
             "target": torch.randn(2, 9, 5), "symbols": ids, "target_symbols": ids}  # fmt: skip
    assert prose_module._trim_padding(ids, model.vocab.pad_id).shape[1] == max(map(len, rows))
    with torch.no_grad():
        out, loss = model.predict_batch(batch), model.training_loss(batch, LpLoss(p=2))
        monkeypatch.setattr(prose_module, "_trim_padding", lambda t, pad_id: t)
        out_full = model.predict_batch(batch)
        loss_full = model.training_loss(batch, LpLoss(p=2))
    torch.testing.assert_close(out, out_full, rtol=1e-5, atol=1e-6)
    torch.testing.assert_close(loss, loss_full, rtol=1e-5, atol=1e-6)


def _padded_batch(model, dtype=torch.float32):
    """Two samples padded to 40 tokens: equations Lorenz / Thomas (37 / 28 tokens), skeletons
    Lorenz's (29) / its first 5 tokens. Eager cuts the columns that are padding in every row."""
    u = torch.randn(2, 16, 6, dtype=dtype)
    u[..., 0] = torch.linspace(0, 1, 16)
    lorenz, thomas = (SYSTEMS[n].equations(SYSTEMS[n].nominal) for n in ("lorenz", "thomas"))
    rows = [model.vocab.ids(encode(eq), bos=True, eos=True) for eq in (lorenz, thomas)]
    ids = torch.tensor([r + [model.vocab.pad_id] * (40 - len(r)) for r in rows])
    sym = torch.tensor([model.vocab.ids(skeleton(encode(lorenz)), bos=True, eos=True)] * 2)
    sym = torch.nn.functional.pad(sym, (0, 40 - sym.shape[1]))
    sym[1, 5:] = model.vocab.pad_id  # a shorter skeleton in the second row
    x = torch.linspace(1, 3, 9, dtype=dtype)[None, :, None].expand(2, -1, -1)
    target = torch.randn(2, 9, 5, dtype=dtype)
    return {"input": u, "x": x, "target": target, "symbols": sym, "target_symbols": ids}


def test_compiled_loss_and_forward_are_one_graph_equal_to_eager_with_padding():
    """``torch.compile(fullgraph=True)`` (which raises at any graph break) of the training loss
    and of the inference forward: one graph each, compiled once for two batches whose cut
    widths differ, with loss, gradients and prediction equal to eager's (which cuts the padding
    columns; compiled, they stay and are masked). Before, ``_trim_padding`` (``nonzero``,
    ``int``) broke the forward 6 times and the loss 9 times (there with the symbol decoder's
    causal-mask check, ``bool(tensor)``), and each new cut width recompiled. The model is
    float64; the loss's token cross-entropy is computed in float32 (``training_loss``), hence
    the loss's looser tolerance (it differs by one float32 rounding, 5.6e-8 relative)."""
    from torch._dynamo.testing import CompileCounterWithBackend

    model = _tiny_built_in_float64(seed=0).train()
    batch = _padded_batch(model, torch.float64)
    other = dict(batch, symbols=batch["symbols"][[1, 1]], target_symbols=batch["symbols"])
    cut = [
        [int((b[k] != 0).sum(1).max()) for k in ("symbols", "target_symbols")]
        for b in (batch, other)
    ]
    assert cut == [[29, 37], [5, 29]]  # eager's widths, all below the 40 columns
    params = list(model.parameters())
    loss_fn = LpLoss()
    counter = CompileCounterWithBackend("eager")
    torch._dynamo.reset()
    try:
        compiled = torch.compile(model.training_loss, backend=counter, fullgraph=True)
        for b in (batch, other):
            want = model.training_loss(b, loss_fn)
            want_grads = torch.autograd.grad(want, params, allow_unused=True)
            got = compiled(b, loss_fn)
            grads = torch.autograd.grad(got, params, allow_unused=True)
            torch.testing.assert_close(got, want, rtol=1e-6, atol=0)
            for g, w in zip(grads, want_grads):
                assert (g is None) == (w is None)
                if w is not None:
                    torch.testing.assert_close(g, w, rtol=1e-9, atol=1e-12)
        assert counter.frame_count == 1  # one graph, not recompiled for the second batch
        model.eval()
        counter = CompileCounterWithBackend("eager")
        forward = torch.compile(model, backend=counter, fullgraph=True)
        with torch.no_grad():
            for b in (batch, other):
                want = model(b["input"], x=b["x"], symbols=b["symbols"])
                got = forward(b["input"], x=b["x"], symbols=b["symbols"])
                torch.testing.assert_close(got, want, rtol=1e-12, atol=1e-13)
        assert counter.frame_count == 1
    finally:
        torch._dynamo.reset()


@pytest.mark.slow  # two compiles: ~4 s per case, 20-30 s on a loaded 2-core box
@pytest.mark.parametrize("dynamic", [False, None])
def test_compiled_step_runs_at_a_bucket_width_equal_to_eager(four_samples, dynamic):
    """A compiled step keeps the token width it is given (``_trim_padding`` cannot cut under
    ``torch.compile``), so batches come cut to a bucket width (16, 32, ... or max_symbol_len):
    the DataLoader's batches of ``PROSEData`` and ``PROSE.bucket_batch``. Here max_symbol_len
    is 40: Lorenz + Rossler (37 / 29 tokens) give a batch 40 wide, Sprott B + Sprott-Linz F
    (26 / 20) one 32 wide (40 before, every batch at max_symbol_len). Compiled
    (``fullgraph=True``: no graph break; ``dynamic=False``: one static graph per bucket, or
    torch's default, which makes the width dynamic at its second value), loss and prediction
    equal eager's on the batch padded to 40, which eager cuts to 37 / 26 columns."""
    from torch._dynamo.testing import CompileCounterWithBackend

    torch.manual_seed(0)
    model = _tiny().eval()
    data = PROSEData(four_samples, model.vocab, max_symbol_len=40)
    loader = torch.utils.data.DataLoader(data, batch_size=2)
    batches = list(loader)
    assert [b["target_symbols"].shape[1] for b in batches] == [40, 32]
    assert [b["symbols"].shape[1] for b in batches] == [40, 32]
    padded = [
        {k: torch.stack([data[i][k] for i in idx]) for k in data[0]} for idx in ([0, 1], [2, 3])
    ]
    for b, full in zip(batches, padded):  # the same tokens, only the padding differs
        assert full["target_symbols"].shape[1] == 40
        for k in full:
            w = b[k].shape[1]
            assert torch.equal(b[k], full[k][:, :w]) and not full[k][:, w:].any()
        rebucketed = model.bucket_batch(full)  # what a batch padded to 40 is cut to
        assert all(torch.equal(rebucketed[k], b[k]) for k in b)
    loss_fn = LpLoss()
    counter = CompileCounterWithBackend("eager")
    torch._dynamo.reset()
    try:
        loss = torch.compile(model.training_loss, backend=counter, fullgraph=True, dynamic=dynamic)
        forward = torch.compile(model, backend=counter, fullgraph=True, dynamic=dynamic)
        with torch.no_grad():
            for b, full in zip(batches, padded):
                want = model.training_loss(full, loss_fn)
                got = loss(b, loss_fn)
                assert float((got - want).abs()) <= 1e-5 * float(want.abs())
                want = model(full["input"], x=full["x"], symbols=full["symbols"])
                got = forward(b["input"], x=b["x"], symbols=b["symbols"])
                assert float((got - want).abs().max()) <= 1e-5
        # one graph per bucket and function (two each), or one static and one dynamic
        assert counter.frame_count == 4
    finally:
        torch._dynamo.reset()


@pytest.mark.slow  # ~17 s on a loaded 2-core box: a compile and an export
def test_an_out_of_range_token_id_is_refused_clearly_when_compiled_or_exported():
    """Eager PROSE reads the token ids' range (``int(min)``, ``int(max)``, a graph break), so
    it skipped the check while traced, and an id outside the vocabulary met the embedding:
    "index out of range in self" compiled, and whatever the exported program did. Now the
    graph asserts the range (no graph break: ``fullgraph=True``) with the eager error's text;
    valid ids give eager's prediction."""
    from torch._dynamo.testing import CompileCounterWithBackend

    torch.manual_seed(0)
    model = _tiny().eval()
    v = len(model.vocab)
    batch = _padded_batch(model)
    u, x, symbols = batch["input"], batch["x"], batch["symbols"]
    message = rf"expected token ids in \[0, {v}\) \(the vocabulary of this PROSE\), got an id"
    with torch.no_grad():
        want = model(u, x=x, symbols=symbols)
    counter = CompileCounterWithBackend("eager")
    torch._dynamo.reset()
    try:
        forward = torch.compile(model, backend=counter, fullgraph=True)
        program = sciml.export(model, u, x=x, symbols=symbols).module()
        with torch.no_grad():
            for run in (forward, program):
                got = run(u, x=x, symbols=symbols)
                assert float((got - want).abs().max()) <= 1e-5
                for bad_id in (v, -1):
                    bad = symbols.clone()
                    bad[1, 2] = bad_id
                    with pytest.raises(RuntimeError, match=message):
                        run(u, x=x, symbols=bad)
        assert counter.frame_count == 1
        with pytest.raises(ValueError, match=rf"got ids from 0 to {v}; encode"):  # eager's
            model(u, x=x, symbols=torch.where(symbols == symbols.max(), v, symbols))
    finally:
        torch._dynamo.reset()


def test_a_sample_without_skeleton_is_predicted_as_data_only_in_inference():
    """A batch mixing a skeleton-free sample (its row all padding) with one that has a
    skeleton, and an empty (batch, 0) skeleton: each sample is predicted, and its equations
    generated, as by itself with its own skeleton (or none). Under no_grad the fused attention
    kernel used to answer NaN for the all-padding row (empty equations from generate), and the
    empty skeleton failed in a reshape; one observation (NaN std) is refused."""
    torch.manual_seed(0)
    model = _tiny().eval()
    u = torch.randn(2, 16, 6)
    u[..., 0] = torch.linspace(0, 1, 16)
    lorenz = SYSTEMS["lorenz"].equations(SYSTEMS["lorenz"].nominal)
    ids = model.vocab.ids(skeleton(encode(lorenz)), bos=True, eos=True)
    mixed = torch.tensor([[model.vocab.pad_id] * len(ids), ids])
    x = torch.linspace(1, 3, 9)
    for context in (torch.enable_grad, torch.no_grad, torch.inference_mode):
        with context():
            data_only = model(u[:1], x=x)
            with_skeleton = model(u[1:], x=x, symbols=mixed[1:])
            both = model(u, x=x, symbols=mixed)
            empty = model(u, x=x, symbols=torch.zeros(2, 0, dtype=torch.long))
        torch.testing.assert_close(both[:1], data_only, rtol=1e-5, atol=1e-6)
        torch.testing.assert_close(both[1:], with_skeleton, rtol=1e-5, atol=1e-6)
        torch.testing.assert_close(empty, model(u, x=x).detach(), rtol=1e-5, atol=1e-6)
    equations = model.generate(u, mixed, max_len=12)
    assert equations[0] == model.generate(u[:1], max_len=12)[0] != []
    assert equations[1] == model.generate(u[1:], mixed[1:], max_len=12)[0]
    with pytest.raises(ValueError, match="at least 2 observation times, got 1"):
        model(u[:, :1], x=x)


def test_bad_inputs_raise_clear_errors():
    model = _tiny()
    with pytest.raises(ValueError, match=r"1 \+ dim = 6"):
        model(torch.randn(2, 16, 4), x=torch.linspace(0, 1, 5))
    with pytest.raises(ValueError, match="query times"):
        model(torch.randn(2, 16, 6), x=torch.randn(2, 5, 2))
    with pytest.raises(ValueError, match="max_symbol_len"):
        model(torch.randn(1, 16, 6), x=torch.linspace(0, 1, 5), symbols=torch.ones(1, 41).long())
    with pytest.raises(ValueError, match="divisible"):
        PROSEConfig(width=30, heads=4)
    # the common call's lead time t is refused, as FNO / NODE refuse what they do not take
    # (docs/conventions.md); it was a TypeError from Python, not the documented ValueError
    with pytest.raises(ValueError, match="PROSE takes no lead time t: pass the query times as x"):
        model(torch.randn(2, 16, 6), x=torch.linspace(0, 1, 5), t=torch.ones(2))


@pytest.mark.parametrize(
    ("convert", "kind"), [(torch.Tensor.tolist, "list"), (torch.Tensor.numpy, "ndarray")]
)
def test_symbol_logits_refuses_tokens_that_are_not_a_tensor(convert, kind):
    """symbol_logits type-checks its decoder input as encode / decode_data check symbols and x.
    (why) a list failed with "'list' object has no attribute 'shape'". Tensor tokens still give
    causal logits: a prefix's logits are the first rows of the whole sequence's (float64)."""
    model = _tiny_built_in_float64(0)
    tokens = torch.tensor([[1, 4, 5, 6, 0], [1, 4, 7, 0, 0]])
    with torch.no_grad():
        fused, pad, _ = model.encode(torch.randn(2, 16, 6, dtype=torch.float64), tokens[:, 1:])
        with pytest.raises(
            TypeError, match=rf"^PROSE expected tokens as a torch\.Tensor, got {kind}$"
        ):
            model.symbol_logits(fused, pad, convert(tokens))
        whole = model.symbol_logits(fused, pad, tokens)
        for k in (1, 3):
            prefix = model.symbol_logits(fused, pad, tokens[:, :k])
            torch.testing.assert_close(prefix, whole[:, :k], rtol=1e-12, atol=1e-12)


def test_symbol_logits_of_an_empty_decoder_input_are_the_empty_prefix():
    """A decoder input of length 0 gives logits (B, 0, V): the first 0 rows of any sequence's,
    as a prefix of length k gives the first k rows (float64). (why) with gradients on it was
    torch's "cannot reshape tensor of 0 elements into shape [2, 2, -1, 0]" (the attention)."""
    model = _tiny_built_in_float64(0)
    tokens = torch.tensor([[1, 4, 5, 6], [1, 4, 7, 0]])
    with torch.no_grad():
        fused, pad, _ = model.encode(torch.randn(2, 16, 6, dtype=torch.float64), tokens[:, 1:])
        whole = model.symbol_logits(fused, pad, tokens)
        for k in (0, 1, 2):
            got = model.symbol_logits(fused, pad, tokens[:, :k])
            assert got.shape == (2, k, len(model.vocab)) and got.dtype == torch.float64
            torch.testing.assert_close(got, whole[:, :k], rtol=1e-12, atol=1e-12)
    # with gradients on (as in training): torch's fused no-grad inference path took 0 tokens
    fused, pad, _ = model.encode(torch.randn(2, 16, 6, dtype=torch.float64), tokens[:, 1:])
    empty = model.symbol_logits(fused, pad, torch.zeros(2, 0, dtype=torch.long))
    torch.testing.assert_close(empty, whole[:, :0], rtol=0, atol=0)
    empty.sum().backward()  # an empty answer that still backpropagates: zero gradients
    for p in model.symbol_head.parameters():
        assert torch.equal(p.grad, torch.zeros_like(p))


@pytest.mark.parametrize(
    ("tokens", "error", "message"),
    [
        (torch.tensor([3, 4]), ValueError, "expected tokens of shape (batch=2, length), got (2,)"),
        (torch.ones(3, 2).long(), ValueError, "expected tokens of shape (batch=2, length), got (3, 2)"),
        (torch.ones(2, 3, 1).long(), ValueError, "expected tokens of shape (batch=2, length), got (2, 3, 1)"),
        (torch.ones(2, 3), TypeError, "expected integer token ids in tokens (torch.long), got dtype torch.float32"),
        (torch.ones(2, 3, dtype=torch.bool), TypeError, "expected integer token ids in tokens (torch.long), got dtype torch.bool"),
    ],
)  # fmt: skip
def test_symbol_logits_checks_the_shape_and_dtype_of_tokens(tokens, error, message):
    """symbol_logits checks its decoder input's shape and dtype as encode checks symbols.
    (why) a 1-d tensor said "tuple index out of range", a float one torch's "Expected tensor for
    argument #1 'indices'", a batch of 3 against 2 encoded samples "shape '[18, 6, 16]' is
    invalid". Integer tokens of any integer dtype still give the same logits as long ones."""
    model = _tiny_built_in_float64(0)
    good = torch.tensor([[1, 4, 5, 6], [1, 4, 7, 0]])
    with torch.no_grad():
        fused, pad, _ = model.encode(torch.randn(2, 16, 6, dtype=torch.float64), good[:, 1:])
        with pytest.raises(error, match=f"^{re.escape(message)}$"):
            model.symbol_logits(fused, pad, tokens)
        torch.testing.assert_close(
            model.symbol_logits(fused, pad, good.int()),
            model.symbol_logits(fused, pad, good),
            rtol=0,
            atol=0,
        )


@pytest.mark.parametrize(
    ("target_symbols", "error", "message"),
    [
        ([[1, 4, 2], [1, 2, 0]], TypeError, "PROSE expected target_symbols as a torch.Tensor, got list"),
        (torch.tensor([1, 4, 2]), ValueError, "expected target_symbols of shape (batch=2, length), got (3,)"),
        (torch.ones(3, 3).long(), ValueError, "expected target_symbols of shape (batch=2, length), got (3, 3)"),
        (torch.ones(2, 3), TypeError, "expected integer token ids in target_symbols (torch.long), got dtype torch.float32"),
    ],
)  # fmt: skip
def test_training_loss_checks_target_symbols_by_name(target_symbols, error, message):
    """training_loss checks the batch's target_symbols before it trims them, naming the key.
    (why) a list said "'bool' object has no attribute 'any'", a 1-d tensor "too many indices",
    and a batch or dtype mismatch was reported for symbol_logits' argument "tokens", a name the
    batch does not have. Good targets still give the hand-composed loss."""
    model = _tiny_built_in_float64(0)
    u, x = torch.randn(2, 16, 6, dtype=torch.float64), torch.linspace(0, 1, 5, dtype=torch.float64)
    target = torch.randn(2, 5, 5, dtype=torch.float64)
    good = torch.tensor([[1, 4, 2, 0], [1, 2, 0, 0]])
    batch = {"input": u, "x": x, "target": target}
    with torch.no_grad():
        with pytest.raises(error, match=f"^{re.escape(message)}$"):
            model.training_loss({**batch, "target_symbols": target_symbols}, F.mse_loss)
        fused, pad, norm = model.encode(u)
        logits = model.symbol_logits(fused, pad, good[:, :2])  # the padding column trimmed
        ce = F.cross_entropy(
            logits.reshape(-1, logits.shape[-1]).float(),
            good[:, 1:3].reshape(-1),
            ignore_index=model.vocab.pad_id,
        )
        want = (
            F.mse_loss(model.decode_data(fused, pad, norm, x), target)
            + model.config.symbol_loss_weight * ce
        )
        got = model.training_loss({**batch, "target_symbols": good}, F.mse_loss)
    torch.testing.assert_close(got, want, rtol=1e-12, atol=1e-12)


@pytest.mark.parametrize(
    ("target_symbols", "given"),
    [
        (torch.ones(2, 1).long(), "shape (2, 1)"),  # <bos> only
        (torch.zeros(2, 0).long(), "shape (2, 0)"),
        (torch.zeros(2, 4).long(), "shape (2, 4) with only <pad> after column 0"),
        (torch.tensor([[1, 0, 0], [1, 0, 0]]), "shape (2, 3) with only <pad> after column 0"),
    ],
)
def test_training_loss_refuses_target_symbols_with_nothing_to_predict(target_symbols, given):
    """Target equations with no token after <bos> (only <bos>, only padding, none) are a
    ValueError naming target_symbols, from training_loss and from bucket_batch; compiled (the
    padding not cut) a RuntimeError from an assert in the one graph. (why) it was torch's
    "cannot reshape tensor of 0 elements into shape [2, 2, -1, 0]", and with an empty decoder
    input allowed, a mean cross-entropy over no tokens: NaN. A batch where one row has nothing to predict still
    gives the loss of the other row's tokens (float64, composed by hand)."""
    message = (
        "expected target_symbols with at least one token after <bos> to predict (rows <bos> f "
        f"<eos> <pad>..., as model.vocab.ids(tokens, bos=True, eos=True)), got {given}"
    )
    model = _tiny_built_in_float64(0).train()
    u, x = torch.randn(2, 16, 6, dtype=torch.float64), torch.linspace(0, 1, 5, dtype=torch.float64)
    batch = {"input": u, "x": x, "target": torch.randn(2, 5, 5, dtype=torch.float64)}
    bad = {**batch, "target_symbols": target_symbols}
    with pytest.raises(ValueError, match=f"^{re.escape(message)}$"):
        model.training_loss(bad, F.mse_loss)
    with pytest.raises(ValueError, match=f"^{re.escape(message)}$"):
        model.bucket_batch(bad)
    if target_symbols.shape[1] > 1:  # compiled, nothing is cut: an assert in the graph
        torch._dynamo.reset()
        try:
            compiled = torch.compile(model.training_loss, backend="eager", fullgraph=True)
            in_graph = message.replace(f"shape {tuple(target_symbols.shape)} with ", "")
            with pytest.raises(RuntimeError, match=f"^{re.escape(in_graph)}$"):
                compiled(bad, F.mse_loss)
        finally:
            torch._dynamo.reset()
    assert model.vocab.ids([], bos=True, eos=True) == [model.vocab.bos_id, model.vocab.eos_id]
    mixed = torch.tensor([[1, 4, 2], [1, 0, 0]])  # the second row: <bos> only
    got = model.training_loss({**batch, "target_symbols": mixed}, F.mse_loss)
    fused, pad, norm = model.encode(u)
    logits = model.symbol_logits(fused, pad, mixed[:1, :2].expand(2, -1))[0]
    ce = F.cross_entropy(logits.float(), mixed[0, 1:])  # row 0's 2 tokens, row 1's none
    want = F.mse_loss(model.decode_data(fused, pad, norm, x), batch["target"])
    want = want + model.config.symbol_loss_weight * ce
    torch.testing.assert_close(got, want, rtol=1e-12, atol=1e-12)


def test_training_loss_and_predict_batch_name_the_keys_a_batch_lacks():
    """A batch without a key training_loss / predict_batch reads is a ValueError naming the keys
    expected and given, a batch that is not a dict a TypeError. (why) it was a bare KeyError:
    'target_symbols' (or 'x'), and a tuple batch "tuple indices must be integers or slices".
    A complete batch gives the loss composed by hand (float64)."""
    model = _tiny_built_in_float64(0)
    u, x = torch.randn(2, 16, 6, dtype=torch.float64), torch.linspace(0, 1, 5, dtype=torch.float64)
    target, tgt = torch.randn(2, 5, 5, dtype=torch.float64), torch.tensor([[1, 4, 2], [1, 2, 0]])
    batch = {"input": u, "x": x, "target": target}
    with pytest.raises(ValueError) as info:
        model.training_loss(batch, F.mse_loss)
    assert str(info.value) == (
        "PROSE.training_loss expected a batch with keys ['input', 'x', 'target', "
        "'target_symbols'] (and optional 'symbols'), got keys ['input', 'x', 'target']: "
        "missing ['target_symbols']"
    )
    with pytest.raises(ValueError) as info:
        model.predict_batch({"input": u, "target_symbols": tgt})
    assert str(info.value) == (
        "PROSE.predict_batch expected a batch with keys ['input', 'x'] (and optional "
        "'symbols'), got keys ['input', 'target_symbols']: missing ['x']"
    )
    with pytest.raises(TypeError, match=r"^PROSE\.training_loss expected a batch dict, got tuple$"):
        model.training_loss((u, x, target, tgt), F.mse_loss)
    with torch.no_grad():
        got = model.training_loss({**batch, "target_symbols": tgt}, F.mse_loss)
        fused, pad, norm = model.encode(u)
        pred = model.decode_data(fused, pad, norm, x)
        logits = model.symbol_logits(fused, pad, tgt[:, :2])
        ce = F.cross_entropy(
            logits.reshape(-1, logits.shape[-1]).float(), tgt[:, 1:].reshape(-1), ignore_index=0
        )
        want = F.mse_loss(pred, target) + model.config.symbol_loss_weight * ce
        torch.testing.assert_close(model.predict_batch(batch), pred, rtol=0, atol=0)
    torch.testing.assert_close(got, want, rtol=1e-12, atol=1e-12)


_U2 = torch.zeros(2, 16, 6)
_GOOD = torch.tensor([[1, 4, 2, 0], [1, 2, 0, 0]])


@pytest.mark.parametrize(
    ("batch", "error", "message"),
    [
        ({"target_symbols": [[1, 2]]}, TypeError, "PROSE expected target_symbols as a torch.Tensor, got list"),
        ({"input": _U2, "target_symbols": [[1, 4, 2], [1, 2, 0]]}, TypeError, "PROSE expected target_symbols as a torch.Tensor, got list"),
        ({"input": _U2, "target_symbols": torch.tensor([1, 4, 2])}, ValueError, "expected target_symbols of shape (batch=2, length), got (3,)"),
        ({"input": _U2, "target_symbols": torch.ones(3, 3).long()}, ValueError, "expected target_symbols of shape (batch=2, length), got (3, 3)"),
        ({"input": _U2, "target_symbols": torch.ones(2, 3)}, TypeError, "expected integer token ids in target_symbols (torch.long), got dtype torch.float32"),
        ({"input": _U2, "symbols": torch.ones(2, 3, dtype=torch.bool), "target_symbols": _GOOD}, TypeError, "expected integer token ids in symbols (torch.long), got dtype torch.bool"),
        ({"target_symbols": torch.tensor([1, 4, 2])}, ValueError, "expected target_symbols of shape (batch, length), got (3,)"),
        ({"symbols": _GOOD[:, 1:], "target_symbols": torch.ones(3, 3).long()}, ValueError, "expected target_symbols of shape (batch=2, length), got (3, 3)"),
        ((_U2, _GOOD), TypeError, "PROSE.bucket_batch expected a batch dict, got tuple"),
    ],
)  # fmt: skip
def test_bucket_batch_checks_its_token_tensors_as_training_loss(batch, error, message):
    """bucket_batch checks symbols / target_symbols with training_loss's messages, the batch
    being the input's (else the first token tensor's). (why) a list said "'bool' object has no
    attribute 'any'". A valid batch is cut / padded to the bucket width 16 (3 columns used, by
    hand), its dtype kept, the other entries passed through."""
    model = _tiny_built_in_float64(0)
    with pytest.raises(error, match=f"^{re.escape(message)}$"):
        model.bucket_batch(batch)
    pad = model.vocab.pad_id
    assert pad == 0
    for dtype in (torch.long, torch.int32):
        got = model.bucket_batch(
            {"input": _U2, "symbols": _GOOD[:, 1:].to(dtype), "target_symbols": _GOOD.to(dtype)}
        )
        want = torch.zeros(2, 16, dtype=dtype)
        want[:, :3] = torch.tensor([[1, 4, 2], [1, 2, 0]])
        assert got["target_symbols"].dtype == dtype and torch.equal(got["target_symbols"], want)
        want = torch.zeros(2, 16, dtype=dtype)
        want[:, :2] = torch.tensor([[4, 2], [2, 0]])
        assert got["symbols"].dtype == dtype and torch.equal(got["symbols"], want)
        assert got["input"] is _U2


@pytest.mark.parametrize("dtype", [torch.int32, torch.int16, torch.int8, torch.uint8])
def test_token_ids_of_any_integer_dtype_give_the_long_ids_results(dtype):
    """symbols, decoder tokens and target_symbols of any integer dtype are read as torch.long.
    (why) the checks let every integer dtype through, but the embedding takes only long / int32
    ("Expected tensor for argument #1 'indices' to have one of the following scalar types: Long,
    Int; but got torch.ShortTensor") and the cross-entropy only long targets ("expected target
    dtype to be Long or Byte, but got Int")."""
    model = _tiny_built_in_float64(0)
    u, x = torch.randn(2, 16, 6, dtype=torch.float64), torch.linspace(0, 1, 5, dtype=torch.float64)
    symbols = torch.tensor([[4, 5, 6], [4, 7, 0]])
    tgt = torch.tensor([[1, 4, 2, 0], [1, 2, 0, 0]])
    batch = {"input": u, "x": x, "target": torch.randn(2, 5, 5, dtype=torch.float64)}
    with torch.no_grad():
        fused, pad, _ = model.encode(u, symbols)
        got_fused, got_pad, _ = model.encode(u, symbols.to(dtype))
        torch.testing.assert_close(got_fused, fused, rtol=0, atol=0)
        assert torch.equal(got_pad, pad)
        torch.testing.assert_close(
            model.symbol_logits(fused, pad, tgt.to(dtype)),
            model.symbol_logits(fused, pad, tgt),
            rtol=0,
            atol=0,
        )
        torch.testing.assert_close(
            model.training_loss({**batch, "symbols": symbols.to(dtype), "target_symbols": tgt.to(dtype)}, F.mse_loss),
            model.training_loss({**batch, "symbols": symbols, "target_symbols": tgt}, F.mse_loss),
            rtol=0,
            atol=0,
        )  # fmt: skip


def test_encoders_of_no_layers_pass_the_embeddings_to_the_fusion():
    """With symbol_encoder_layers = data_encoder_layers = 0 (allowed by the config) the fused
    features are the fusion of the embeddings themselves, composed here by hand (the symbol path
    raised a TypeError: nn.Identity takes no padding mask). A symbol decoder of no layers could
    not see the data at all and is refused."""
    torch.manual_seed(0)
    cfg = PROSEConfig.small(
        width=32, heads=2, data_encoder_layers=0, symbol_encoder_layers=0, fusion_layers=1,
        data_decoder_layers=1, symbol_decoder_layers=1, ffn_mult=2, max_symbol_len=40,
    )  # fmt: skip
    model = PROSE(cfg).eval()
    u = torch.randn(2, 8, 6)
    u[..., 0] = torch.linspace(0, 1, 8)
    sym = torch.tensor([[5, 6, 7, 0], [8, 9, 0, 0]])
    with torch.no_grad():
        fused, pad, _ = model.encode(u, sym)
        values = u[..., 1:]
        z = (values - values.mean(1, keepdim=True)) / values.std(1, keepdim=True)
        data = model.data_embed(torch.cat([u[..., :1], z], -1)) + model.time_embed(u[..., :1])
        words = model.symbol_embed(sym[:, :3]) + model.position.weight[:3]
        h = torch.cat([data + model.modality.weight[0], words + model.modality.weight[1]], 1)
        want_pad = torch.cat([torch.zeros(2, 8, dtype=torch.bool), sym[:, :3] == 0], 1)
        want = model.fusion_norm(model.fusion(h, src_key_padding_mask=want_pad))
    assert torch.equal(pad, want_pad)
    torch.testing.assert_close(fused[~pad], want[~want_pad], rtol=1e-5, atol=1e-5)
    assert model.generate(u, sym, max_len=4)  # the symbol decoder runs on them
    with pytest.raises(ValueError, match="symbol_decoder_layers >= 1, got 0"):
        PROSEConfig.small(symbol_decoder_layers=0)


def _as_pre_freq_checkpoint(model, directory):
    """Save ``model`` as sciml wrote PROSE before the time embeddings' ``freq`` buffers became
    non-persistent: the same files, with ``time_embed.freq`` and ``query_embed.freq`` (the
    model's values, in its dtype) in model.safetensors and config.json's SHA-256 updated."""
    import hashlib
    import json

    from safetensors.torch import load_file, save_file

    model.save_pretrained(directory)
    weights = directory / "model.safetensors"
    state = load_file(str(weights))
    for key in ("time_embed.freq", "query_embed.freq"):
        state[key] = model.get_buffer(key).detach().clone()
    save_file(state, str(weights), metadata={"format": "pt", "family": "prose"})
    record = json.loads((directory / "config.json").read_text())
    record["weights"]["sha256"] = hashlib.sha256(weights.read_bytes()).hexdigest()
    (directory / "config.json").write_text(json.dumps(record))
    return directory


def test_time_embedding_frequencies_are_rebuilt_not_saved_and_old_checkpoints_load(tmp_path):
    """The sinusoidal time embeddings' frequencies (geometric, 0.1 to 50) are a constant of the
    architecture: non-persistent, so new checkpoints do not hold them. Checkpoints written
    while they were persistent still load, through sciml.load and load_state_dict(strict=True),
    taking the stored values: a float64 PROSE built under set_default_dtype(float64) stored
    float64 frequencies that a float32 rebuild would round, and still loads to the same
    function bit for bit. Any other unknown key is still refused."""
    from safetensors.torch import load_file

    want = np.geomspace(0.1, 50.0, 32)
    u = torch.randn(2, 16, 6, dtype=torch.float64)
    u[..., 0] = torch.linspace(0, 1, 16)
    x = torch.linspace(1, 2, 5, dtype=torch.float64)
    torch.manual_seed(0)
    model = _tiny().eval()
    for key in ("time_embed.freq", "query_embed.freq"):
        assert key not in model.state_dict()
        np.testing.assert_allclose(model.get_buffer(key).double().numpy(), want, rtol=1e-6)
    model.save_pretrained(tmp_path / "new")
    assert not [k for k in load_file(str(tmp_path / "new" / "model.safetensors")) if "freq" in k]

    model64 = _tiny_built_in_float64(seed=1)
    freq64 = model64.time_embed.freq
    np.testing.assert_allclose(freq64.numpy(), want, rtol=1e-14)
    assert not torch.equal(freq64, freq64.float().double())  # a float32 rebuild would differ
    for m, dtype, name in ((model, torch.float32, "old32"), (model64, torch.float64, "old64")):
        old = _as_pre_freq_checkpoint(m, tmp_path / name)
        loaded = sciml.load(old)
        again = _tiny().to(dtype)
        old_state = load_file(str(old / "model.safetensors"))
        assert "time_embed.freq" in old_state
        again.load_state_dict(old_state, strict=True)
        with torch.no_grad():
            want_y = m(u.to(dtype), x=x.to(dtype))
            assert torch.equal(loaded(u.to(dtype), x=x.to(dtype)), want_y)
            assert torch.equal(again.eval()(u.to(dtype), x=x.to(dtype)), want_y)
        assert torch.equal(loaded.time_embed.freq, m.time_embed.freq)

    # only the documented obsolete keys pass: another key the model does not list is refused
    from safetensors.torch import save_file

    bad = _as_pre_freq_checkpoint(model, tmp_path / "bad")
    state = load_file(str(bad / "model.safetensors"))
    state["time_embed.scale"] = torch.ones(32)
    save_file(state, str(bad / "model.safetensors"), metadata={"format": "pt"})
    import hashlib
    import json

    record = json.loads((bad / "config.json").read_text())
    record["weights"]["sha256"] = hashlib.sha256(
        (bad / "model.safetensors").read_bytes()
    ).hexdigest()
    (bad / "config.json").write_text(json.dumps(record))
    with pytest.raises(sciml.CheckpointError, match=r"unexpected \['time_embed.scale'\]"):
        sciml.load(bad)
    with pytest.raises(RuntimeError, match="Unexpected key.*time_embed.scale"):
        _tiny().load_state_dict(state, strict=True)


def test_a_float64_prose_round_trips_however_it_was_built(tmp_path):
    """The frequencies are no longer saved, so they must depend on the model's dtype alone: a
    PROSE built under set_default_dtype(float64) held the float64 geometric values, and
    sciml.load (which builds in float32 and casts) gave it float32-rounded ones, 8e-7 off in the
    outputs. Built either way, a float64 PROSE now holds numpy's float64 geometric sequence
    and loads to the same function bit for bit; a float32 one keeps its float32 values."""
    u = torch.randn(2, 16, 6, dtype=torch.float64)
    u[..., 0] = torch.linspace(0, 1, 16)
    x = torch.linspace(1, 2, 5, dtype=torch.float64)
    want64 = np.geomspace(0.1, 50.0, 32)
    built64 = _tiny_built_in_float64(seed=0)
    torch.manual_seed(0)
    cast64 = _tiny().eval()
    f32 = cast64.time_embed.freq.clone()
    np.testing.assert_allclose(f32.double().numpy(), want64, rtol=1e-6)
    cast64.double()
    for name, model in (("built", built64), ("cast", cast64)):
        for key in ("time_embed.freq", "query_embed.freq"):
            freq = model.get_buffer(key)
            assert freq.dtype == torch.float64
            np.testing.assert_allclose(freq.numpy(), want64, rtol=1e-15, atol=0)
        model.save_pretrained(tmp_path / name)
        loaded = sciml.load(tmp_path / name)
        with torch.no_grad():
            assert torch.equal(loaded(u, x=x), model(u, x=x)), name
    # back to float32: the float32 values again, not the float64 ones rounded differently
    assert torch.equal(cast64.float().time_embed.freq, f32)
    # built on the meta device and materialised (to_empty), the state dict does not fill the
    # frequencies in: they were uninitialised memory
    torch.manual_seed(0)
    model32 = _tiny().eval()
    with torch.device("meta"):
        empty = _tiny()
    empty = empty.to_empty(device="cpu").eval()
    empty.load_state_dict(model32.state_dict())
    assert torch.equal(empty.time_embed.freq, f32)
    with torch.no_grad():
        assert torch.equal(empty(u.float(), x=x.float()), model32(u.float(), x=x.float()))


def test_beam_search_finds_the_exhaustive_best_when_the_beam_holds_every_hypothesis(monkeypatch):
    """On first-order Markov "decoders" over two words and <eos> (every other token
    improbable), a beam of 32 takes every candidate of up to 3 words (at most 8 open hypotheses
    x 3 live tokens a step, all ranked before the improbable ones), so beam search must return
    the best finished sequence of a brute-force enumeration, scored as documented:
    log p / length^length_penalty, the length counting <eos>. Over these 8 draws x 3 penalties
    a length without <eos>, or with <bos>, picks another sequence twice. (A beam of 8 is a
    heuristic, as in the authors' XLM-style search: <eos> candidates ranked below the 8th open
    one are not kept; it misses the best twice here.)"""
    import itertools

    model = _tiny().eval()
    v = model.vocab
    words = v.ids(["u_0", "u_1"])
    live = [*words, v.eos_id]
    fused, pad = torch.zeros(1, 3, 32), torch.zeros(1, 3, dtype=torch.bool)
    max_len = 5  # <bos> + at most 3 words + <eos>
    for draw in range(8):
        gen = torch.Generator().manual_seed(draw)
        table = torch.full((len(v), len(v)), -30.0)  # next-token logits given the last token
        for prev in [v.bos_id, *words]:
            table[prev, live] = torch.randn(3, generator=gen) * 1.5
        logp = table.log_softmax(-1).double()
        # (n, L, V): position i's logits depend on token i only
        monkeypatch.setattr(
            model, "symbol_logits", lambda fused, pad, seqs, table=table: table[seqs]
        )
        for alpha in (0.0, 1.0, 2.0):
            best, best_seq = -math.inf, None
            for n in range(0, max_len - 1):
                for seq in itertools.product(words, repeat=n):
                    path = [v.bos_id, *seq, v.eos_id]
                    score = sum(float(logp[a, b]) for a, b in zip(path, path[1:]))
                    score /= (n + 1) ** alpha
                    if score > best:
                        best, best_seq = score, list(seq)
            got = model._beam(fused, pad, max_len, 32, alpha)
            assert got == v.words(best_seq), (draw, alpha, got, v.words(best_seq))


def test_paper_config_has_the_published_shape():
    cfg = PROSEConfig.paper()
    assert (cfg.width, cfg.heads, cfg.data_encoder_layers, cfg.symbol_encoder_layers) == (
        512,
        8,
        2,
        4,
    )
    assert (cfg.fusion_layers, cfg.data_decoder_layers, cfg.symbol_decoder_layers) == (8, 8, 8)
    # the vocabulary size PROSEConfig.paper states, counted by hand: 5 specials, 7 unary and
    # 3 binary operators, u_0..u_4, + - INT+ INT-, 10 digits, 1000 mantissas, E-10..E10
    vocab = Vocabulary(max_dim=cfg.dim, max_exponent=cfg.max_exponent)
    assert len(vocab) == 5 + 7 + 3 + 5 + 4 + 10 + 1000 + 21 == 1055


def test_trainer_validation_uses_the_symbol_input(four_samples, tmp_path):
    """Trainer.evaluate goes through PROSE.predict_batch, so the symbols reach the model."""
    from sciml.train import TrainConfig, Trainer

    torch.manual_seed(0)
    model = _tiny().eval()
    data = PROSEData(four_samples, model.vocab, max_symbol_len=40)
    trainer = Trainer(
        model, data, loss=LpLoss(), config=TrainConfig(batch_size=4), out_dir=tmp_path,
        progress=False,
    )  # fmt: skip
    batch = {k: torch.stack([data[i][k] for i in range(4)]) for k in data[0]}
    with torch.no_grad():
        with_symbols = model(batch["input"], x=batch["x"], symbols=batch["symbols"])
        without = model(batch["input"], x=batch["x"])
    assert not torch.allclose(with_symbols, without)  # the symbols matter
    expected = LpLoss()(with_symbols, batch["target"]).item()
    assert trainer.evaluate(data)["rel_l2"] == pytest.approx(expected, rel=1e-5)


class _KnowsTheEquations(torch.nn.Module):
    """A stand-in PROSE: its data decoder predicts zeros, its symbol decoder returns the true
    equations for the first two samples and an invalid sequence for the others."""

    def __init__(self, equations, vocab) -> None:
        super().__init__()
        self.equations, self.vocab = equations, vocab
        self.w = torch.nn.Parameter(torch.zeros(()))

    def forward(self, u, *, x, symbols):
        return torch.zeros(u.shape[0], x.shape[1], u.shape[-1] - 1)  # x: (batch, T_out, 1)

    def generate(self, u, symbols, beam_size=1):
        return [self.equations[k] if k < 2 else ["+"] for k in range(u.shape[0])]


class _WrongEquations(_KnowsTheEquations):
    """Decodes the true equations for the first two samples and the second sample's (Rossler,
    valid but wrong) for the other two."""

    def generate(self, u, symbols, beam_size=1):
        return [self.equations[min(k, 1)] for k in range(u.shape[0])]


def test_refined_forecast_fits_the_decoded_equations_and_falls_back_to_the_data_decoder(
    four_samples,
):
    vocab = _tiny().vocab
    model = _KnowsTheEquations(four_samples["equations"], vocab)
    data = PROSEData(four_samples, vocab, max_symbol_len=40)
    m = evaluate_prose(model, data, n_points=16, integrate_equations=False, refine=True)
    assert m["traj_rel_l2"] == pytest.approx(1.0) and m["valid"] == 0.5
    assert m["refined_fallback"] == 0.5  # the two invalid ones keep the zero prediction (1.0)
    names = four_samples["systems"]
    per = {names[s]: m["per_system"][names[s]] for s in four_samples["system"]}
    fitted = [per[names[s]]["refined_traj_rel_l2"] for s in four_samples["system"][:2]]
    kept = [per[names[s]]["refined_traj_rel_l2"] for s in four_samples["system"][2:]]
    # the true equations fitted to 16 noisy points forecast the output window closely
    assert max(fitted) < 0.05 and kept == [pytest.approx(1.0)] * 2
    assert m["refined_traj_rel_l2"] == pytest.approx((sum(fitted) + 2.0) / 4)


def test_refined_forecast_falls_back_when_the_decoded_equations_do_not_fit_the_window(
    four_samples,
):
    vocab = _tiny().vocab
    data = PROSEData(four_samples, vocab, max_symbol_len=40)
    model = _WrongEquations(four_samples["equations"], vocab)
    m = evaluate_prose(model, data, n_points=16, integrate_equations=False, refine=True)
    assert m["valid"] == 1.0 and m["refined_fallback"] == 0.5
    names = four_samples["systems"]
    per = [m["per_system"][names[s]]["refined_traj_rel_l2"] for s in four_samples["system"]]
    # Rossler's equations fit the Sprott windows only to 13-22 noise levels (> 3): both keep
    # the data decoder's zeros (error 1); without the cut-off they would be forecast
    assert max(per[:2]) < 0.05 and per[2:] == [pytest.approx(1.0)] * 2
    loose = evaluate_prose(
        model, data, n_points=16, integrate_equations=False, refine=True,
        refine_max_misfit=float("inf"),
    )  # fmt: skip
    assert loose["refined_fallback"] == 0.0


def test_what_a_compiled_prose_says_of_an_input_it_refuses():
    """What a user sees when a compiled PROSE meets an input its checks refuse. Without
    ``fullgraph`` the check's own error (the frame falls back to eager at the raise). With
    ``fullgraph=True`` dynamo cannot hand an exception raised inside the compiled frame back
    (no fix on sciml's side: ``torch._check`` needs a message closing over constants only, and a
    check outside the compiled region is a graph break for a caller that compiles a step around
    the model), so torch raises ``Unsupported: Observed exception`` and PROSE's message is in its
    text, ``raised exception ValueError('...')``; docs/prose.md says so."""
    model = _tiny().eval()
    u, x = torch.randn(2, 10, 6), torch.rand(5)
    refused = {
        "u channels": ((torch.randn(2, 10, 5),), {"x": x}),
        "a lead time": ((u,), {"x": x, "t": torch.rand(2)}),
        "float tokens": ((u,), {"x": x, "symbols": torch.ones(2, 4)}),
    }
    torch._dynamo.reset()
    try:
        for name, (args, kwargs) in refused.items():
            with torch.no_grad(), pytest.raises((ValueError, TypeError)) as eager:
                model(*args, **kwargs)
            words = str(eager.value)
            compiled = torch.compile(model, backend="eager")
            with torch.no_grad(), pytest.raises(eager.type) as info:
                compiled(*args, **kwargs)
            assert str(info.value) == words, name
            torch._dynamo.reset()  # (why) else the frame's cached code answers eagerly
            full = torch.compile(model, backend="eager", fullgraph=True)
            with torch.no_grad(), pytest.raises(torch._dynamo.exc.Unsupported) as info:
                full(*args, **kwargs)
            said = str(info.value)
            assert said.startswith("Observed exception"), name
            assert f"raised exception {eager.type.__name__}({words!r})" in said, name
            torch._dynamo.reset()
    finally:
        torch._dynamo.reset()


def test_generate_refuses_a_beam_length_or_penalty_it_cannot_use():
    """``generate``'s search options are checked: beam_size 0 or -3 ran greedy and 2.5 failed in
    torch's topk, max_len 1 or -5 returned empty equations and 0 the longest ones (read as
    None), a NaN length_penalty ranked the beams by NaN, all without a word. A valid max_len
    cuts greedy decoding: the first max_len - 1 tokens of the full decoding."""
    torch.manual_seed(0)
    model = _tiny().eval()
    u = torch.randn(2, 10, 6)
    bad = [
        ({"beam_size": 0}, ValueError, "expected beam_size as an int >= 1, got 0"),
        ({"beam_size": -3}, ValueError, "expected beam_size as an int >= 1, got -3"),
        ({"beam_size": 2.5}, TypeError, "expected beam_size as an int >= 1, got 2.5"),
        ({"beam_size": True}, TypeError, "expected beam_size as an int >= 1, got True"),
        ({"max_len": 1}, ValueError, "got 1"),
        ({"max_len": 0}, ValueError, "got 0"),
        ({"max_len": -5, "beam_size": 2}, ValueError, "got -5"),
        ({"max_len": 3.7}, TypeError, "got 3.7"),
        ({"length_penalty": math.nan, "beam_size": 2}, ValueError, "length_penalty, got nan"),
        ({"length_penalty": "1"}, TypeError, "length_penalty, got '1'"),
    ]
    for options, error, ending in bad:
        with pytest.raises(error) as info:
            model.generate(u, **options)
        assert str(info.value).startswith("expected ") and str(info.value).endswith(ending)
    with pytest.raises(ValueError, match=r"^expected max_len as an int >= 2 \(the longest "):
        model.generate(u, max_len=1)
    full = model.generate(u)
    assert all(len(words) > 3 for words in full)  # no <eos> early: the cut shows
    assert model.generate(u, max_len=4) == [words[:3] for words in full]
    assert model.generate(u, max_len=2) == [words[:1] for words in full]


def test_evaluate_prose_gives_each_module_its_training_mode_back(four_samples):
    """evaluate_prose switched the model to eval mode and left it there (evaluate_direct gives
    the mode back), so training continued by hand after an evaluation ran without dropout. Now
    each module's mode is as it was (a frozen part in eval mode stays so), and the evaluation
    still runs in eval mode: with dropout 0.5 two evaluations give the same numbers."""
    torch.manual_seed(0)
    model = PROSE(
        PROSEConfig.small(
            width=32, heads=2, fusion_layers=1, data_decoder_layers=1, symbol_decoder_layers=1,
            ffn_mult=2, max_symbol_len=40, dropout=0.5,
        )
    ).train()  # fmt: skip
    model.symbol_encoder.eval()  # a frozen part
    before = {name: m.training for name, m in model.named_modules()}
    assert any(before.values()) and not all(before.values())
    data = PROSEData(four_samples, model.vocab, max_symbol_len=40)
    first = evaluate_prose(model, data, n_points=8, integrate_equations=False)
    assert {name: m.training for name, m in model.named_modules()} == before
    second = evaluate_prose(model, data, n_points=8, integrate_equations=False)
    assert (first["traj_rel_l2"], first["valid"]) == (second["traj_rel_l2"], second["valid"])
    with torch.no_grad():  # the data decoder's error, by hand in eval mode
        batch = {k: torch.stack([data[i][k] for i in range(4)]) for k in ("input", "x", "symbols")}
        pred = model.eval()(batch["input"], x=batch["x"], symbols=batch["symbols"]).numpy()
    rel = [
        float(np.linalg.norm(pred[j, :, :d] - u[16:, :d]) / np.linalg.norm(u[16:, :d]))
        for j, (d, u) in enumerate(zip(four_samples["dim"], four_samples["u"]))
    ]
    assert first["traj_rel_l2"] == pytest.approx(float(np.mean(rel)), rel=1e-5)


def test_prose_data_indices_count_negatives_from_the_end_and_refuse_the_rest(four_samples):
    # as the samples of sciml.data's views: -1 is the last sample, kept as its number (it was
    # kept as -1); an index past the end failed only when its item was read, 0.5 read sample 0
    # and a boolean mask read as the samples 1 and 0
    vocab = _tiny().vocab
    last = PROSEData(four_samples, vocab, indices=[-1, 0], max_symbol_len=40)
    ref = PROSEData(four_samples, vocab, indices=[3, 0], max_symbol_len=40)
    np.testing.assert_array_equal(last.indices, [3, 0])
    for k in range(2):
        for key, v in ref[k].items():
            torch.testing.assert_close(last[k][key], v, rtol=0, atol=0)
    np.testing.assert_array_equal(last[0]["target"].numpy(), four_samples["u"][3, 16:])
    for bad in ([4], [0, -5]):
        with pytest.raises(IndexError, match=f"sample index {bad[-1]} is out of range for a data "
                           "set of 4 samples; expected -4 <= index < 4"):  # fmt: skip
            PROSEData(four_samples, vocab, indices=bad)
    with pytest.raises(TypeError, match="expected integer sample indices"):
        PROSEData(four_samples, vocab, indices=[0.5])
    with pytest.raises(TypeError, match="a boolean mask"):
        PROSEData(four_samples, vocab, indices=np.array([True, False, True, True]))
