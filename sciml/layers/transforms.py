"""Real orthonormal transforms (DCT-II/III, DST-II/III, real FFT), full and truncated.

Full transforms along one dim, all orthonormal (they equal ``scipy.fft.dct(x, type=2,
norm="ortho")`` and friends), computed through FFTs in ``O(n log n)``:

* :func:`dct` (DCT-II) ``X_k = s_k sum_j x_j cos(pi k (2j + 1) / (2n))``, ``s_0 = sqrt(1/n)``,
  ``s_k = sqrt(2/n)``; its inverse :func:`idct` is the DCT-III.
* :func:`dst` (DST-II) ``X_k = s_k sum_j x_j sin(pi (k + 1) (2j + 1) / (2n))``,
  ``s_{n-1} = sqrt(1/n)``, else ``sqrt(2/n)``; inverse :func:`idst` (DST-III).

These compute half-precision input (float16, bfloat16) in float32 (there is no half FFT on the
CPU) and return it in its dtype, or in float32 under ``torch.autocast``; :class:`RFFT`
coefficients of half input are complex64 in both formulations below.

Truncated transforms compute only a kept set of coefficients per axis (a tensor product of
per-axis index sets). :class:`DCT`, :class:`DST` and :class:`RFFT` implement
:class:`RealTransform`: ``forward(x, kept)`` gives ``(..., m_1, ..., m_d)`` coefficients and
``inverse(z, kept, sizes)`` the field whose spectrum is ``z`` on the kept set and zero elsewhere.
Two formulations are available and ``method="auto"`` picks the faster one by size:

* ``"matmul"``: one product per axis with the ``(m, n)`` matrix of the kept basis functions,
  ``O(n m)`` per line and BLAS-friendly; it wins when few modes are kept.
* ``"fft"``: the full transform (``O(n log n)`` per line), then a gather (or a scatter and the
  full inverse).

Measured crossover (CPU, 1 thread, 2D fields, truncated forward and inverse): for the DCT/DST,
whose FFT form needs a reordering and a complex FFT, the product wins for ``n <= 128`` and for
``m <= n / 2``; for the real FFT, whose FFT form is one native ``rfftn``, the product wins only
for ``n <= 32`` or ``m <= n / 10`` coefficients per axis. See :meth:`RFFT.prefers_matmul`.

Because the transforms are orthonormal, Parseval holds: ``||x||^2 = ||X||^2``; truncation to the
kept set is an orthogonal projection, so ``||x||^2 = ||X_K||^2 + ||x - P_K x||^2``
(:meth:`RealTransform.energy` gives the left part for any coefficient block).
"""

from __future__ import annotations

import math
from collections.abc import Iterable, Sequence
from typing import ClassVar, Literal

import torch

from ._cache import cache_unless_tracing, tracing, transforming
from ._checks import as_input_precision, check_ints, check_size, check_tensor, widen

__all__ = [
    "dct",
    "idct",
    "dst",
    "idst",
    "dctn",
    "idctn",
    "RealTransform",
    "DCT",
    "DST",
    "RFFT",
    "TRANSFORMS",
]

Method = Literal["auto", "fft", "matmul"]
Kept = Sequence[Sequence[int] | torch.Tensor] | torch.Tensor


def _integer(t: torch.Tensor) -> bool:
    return not (t.is_floating_point() or t.is_complex() or t.dtype == torch.bool)


def _as_indices(name: str, idx: Sequence[int] | torch.Tensor) -> tuple[int, ...]:
    """One axis's kept indices as a tuple of ints: a sequence of ints (NumPy's and 0-d integer
    tensors included) or a 1-D integer tensor, read back to Python (a device sync, and a graph
    break under ``torch.compile``: pass a tuple on a hot path). (why) the bases are cached by
    the index tuple and the index rules are checked in Python; a tensor was refused ("expected
    ... to hold ints, got (tensor(0), tensor(1))")."""
    if isinstance(idx, torch.Tensor):
        if idx.ndim != 1 or not _integer(idx):
            raise TypeError(
                f"expected {name} as a tuple of ints or a 1-D integer tensor, got a tensor of "
                f"shape {tuple(idx.shape)} and dtype {idx.dtype}"
            )
        return tuple(idx.tolist())
    if isinstance(idx, Iterable) and not isinstance(idx, (str, bytes)):
        idx = tuple(
            int(k) if isinstance(k, torch.Tensor) and k.ndim == 0 and _integer(k) else k
            for k in idx
        )
    return check_ints(name, idx, low=None)


