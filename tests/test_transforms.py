"""Real transforms: full DCT/DST against scipy, truncated transforms against the full ones."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from sciml.layers.transforms import DCT, DST, RFFT, TRANSFORMS, dct, dctn, dst, idct, idctn, idst

sfft = pytest.importorskip("scipy.fft")

# (why) SciPy 1.10's dst(type=2, norm="ortho") is not orthonormal (its matrix times its transpose
# is 1.0 off the identity), so it is no reference there; pyproject.toml allows SciPy 1.10
_DST_I = sfft.dst(np.eye(4), type=2, norm="ortho", axis=0)
SCIPY_DST_IS_ORTHONORMAL = np.allclose(_DST_I @ _DST_I.T, np.eye(4))


@pytest.mark.parametrize("n", [1, 2, 3, 8, 17, 64])
def test_dct_dst_equal_scipy_ortho_float64(n):
    x = torch.randn(3, n, 4, dtype=torch.float64)
    pairs = [(dct, idct, "dct")] + [(dst, idst, "dst")] * SCIPY_DST_IS_ORTHONORMAL
    for ours, inv, kind in pairs:
        ref = getattr(sfft, kind)(x.numpy(), type=2, norm="ortho", axis=1)
        got = ours(x, dim=1)
        np.testing.assert_allclose(got.numpy(), ref, rtol=0, atol=1e-13)
        ref3 = getattr(sfft, kind)(x.numpy(), type=3, norm="ortho", axis=1)
        np.testing.assert_allclose(inv(x, dim=1).numpy(), ref3, rtol=0, atol=1e-13)
        torch.testing.assert_close(inv(got, dim=1), x, rtol=0, atol=1e-13)


def _textbook_dst2(n: int) -> np.ndarray:
    """The orthonormal DST-II matrix: D[k, j] = sqrt(2 / n) sin(pi (k + 1) (j + 1/2) / n), its
    last row (k = n - 1) scaled by 1 / sqrt(2)."""
    k, j = np.arange(n)[:, None], np.arange(n)[None, :]
    d = np.sqrt(2.0 / n) * np.sin(np.pi * (k + 1) * (j + 0.5) / n)
    d[-1] /= np.sqrt(2.0)
    return d


@pytest.mark.parametrize("n", [1, 2, 3, 8, 17, 64])
def test_dst_idst_equal_the_textbook_orthonormal_dst(n):
    """Independent of SciPy, whose orthonormal DST-II / III scale the first coefficient instead
    of the last in SciPy 1.10, pyproject.toml's bound (scipy/scipy#18452), where the SciPy
    comparison above leaves the DST out."""
    d = _textbook_dst2(n)
    np.testing.assert_allclose(d @ d.T, np.eye(n), rtol=0, atol=1e-13)  # orthonormal
    x = torch.randn(3, n, 4, dtype=torch.float64)
    ref = np.einsum("kj,bjc->bkc", d, x.numpy())
    np.testing.assert_allclose(dst(x, dim=1).numpy(), ref, rtol=0, atol=1e-13)
    ref3 = np.einsum("jk,bjc->bkc", d, x.numpy())  # DST-III = the transpose
    np.testing.assert_allclose(idst(x, dim=1).numpy(), ref3, rtol=0, atol=1e-13)


def test_dctn_equals_scipy_dctn():
    x = torch.randn(2, 6, 10, dtype=torch.float64)
    ref = sfft.dctn(x.numpy(), type=2, norm="ortho", axes=(1, 2))
    np.testing.assert_allclose(dctn(x, (1, 2)).numpy(), ref, atol=1e-13)
    torch.testing.assert_close(idctn(dctn(x, (1, 2)), (1, 2)), x, rtol=0, atol=1e-13)


def _kept(t, sizes, modes):
    d = len(sizes)
    return tuple(t.low_pass(n, m, last=(a == d - 1)) for a, (n, m) in enumerate(zip(sizes, modes)))


def _reference_coeffs(t, x, kept):
    """Independent reference: scipy's full transform (numpy's rfftn), then a gather."""
    xs = x.numpy()
    d = len(kept)
    axes = tuple(range(-d, 0))
    if t.name == "rfft":
        full = np.fft.rfftn(xs, axes=axes, norm="ortho")
        idx = [np.array(i) % n for i, n in zip(kept, x.shape[-d:])]
    else:
        full = getattr(sfft, f"{t.name}n")(xs, type=2, norm="ortho", axes=axes)
        idx = [np.array(i) for i in kept]
    return full[(..., *np.ix_(*idx))]


@pytest.mark.parametrize("name", ["dct", "dst", "rfft"])
@pytest.mark.parametrize("method", ["matmul", "fft"])
@pytest.mark.parametrize(
    ("sizes", "modes"),
    [((12, 10), (4, 3)), ((9, 7), (4, 3)), ((5, 11), (3, 6)), ((7, 9), (2, 5))],
)
def test_truncated_forward_and_inverse_match_full_transforms(name, method, sizes, modes):
    """Even and odd sizes; (5, 11) / (7, 9) keep up to the top index an odd rfft axis holds
    ((n - 1) / 2) and, for the DCT / DST, up to n - 1 / n - 2."""
    if name == "dst" and not SCIPY_DST_IS_ORTHONORMAL:
        pytest.skip("this SciPy's orthonormal DST is not orthonormal (SciPy 1.10)")
    t = TRANSFORMS[name]
    n0, n1 = sizes
    x = torch.randn(2, 3, n0, n1, dtype=torch.float64)
    kept = _kept(t, sizes, modes)
    got = t.forward(x, kept, method=method)
    np.testing.assert_allclose(got.numpy(), _reference_coeffs(t, x, kept), atol=1e-12)
    # The inverse maps kept coefficients to the low-pass projection of x: compare with the full
    # inverse of the zero-padded spectrum, computed independently in numpy / scipy.
    rec = t.inverse(got, kept, sizes, method=method).numpy()
    if name == "rfft":
        full = np.zeros((2, 3, n0, n1 // 2 + 1), dtype=np.complex128)
        k0 = np.array(kept[0]) % n0
        full[..., k0[:, None], np.array(kept[1])[None, :]] = got.numpy()
        ref = np.fft.irfftn(full, s=sizes, axes=(-2, -1), norm="ortho")
    else:
        full = np.zeros((2, 3, n0, n1))
        full[..., : len(kept[0]), : len(kept[1])] = got.numpy()
        ref = getattr(sfft, f"i{name}n")(full, type=2, norm="ortho", axes=(-2, -1))
    np.testing.assert_allclose(rec, ref, atol=1e-12)


@pytest.mark.parametrize("name", ["dct", "dst", "rfft"])
def test_parseval_energy_equals_physical_energy(name):
    t = TRANSFORMS[name]
    kept = _kept(t, (9, 12, 10), (3, 4, 3))
    shape = tuple(len(k) for k in kept)
    z = torch.randn(2, *shape, dtype=torch.complex128 if t.is_complex else torch.float64)
    x = t.inverse(z, kept, (9, 12, 10))
    torch.testing.assert_close(t.energy(z, kept), (x**2).sum((-3, -2, -1)), rtol=1e-12, atol=0)


@pytest.mark.parametrize("name", ["dct", "dst", "rfft"])
def test_band_limited_fields_are_reconstructed_exactly(name):
    t = TRANSFORMS[name]
    kept = ((0, 1, 2, 5), (1, 3)) if name != "rfft" else ((0, 2, -2), (0, 1, 3))
    shape = tuple(len(k) for k in kept)
    z = torch.randn(4, *shape, dtype=torch.complex128 if t.is_complex else torch.float64)
    z = t.hermitian_part(z, kept) if name == "rfft" else z
    x = t.inverse(z, kept, (16, 14))
    torch.testing.assert_close(t.forward(x, kept), z, rtol=0, atol=1e-12)


@pytest.mark.parametrize("name", ["dct", "dst", "rfft"])
@pytest.mark.parametrize("method", ["matmul", "fft"])
def test_gradcheck_truncated_transforms(name, method):
    t = TRANSFORMS[name]
    kept = _kept(t, (6, 8), (2, 3))
    x = torch.randn(2, 6, 8, dtype=torch.float64, requires_grad=True)
    assert torch.autograd.gradcheck(lambda a: t.forward(a, kept, method=method), (x,))
    shape = tuple(len(k) for k in kept)
    z = torch.randn(2, *shape, dtype=x.dtype if not t.is_complex else torch.complex128)
    z.requires_grad_(True)
    assert torch.autograd.gradcheck(lambda a: t.inverse(a, kept, (6, 8), method=method), (z,))


def test_auto_method_rule():
    assert DCT().prefers_matmul(256, 32) and not DCT().prefers_matmul(512, 400)
    assert RFFT().prefers_matmul(512, 31) and not RFFT().prefers_matmul(256, 63)


def test_bad_inputs_are_refused():
    with pytest.raises(ValueError, match=r"distinct indices in \[0, 8\)"):
        DCT().forward(torch.randn(1, 8), ((0, 8),))
    with pytest.raises(ValueError, match="symmetric"):
        RFFT().forward(torch.randn(1, 8, 8), ((0, 1), (0, 1)))
    with pytest.raises(ValueError, match="transforms real fields"):
        DST().forward(torch.randn(1, 8, dtype=torch.cfloat), ((0,),))
    with pytest.raises(ValueError, match="method must be"):
        DCT().forward(torch.randn(1, 8), ((0,),), method="fast")
    with pytest.raises(ValueError, match=r"expected z of shape \(\.\.\., 2\)"):
        DCT().inverse(torch.randn(1, 3), ((0, 1),), (8,))


@pytest.mark.parametrize("name", ["dct", "dst", "rfft"])
def test_fractional_indices_and_sizes_are_refused_not_truncated(name):
    """kept and sizes were read with int(): a kept index 1.5 silently became 1 (forward
    returned the coefficients of modes (0, 1) for kept (0, 1.5)) and a size 8.5 became 8."""
    t = TRANSFORMS[name]
    x = torch.randn(2, 8, 8, dtype=torch.float64)
    kept = ((0, 1, -1), (0, 1)) if name == "rfft" else ((0, 1), (0, 1))
    bad = (kept[0], (0, 1.5))
    with pytest.raises(
        TypeError, match=rf"expected {type(t).__name__} kept\[1\] to hold ints, got \(0, 1.5\)"
    ):
        t.forward(x, bad)
    with pytest.raises(TypeError, match=r"expected kept as a tuple of index tuples .*got 3"):
        t.forward(x, 3)
    z = t.forward(x, kept)
    with pytest.raises(TypeError, match=r"inverse expected sizes to hold ints, got \(8, 8.5\)"):
        t.inverse(z, kept, (8, 8.5))
    with pytest.raises(TypeError, match=r"kept\[1\] to hold ints"):
        t.inverse(z, bad, (8, 8))
    # integer-valued numpy indices and sizes are still ints: the same coefficients and field
    np_kept = tuple(tuple(np.int64(k) for k in idx) for idx in kept)
    torch.testing.assert_close(t.forward(x, np_kept), z, rtol=0, atol=0)
    sizes = (np.int64(8), torch.tensor(8))
    torch.testing.assert_close(
        t.inverse(z, kept, sizes), t.inverse(z, kept, (8, 8)), rtol=0, atol=0
    )


def test_hermitian_part_refuses_a_fractional_index():
    """RFFT.hermitian_part read kept with int() too: (0, 1.5) was taken as (0, 1)."""
    t = RFFT()
    kept = ((0, 1, -1), (0, 1))
    z = torch.randn(2, 3, 2, dtype=torch.complex128)
    with pytest.raises(
        TypeError, match=r"RFFT.hermitian_part kept\[1\] to hold ints, got \(0, 1.5\)"
    ):
        t.hermitian_part(z, (kept[0], (0, 1.5)))
    # the k_last = 0 plane becomes Hermitian: z[-k] = conj(z[k]), by hand for this kept set
    h = t.hermitian_part(z, kept)
    want = z.clone()
    want[:, 0, 0] = z[:, 0, 0].real
    want[:, 1, 0] = 0.5 * (z[:, 1, 0] + z[:, 2, 0].conj())
    want[:, 2, 0] = want[:, 1, 0].conj()
    torch.testing.assert_close(h, want, rtol=0, atol=1e-15)


@pytest.mark.parametrize("name", ["dct", "dst", "rfft"])
def test_a_kept_set_given_as_an_integer_tensor_is_taken_as_its_ints(name):
    """A 1-D integer tensor per axis (or a 2-D one, a row per axis) was refused ("expected DCT
    kept[0] to hold ints, got (tensor(0), tensor(2), ...)"); it is read as the tuple of its ints.
    The coefficients are those of SciPy's / NumPy's full orthonormal transform at those
    indices, and inverse / energy agree with the tuple kept set."""
    if name == "dst" and not SCIPY_DST_IS_ORTHONORMAL:
        pytest.skip("SciPy's DST-II is not orthonormal in this version")
    t = TRANSFORMS[name]
    x = torch.randn(2, 9, 8, dtype=torch.float64)
    kept = ((0, 2, -2), (0, 1, 3)) if name == "rfft" else ((0, 2, 5), (1, 3, 7))
    if name == "rfft":
        full = np.fft.rfftn(x.numpy(), axes=(-2, -1), norm="ortho")
    else:
        full = getattr(sfft, f"{name}n")(x.numpy(), type=2, axes=(-2, -1), norm="ortho")
    want = full[:, [k % 9 for k in kept[0]]][:, :, list(kept[1])]
    forms = [
        [torch.tensor(idx) for idx in kept],
        (torch.tensor(kept[0], dtype=torch.int32), kept[1]),
        torch.tensor(kept),  # one row per axis
        tuple(tuple(torch.tensor(idx)) for idx in kept),  # 0-d integer tensors
    ]
    for method in ("matmul", "fft"):
        z = t.forward(x, kept, method=method)
        np.testing.assert_allclose(z.numpy(), want, rtol=0, atol=1e-12)
        field = t.inverse(z, kept, (9, 8), method=method)
        for form in forms:
            torch.testing.assert_close(t.forward(x, form, method=method), z, rtol=0, atol=0)
            torch.testing.assert_close(
                t.inverse(z, form, (9, 8), method=method), field, rtol=0, atol=0
            )
            torch.testing.assert_close(t.energy(z, form), t.energy(z, kept), rtol=0, atol=0)
    assert t.min_size(torch.tensor(kept[0]), last=False) == t.min_size(kept[0], last=False)
    t.check_indices(9, torch.tensor(kept[0]), last=False)
    with pytest.raises(ValueError, match="distinct"):
        t.check_indices(9, torch.tensor([0, 0]), last=True)
    # a float, bool or 2-D tensor for one axis, or a kept tensor of other than 2 dims: named
    owner = type(t).__name__
    for bad, what in (
        (torch.tensor([0.0, 1.0]), r"shape \(2,\) and dtype torch.float32"),
        (torch.tensor([True, False]), r"shape \(2,\) and dtype torch.bool"),
        (torch.tensor([[0, 1]]), r"shape \(1, 2\) and dtype torch.int64"),
    ):
        with pytest.raises(
            TypeError,
            match=rf"expected {owner} kept\[0\] as a tuple of ints or a 1-D integer tensor, got a "
            rf"tensor of {what}",
        ):
            t.forward(x, (bad, kept[1]))
    with pytest.raises(
        TypeError, match=r"or a 2-D integer tensor \(one row per axis\), got tensor"
    ):
        t.forward(x, torch.tensor([0, 1]))
