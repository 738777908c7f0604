"""``sciml.export``: a model as a ``torch.export`` program, for inference without sciml.

The program (a ``.pt2`` file) holds the graph and the weights; ``torch.export.load(path)
.module()(u)`` runs it with PyTorch alone, so a trained surrogate can be deployed where sciml is
not installed (or compiled further: AOTInductor, ExecuTorch). The batch size stays free; every
other size is fixed at the example's (a spectral layer's kept modes depend on the grid).
"""

from __future__ import annotations

import inspect
import os
import warnings
from pathlib import Path

import torch
from torch import Tensor, nn

from ._io import tmp_path
from .errors import SciMLError

__all__ = ["export"]


def export(
    model: nn.Module | str | os.PathLike,
    *args: Tensor,
    path: str | os.PathLike | None = None,
    dynamic_batch: bool = True,
    check: bool = True,
    rtol: float = 1e-5,
    atol: float = 1e-6,
    **kwargs: Tensor,
) -> torch.export.ExportedProgram:
    """Trace ``model(*args, **kwargs)`` in eval mode without autograd into an exported program.

    Args:
        model: a module, or a shipped name / checkpoint folder for :func:`sciml.load`.
        *args: the example's positional inputs, e.g. ``u`` of shape ``(batch, channels, *grid)``.
        **kwargs: the example's keyword inputs, e.g. ``t=`` for time-conditioned models.
        path: if given, the program is written there (``.pt2``; written to a temporary file in
            the same folder and renamed, so a failed export leaves nothing behind).
        dynamic_batch: keep the batch (dim 0 of the first tensor input) free (needs an example
            batch of at least 2: ``torch.export`` fixes sizes 0 and 1). Dim 0 of the other tensor
            inputs follows the batch where the model ties it to the batch (scOT's lead times
            ``t``) and is free on its own where the model allows (DeepONet's query points ``x``
            of shape ``(points, d)``); the tracer decides from the model's code.
        check: run the program on the example and on the example repeated to twice its batch,
            and raise :class:`~sciml.SciMLError` unless both equal the model's own output to
            ``rtol``, ``atol``.

    Returns:
        the ``torch.export.ExportedProgram``; ``program.module()`` is callable like the model.

    Raises:
        SciMLError: when ``torch.export`` cannot trace the model (its message first), e.g. a
            forward pass with data-dependent control flow such as NODE's adaptive solver.
    """
    if isinstance(model, (str, os.PathLike)):
        from .operator import load

        model = load(model)
    if not isinstance(model, nn.Module):
        raise TypeError(f"expected a torch.nn.Module or a model name, got {type(model).__name__}")
    if not args and not kwargs:
        raise ValueError("expected an example input, e.g. export(model, u) with u a batch")
    signature = inspect.signature(model.forward)
    if any(p.kind is inspect.Parameter.VAR_KEYWORD for p in signature.parameters.values()):
        # (why) a wrapper such as Normalized passes ``**kwargs`` on; torch.export cannot give a
        # free batch to inputs collected by ``**kwargs``, so the common interface's names are
        # spelled out
        if set(kwargs) - {"x", "t"}:
            raise ValueError(
                f"{type(model).__name__}.forward takes **kwargs; expected keyword inputs among "
                f"the common interface's x and t, got {sorted(kwargs)}"
            )
        model = _Interface(model)
        signature = inspect.signature(model.forward)
    bound = signature.bind(*args, **kwargs).arguments
    tensors = {k: v for k, v in bound.items() if isinstance(v, Tensor)}
    if not tensors:
        raise ValueError(f"expected at least one tensor input, got {sorted(bound)}")
    first = next(iter(tensors.values()))
    batch = first.shape[0] if first.dim() else None
    dynamic = None
    if dynamic_batch:
        if batch is None or batch < 2:
            raise ValueError(
                f"expected an example batch of at least 2 for dynamic_batch=True (torch.export "
                f"fixes sizes 0 and 1), got {batch}; pass a larger batch or dynamic_batch=False"
            )
        first_key = next(iter(tensors))
        # (why) the other inputs' dim 0 is left to the tracer (Dim.AUTO): it follows the batch
        # where the model's code ties it to u's (scOT's lead times) and stays free on its own
        # where not (DeepONet's query points), even when the example's sizes happen to agree
        dynamic = {
            k: (
                {0: torch.export.Dim("batch", min=1) if k == first_key else torch.export.Dim.AUTO}
                if isinstance(v, Tensor) and v.dim()
                else None
            )
            for k, v in bound.items()
        }
    inner = model.model if isinstance(model, _Interface) else model
    was_training = inner.training
    model.eval()
    try:
        with torch.no_grad():
            # (why) an example the model itself refuses (a wrong shape) raises the model's own
            # error here, not a tracing failure with a misleading hint
            model(*args, **kwargs)
            try:
                program = torch.export.export(model, args, kwargs or None, dynamic_shapes=dynamic)
            except Exception as exc:
                reason = (str(exc).strip().splitlines() or [type(exc).__name__])[0]
                raise SciMLError(
                    f"torch.export could not trace {type(model).__name__}: {reason}. A forward "
                    "pass that branches on tensor values or sizes its tensors by them (an "
                    "adaptive ODE solver's step control, as in NODE; an iterative solver; PROSE "
                    "trimming skeleton tokens to the longest one, so export PROSE without "
                    "symbols=) cannot be exported"
                ) from exc
            if check:
                _check(model, program, args, kwargs, batch if dynamic_batch else None, rtol, atol)
    finally:
        inner.train(was_training)
    if path is not None:
        _save(program, Path(path))
    return program


class _Interface(nn.Module):
    """``forward(u, *, x=None, t=None)`` around a model whose forward takes ``**kwargs``."""

    def __init__(self, model: nn.Module) -> None:
        super().__init__()
        self.model = model

    def forward(self, u: Tensor, *, x: Tensor | None = None, t: Tensor | None = None) -> Tensor:
        given = {k: v for k, v in (("x", x), ("t", t)) if v is not None}
        return self.model(u, **given)


def _check(model, program, args, kwargs, batch, rtol, atol) -> None:
    """The program's outputs against the model's, on the example and, with a free batch, on the
    example repeated to twice its batch."""
    inputs = [(args, kwargs)]
    if batch is not None:  # and the example repeated to twice its batch

        def twice(v):
            return (
                torch.cat([v, v])
                if isinstance(v, Tensor) and v.dim() and v.shape[0] == batch
                else v
            )

        inputs.append((tuple(map(twice, args)), {k: twice(v) for k, v in kwargs.items()}))
    run = program.module()
    for repeats, (a, kw) in enumerate(inputs, start=1):
        want, got = model(*a, **kw), run(*a, **kw)
        try:
            torch.testing.assert_close(got, want, rtol=rtol, atol=atol)
        except AssertionError as err:
            at = "the example" if repeats == 1 else "twice the example's batch"
            raise SciMLError(
                f"the exported program does not reproduce the model on {at} "
                f"(rtol={rtol}, atol={atol}): {err}"
            ) from None


def _save(program: torch.export.ExportedProgram, path: Path) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    # (why) torch.export.save wants a name ending in .pt2
    with tmp_path(path, suffix=".tmp.pt2") as tmp, warnings.catch_warnings():
        # (why) SpectralConv's weights are permuted views of their storage (the layout of the
        # per-mode GEMMs); torch.export.save then says it found no tensor spanning the whole
        # storage and stores that storage as it is, which loads back exactly (tested)
        warnings.filterwarnings("ignore", message="No complete tensor found in the group")
        torch.export.save(program, tmp)
        os.replace(tmp, path)