def _as_kept(owner: str, kept: Kept) -> tuple[tuple[int, ...], ...]:
    """``kept`` as a tuple of int tuples, one per transformed axis (each axis's set as in
    :func:`_as_indices`; a 2-D integer tensor is one row per axis). (why) it was read with
    ``int(k)``, which truncated a float index silently (``(0, 1.5)`` kept modes 0 and 1)."""
    if (
        isinstance(kept, (str, bytes))
        or not isinstance(kept, Iterable)
        or (isinstance(kept, torch.Tensor) and kept.ndim != 2)
    ):
        raise TypeError(
            f"{owner} expected kept as a tuple of index tuples (one per transformed axis) or a "
            f"2-D integer tensor (one row per axis), got {kept!r}"
        )
    return tuple(_as_indices(f"{owner} kept[{i}]", idx) for i, idx in enumerate(kept))


# --------------------------------------------------------------------------- full 1D transforms
def _check_field(name: str, x: torch.Tensor, dim: int) -> None:
    check_tensor(name, "x", x)
    # integer input would meet integer-cast twiddles and bases: wrong numbers, no error
    if not x.is_floating_point():
        raise TypeError(
            f"{name} expected a real floating-point tensor, got dtype {x.dtype}; "
            "convert it with .float()"
        )
    if x.ndim == 0 or (-x.ndim <= dim < x.ndim and x.shape[dim] < 1):
        raise ValueError(
            f"{name} expected at least one point along dim {dim}, got shape {tuple(x.shape)}"
        )


def _empty(x: torch.Tensor) -> bool:
    """An empty batch: the FFTs raise on it (PocketFFT / MKL: "Inconsistent configuration
    parameters"), and the answer holds no number to compute."""
    return x.numel() == 0


def dct(x: torch.Tensor, dim: int = -1) -> torch.Tensor:
    """Orthonormal DCT-II of real ``x`` along ``dim`` (Makhoul's reordering + one FFT)."""
    _check_field("dct", x, dim)
    if _empty(x):  # the answer has x's shape
        return x.clone()
    given, x = x, widen(x).movedim(dim, -1)
    n = x.shape[-1]
    # v = (x_0, x_2, x_4, ..., x_5, x_3, x_1): the DCT-II of x is a twiddled DFT of v.
    v = torch.cat([x[..., ::2], x[..., 1::2].flip(-1)], dim=-1)
    spec = torch.fft.fft(v, dim=-1)
    k = torch.arange(n, device=x.device, dtype=x.dtype)
    twiddle = torch.polar(torch.ones_like(k), -math.pi * k / (2 * n))
    out = (spec * twiddle).real * math.sqrt(2.0 / n)
    out[..., 0] = out[..., 0] / math.sqrt(2.0)
    return as_input_precision(out.movedim(-1, dim), given)


def idct(X: torch.Tensor, dim: int = -1) -> torch.Tensor:
    """Orthonormal DCT-III along ``dim``: the inverse of :func:`dct`."""
    _check_field("idct", X, dim)
    if _empty(X):
        return X.clone()
    given, X = X, widen(X).movedim(dim, -1)
    n = X.shape[-1]
    # Undo the ortho scaling: y is the unnormalised DCT-II (y_k = 2 sum x_j cos(...)).
    y = X * math.sqrt(2.0 * n)
    y = torch.cat([y[..., :1] * math.sqrt(2.0), y[..., 1:]], dim=-1)
    half = n // 2 + 1
    k = torch.arange(half, device=X.device, dtype=X.dtype)
    # y_{n-k} for k = 0..half-1, with y_n = 0.
    rev = torch.cat([torch.zeros_like(y[..., :1]), y.flip(-1)[..., : half - 1]], dim=-1)
    spec = torch.complex(y[..., :half], -rev) * 0.5
    spec = spec * torch.polar(torch.ones_like(k), math.pi * k / (2 * n))
    v = torch.fft.irfft(spec, n=n, dim=-1)
    x = torch.empty_like(v)
    n_even = (n + 1) // 2
    x[..., ::2] = v[..., :n_even]
    x[..., 1::2] = v[..., n_even:].flip(-1)
    return as_input_precision(x.movedim(-1, dim), given)


