"""sciml.symbolic: prefix tokens <-> sympy, skeletons, torch vector fields, invalid sequences."""

from __future__ import annotations

import math

import numpy as np
import pytest
import sympy as sp
import torch

from sciml.data.generators.prose_ode import SYSTEMS
from sciml.symbolic import (
    PLACEHOLDER,
    TorchVectorField,
    Vocabulary,
    decode,
    decode_float,
    encode,
    encode_float,
    skeleton,
    state_symbols,
)


def _draws(spec, n=3, seed=0):
    rng = np.random.default_rng(seed)
    return [spec.equations(spec.sample_params(rng)) for _ in range(n)]


def _values(system, dim, pts):
    fn = sp.lambdify([state_symbols(dim)], list(system), modules="numpy")
    return np.stack([np.broadcast_to(np.asarray(v, float), pts.shape[:1]) for v in fn(pts.T)], -1)


@pytest.mark.parametrize("name", list(SYSTEMS))
def test_tokenize_detokenize_is_identity_on_every_generator_system(name):
    spec = SYSTEMS[name]
    vocab = Vocabulary(max_dim=5)
    pts = np.random.default_rng(1).uniform(-2, 2, (50, spec.dim))
    for system in _draws(spec):
        tokens = encode(system)
        assert vocab.words(vocab.ids(tokens, bos=True, eos=True)) == tokens
        got = decode(tokens, dim=spec.dim)
        assert got.valid, got.error
        # constants are stored at the encoding's precision, so the round trip is exact
        assert list(got.expressions) == [sp.sympify(f) for f in system]
        assert encode(got.expressions) == tokens
        np.testing.assert_allclose(
            _values(got.expressions, spec.dim, pts), _values(system, spec.dim, pts), rtol=1e-13
        )


def test_float_encoding_keeps_three_significant_digits():
    rng = np.random.default_rng(0)
    values = (
        rng.choice([-1, 1], 2000) * rng.uniform(0.1, 1, 2000) * 10.0 ** rng.integers(-5, 8, 2000)
    )  # within E-10..E10
    for v in values:
        tokens = encode_float(v)
        assert tokens[0] == ("-" if v < 0 else "+") and len(tokens[1]) == 4
        assert abs(decode_float(tokens) - v) <= 5e-3 * abs(v) * (1 + 1e-12)
    assert encode_float(-0.0382) == ["-", "N382", "E-4"]
    assert encode_float(1e-30) == ["+", "N000", "E0"]  # below E-10: zero
    with pytest.raises(ValueError, match="exceeds"):
        encode_float(1e30)


@pytest.mark.parametrize("name", list(SYSTEMS))
def test_skeleton_replaces_exactly_the_constants(name):
    spec = SYSTEMS[name]
    system = _draws(spec, n=1)[0]
    tokens = encode(system)
    skel = skeleton(tokens)
    n_floats = sum(len(f.atoms(sp.Float)) for f in system)
    assert PLACEHOLDER in skel or n_floats == 0
    assert not any(t.startswith(("N", "E")) for t in skel)
    assert not decode(skel).valid  # a skeleton has no values
    templ = decode(skel, allow_placeholders=True)
    assert templ.valid, templ.error
    # substituting the constants back in order gives the system again
    consts = [float(decode_float(tokens[i : i + 3])) for i in range(len(tokens))
              if tokens[i] in "+-" and decode_float(tokens[i : i + 3]) is not None]  # fmt: skip
    syms = {sp.Symbol(f"C_{k}", real=True): sp.Float(c) for k, c in enumerate(consts)}
    pts = np.random.default_rng(2).uniform(-2, 2, (20, spec.dim))
    back = [f.subs(syms) for f in templ.expressions]
    np.testing.assert_allclose(
        _values(back, spec.dim, pts), _values(system, spec.dim, pts), rtol=1e-12
    )


@pytest.mark.parametrize("name", list(SYSTEMS))
def test_torch_vector_field_matches_sympy_lambdify(name):
    spec = SYSTEMS[name]
    system = _draws(spec, n=1, seed=3)[0]
    pts = np.random.default_rng(4).uniform(-3, 3, (64, spec.dim))
    field = TorchVectorField(decode(encode(system)))
    got = field(torch.as_tensor(pts).reshape(4, 16, spec.dim)).reshape(64, spec.dim)
    np.testing.assert_allclose(got.numpy(), _values(system, spec.dim, pts), rtol=1e-12, atol=1e-12)
    # float32 and autograd work too: the Jacobian matches sympy's
    u = torch.as_tensor(pts[:1], dtype=torch.float64).requires_grad_()
    jac = torch.autograd.functional.jacobian(lambda v: field(v)[0], u)[:, 0]
    sym_jac = sp.Matrix(system).jacobian(state_symbols(spec.dim))
    ref = np.array(sym_jac.subs(dict(zip(state_symbols(spec.dim), pts[0]))).evalf(), dtype=float)
    np.testing.assert_allclose(jac.numpy(), ref, rtol=1e-10, atol=1e-10)


MALFORMED = [
    [],
    ["add", "u_0"],
    ["u_0", "u_1"],
    ["u_0", "|"],
    ["|", "u_0"],
    ["mul", "+", "N12", "E0", "u_0"],
    ["+", "N123"],
    ["+", "N123", "X3"],
    ["INT+"],
    ["inv", "INT+", "0"],
    ["sin"],
    ["foo"],
    ["<unk:99999>"],
    ["<bos>", "u_0"],
    ["pow", "u_0", "u_1"],
    ["u_x"],
]


@pytest.mark.parametrize("tokens", MALFORMED, ids=lambda t: " ".join(t) or "empty")
def test_malformed_sequences_decode_to_invalid(tokens):
    got = decode(tokens)
    assert not got.valid and not got and got.expressions == () and got.error


