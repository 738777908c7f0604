"""Derivatives of a network's output with respect to its inputs, by autograd.

PINN residuals need ``u_x``, ``u_xx``, ``u_t``, ``u_xt``, Laplacians ... at many collocation points
at once. For a *pointwise* network (output row ``i`` depends only on input row ``i``, true for any
MLP without batch-coupling layers such as batch norm), the derivative of every row is obtained in
**one** backward pass by differentiating the sum ``sum_i u_i`` (``grad_outputs = ones``): the cross
terms are zero. That is what every function here does, so the cost of one derivative is one
backward pass over the batch, whatever the number of points.

Memory: ``create_graph=True`` (the default) keeps the graph of the derivative so that it can be
differentiated again (higher orders) and trained through (the residual enters the loss). Pass
``create_graph=False`` when the derivative is only evaluated (plots, error maps, residual-based
resampling): the graph is then freed after each call. :func:`chunked` evaluates any such function
over a large point set in chunks, so peak memory is bounded by the chunk size.

Shapes: points are ``(..., d)`` (``d`` coordinates), a scalar field is ``(..., 1)`` or ``(...)``
with the same leading shape, and derivatives come back with the shape of the field.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence

import torch

from .._scalars import is_int
from ._checks import check_bool, check_float_points

__all__ = ["grad", "grads", "partial", "laplacian", "divergence", "time_derivative", "chunked"]


def _check(u: torch.Tensor, x: torch.Tensor) -> None:
    # (why) before the requires_grad check, whose advice (x.requires_grad_()) fails for
    # integer points
    check_float_points("grad", "x", x)
    if not x.requires_grad:
        raise ValueError(
            "expected input coordinates with requires_grad=True (call x.requires_grad_() "
            "before evaluating the network), got a tensor that does not require grad"
        )
    if not u.requires_grad:
        raise ValueError(
            "expected an output computed from the coordinates (u.requires_grad=True), got a "
            "tensor without autograd history; was it computed under torch.no_grad()?"
        )
    if x.ndim == 1 and u.shape == x.shape and x.shape[0] != 1:
        # (why) read as one point with n coordinates, this fell to the vector-field message
        # below, which never said that x was the wrong shape
        n = x.shape[0]
        raise ValueError(
            f"expected points x of shape (..., d), the coordinates on the last axis, got x of "
            f"shape ({n},): one point with {n} coordinates, at which u of shape ({n},) is not "
            f"a scalar field; for {n} points of one coordinate make x of shape ({n}, 1) "
            f"(x = x[:, None], before computing u from it)"
        )
    if u.ndim == x.ndim and u.ndim and u.shape[:-1] == x.shape[:-1] and u.shape[-1] != 1:
        # (why) grad_outputs = ones sums the components: the gradient of u_0 + u_1 came back
        # as if it were that of a scalar field, silently
        raise ValueError(
            f"expected a scalar field u of shape (..., 1) or (...) at the points x "
            f"{tuple(x.shape)}, got u of shape {tuple(u.shape)}; differentiate one component "
            f"at a time (u[..., k:k+1]), or use divergence for a vector field"
        )


def _check_int(name: str, v: int) -> None:
    # (why) a float failed in range() or list repetition with Python's message; True counted 1
    if not is_int(v):
        raise TypeError(f"expected an int {name}, got {v!r}")


def _flag(owner: str, create_graph: object) -> bool:
    # (why) 'no', None or a NumPy bool reached torch.autograd.grad, which failed with "'str'
    # object cannot be interpreted as an integer", naming no argument; partial and
    # time_derivative took None as False; an int 0 / 1 slipped through as a bool
    check_bool(owner, "create_graph", create_graph)
    return bool(create_graph)


def _check_dims(dims: Sequence[int], x: torch.Tensor) -> None:
    d = x.shape[-1]
    for k in dims:
        # (why) 0.0 failed in torch's indexing ('only integers, slices ...'), True / False
        # with "shape '[4, 1]' is invalid for input of size 8"; neither named the index
        if not is_int(k):
            raise TypeError(f"expected int coordinate indices, got {k!r} in {list(dims)}")
        if not -d <= k < d:
            raise ValueError(
                f"expected coordinate indices in [-{d}, {d}) for points with {d} coordinates, "
                f"got {k}"
            )


def grad(
    u: torch.Tensor,
    x: torch.Tensor,
    *,
    create_graph: bool = True,
    retain_graph: bool | None = None,
) -> torch.Tensor:
    """Gradient of a scalar field ``u`` with respect to the points ``x``, row by row.

    Args:
        u: ``(..., 1)`` or ``(...)`` values of a pointwise network at ``x``.
        x: ``(..., d)`` points (with ``requires_grad=True``), or any tensor ``u`` was computed
            from, e.g. a separate time column ``t: (..., 1)``.
        create_graph: keep the graph (needed for higher derivatives and for training).
        retain_graph: keep the graph of ``u`` for another backward pass (default:
            ``create_graph``).

    Returns:
        ``du/dx`` with the shape of ``x``: ``g[..., j] = d u[...] / d x[..., j]``. Zero where
        ``u`` does not depend on ``x``.
    """
    create_graph = _flag("grad", create_graph)
    if retain_graph is not None:
        check_bool("grad", "retain_graph", retain_graph)
        retain_graph = bool(retain_graph)
    _check(u, x)
    (g,) = torch.autograd.grad(
        u,
        x,
        grad_outputs=torch.ones_like(u),
        create_graph=create_graph,
        retain_graph=retain_graph,
        allow_unused=True,
    )
    return torch.zeros_like(x) if g is None else g


def grads(
    u: torch.Tensor,
    *xs: torch.Tensor,
    create_graph: bool = True,
    retain_graph: bool | None = None,
) -> tuple[torch.Tensor, ...]:
    """Gradients of one scalar field ``u`` with respect to several inputs, in **one** backward
    pass: ``u_x, u_t = grads(u, x, t)`` is ``grad(u, x), grad(u, t)`` at the cost of one.

    Two ``grad`` calls on the same ``u`` walk the network's graph backwards twice; one
    ``torch.autograd.grad(u, [x, t])`` walks it once and hands each leaf its part.

    Args:
        u: ``(..., 1)`` or ``(...)`` values of a pointwise network.
        xs: the tensors ``u`` was computed from (each ``requires_grad=True``), at least one, e.g.
            positions ``x: (..., 1)`` and times ``t: (..., 1)`` kept as separate leaves.
        create_graph: keep the graph of the derivatives (needed for higher derivatives and for
            training), as in :func:`grad`.
        retain_graph: keep the graph of ``u`` for another backward pass (default:
            ``create_graph``).

    Returns:
        one tensor per input, ``du/dxs[k]`` with the shape of ``xs[k]``; zero where ``u`` does
        not depend on it.
    """
    create_graph = _flag("grads", create_graph)
    if retain_graph is not None:
        check_bool("grads", "retain_graph", retain_graph)
        retain_graph = bool(retain_graph)
    if not xs:
        raise ValueError(
            "grads needs at least one input to differentiate with respect to, got none"
        )
    for x in xs:
        if not torch.is_tensor(x):
            raise TypeError(f"expected tensors to differentiate with respect to, got {x!r}")
        _check(u, x)
    gs = torch.autograd.grad(
        u,
        list(xs),
        grad_outputs=torch.ones_like(u),
        create_graph=create_graph,
        retain_graph=retain_graph,
        allow_unused=True,
    )
    return tuple(torch.zeros_like(x) if g is None else g for x, g in zip(xs, gs, strict=True))


def partial(
    u: torch.Tensor, x: torch.Tensor, *dims: int, create_graph: bool = True
) -> torch.Tensor:
    """The mixed partial derivative ``d^k u / dx_{dims[0]} ... dx_{dims[k-1]}``.

    ``partial(u, xt, 0, 0)`` is ``u_xx`` and ``partial(u, xt, 0, 1)`` is ``u_xt`` for points
    ``xt = (x, t)``. Each order costs one backward pass; only the components named in ``dims``
    are carried to the next order.

    Args:
        u: ``(..., 1)`` or ``(...)`` field values at ``x``.
        x: ``(..., d)`` points (``requires_grad=True``).
        dims: the coordinate index of each differentiation, at least one.
        create_graph: keep the graph of the result (needed to differentiate it again and for
            training); the intermediate orders always keep theirs.

    Returns:
        the derivative, with the shape of ``u``.
    """
    if not dims:
        raise ValueError("partial needs at least one coordinate index, got none")
    create_graph = _flag("partial", create_graph)
    check_float_points("partial", "x", x)
    _check_dims(dims, x)
    out = u
    for i, k in enumerate(dims):
        last = i == len(dims) - 1
        g = grad(out, x, create_graph=create_graph or not last)
        out = g[..., k].reshape(u.shape)
        if not out.requires_grad and not last:
            # u is (at most) linear in this coordinate: every higher derivative vanishes
            return torch.zeros_like(u)
    return out


def laplacian(
    u: torch.Tensor,
    x: torch.Tensor,
    dims: Sequence[int] | None = None,
    *,
    create_graph: bool = True,
) -> torch.Tensor:
    """``sum_j d^2 u / dx_j^2`` over the coordinates ``dims`` (default: all of ``x``).

    One backward pass for the gradient, then one per coordinate for the diagonal of the Hessian.
    Pass ``dims`` to leave time out of a space-time point set: ``laplacian(u, xt, dims=[0])``.

    Returns:
        a tensor with the shape of ``u``.
    """
    create_graph = _flag("laplacian", create_graph)
    check_float_points("laplacian", "x", x)
    dims = list(range(x.shape[-1]) if dims is None else dims)
    _check_dims(dims, x)
    g = grad(u, x, create_graph=True)
    out = torch.zeros_like(u)
    for i, k in enumerate(dims):
        gk = g[..., k].reshape(u.shape)
        if gk.requires_grad:
            keep = create_graph or i < len(dims) - 1  # the gradient graph is shared by all k
            gkk = grad(gk, x, create_graph=create_graph, retain_graph=keep)
            out = out + gkk[..., k].reshape(u.shape)
    return out


def divergence(v: torch.Tensor, x: torch.Tensor, *, create_graph: bool = True) -> torch.Tensor:
    """``sum_j d v_j / d x_j`` of a vector field ``v: (..., d)`` at points ``x: (..., d)``.

    Returns:
        ``(..., 1)``.
    """
    create_graph = _flag("divergence", create_graph)
    check_float_points("divergence", "x", x)
    if v.shape[-1] != x.shape[-1]:
        raise ValueError(
            f"divergence needs a field with as many components as coordinates, got "
            f"v {tuple(v.shape)} and x {tuple(x.shape)}"
        )
    out = torch.zeros(v.shape[:-1] + (1,), dtype=v.dtype, device=v.device)
    d = x.shape[-1]
    for k in range(d):
        keep = create_graph or k < d - 1  # the components share one graph
        g = grad(v[..., k], x, create_graph=create_graph, retain_graph=keep)
        out = out + g[..., k : k + 1]
    return out


def time_derivative(
    u: torch.Tensor, t: torch.Tensor, order: int = 1, *, create_graph: bool = True
) -> torch.Tensor:
    """``d^order u / dt^order`` for a separate time tensor ``t`` (``(..., 1)``, requires grad).

    Keeping ``t`` as its own leaf (rather than a column of the points) lets a residual take time
    derivatives without computing the spatial ones, and vice versa.
    """
    _check_int("order", order)
    create_graph = _flag("time_derivative", create_graph)
    if order < 1:
        raise ValueError(f"expected a derivative order >= 1, got {order}")
    check_float_points("time_derivative", "t", t)
    # (why) space-time points (n, 2) for t gave the derivative in their first column, x,
    # silently: u_x where u_t was asked for
    if t.ndim == 0 or t.shape[-1] != 1:
        raise ValueError(
            f"expected a separate time column t of shape (..., 1), got shape {tuple(t.shape)}; "
            f"for space-time points p use partial(u, p, k, ..., k) with k the time column"
        )
    return partial(u, t, *([0] * order), create_graph=create_graph)


def chunked(
    fn: Callable[[torch.Tensor], torch.Tensor], points: torch.Tensor, chunk: int = 8192
) -> torch.Tensor:
    """Evaluate ``fn`` (for example a residual that takes derivatives) on ``points: (n, d)``
    ``chunk`` rows at a time and concatenate the detached results.

    The graph of each chunk is freed before the next one starts, so the peak memory is that of
    one chunk. Use it for evaluation only (no gradients flow back to the parameters).
    """
    _check_int("chunk size", chunk)
    if chunk < 1:
        raise ValueError(f"expected a positive chunk size, got {chunk}")
    # (why) integer points failed in requires_grad_ with torch's message, naming no argument
    check_float_points("chunked", "points", points)
    outs = []
    # (why) max(n, 1): with no points there was no chunk, and torch.cat of nothing raised;
    # fn on the empty set gives the result's trailing shape and dtype
    for start in range(0, max(points.shape[0], 1), chunk):
        p = points[start : start + chunk].detach().requires_grad_(True)
        with torch.enable_grad():
            outs.append(fn(p).detach())
    return torch.cat(outs, dim=0)