def _alternate(x: torch.Tensor) -> torch.Tensor:
    """``x_j (-1)^j`` along the last dim."""
    sign = torch.ones(x.shape[-1], dtype=x.dtype, device=x.device)
    sign[1::2] = -1
    return x * sign


def dst(x: torch.Tensor, dim: int = -1) -> torch.Tensor:
    """Orthonormal DST-II along ``dim``: ``dst(x)_k = dct((-1)^j x_j)_{n-1-k}``."""
    _check_field("dst", x, dim)
    x = x.movedim(dim, -1)
    return dct(_alternate(x), -1).flip(-1).movedim(-1, dim)


def idst(X: torch.Tensor, dim: int = -1) -> torch.Tensor:
    """Orthonormal DST-III along ``dim``: the inverse of :func:`dst`."""
    _check_field("idst", X, dim)
    X = X.movedim(dim, -1)
    return _alternate(idct(X.flip(-1), -1)).movedim(-1, dim)


def dctn(x: torch.Tensor, dims: Sequence[int]) -> torch.Tensor:
    """Orthonormal DCT-II along every dim in ``dims``."""
    for d in dims:
        x = dct(x, d)
    return x


def idctn(X: torch.Tensor, dims: Sequence[int]) -> torch.Tensor:
    """Inverse of :func:`dctn`."""
    for d in dims:
        X = idct(X, d)
    return X


# --------------------------------------------------------------------------- truncated transforms
def _apply_axis(x: torch.Tensor, mat: torch.Tensor, axis: int) -> torch.Tensor:
    """Contract ``x``'s ``axis`` (size n) with ``mat`` of shape ``(m, n)``: result has size m."""
    xt = x.movedim(axis, -1)
    if mat.is_complex() and not xt.is_complex():
        re, im = xt @ mat.real.T.to(xt.dtype), xt @ mat.imag.T.to(xt.dtype)
        if re.dtype in (torch.float16, torch.bfloat16):  # autocast: no complex bfloat16
            re, im = re.float(), im.float()
        out = torch.complex(re, im)
    else:
        out = xt @ mat.T.to(xt.dtype)
    return out.movedim(-1, axis)