def test_random_and_truncated_sequences_never_raise():
    vocab = Vocabulary()
    rng = np.random.default_rng(0)
    for _ in range(300):
        ids = rng.integers(0, len(vocab) + 3, rng.integers(0, 30))
        got = decode(vocab.words(ids.tolist(), strip=False))
        assert isinstance(got.valid, bool)
    tokens = encode(SYSTEMS["lorenz"].equations(SYSTEMS["lorenz"].nominal))
    for k in range(len(tokens)):
        cut = decode(tokens[:k], dim=3)
        assert not cut.valid, tokens[:k]
    assert not decode(tokens, dim=4).valid  # wrong number of equations
    assert "u_3" in decode(["u_3"], dim=1).error


def test_unsupported_expressions_are_refused_with_a_clear_error():
    (u0,) = state_symbols(1)
    with pytest.raises(ValueError, match="cannot encode"):
        encode([sp.log(u0)])
    with pytest.raises(ValueError, match="empty"):
        encode([])
    with pytest.raises(ValueError, match="u_0 ... u_0"):
        TorchVectorField([sp.Symbol("v")])
    with pytest.raises(ValueError, match="invalid system"):
        TorchVectorField(decode(["add"]))
    with pytest.raises(ValueError, match="not in the vocabulary"):
        Vocabulary(max_dim=2).ids(["u_4"])


def test_import_sciml_does_not_load_sympy_until_a_symbolic_function_is_used():
    import subprocess
    import sys

    code = (
        "import sys, sciml; a = 'sympy' in sys.modules; "
        "sciml.models.PROSE(sciml.models.PROSEConfig.small()); b = 'sympy' in sys.modules; "
        "sciml.symbolic.decode(['u_0'], dim=1); print(a, b, 'sympy' in sys.modules)"
    )
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert out.stdout.split() == ["False", "False", "True"]


# sequences a half-trained PROSE model can emit: before decode checked its constants, each was
# decoded as valid, as invalid through an unrelated ValueError ('²'), or (the last one) never
# returned: sympy computed 9^999999999 exactly
OUT_OF_RANGE = [
    pytest.param(["pow", "INT+", "9", "INT+", *"99999"], "float64 range", id="9^99999"),
    pytest.param(["pow", "+", "N999", "E10", "INT+", *"99999"], "float64 range", id="1e13^99999"),
    pytest.param(["exp", "exp", "+", "N100", "E3"], "non-finite", id="exp(exp(1000))"),
    pytest.param(["mul", "u_0", *["pow2"] * 9, "INT+", "9"], "non-finite", id="9^(2^9)"),
    pytest.param(["pow", "INT-", "1", "+", "N500", "E-3"], "complex", id="(-1)^0.5"),
    pytest.param(["pow", "neg", "pow2", "u_0", "+", "N500", "E-3"], "complex-valued", id="I|u|"),
    pytest.param(["u_\u00b2"], "unexpected token", id="u_superscript2"),
    pytest.param(["INT+", "\u00b2"], "not followed by digits", id="INT+superscript2"),
    pytest.param(["pow", "INT+", "9", "INT+", *"999999999"], "float64 range", id="9^999999999"),
]


@pytest.mark.parametrize("tokens,reason", OUT_OF_RANGE)
def test_constants_outside_float64_and_complex_equations_decode_to_invalid_at_once(tokens, reason):
    import time

    start = time.perf_counter()
    got = decode(tokens)
    assert time.perf_counter() - start < 1.0
    # (why) no repr of `got` in a failure message: printing exp(exp(1000)) does not finish
    valid, error = got.valid, got.error
    assert valid is False, "decoded as valid"
    assert reason in error, error


def test_constants_inside_float64_still_decode_exactly():
    # 2^1000 ~ 1.07e301 and 10^-300 are float64 numbers: valid, and exact
    big = decode(["mul", "pow", "INT+", "2", "INT+", *"1000", "u_0"])
    assert big.valid and big.expressions[0] == sp.Integer(2) ** 1000 * state_symbols(1)[0]
    small = decode(["pow", "INT+", "1", "0", "INT-", "3", "0", "0"])
    assert small.valid and float(small.expressions[0]) == 1e-300
    assert "divides by zero" in decode(["pow", "+", "N000", "E0", "INT-", "1"]).error
    # a huge power of a variable is a (silly) system, not an invalid constant
    assert decode(["pow", "u_0", "INT+", *"999999999"]).valid


def test_torch_vector_field_evaluates_every_constant_a_decoded_system_can_hold():
    # exp(INT+ 1) decodes as sympy's E, (u^2)^0.5 as Abs(u): both must evaluate
    u = torch.tensor([[-0.7], [0.4], [1.3]], dtype=torch.float64)
    e_field = TorchVectorField(decode(["mul", "exp", "INT+", "1", "u_0"]))
    torch.testing.assert_close(e_field(u), math.e * u, rtol=1e-15, atol=0)
    abs_field = TorchVectorField(decode(["pow", "pow2", "u_0", "+", "N500", "E-3"]))
    torch.testing.assert_close(abs_field(u), u.abs(), rtol=1e-15, atol=0)
    (x,) = state_symbols(1)
    hand = TorchVectorField([sp.pi * x + sp.sin(1) + sp.sqrt(2)])
    torch.testing.assert_close(
        hand(u), math.pi * u + math.sin(1) + math.sqrt(2), rtol=1e-15, atol=0
    )
    w = u.clone().requires_grad_()
    assert torch.autograd.gradcheck(lambda v: abs_field(v) * e_field(v), (w,))
    with pytest.raises(ValueError, match="real constants"):
        TorchVectorField([sp.I * x])
