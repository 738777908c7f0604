"""neuraloperator 2.0 FNO / SpectralConv -> sciml: same outputs for the same weights."""

from __future__ import annotations

import dataclasses
import itertools
import re
import sys
import types

import numpy as np
import pytest
import torch

from sciml import ConfigError
from sciml.errors import CheckpointError
from sciml.models import FNO
from sciml.pretrained.convert_neuraloperator import (
    convert_modes,
    fno_from_neuraloperator,
    read_neuraloperator_checkpoint,
    spectral_conv_from_neuraloperator,
)

neuralop = pytest.importorskip("neuralop")
from neuralop.layers.spectral_convolution import SpectralConv as NSpectralConv  # noqa: E402
from neuralop.models import FNO as NFNO  # noqa: E402


def _perturb(module: torch.nn.Module) -> None:
    """Move every weight off its initial value (soft gates start at 1, biases at random)."""
    with torch.no_grad():
        for p in module.parameters():
            p.add_(0.1 * torch.randn_like(p))


@pytest.mark.parametrize(
    ("n_modes", "grid"),
    [
        ((9,), (32,)),
        ((16,), (16,)),  # every rfft bin, Nyquist included
        ((8, 6), (16, 14)),
        ((7, 5), (16, 15)),
        ((16, 8), (16, 16)),  # the Nyquist frequency -8 on the first dim, and on the last
        ((4, 6, 5), (8, 10, 9)),
        ((8, 10, 10), (8, 10, 10)),  # every frequency of every dim
    ],
)
def test_spectral_conv_converts_exactly(n_modes, grid):
    src = NSpectralConv(3, 4, n_modes)
    _perturb(src)
    u = torch.randn(2, 3, *grid)
    with torch.no_grad():
        expected = src(u)
        for dst in (
            spectral_conv_from_neuraloperator(src),
            spectral_conv_from_neuraloperator(src.state_dict(), n_modes=n_modes),
        ):
            torch.testing.assert_close(dst(u), expected, rtol=1e-5, atol=1e-6)