class RealTransform:
    """An orthonormal transform of real fields with truncated forward / inverse.

    ``kept`` holds one index tuple per transformed (trailing) axis; see each subclass for what the
    indices mean. Coefficients come out in the order of ``kept``.
    """

    name: ClassVar[str]
    is_complex: ClassVar[bool] = False
    """Whether the coefficients are complex: False for the DCT and DST (real coefficients), True
    for the FFT (the real FFT's half spectrum)."""

    # -- per-axis pieces, defined by subclasses
    def low_pass(self, n: int, m: int, *, last: bool) -> tuple[int, ...]:
        """The ``m`` lowest frequencies of an axis of size ``n`` (``last``: the rfft axis)."""
        raise NotImplementedError

    def check_indices(self, n: int, idx: Sequence[int], *, last: bool) -> None:
        """Raise ``ValueError`` unless ``idx`` is a valid kept index set for an axis of size
        ``n`` (``last``: the rfft axis)."""
        raise NotImplementedError

    def min_size(self, idx: Sequence[int], *, last: bool) -> int:
        """The smallest axis size that holds the (valid, non-empty) index set ``idx``."""
        raise NotImplementedError

    def _basis(self, n: int, idx: tuple[int, ...], last: bool) -> torch.Tensor:
        """Forward basis ``(m, n)`` in float64 (complex128 for the FFT)."""
        raise NotImplementedError

    def _inverse_basis(self, n: int, idx: tuple[int, ...], last: bool) -> torch.Tensor:
        """Inverse basis ``(n, m)``: ``x = B_inv @ z`` (the transpose for orthonormal bases)."""
        return self._basis(n, idx, last).T.conj()

    def _full(self, x: torch.Tensor, dims: tuple[int, ...]) -> torch.Tensor:
        raise NotImplementedError

    def _full_inverse(
        self, z: torch.Tensor, dims: tuple[int, ...], sizes: tuple[int, ...]
    ) -> torch.Tensor:
        raise NotImplementedError

    def _spectrum_size(self, n: int, last: bool) -> int:
        return n

    def _position(self, n: int, k: int, last: bool) -> int:
        """Array position of frequency ``k`` in the full transform's output."""
        return k

    # -- public API
    def forward(self, x: torch.Tensor, kept: Kept, *, method: Method = "auto") -> torch.Tensor:
        """Kept coefficients of ``x``.

        Args:
            x: ``(..., n_1, ..., n_d)`` real, with ``d = len(kept)`` transformed trailing dims.
            kept: per-axis index tuples (``kept[i]`` for ``n_i``); an axis's set may be a 1-D
                integer tensor, read back to Python ints (a sync on a GPU; a tuple is cheaper).
            method: ``"matmul"``, ``"fft"`` or ``"auto"`` (matmul where :meth:`prefers_matmul`
                holds on every axis).

        Returns:
            ``(..., m_1, ..., m_d)`` coefficients (complex for :class:`RFFT`).
        """
        sizes, kept = self._check(x, kept)
        d = len(kept)
        dims = tuple(range(-d, 0))
        if _empty(x) or self._matmul(sizes, kept, method):  # (why) see _empty
            # Last axis first: for the FFT it turns the real input complex on the smaller side.
            out = x
            for axis in reversed(dims):
                n, idx, last = sizes[axis], kept[axis], axis == -1
                out = _apply_axis(out, _cached_basis(self, n, idx, last, out), axis)
            return out
        full = self._full(x, dims)
        for axis in dims:
            n, last = sizes[axis], axis == -1
            pos = [self._position(n, k, last) for k in kept[axis]]
            full = full.index_select(axis, torch.tensor(pos, device=x.device))
        return full

    def inverse(
        self, z: torch.Tensor, kept: Kept, sizes: Sequence[int], *, method: Method = "auto"
    ) -> torch.Tensor:
        """The real field of size ``sizes`` whose spectrum is ``z`` on ``kept`` and 0 elsewhere.

        Args:
            z: ``(..., m_1, ..., m_d)`` coefficients.
            kept: the per-axis index tuples ``z`` is laid out on (1-D integer tensors as in
                :meth:`forward`).
            sizes: ``(n_1, ..., n_d)`` of the output grid.
            method: ``"matmul"``, ``"fft"`` or ``"auto"`` (matmul where :meth:`prefers_matmul`
                holds on every axis).

        Returns:
            ``(..., n_1, ..., n_d)`` real.
        """
        name = type(self).__name__
        # (why) int() after the check, as before: it specialises a traced size as it did
        sizes = tuple(int(s) for s in check_size(f"{name}.inverse", "sizes", sizes))
        kept = _as_kept(f"{name}.inverse", kept)
        check_tensor(f"{name}.inverse", "z", z)
        d = len(kept)
        if len(sizes) != d or tuple(z.shape[-d:]) != tuple(len(i) for i in kept):
            raise ValueError(
                f"expected z of shape (..., {', '.join(str(len(i)) for i in kept)}) and {d} "
                f"output sizes, got z {tuple(z.shape)} and sizes {sizes}"
            )
        if not (z.is_floating_point() or z.is_complex()):
            raise TypeError(
                f"{type(self).__name__} expected floating-point or complex coefficients z, got "
                f"dtype {z.dtype}"
            )
        for n, idx, last in zip(sizes, kept, [False] * (d - 1) + [True]):
            self.check_indices(n, idx, last=last)
        dims = tuple(range(-d, 0))
        if _empty(z) or self._matmul(sizes, kept, method):
            out = z
            for axis in dims:  # last axis last: the rfft axis turns complex into real
                n, idx, last = sizes[axis], kept[axis], axis == -1
                out = self._inverse_axis(out, n, idx, last, axis)
            return out
        shape = list(z.shape[:-d]) + [
            self._spectrum_size(n, a == d - 1) for a, n in enumerate(sizes)
        ]
        full = z.new_zeros(shape)
        index = [
            torch.tensor([self._position(n, k, a == d - 1) for k in idx], device=z.device)
            for a, (n, idx) in enumerate(zip(sizes, kept))
        ]
        grids = torch.meshgrid(*index, indexing="ij")
        full[(..., *grids)] = z
        return self._full_inverse(full, dims, sizes)

    def energy(self, z: torch.Tensor, kept: Kept) -> torch.Tensor:
        """``||inverse(z)||^2`` summed over the ``d = len(kept)`` trailing dims (Parseval).

        Returns a tensor of shape ``z.shape[:-d]``.
        """
        d = len(_as_kept(f"{type(self).__name__}.energy", kept))
        return (z.abs() ** 2).sum(dim=tuple(range(-d, 0)))

    def _inverse_axis(
        self, z: torch.Tensor, n: int, idx: tuple[int, ...], last: bool, axis: int
    ) -> torch.Tensor:
        mat = _cached_basis(self, n, idx, last, z, inverse=True)  # (n, m)
        return _apply_axis(z, mat, axis)

    def _matmul(
        self, sizes: tuple[int, ...], kept: tuple[tuple[int, ...], ...], method: str
    ) -> bool:
        if method == "matmul":
            return True
        if method == "fft":
            return False
        if method != "auto":
            raise ValueError(f"method must be 'auto', 'fft' or 'matmul', got {method!r}")
        return all(self.prefers_matmul(n, len(idx)) for n, idx in zip(sizes, kept))

    def prefers_matmul(self, n: int, m: int) -> bool:
        """Whether the truncated-basis product beats FFT + gather for ``m`` of ``n`` coefficients
        on an axis (CPU measurement, see the module docstring)."""
        return n <= 128 or 2 * m <= n

    def _check(
        self, x: torch.Tensor, kept: Kept
    ) -> tuple[tuple[int, ...], tuple[tuple[int, ...], ...]]:
        kept = _as_kept(type(self).__name__, kept)
        check_tensor(type(self).__name__, "x", x)
        d = len(kept)
        if d < 1 or x.ndim < d:
            raise ValueError(
                f"expected x with at least {d} trailing dims to transform, got {tuple(x.shape)}"
            )
        if x.is_complex():
            raise ValueError(f"{type(self).__name__} transforms real fields, got dtype {x.dtype}")
        if not x.is_floating_point():  # the bases would be cast to an integer dtype
            raise TypeError(
                f"{type(self).__name__} expected a real floating-point x, got dtype {x.dtype}; "
                "convert it with .float()"
            )
        sizes = tuple(x.shape[-d:])
        for n, idx, last in zip(sizes, kept, [False] * (d - 1) + [True]):
            self.check_indices(n, idx, last=last)
        return sizes, kept

    def __repr__(self) -> str:
        return f"{type(self).__name__}()"


@cache_unless_tracing(maxsize=256)
def _basis_f64(
    t: RealTransform, n: int, idx: tuple[int, ...], last: bool, inverse: bool
) -> torch.Tensor:
    return t._inverse_basis(n, idx, last) if inverse else t._basis(n, idx, last)


_DEVICE_CACHE: dict[tuple, torch.Tensor] = {}


def _cached_basis(
    t: RealTransform,
    n: int,
    idx: tuple[int, ...],
    last: bool,
    like: torch.Tensor,
    *,
    inverse: bool = False,
) -> torch.Tensor:
    """The basis in ``like``'s precision and device, cached (a few KB each)."""
    real = like.real.dtype if like.is_complex() else like.dtype
    key = (t.name, n, idx, last, inverse, real, str(like.device))
    bypass = tracing() or transforming()  # (why) see sciml/layers/_cache.py
    mat = None if bypass else _DEVICE_CACHE.get(key)
    if mat is None:
        mat = _basis_f64(t, n, idx, last, inverse)
        cdtype = torch.complex128 if real == torch.float64 else torch.complex64
        mat = mat.to(device=like.device, dtype=cdtype if mat.is_complex() else real)
        if bypass:
            return mat
        if len(_DEVICE_CACHE) > 512:
            _DEVICE_CACHE.clear()
        _DEVICE_CACHE[key] = mat
    return mat