def _explicit(src, u: torch.Tensor, out_shape) -> torch.Tensor:
    """neuraloperator's documented SpectralConv by an explicit loop over its kept frequencies
    (numpy FFTs, float64): weight index j along a non-last dim is frequency j - n_modes // 2
    (fftshift order), along the last dim frequency j; a frequency the output grid cannot hold
    is dropped; plus the bias."""
    d = u.ndim - 2
    w = src.weight.to_tensor() if hasattr(src.weight, "to_tensor") else src.weight
    w = torch.as_tensor(w).detach().to(torch.complex128).numpy()
    coeffs = np.fft.rfftn(u.double().numpy(), axes=tuple(range(2, d + 2)), norm="forward")
    spec = np.zeros((u.shape[0], w.shape[1], *out_shape[:-1], out_shape[-1] // 2 + 1), complex)
    axes = [[(j, j - n // 2) for j in range(n)] for n in w.shape[2:-1]]
    axes.append([(j, j) for j in range(min(w.shape[-1], out_shape[-1] // 2 + 1))])
    for pairs in itertools.product(*axes):
        freqs = [f for _, f in pairs]
        if any(not -(n // 2) <= f <= (n - 1) // 2 for f, n in zip(freqs[:-1], out_shape[:-1])):
            continue
        src_i = tuple(f % n for f, n in zip(freqs[:-1], u.shape[2:-1])) + (freqs[-1],)
        dst_i = tuple(f % n for f, n in zip(freqs[:-1], out_shape[:-1])) + (freqs[-1],)
        mix = coeffs[(..., *src_i)] @ w[(slice(None), slice(None), *(j for j, _ in pairs))]
        spec[(slice(None), slice(None), *dst_i)] += mix
    y = np.fft.irfftn(spec, s=out_shape, axes=tuple(range(2, d + 2)), norm="forward")
    return torch.from_numpy(y) + src.bias.detach().double()


def test_a_complex128_state_converts_in_float64():
    """The layer was loaded in float32 and widened after: output errors of 1e-7 against the
    float64 explicit DFT of the same complex128 weight, 1e-15 now."""
    torch.manual_seed(3)
    n_modes, grid = (8, 6), (16, 14)
    weight = torch.randn(3, 4, 8, 4, dtype=torch.complex128)
    bias = torch.randn(4, 1, 1, dtype=torch.float64)
    src = types.SimpleNamespace(weight=weight, bias=bias)
    dst = spectral_conv_from_neuraloperator({"weight": weight, "bias": bias}, n_modes=n_modes)
    assert dst.weight.dtype == torch.complex128
    u = torch.randn(2, 3, *grid, dtype=torch.float64)
    with torch.no_grad():
        torch.testing.assert_close(dst(u), _explicit(src, u, grid), rtol=0, atol=1e-12)


@pytest.mark.parametrize(
    ("n_modes", "grid", "out_grid"),
    [
        ((8, 6), (15, 14), (15, 14)),  # odd first dim
        ((7, 5), (15, 15), (15, 15)),
        ((4, 6, 6), (9, 11, 10), (9, 11, 10)),
        ((8, 6), (16, 14), (32, 28)),  # super-resolution in 2D
        ((8, 6), (16, 14), (7, 9)),  # a coarser odd output
        ((4, 6, 5), (8, 10, 9), (16, 20, 18)),
    ],
)
def test_converted_spectral_conv_is_the_explicit_dft_where_neuraloperator_is_not(
    n_modes, grid, out_grid
):
    """neuraloperator 2.0's SpectralConv is off its own definition (an explicit DFT loop over its
    kept frequencies) for an odd size of a non-last dim (it applies fftshift, not ifftshift,
    after the contraction) and for output_shape != the input's in 2D/3D (irfftn's s= pads or
    crops the unshifted negative frequencies). Measured: O(1) errors on outputs of O(1). The
    converted layer computes the definition (1e-12 in float64), also with out_shape."""
    src = NSpectralConv(3, 4, n_modes)
    _perturb(src)
    u = torch.randn(2, 3, *grid)
    dst = spectral_conv_from_neuraloperator(src).double()
    with torch.no_grad():
        ref = _explicit(src, u, out_grid)
        torch.testing.assert_close(dst(u.double(), out_grid), ref, rtol=0, atol=1e-12)
        theirs = src(u, output_shape=out_grid).double()
    assert (theirs - ref).abs().max() > 0.1  # if this fails, neuraloperator was fixed


def test_a_float64_fno_converts_in_float64(monkeypatch):
    """fno_from_neuraloperator built a float32 FNO whatever the state dict held: a float64 /
    complex128 source was rounded to float32 (its float64 input refused). The reference is the
    neuraloperator FNO in float64 with its spectral convolutions (which accumulate in complex64)
    replaced by the float64 explicit DFT _explicit; 1e-12 (the old code: 1e-7 off on float32
    input)."""
    torch.manual_seed(4)
    # (why) no positional embedding: neuraloperator builds its grid in float32 (1e-9 off)
    kwargs = dict(n_modes=(8, 6), in_channels=2, out_channels=3, hidden_channels=8, n_layers=2)
    kwargs["positional_embedding"] = None
    src = NFNO(**kwargs).eval()
    _perturb(src)
    with torch.no_grad():
        for p in src.parameters():
            p.data = p.data.to(torch.complex128 if p.is_complex() else torch.float64)
    state = src.state_dict()
    for conv in src.fno_blocks.convs:
        monkeypatch.setattr(
            conv, "forward", lambda x, output_shape=None, c=conv: _explicit(c, x, x.shape[2:])
        )
    u = torch.randn(2, 2, 16, 12, dtype=torch.float64)
    with torch.no_grad():
        expected = src(u)
        for dst in (fno_from_neuraloperator(src), fno_from_neuraloperator(state, **kwargs)):
            assert dst.project[-1].weight.dtype == torch.float64
            torch.testing.assert_close(dst(u), expected, rtol=0, atol=1e-12)


@pytest.mark.parametrize(
    "options",
    [
        {},
        {"channel_mlp_skip": "linear"},
        {"channel_mlp_skip": "identity", "positional_embedding": None},
    ],
)
def test_fno_converts_exactly_from_module_and_state_dict(options):
    kwargs = dict(n_modes=(8, 6), in_channels=2, out_channels=3, hidden_channels=8, n_layers=3)
    src = NFNO(**kwargs, **options).eval()
    _perturb(src)
    u = torch.randn(2, 2, 16, 12)
    with torch.no_grad():
        expected = src(u)
        from_module = fno_from_neuraloperator(src)
        from_state = fno_from_neuraloperator(src.state_dict(), **kwargs, **options)
        for dst in (from_module, from_state):
            torch.testing.assert_close(dst(u), expected, rtol=1e-5, atol=1e-6)
    # even n_modes: the same parameter count, nothing added, nothing dropped
    assert from_module.num_parameters() == sum(
        p.numel() * (2 if p.is_complex() else 1) for p in src.parameters()
    )


def test_fno_padding_is_neuraloperators_domain_padding_made_one_sided():
    """neuraloperator pads round(f n) zeros on both sides of each dim after the lifting (and
    crops them before the projection); sciml pads `padding` points at the end. Every layer in
    between is periodic and translation equivariant, so symmetric p equals one-sided 2p (a
    circular shift by p): same outputs for the same weights. One-sided p does not."""
    kwargs = dict(n_modes=(8, 6), in_channels=2, out_channels=3, hidden_channels=8, n_layers=3)
    plain = NFNO(**kwargs).eval()
    _perturb(plain)
    padded = NFNO(**kwargs, domain_padding=0.125).eval()
    padded.load_state_dict(plain.state_dict())
    converted = fno_from_neuraloperator(plain)
    u = torch.randn(2, 2, 16, 16)  # p = round(0.125 * 16) = 2 on both dims
    with torch.no_grad():
        expected = padded(u)
        for pad, close in ((4, True), (2, False)):
            model = FNO(dataclasses.replace(converted.config, padding=pad)).eval()
            model.load_state_dict(converted.state_dict())
            err = (model(u) - expected).abs().max().item()
            assert (err < 1e-5) if close else (err > 1e-3), (pad, err)


def test_modes_convention():
    assert convert_modes((16, 16)) == (8, 9)
    assert convert_modes((7, 12, 5)) == (4, 6, 3)


@pytest.mark.parametrize("n_modes", ["16", (), (True, 8), (4.7, 8), (0, 8), 16])
def test_convert_modes_refuses_what_is_not_positive_integers(n_modes):
    """'16' was read as modes (1, 6) -> (1, 4), (True, 8) as (1, 8), (4.7, 8) as (4, 8); ()
    reached a bare IndexError."""
    with pytest.raises(ConfigError, match=r"n_modes: expected a non-empty sequence of positive"):
        convert_modes(n_modes)
    assert convert_modes([np.int64(16), 16]) == (8, 9)  # NumPy integers are integers


@pytest.mark.parametrize(
    "wrong, key",
    [
        ({"hidden_channels": 8}, "lifting.fcs.0.weight"),
        ({"in_channels": 2}, "lifting.fcs.0.weight"),
        ({"out_channels": 3}, "projection.fcs.1.weight"),
        ({"channel_mlp_expansion": 1.0}, "fno_blocks.channel_mlp.0.fcs.0.weight"),
    ],
)
def test_hyper_parameters_that_do_not_fit_the_state_dict_are_named(wrong, key):
    """copy_ had refused them with a bare 'The size of tensor a (16) must match the size of
    tensor b (8)', naming neither the tensor nor the hyper-parameters."""
    torch.manual_seed(0)
    src = NFNO(n_modes=(4, 4), in_channels=1, out_channels=1, hidden_channels=4)
    _perturb(src)
    hparams = {"n_modes": (4, 4), "in_channels": 1, "out_channels": 1, "hidden_channels": 4}
    with pytest.raises(ConfigError, match=rf"neuraloperator tensor '{re.escape(key)}' has shape"):
        fno_from_neuraloperator(src.state_dict(), **{**hparams, **wrong})
    u = torch.randn(2, 1, 8, 8)
    with torch.no_grad():  # the fitting ones still convert to the same function
        dst = fno_from_neuraloperator(src.state_dict(), **hparams)
        torch.testing.assert_close(dst(u), src(u), rtol=1e-5, atol=1e-6)


@pytest.mark.parametrize("complex_data", [False, True])
# (why) no ada_in: neuraloperator 2.0's FNO cannot build it (it passes no ada_in_features)
@pytest.mark.parametrize("norm", ["instance_norm", "group_norm", "batch_norm"])
def test_a_norm_is_refused_naming_the_option_it_was_built_with(norm, complex_data):
    """The module path refused any norm as norm='a norm'; it names neuraloperator's option, as
    the state-dict path names the keyword given (the same words for both)."""
    kw = {"n_modes": (4, 4), "in_channels": 1, "out_channels": 1, "hidden_channels": 4}
    src = NFNO(**kw, norm=norm, complex_data=complex_data)
    message = f"cannot convert an FNO with norm={norm!r} (supported: None)"
    with pytest.raises(ConfigError) as info:
        fno_from_neuraloperator(src)
    assert str(info.value) == message
    with pytest.raises(ConfigError) as info:
        fno_from_neuraloperator(src.state_dict(), **kw, norm=norm)
    assert str(info.value) == message
    # a norm module neuraloperator does not build is named by its class
    src = NFNO(**kw, norm="group_norm")
    src.fno_blocks.norm = torch.nn.ModuleList([torch.nn.LayerNorm(4)])
    with pytest.raises(ConfigError) as info:
        fno_from_neuraloperator(src)
    assert str(info.value) == (
        "cannot convert an FNO with norm='torch.nn.modules.normalization.LayerNorm' "
        "(supported: None)"
    )


def test_unsupported_options_are_refused():
    src = NFNO(n_modes=(4, 4), in_channels=1, out_channels=1, hidden_channels=4, norm="group_norm")
    with pytest.raises(ConfigError, match="norm"):
        fno_from_neuraloperator(src)
    with pytest.raises(ConfigError, match="needs the hyper-parameters"):
        fno_from_neuraloperator({}, n_modes=(4, 4))
    # the docstring listed relu / tanh / silu as supported; every activation but gelu is refused
    for act in (torch.relu, torch.tanh, torch.nn.functional.silu, torch.sigmoid):
        src = NFNO(
            n_modes=(4, 4), in_channels=1, out_channels=1, hidden_channels=4, non_linearity=act
        )
        with pytest.raises(ConfigError, match="non_linearity=.*only F.gelu converts"):
            fno_from_neuraloperator(src)


@pytest.mark.parametrize(
    "option, message",
    [
        (
            {"max_n_modes": (8, 8)},
            "max_n_modes=(8, 8) other than the n_modes it uses ((6, 4), the last dim halved)",
        ),
        (
            {"resolution_scaling_factor": 2},
            "resolution_scaling_factor=[2.0, 2.0] (supported: None)",
        ),
        ({"fno_block_precision": "half"}, "fno_block_precision='half' (supported: 'full')"),
    ],
)
def test_a_spectral_conv_module_computing_another_function_is_refused(option, message):
    """These three were converted without a word: with max_n_modes above n_modes neuraloperator
    contracts only the central n_modes block of its weight (the whole weight was converted,
    outputs 96% off), resolution_scaling_factor resamples the output (the converted layer kept
    the input's size), half precision rounds the spectrum."""
    torch.manual_seed(0)
    src = NSpectralConv(3, 4, (6, 6), **option)
    _perturb(src)
    with pytest.raises(ConfigError) as info:
        spectral_conv_from_neuraloperator(src)
    assert f"cannot convert a SpectralConv with {message}" in str(info.value)
    if "max_n_modes" in option:
        # the block neuraloperator contracts, (8, 8) -> rows 1..6, the first 6 // 2 + 1 columns,
        # given as a state dict converts to its outputs
        u = torch.randn(2, 3, 16, 16)
        block = {"weight": src.weight.tensor[:, :, 1:-1, :4], "bias": src.bias}
        with torch.no_grad():
            dst = spectral_conv_from_neuraloperator(block, n_modes=(6, 6))
            torch.testing.assert_close(dst(u), src(u), rtol=1e-5, atol=1e-6)


class _DoubledSpectralConv(NSpectralConv):
    """A conv_module with the same weights as neuraloperator's SpectralConv and another
    forward (twice its output)."""

    def forward(self, x, output_shape=None):
        return 2 * super().forward(x, output_shape)


def test_an_fno_with_another_conv_module_is_refused_naming_it():
    """The converter reads only the weights, so an FNO built with another conv_module (here a
    SpectralConv subclass doubling its output) was converted as SpectralConv without a word:
    outputs 2.8% off (relative to their max). A module that is no FNO is named too."""
    torch.manual_seed(0)
    kwargs = dict(n_modes=(6, 6), in_channels=2, out_channels=3, hidden_channels=8, n_layers=2)
    src = NFNO(**kwargs, conv_module=_DoubledSpectralConv).eval()
    with pytest.raises(ConfigError) as info:
        fno_from_neuraloperator(src)
    assert str(info.value) == (
        f"cannot convert an FNO with conv_module={__name__}._DoubledSpectralConv "
        "(fno_blocks.convs.0; supported: neuralop.layers.spectral_convolution.SpectralConv, "
        "the default)"
    )
    with pytest.raises(ConfigError, match=r"expected a neuraloperator FNO .* got torch\.nn\."):
        fno_from_neuraloperator(torch.nn.Linear(2, 2))
    # the same weights in neuraloperator's own SpectralConv still convert to its function
    plain = NFNO(**kwargs).eval()
    plain.load_state_dict(src.state_dict())
    u = torch.randn(2, 2, 16, 16)
    with torch.no_grad():
        torch.testing.assert_close(
            fno_from_neuraloperator(plain)(u), plain(u), rtol=1e-5, atol=1e-6
        )


def test_a_state_dict_hyper_parameter_that_neuraloperator_does_not_take_is_refused():
    """An unknown keyword was dropped without a word: a padded FNO's state dict with the
    misspelt domain_pading=0.125 converted as the unpadded FNO (outputs 1.5% off), and
    conv_module=<another conv> as neuraloperator's SpectralConv."""
    torch.manual_seed(0)
    kwargs = dict(n_modes=(6, 6), in_channels=2, out_channels=3, hidden_channels=8, n_layers=2)
    src = NFNO(**kwargs, domain_padding=0.125).eval()
    state = src.state_dict()
    with pytest.raises(ConfigError) as info:
        fno_from_neuraloperator(state, **kwargs, domain_pading=0.125)
    assert str(info.value).startswith(
        "'domain_pading' is not a neuraloperator 2.0 FNO hyper-parameter (did you mean "
        "'domain_padding'?); the converter reads channel_mlp_dropout, "
    )
    with pytest.raises(ConfigError, match="cannot convert an FNO with domain_padding=0.125"):
        fno_from_neuraloperator(state, **kwargs, domain_padding=0.125)
    with pytest.raises(ConfigError, match=r"conv_module=<class '.*_DoubledSpectralConv'>"):
        fno_from_neuraloperator(state, **kwargs, conv_module=_DoubledSpectralConv)
    # neuraloperator's own keywords still convert to its function: the default conv_module and
    # the low-rank settings that a dense weight does not use
    plain = NFNO(**kwargs).eval()
    _perturb(plain)
    u = torch.randn(2, 2, 16, 16)
    extra = dict(conv_module=NSpectralConv, rank=0.3, implementation="reconstructed")
    with torch.no_grad():
        dst = fno_from_neuraloperator(plain.state_dict(), **kwargs, **extra)
        torch.testing.assert_close(dst(u), plain(u), rtol=1e-5, atol=1e-6)


@pytest.mark.parametrize(
    "wrong, message",
    [
        ({"hidden_channels": 8.5}, "hidden_channels: expected an integer >= 1, got 8.5"),
        ({"in_channels": True}, "in_channels: expected an integer >= 1, got True"),
        ({"n_layers": "2"}, "n_layers: expected an integer >= 1, got '2'"),
        ({"n_modes": 6}, "n_modes: expected a non-empty sequence of positive integers"),
        (
            {"lifting_channel_ratio": float("nan")},
            "lifting_channel_ratio: expected a finite number >= 0, got nan",
        ),
        ({"channel_mlp_expansion": -0.5}, "channel_mlp_expansion: expected a finite number >= 0"),
    ],
)
def test_state_dict_hyper_parameters_of_the_wrong_kind_are_named(wrong, message):
    """int() / float() had run hidden_channels=8.5 as 8, in_channels=True as 1 and n_layers='2'
    as 2 (converted without a word), n_modes=6 reached a bare "'int' object is not iterable",
    lifting_channel_ratio=nan a bare "cannot convert float NaN to integer"."""
    kwargs = dict(n_modes=(6, 6), in_channels=1, out_channels=1, hidden_channels=8, n_layers=2)
    src = NFNO(**kwargs).eval()
    with pytest.raises(ConfigError) as info:
        fno_from_neuraloperator(src.state_dict(), **{**kwargs, **wrong})
    assert str(info.value).startswith(message)
    np_kwargs = {**kwargs, "hidden_channels": np.int64(8), "lifting_channel_ratio": np.float32(2)}
    u = torch.randn(2, 1, 16, 16)
    with torch.no_grad():  # NumPy numbers are numbers
        dst = fno_from_neuraloperator(src.state_dict(), **np_kwargs)
        torch.testing.assert_close(dst(u), src(u), rtol=1e-5, atol=1e-6)


class _Payload:
    def __reduce__(self):
        return (print, ("unpickled code ran",))


def _custom_activation(x):
    return x


def test_a_neuraloperator_checkpoint_file_is_read_with_weights_only(tmp_path, capsys):
    """neuraloperator's save_checkpoint writes the state dict with a _metadata entry holding
    F.gelu and its SpectralConv class, which torch.load(weights_only=True) refuses: a user had
    to unpickle the file. read_neuraloperator_checkpoint reads it with weights_only=True (those
    names stand for themselves) and returns the hyper-parameters the FNO was built with; code
    or another object in the file is refused naming it, and never runs."""
    torch.manual_seed(0)
    kwargs = dict(n_modes=(6, 5), in_channels=2, out_channels=1, hidden_channels=8, n_layers=2)
    src = NFNO(**kwargs, channel_mlp_skip="linear").eval()
    _perturb(src)
    src.save_checkpoint(tmp_path, "fno")
    path = tmp_path / "fno_state_dict.pt"
    with pytest.raises(Exception, match="Weights only load failed"):
        torch.load(path, weights_only=True)  # why the reader exists
    state, hparams = read_neuraloperator_checkpoint(path)
    assert hparams["non_linearity"] is torch.nn.functional.gelu
    assert hparams["channel_mlp_skip"] == "linear" and hparams["n_modes"] == (6, 5)
    assert "conv_module" not in hparams and "_metadata" not in state
    u = torch.randn(2, 2, 16, 16)
    with torch.no_grad():
        dst = fno_from_neuraloperator(state, **hparams)
        torch.testing.assert_close(dst(u), src(u), rtol=1e-5, atol=1e-6)
    # a plain state dict (no _metadata) comes back with no hyper-parameters
    plain = {k: v for k, v in src.state_dict().items() if k != "_metadata"}
    torch.save(plain, tmp_path / "plain.pt")
    assert read_neuraloperator_checkpoint(tmp_path / "plain.pt")[1] == {}
    # a relu FNO reads, and its conversion is refused naming the activation
    relu = NFNO(**kwargs, non_linearity=torch.nn.functional.relu)
    torch.save(relu.state_dict(), tmp_path / "relu.pt")
    state, hparams = read_neuraloperator_checkpoint(tmp_path / "relu.pt")
    with pytest.raises(ConfigError, match="non_linearity='relu'"):
        fno_from_neuraloperator(state, **hparams)
    # code, and names the reader does not know, are refused naming them; nothing runs
    for name, bad, held in (
        ("payload", _Payload(), "print"),
        ("custom", _custom_activation, f"{__name__}._custom_activation"),
    ):
        damaged = src.state_dict()
        damaged["_metadata"] = {**damaged["_metadata"], "non_linearity": bad}
        torch.save(damaged, tmp_path / f"{name}.pt")
        with pytest.raises(CheckpointError) as info:
            read_neuraloperator_checkpoint(tmp_path / f"{name}.pt")
        assert str(info.value).startswith(
            f"{tmp_path / name}.pt: refused: not readable with torch.load(weights_only=True): "
            f"it holds {held}, which is no tensor and none of neuraloperator's names ("
        )
    assert "unpickled code ran" not in capsys.readouterr().out
    with pytest.raises(CheckpointError, match="no such file"):
        read_neuraloperator_checkpoint(tmp_path / "absent.pt")


def test_a_module_that_is_no_fno_is_named_without_neuraloperator(monkeypatch):
    """The converter imported neuraloperator before looking at the module: without it
    installed, any other module got "No module named 'neuralop'" instead of being named."""
    for name in ("neuralop", "neuralop.layers", "neuralop.layers.spectral_convolution"):
        monkeypatch.setitem(sys.modules, name, None)  # as if neuraloperator were not installed
    with pytest.raises(ConfigError) as info:
        fno_from_neuraloperator(torch.nn.Linear(2, 2))
    assert str(info.value) == (
        "expected a neuraloperator FNO (neuralop.models.FNO) or its state_dict(), got "
        "torch.nn.modules.linear.Linear"
    )