class DCT(RealTransform):
    """Orthonormal DCT-II (forward) / DCT-III (inverse). Index ``k`` in ``0..n-1`` is the
    frequency ``k / 2`` cycles per domain length; low-pass keeps ``0..m-1``. Real coefficients."""

    name = "dct"

    def low_pass(self, n: int, m: int, *, last: bool) -> tuple[int, ...]:
        """The indices ``(0, 1, ..., m-1)`` for an axis of size ``n``.

        Args:
            n: the axis size.
            m: the number of modes, ``1 <= m <= n``.
            last: unused (every axis is alike for the DCT / DST).

        Raises:
            ValueError: ``m`` outside ``[1, n]``.
        """
        if not 1 <= m <= n:
            raise ValueError(f"expected 1 <= modes <= {n} along an axis of size {n}, got {m}")
        return tuple(range(m))

    def check_indices(self, n: int, idx: Sequence[int], *, last: bool) -> None:
        """Check that ``idx`` is a non-empty set of distinct indices in ``[0, n)``.

        Args:
            n: the axis size.
            idx: the kept indices.
            last: unused (every axis is alike for the DCT / DST).

        Raises:
            ValueError: ``idx`` is empty, repeats an index or leaves ``[0, n)``.
        """
        idx = _as_indices(f"{self.name} indices", idx)
        if not idx or len(set(idx)) != len(idx) or min(idx) < 0 or max(idx) >= n:
            raise ValueError(
                f"{self.name}: expected distinct indices in [0, {n}) along an axis of size {n}, "
                f"got {tuple(idx)}"
            )

    def min_size(self, idx: Sequence[int], *, last: bool) -> int:
        """``max(idx) + 1``: the smallest axis size holding the indices ``idx`` (``last`` is
        unused)."""
        return max(_as_indices(f"{self.name} indices", idx)) + 1

    def _basis(self, n: int, idx: tuple[int, ...], last: bool) -> torch.Tensor:
        k = torch.tensor(idx, dtype=torch.float64)[:, None]
        j = torch.arange(n, dtype=torch.float64)[None, :]
        scale = torch.full_like(k, math.sqrt(2.0 / n))
        scale[k == 0] = math.sqrt(1.0 / n)
        return scale * torch.cos(math.pi * k * (2 * j + 1) / (2 * n))

    def _full(self, x: torch.Tensor, dims: tuple[int, ...]) -> torch.Tensor:
        return dctn(x, dims)

    def _full_inverse(
        self, z: torch.Tensor, dims: tuple[int, ...], sizes: tuple[int, ...]
    ) -> torch.Tensor:
        return idctn(z, dims)


class DST(DCT):
    """Orthonormal DST-II / DST-III. Index ``k`` is the sine of ``k + 1`` half-periods;
    low-pass keeps ``0..m-1``. Real coefficients."""

    name = "dst"

    def min_size(self, idx: Sequence[int], *, last: bool) -> int:
        """``max(idx) + 2``: the smallest axis size on which the indices ``idx`` keep the
        coefficients a finer grid gives (``last`` is unused)."""
        # not max + 1: on n points index n - 1 is sin(pi n x) = (-1)^j at the nodes, whose norm
        # is sqrt(n) rather than sqrt(n / 2), so its coefficient (and its inverse) would differ
        # from a finer grid's by sqrt(2), like a Nyquist mode
        return max(_as_indices(f"{self.name} indices", idx)) + 2

    def _basis(self, n: int, idx: tuple[int, ...], last: bool) -> torch.Tensor:
        k = torch.tensor(idx, dtype=torch.float64)[:, None]
        j = torch.arange(n, dtype=torch.float64)[None, :]
        scale = torch.full_like(k, math.sqrt(2.0 / n))
        scale[k == n - 1] = math.sqrt(1.0 / n)
        return scale * torch.sin(math.pi * (k + 1) * (2 * j + 1) / (2 * n))

    def _full(self, x: torch.Tensor, dims: tuple[int, ...]) -> torch.Tensor:
        for d in dims:
            x = dst(x, d)
        return x

    def _full_inverse(
        self, z: torch.Tensor, dims: tuple[int, ...], sizes: tuple[int, ...]
    ) -> torch.Tensor:
        for d in dims:
            z = idst(z, d)
        return z


class RFFT(RealTransform):
    """Orthonormal real FFT (``torch.fft.rfftn(norm="ortho")``) with complex coefficients.

    Indices are signed frequencies. Along every axis but the last, a kept set must be symmetric
    (``k`` kept iff ``-k`` kept) and exclude the Nyquist frequency; the low-pass set of ``m`` modes
    is ``0, 1, ..., m-1, -(m-1), ..., -1`` (``2m - 1`` coefficients). Along the last (half-spectrum)
    axis, indices are ``0 <= k < n / 2`` and low-pass keeps ``0..m-1``. These rules make
    truncation an orthogonal projection, so Parseval holds with weight 2 for ``k_last > 0``
    (they stand for ``+k`` and ``-k``) and the Hermitian part on the ``k_last = 0`` plane
    (see :meth:`energy`).
    """

    name = "rfft"
    is_complex = True

    def low_pass(self, n: int, m: int, *, last: bool) -> tuple[int, ...]:
        """The ``m`` lowest frequencies of an axis of size ``n``.

        Args:
            n: the axis size.
            m: the number of modes, ``1 <= m <= (n + 1) // 2``.
            last: the half-spectrum (last) axis: ``(0, ..., m-1)``; otherwise the symmetric set
                ``(0, ..., m-1, -(m-1), ..., -1)`` of ``2m - 1`` frequencies.

        Raises:
            ValueError: ``m`` outside ``[1, (n + 1) // 2]``.
        """
        cap = (n + 1) // 2
        if not 1 <= m <= cap:
            raise ValueError(f"expected 1 <= modes <= {cap} along an axis of size {n}, got {m}")
        return tuple(range(m)) if last else tuple(range(m)) + tuple(range(-(m - 1), 0))

    def check_indices(self, n: int, idx: Sequence[int], *, last: bool) -> None:
        """Check that ``idx`` is a non-empty set of distinct signed frequencies with
        ``|k| <= (n - 1) // 2``: all ``k >= 0`` on the last axis, symmetric (``k`` kept iff
        ``-k`` kept) on the others.

        Args:
            n: the axis size.
            idx: the kept frequencies.
            last: whether the axis is the half-spectrum (last) one.

        Raises:
            ValueError: ``idx`` breaks one of these rules.
        """
        idx = _as_indices("rfft indices", idx)
        lo = 0 if last else -((n - 1) // 2)
        hi = (n - 1) // 2
        ok = bool(idx) and len(set(idx)) == len(idx) and min(idx) >= lo and max(idx) <= hi
        if ok and not last:
            ok = set(idx) == {-k for k in idx}
        if not ok:
            what = "in [0, n/2)" if last else "symmetric (k and -k) with |k| < n/2"
            raise ValueError(
                f"rfft: expected distinct indices {what} along an axis of size {n}, got {tuple(idx)}"
            )

    def min_size(self, idx: Sequence[int], *, last: bool) -> int:
        """``2 max|k| + 1``: the smallest axis size whose spectrum holds the frequencies ``idx``
        below Nyquist (on every axis, ``last`` included)."""
        return (
            2 * max(abs(k) for k in _as_indices("rfft indices", idx)) + 1
        )  # |k| <= (n - 1) // 2 on every axis

    def _basis(self, n: int, idx: tuple[int, ...], last: bool) -> torch.Tensor:
        k = torch.tensor(idx, dtype=torch.float64)[:, None]
        j = torch.arange(n, dtype=torch.float64)[None, :]
        return torch.polar(torch.full_like(k * j, 1 / math.sqrt(n)), -2 * math.pi * k * j / n)

    def _inverse_axis(
        self, z: torch.Tensor, n: int, idx: tuple[int, ...], last: bool, axis: int
    ) -> torch.Tensor:
        if not last:
            return super()._inverse_axis(z, n, idx, last, axis)
        # x_j = sum_k c_k Re(z_k e^{2 pi i k j / n}) / sqrt(n), c_0 = 1, c_k = 2: irfft's rule
        # (the imaginary part of the k = 0 coefficient is dropped).
        mat = _cached_basis(self, n, idx, True, z, inverse=True)  # (n, m) complex
        zt = z.movedim(axis, -1)
        out = zt.real @ mat.real.T - zt.imag @ mat.imag.T
        return out.movedim(-1, axis)

    def _inverse_basis(self, n: int, idx: tuple[int, ...], last: bool) -> torch.Tensor:
        mat = self._basis(n, idx, last).conj()  # (m, n)
        if last:
            weight = torch.tensor([1.0 if k == 0 else 2.0 for k in idx], dtype=torch.float64)
            mat = mat * weight[:, None]
        return mat.T

    def prefers_matmul(self, n: int, m: int) -> bool:
        """Whether the truncated-basis product beats ``rfftn`` + gather for ``m`` of ``n``
        coefficients on an axis: ``n <= 32`` or ``m <= n / 10`` (CPU measurement, see the
        module docstring)."""
        return n <= 32 or 10 * m <= n

    def _spectrum_size(self, n: int, last: bool) -> int:
        return n // 2 + 1 if last else n

    def _position(self, n: int, k: int, last: bool) -> int:
        return k % n

    def _full(self, x: torch.Tensor, dims: tuple[int, ...]) -> torch.Tensor:
        return torch.fft.rfftn(widen(x), dim=dims, norm="ortho")  # complex64 for half, as matmul

    def _full_inverse(
        self, z: torch.Tensor, dims: tuple[int, ...], sizes: tuple[int, ...]
    ) -> torch.Tensor:
        return torch.fft.irfftn(z, s=sizes, dim=dims, norm="ortho")

    def hermitian_part(self, z: torch.Tensor, kept: Kept) -> torch.Tensor:
        """Project the ``k_last = 0`` plane onto Hermitian symmetry, ``(z_k + conj(z_-k)) / 2``:
        the part of ``z`` that the (real) inverse transform sees."""
        kept = _as_kept("RFFT.hermitian_part", kept)
        d = len(kept)
        if 0 not in kept[-1]:
            return z
        zero = kept[-1].index(0)
        plane = z.select(-1, zero)  # (..., m_1, ..., m_{d-1})
        mirrored = plane
        for a, idx in enumerate(kept[:-1]):
            perm = torch.tensor([idx.index(-k) for k in idx], device=z.device)
            mirrored = mirrored.index_select(a - (d - 1), perm)
        sym = 0.5 * (plane + mirrored.conj())
        out = z.clone()
        out.select(-1, zero).copy_(sym)
        return out

    def energy(self, z: torch.Tensor, kept: Kept) -> torch.Tensor:
        """``||inverse(z)||^2``: weight 2 off the ``k_last = 0`` plane, Hermitian part on it."""
        kept = _as_kept("RFFT.energy", kept)
        d = len(kept)
        z = self.hermitian_part(z, kept)
        weight = torch.tensor([1.0 if k == 0 else 2.0 for k in kept[-1]], device=z.device)
        return ((z.abs() ** 2) * weight).sum(dim=tuple(range(-d, 0)))


TRANSFORMS: dict[str, RealTransform] = {"dct": DCT(), "dst": DST(), "rfft": RFFT()}
"""Read-only alias registry (for configs and the CLI): name -> transform object."""
