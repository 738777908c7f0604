"""Training a PINN: weighted loss terms, Adam, then L-BFGS.

Why not :class:`sciml.train.Trainer`? That loop is built around a data set of (input, target)
batches, epochs, AdamW and per-batch schedules. A PINN has no data set: its "batch" is a set of
collocation points owned by the problem (possibly resampled from the residual), its loss is a sum
of named residual and condition terms with weights that may adapt, and the customary optimiser is
Adam followed by full-batch L-BFGS, which needs a closure that re-evaluates the loss during the
line search. :func:`fit` is that small loop (and nothing else): the caller supplies a function
returning the loss terms.

Example::

    pts = sobol(4096, Box((0, 0), (2 * pi, 1)))
    x, t = pts[:, :1].requires_grad_(), pts[:, 1:].requires_grad_()
    result = fit(model, lambda: model.loss_terms(problem, x, t, x_ic),
                 PINNTrainConfig(adam_steps=2000, lbfgs_steps=500),
                 weights=LossWeights({"ic": 100.0}))
"""

from __future__ import annotations

import contextlib
import copy
import difflib
import functools
import math
import operator
import random
import time
import types
import warnings
from collections.abc import Callable, Iterable, Iterator, Mapping
from dataclasses import dataclass, field
from typing import Any

import numpy as np
import torch
from torch import nn

from .._scalars import is_int, is_real
from ._checks import check_bool, is_number

__all__ = ["PINNTrainConfig", "LossWeights", "AdaptiveWeights", "PINNFitResult", "fit"]

LossTerms = Callable[[], Mapping[str, torch.Tensor]]

# (why) the names a LossWeights has warned about are not loss-weight state: fit puts the
# weights' state back after a failed Adam step, and with it this set, so the same warning came
# again at the next step. Neither saved nor restored by fit.
_WARNED = "_warned_unknown"


@dataclass(frozen=True)
class PINNTrainConfig:
    """Adam for ``adam_steps`` at learning rate ``lr`` (cosine-decayed to ``lr * final_lr_ratio``
    when ``cosine``), then up to ``lbfgs_steps`` L-BFGS iterations (strong-Wolfe line search).
    ``log_every`` steps a row goes into the history.

    Args:
        adam_steps: Adam steps (>= 0).
        lr: Adam's learning rate (> 0); the cosine schedule's start.
        cosine: decay the learning rate from ``lr`` at the first Adam step to
            ``lr * final_lr_ratio`` at the last along a half cosine; False keeps ``lr``. A bool
            (a TypeError otherwise: a string such as ``'no'`` is not read by its truth).
        final_lr_ratio: the last Adam step's learning rate over ``lr`` (>= 0; with ``cosine``).
        lbfgs_steps: the most L-BFGS iterations after Adam (its ``max_iter``; it stops earlier
            on its tolerances); 0 (the default) skips L-BFGS.
        lbfgs_history: L-BFGS's ``history_size``, the number of past updates its Hessian
            estimate keeps (>= 1).
        log_every: an Adam step whose index is a multiple of it, and the last one, adds a row to
            the history (>= 1); L-BFGS adds one row at its end.
    """

    adam_steps: int = 1000
    lr: float = 1e-3
    cosine: bool = True
    final_lr_ratio: float = 0.1
    lbfgs_steps: int = 0
    lbfgs_history: int = 50
    log_every: int = 100

    def __post_init__(self) -> None:
        # (why) adam_steps=2e3 was accepted and fit failed in range() ('float' object cannot
        # be interpreted as an integer); True ran one step
        for name in ("adam_steps", "lbfgs_steps", "log_every", "lbfgs_history"):
            v = getattr(self, name)
            if not is_int(v):
                raise TypeError(f"expected an int {name}, got {v!r}")
        if self.adam_steps < 0 or self.lbfgs_steps < 0:
            raise ValueError(
                f"expected non-negative step counts, got adam_steps={self.adam_steps}, "
                f"lbfgs_steps={self.lbfgs_steps}"
            )
        for name in ("lr", "final_lr_ratio"):
            # (why) a string failed in the comparisons below with Python's "'<' not supported
            # between instances of 'int' and 'str'"; True ran as lr 1
            if not is_number(getattr(self, name)):
                raise TypeError(f"expected a real number {name}, got {getattr(self, name)!r}")
        if not 0 < self.lr < math.inf:  # (why) inf passed 'lr > 0': inf parameters at step 1
            raise ValueError(f"expected a finite, positive learning rate, got {self.lr}")
        # (why) final_lr_ratio < 0 turned the end of the cosine schedule into gradient ascent
        # without a word, and log_every = 0 failed with 'integer modulo by zero' at step 0
        if not 0 <= self.final_lr_ratio < math.inf:
            raise ValueError(
                f"expected a finite final_lr_ratio >= 0 (the last Adam step's lr / lr), got "
                f"{self.final_lr_ratio}"
            )
        if self.log_every < 1 or self.lbfgs_history < 1:
            raise ValueError(
                f"expected log_every >= 1 and lbfgs_history >= 1, got log_every="
                f"{self.log_every}, lbfgs_history={self.lbfgs_history}"
            )
        check_bool("PINNTrainConfig", "cosine", self.cosine)


def _check_scalar_terms(terms: Mapping[str, torch.Tensor]) -> None:
    """Raise unless ``terms`` is a mapping whose every value is a tensor holding one value (a
    0-d tensor, or shape (1,))."""
    # (why) a tensor or a tuple for the mapping failed with "'Tensor' object has no attribute
    # 'items'", a float term in fit with "'float' object has no attribute 'requires_grad'"
    # (or 'detach'), naming neither loss_terms nor the term
    if not isinstance(terms, Mapping):
        raise TypeError(
            f"expected the loss terms as a mapping of names to scalar tensors (e.g. {{'r': "
            f"r.square().mean()}}), got a {type(terms).__name__}; check what loss_terms returns"
        )
    for k, v in terms.items():
        if not torch.is_tensor(v):
            raise TypeError(
                f"expected every loss term to be a tensor, got {k!r}: {type(v).__name__} "
                f"{v!r}; compute it with torch from the parameters (a constant has no gradient)"
            )
    # (why) an unreduced term made the loss a vector: backward's 'grad can be implicitly
    # created only for scalar outputs' named no term
    for k, v in terms.items():
        if v.numel() != 1:
            raise ValueError(
                f"expected scalar loss terms, got {k!r} of shape {tuple(v.shape)}; reduce it "
                "(e.g. r.square().mean())"
            )


class LossWeights:
    """Fixed weights: ``loss = sum_k w_k L_k`` (``w_k = 1`` for terms not named)."""

    def __init__(self, weights: Mapping[str, float] | None = None) -> None:
        self.weights = dict(weights or {})
        # (why) a string weight passed float('2') and failed in total() with torch's 'only
        # integer tensors of a single element can be converted to an index'; True ran as 1
        odd = {
            k: v
            for k, v in self.weights.items()
            if not (is_real(v) or (torch.is_tensor(v) and v.numel() == 1 and v.is_floating_point()))
        }
        if odd:
            raise TypeError(f"expected real-number weights, got {odd}")
        # (why) a nan weight was blamed on 'an AdaptiveWeights update' at step 0, and a
        # negative one made Adam ascend its term
        bad = {k: v for k, v in self.weights.items() if not 0 <= float(v) < math.inf}
        if bad:
            raise ValueError(
                f"expected finite weights >= 0, got {bad}; a term's weight multiplies its "
                "(non-negative) loss"
            )

    def total(
        self, terms: Mapping[str, torch.Tensor], params: list[nn.Parameter], *, update: bool
    ) -> torch.Tensor:
        """The weighted loss ``sum_k w_k L_k`` of the named ``terms``.

        Args:
            terms: the unweighted loss terms (scalars) by name.
            params: the trained parameters (what adaptive weights differentiate by).
            update: whether adaptive weights may update (Adam steps; False during L-BFGS).

        Raises:
            TypeError: if ``terms`` is not a mapping or a term is not a tensor.
            ValueError: if ``terms`` is empty (there is no loss to minimise) or a term holds
                more than one value.
        """
        _check_scalar_terms(terms)
        if not terms:
            # (why) sum() of nothing is the int 0, not a tensor: fit then failed with
            # "isfinite(): argument 'input' must be Tensor, not int", or, with no steps to
            # take, returned loss 0 as if a model had been fitted
            raise ValueError(
                "expected at least one loss term (a mapping of names to scalar tensors, e.g. "
                "{'residual': r.square().mean()}), got an empty mapping: check what loss_terms "
                "returns"
            )
        self._warn_unknown(terms)
        parts = [self.weights.get(k, 1.0) * v for k, v in terms.items()]
        return functools.reduce(operator.add, parts)

    def _warn_unknown(self, terms: Mapping[str, torch.Tensor]) -> None:
        """Warn, once per weight name, about weights that name none of ``terms``.

        (why) LossWeights({"IC": 100.}) beside a term "ic" was ignored without a word, and the
        initial condition trained at weight 1. Not an error: one weights object may serve
        models with different terms (an "ic" weight for a PINN, "ic_x" / "ic_u" for an LPINN).
        """
        warned = vars(self).setdefault(_WARNED, set())
        unknown = [k for k in self.weights if k not in terms and k not in warned]
        if not unknown:
            return
        warned.update(unknown)
        by_lower = {str(t).lower(): t for t in terms}
        hints = []
        for k in unknown:
            close = difflib.get_close_matches(str(k).lower(), list(by_lower), n=1)
            if close:
                hints.append(f"{k!r} -> {by_lower[close[0]]!r}")
        hint = f" (did you mean {', '.join(hints)}?)" if hints else ""
        warnings.warn(
            f"{type(self).__name__}: weight(s) {unknown} name no loss term and are ignored; the "
            f"terms are {list(terms)}{hint}",
            UserWarning,
            stacklevel=3,
        )

    def state(self) -> dict[str, float]:
        """The current weights by term name (terms not named have weight 1)."""
        return {k: float(v) for k, v in self.weights.items()}


class AdaptiveWeights(LossWeights):
    """Learning-rate annealing (Wang, Teng & Perdikaris 2021): every ``every`` Adam steps

        w_k <- (1 - alpha) w_k + alpha * max|grad L_ref| / mean|grad L_k|

    for every term ``k`` other than the reference ``ref`` (the PDE residual, weight 1), so that
    no term's gradient is swamped by the residual's. Frozen during L-BFGS (its line search needs
    a fixed objective). Costs one extra backward pass per term at each update.
    """

    def __init__(
        self,
        ref: str,
        *,
        alpha: float = 0.1,
        every: int = 10,
        initial: Mapping[str, float] | None = None,
    ) -> None:
        super().__init__(initial)
        if not is_int(every):
            raise TypeError(f"expected an int every, got {every!r}")  # (why) int() truncated
        if not is_number(alpha):  # (why) a string failed in '0 < alpha', True ran as 1
            raise TypeError(f"expected a real number alpha, got {alpha!r}")
        if not 0 < alpha <= 1 or every < 1:
            raise ValueError(f"expected 0 < alpha <= 1 and every >= 1, got {alpha} and {every}")
        self.ref, self.alpha, self.every = ref, float(alpha), int(every)
        self._calls = 0

    def total(
        self, terms: Mapping[str, torch.Tensor], params: list[nn.Parameter], *, update: bool
    ) -> torch.Tensor:
        """The weighted loss ``sum_k w_k L_k`` of the named ``terms``, after updating the
        weights first on every ``every``-th call with ``update=True`` (the first such call
        included).

        Args:
            terms: the unweighted loss terms (scalars) by name; ``ref`` among them.
            params: the trained parameters (the weights' gradients are taken with respect to
                them).
            update: whether the weights may update (Adam steps; False during L-BFGS).

        Raises:
            TypeError: if ``terms`` is not a mapping or a term is not a tensor.
            ValueError: if ``ref`` is not among ``terms`` (or ``terms`` is empty).
        """
        _check_scalar_terms(terms)
        if self.ref not in terms:
            raise ValueError(f"reference term {self.ref!r} not among the loss terms {list(terms)}")
        if update and self._calls % self.every == 0:
            self._update(terms, params)
        self._calls += int(update)
        return super().total(terms, params, update=update)

    def _update(self, terms: Mapping[str, torch.Tensor], params: list[nn.Parameter]) -> None:
        def flat_grad(v: torch.Tensor) -> torch.Tensor:
            gs = torch.autograd.grad(v, params, retain_graph=True, allow_unused=True)
            # (why) a parameter the term does not use has gradient 0, and the mean is over
            # every parameter: dropping the Nones made the mean of a term that uses few of
            # them too large (its weight too small), and torch.cat of none at all raised
            return torch.cat(
                [(torch.zeros_like(p) if g is None else g).reshape(-1) for g, p in zip(gs, params)]
            ).abs()

        g_ref = flat_grad(terms[self.ref]).max()
        for k, v in terms.items():
            if k == self.ref or not v.requires_grad:
                continue
            g = flat_grad(v).mean()
            if g > 0:
                w = self.weights.get(k, 1.0)
                self.weights[k] = (1 - self.alpha) * w + self.alpha * float(g_ref / g)


@dataclass
class PINNFitResult:
    """What :func:`fit` returns.

    Attributes:
        loss: final weighted loss.
        terms: final unweighted terms.
        adam_steps, lbfgs_iterations, lbfgs_evaluations: work done (an L-BFGS iteration may
            evaluate the loss several times in its line search).
        adam_seconds, lbfgs_seconds: wall time of each phase.
        history: rows ``{"phase", "step", "loss", **terms}``.
    """

    loss: float
    terms: dict[str, float]
    adam_steps: int
    lbfgs_iterations: int
    lbfgs_evaluations: int
    adam_seconds: float
    lbfgs_seconds: float
    history: list[dict[str, Any]] = field(repr=False)

    @property
    def seconds_per_adam_step(self) -> float:
        """``adam_seconds / adam_steps`` (0 without Adam steps)."""
        return self.adam_seconds / max(self.adam_steps, 1)


@contextlib.contextmanager
def _rng_kept(params: list[nn.Parameter]) -> Iterator[None]:
    """Run the block, then put the torch (CPU and the parameters' CUDA devices), NumPy and
    Python random states back as they were."""
    cuda = sorted({p.device.index or 0 for p in params if p.device.type == "cuda"})
    np_state, py_state = np.random.get_state(), random.getstate()
    try:
        with torch.random.fork_rng(devices=cuda):
            yield
    finally:
        np.random.set_state(np_state)
        random.setstate(py_state)


def _row(phase: str, step: int, loss: torch.Tensor, terms: Mapping[str, torch.Tensor]) -> dict:
    return {"phase": phase, "step": step, "loss": float(loss.detach())} | {
        k: float(v.detach()) for k, v in terms.items()
    }


def _finite(loss: torch.Tensor, params: list[nn.Parameter]) -> bool:
    """Whether ``loss`` and every gradient of ``params`` are finite, with one host sync.

    The max-norm (not the 2-norm, which overflows to inf for finite gradients above ~1e19 in
    float32) of each gradient, taken by one fused ``_foreach_norm`` per device and dtype; it
    is nan where a gradient holds a nan."""
    # (why) reshape: a loss of shape (1,) (a mean over dim 0) backpropagates like a scalar but
    # did not stack with the 0-dim norms; numel: the inf-norm of an empty gradient (a
    # parameter with a 0 dim) has no identity and raised, and it cannot be non-finite
    loss = loss.detach().reshape(())
    groups: dict[tuple[torch.device, torch.dtype], list[torch.Tensor]] = {}
    for p in params:
        # sparse gradients (an Embedding's) are left to Adam, which refuses them by name
        if p.grad is not None and p.grad.numel() and p.grad.layout == torch.strided:
            groups.setdefault((p.grad.device, p.grad.dtype), []).append(p.grad)
    if not groups:
        return bool(torch.isfinite(loss))
    if len(groups) == 1 and (loss.device, loss.dtype) in groups:
        # the usual case: one stack of the norms and the loss, one isfinite, one sync
        (grads,) = groups.values()
        return bool(torch.stack([*torch._foreach_norm(grads, math.inf), loss]).isfinite().all())
    # mixed devices or dtypes: a flag per group (casting a float64 norm of 1e300 to the loss's
    # float32 would read inf), gathered on the loss's device
    flags = [torch.isfinite(loss).reshape(1)]
    for grads in groups.values():
        norms = torch.stack(torch._foreach_norm(grads, math.inf))
        flags.append(norms.isfinite().all().reshape(1).to(loss.device))
    return bool(torch.cat(flags).all())


def _kept_and_detached(obj: Any, trained: set[int], memo: dict[int, Any], seen: set[int]) -> None:
    """Fill deepcopy's ``memo`` for what is reachable from ``obj`` through containers and
    instance dicts: a module whose parameters are all trained ones (the model) is kept as it
    is, a non-leaf tensor is copied detached."""
    if id(obj) in seen:
        return
    seen.add(id(obj))
    if isinstance(obj, torch.Tensor):
        if not obj.is_leaf:
            memo[id(obj)] = obj.detach().clone()
        return
    if isinstance(obj, nn.Module):
        ps = [id(p) for p in obj.parameters()]
        if ps and all(i in trained for i in ps):
            memo[id(obj)] = obj
            return
    if isinstance(obj, dict):
        items: Iterable[Any] = [*obj.keys(), *obj.values()]
    elif isinstance(obj, (list, tuple, set, frozenset)):
        items = obj
    elif hasattr(obj, "__dict__") and not isinstance(obj, (type, types.ModuleType)):
        items = vars(obj).values()  # (why) not a Python module's: all of numpy, each step
    else:
        return
    for item in items:
        _kept_and_detached(item, trained, memo, seen)


def _weights_state(weights: LossWeights, params: list[nn.Parameter]) -> dict[str, Any]:
    """A deep copy of ``vars(weights)`` but the names already warned about (not weight
    state; :meth:`LossWeights._warn_unknown`), to put back if the step fails.

    (why) a shallow copy kept the failing step's values in a user's weights whose state is a
    list, a tensor updated in place or a nested dict. The trained parameters, and a module
    made of them (the model), are kept, not copied (a weights object that refers to them must
    go on training them); a non-leaf tensor (a loss kept from the last step), which deepcopy
    refuses, is copied detached; an attribute deepcopy cannot copy (a lock, a file) is kept as
    it is."""
    memo: dict[int, Any] = {id(p): p for p in params}
    _kept_and_detached(vars(weights), set(memo), memo, set())
    saved = {}
    for k, v in vars(weights).items():
        if k == _WARNED:
            continue
        try:
            saved[k] = copy.deepcopy(v, memo)
        except Exception:
            saved[k] = v
    return saved


def _raise_non_finite(
    step: int,
    loss: torch.Tensor,
    params: list[nn.Parameter],
    terms: Mapping[str, torch.Tensor],
    weights: LossWeights,
    names: list[str],
) -> None:
    """Raise the FloatingPointError of a failed Adam step: the loss (its terms, or else the
    weights), or else the gradients (naming the parameters), is non-finite; the step was not
    taken."""
    kept = "the parameters (and weights) are those before this step (it was not taken)"
    if not torch.isfinite(loss.detach()):
        bad_terms = [k for k, v in terms.items() if not bool(torch.isfinite(v.detach()))]
        if bad_terms:
            why = f"terms {bad_terms} are non-finite"
        elif not all(math.isfinite(w) for w in weights.state().values()):
            why = (
                f"every term is finite, the weights {weights.state()} are not (an "
                "AdaptiveWeights update took a non-finite gradient of a term)"
            )
        else:  # (why) a finite weight times a finite term (or their sum) can overflow
            why = (
                f"every term and the weights {weights.state()} are finite: the weighted sum "
                f"overflows {loss.dtype}"
            )
        raise FloatingPointError(
            f"non-finite PINN loss at Adam step {step}: {float(loss.detach())} ({why}); {kept}. "
            "Lower lr, check loss_terms for a division by zero, an overflow or a function with "
            "an infinite derivative (sqrt at 0), or train in float64"
        )
    bad = [
        name
        for name, p in zip(names, params, strict=True)
        if p.grad is not None and not bool(torch.isfinite(p.grad).all())
    ]
    raise FloatingPointError(
        f"non-finite PINN gradients at Adam step {step} (the loss, {float(loss.detach())}, is "
        f"finite) in parameter(s) {bad} of the {len(params)} trained; {kept}. A function with an "
        "infinite derivative at the point evaluated in the loss's graph (sqrt(x) or x ** 0.5 "
        "at x = 0, even multiplied by 0) is the usual cause: add an epsilon (sqrt(x + 1e-12)) "
        "or clamp its input"
    )


def fit(
    model: nn.Module | Iterable[nn.Parameter],
    loss_terms: LossTerms,
    config: PINNTrainConfig = PINNTrainConfig(),
    *,
    weights: LossWeights | None = None,
    callback: Callable[[str, int], None] | None = None,
) -> PINNFitResult:
    """Minimise ``weights.total(loss_terms())`` over the model's parameters: Adam, then L-BFGS.

    Args:
        model: the module (or its parameters) to train.
        loss_terms: returns the named, unweighted loss terms (scalars) for the current
            parameters, e.g. ``lambda: model.loss_terms(problem, x0, t, x_ic)``. Re-sample the
            collocation points inside it (or in ``callback``) to train on fresh points.
        config: step counts and learning rate.
        weights: :class:`LossWeights` (default all 1) or :class:`AdaptiveWeights`.
        callback: called as ``callback("adam", step)`` after every Adam step and as
            ``callback("lbfgs", iterations)`` once the L-BFGS phase has ended.

    The reported loss and terms are evaluated at the returned parameters (after Adam alone,
    with the torch / NumPy / Python random states put back afterwards, so a ``loss_terms`` that
    resamples leaves them where the last step did). A non-finite loss, or finite loss with
    non-finite gradients, raises ``FloatingPointError``: at the Adam step where it occurs, with
    the parameters, Adam's state and the weights as before that step, which is not taken; or after
    L-BFGS, with the parameters put back where L-BFGS started; or, for an Adam-only fit whose
    loss at the returned parameters is non-finite, with the parameters after the last step.
    An exception raised by ``loss_terms`` (or ``weights``), or a Ctrl-C, propagates (with a
    note); in the L-BFGS phase the parameters are first put back where L-BFGS started (a line
    search may have left them at a trial point); in the Adam phase the weights' state is put
    back as it was before the failing step (nothing before ``adam.step`` changes the
    parameters or Adam's state), so the parameters and weights are those of the last completed
    step.
    """
    # (why) names for the error of a non-finite gradient: the index into the trainable
    # parameters pointed at the wrong one of model.parameters() when a frozen one preceded it
    if isinstance(model, nn.Module):
        named = list(model.named_parameters())
    else:
        named = [(f"params[{i}]", p) for i, p in enumerate(model)]
    names = [n for n, p in named if p.requires_grad]
    params = [p for _, p in named if p.requires_grad]
    if not params:
        raise ValueError("fit needs trainable parameters, got none")
    # (why) the terms themselves for loss_terms ('dict' object is not callable, at step 0), a
    # dict for weights (vars() argument must have __dict__ attribute) or for config
    # ('dict' object has no attribute 'lr') failed naming no argument
    if not callable(loss_terms):
        raise TypeError(
            f"expected loss_terms as a function returning the loss terms (e.g. lambda: "
            f"model.loss_terms(problem, x, t)), got a {type(loss_terms).__name__}"
        )
    if not isinstance(config, PINNTrainConfig):
        raise TypeError(
            f"expected config as a PINNTrainConfig (PINNTrainConfig(**d) for a dict d), got a "
            f"{type(config).__name__}"
        )
    if weights is not None and not isinstance(weights, LossWeights):
        raise TypeError(
            f"expected weights as a LossWeights or AdaptiveWeights (LossWeights(d) for a dict "
            f"d of weights by term), got a {type(weights).__name__}"
        )
    if callback is not None and not callable(callback):
        # (why) it failed after the first Adam step ("'int' object is not callable"), with
        # that step taken
        raise TypeError(
            f"expected callback as a function callback(phase, step) or None, got {callback!r}"
        )
    weights = LossWeights() if weights is None else weights
    history: list[dict[str, Any]] = []
    last: dict[str, Any]  # the loss and terms at the returned parameters

    adam = torch.optim.Adam(params, lr=config.lr)
    t0 = time.perf_counter()
    for step in range(config.adam_steps):
        if config.cosine and config.adam_steps > 1:
            c = 0.5 * (1 + math.cos(math.pi * step / (config.adam_steps - 1)))
            for g in adam.param_groups:
                g["lr"] = config.lr * (config.final_lr_ratio + (1 - config.final_lr_ratio) * c)
        adam.zero_grad(set_to_none=True)
        # (why) AdaptiveWeights updates from the gradients before the check below: with a nan
        # gradient its weights became nan; a failing step puts them back with the parameters.
        # Saved before loss_terms, which may change the weights too; any exception up to
        # adam.step puts them back (a user's total that changed its state and then raised
        # left the failed step's state), and the parameters are not touched before adam.step
        saved = _weights_state(weights, params)
        non_finite = False
        try:
            terms = loss_terms()
            loss = weights.total(terms, params, update=True)
            # (why) a non-finite loss with no graph (terms built under no_grad) raised
            # FloatingPointError before the check moved after backward; backward would raise
            # 'does not require grad'. The extra sync is only for such a loss
            if loss.requires_grad or bool(torch.isfinite(loss)):
                loss.backward()
            # (why) a finite loss can have nan/inf gradients (sqrt at 0 times 0 in its graph):
            # Adam wrote nan into the parameters and the next step blamed the loss. One fused
            # check of the loss and the gradients, one host sync as the loss check had alone,
            # and before adam.step, so a failing step leaves the parameters untouched
            if not _finite(loss, params):
                non_finite = True  # the message shows the failing weights, then they go back
                _raise_non_finite(step, loss, params, terms, weights, names)
        except BaseException as e:
            state = vars(weights)
            kept = {k: state[k] for k in (_WARNED,) if k in state}
            state.clear()
            state.update(saved)
            state.update(kept)
            if not non_finite and hasattr(e, "add_note"):  # Python >= 3.11
                e.add_note(
                    f"raised in pinn.fit's Adam step {step}; the weights are put back as before "
                    "this step, the parameters are those of the last completed step"
                )
            raise
        adam.step()
        if step % config.log_every == 0 or step == config.adam_steps - 1:
            history.append(_row("adam", step, loss, terms))
        if callback is not None:
            callback("adam", step)
    adam_seconds = time.perf_counter() - t0

    evals = 0
    iterations = 0
    t0 = time.perf_counter()
    if config.lbfgs_steps:
        lbfgs = torch.optim.LBFGS(
            params,
            lr=1.0,
            max_iter=config.lbfgs_steps,
            history_size=config.lbfgs_history,
            tolerance_grad=1e-10,
            tolerance_change=1e-14,
            line_search_fn="strong_wolfe",
        )

        def closure() -> torch.Tensor:
            nonlocal evals
            evals += 1
            lbfgs.zero_grad(set_to_none=True)
            terms = loss_terms()
            loss = weights.total(terms, params, update=False)
            loss.backward()
            return loss

        start = [q.detach().clone() for q in params]

        def restore() -> None:
            with torch.no_grad():
                for q, q0 in zip(params, start, strict=True):
                    q.copy_(q0)

        try:
            lbfgs.step(closure)
            iterations = int(lbfgs.state[params[0]].get("n_iter", 0))
            # The closure's last call can be a line-search trial point, not where L-BFGS left
            # the parameters: evaluate there, so the reported loss is the returned model's.
            terms = loss_terms()
            last = {"loss": weights.total(terms, params, update=False).detach()}
            last["terms"] = {k: v.detach() for k, v in terms.items()}
        except BaseException as e:
            # (why) an error from loss_terms (or the weights, or backward) inside the line
            # search or in the final evaluation left the parameters at an L-BFGS trial point
            # (2.3 away from where L-BFGS started in a test): a caller that catches the error
            # must not be handed a model no step ever accepted; a Ctrl-C likewise
            restore()
            if hasattr(e, "add_note"):  # Python >= 3.11
                e.add_note(
                    "raised in pinn.fit's L-BFGS phase; the parameters are restored to where "
                    "L-BFGS started (the end of the Adam phase)"
                )
            raise
        if not torch.isfinite(last["loss"]):
            # torch's L-BFGS takes a non-finite trial loss as a step like any other and leaves
            # the parameters where it ended (1e17 in a test); give the Adam phase's model back.
            restore()
            raise FloatingPointError(
                f"non-finite PINN loss after {iterations} L-BFGS iterations "
                f"({float(last['loss'])}); the parameters are restored to where L-BFGS started. "
                "Lower lbfgs_steps, train longer with Adam first, or use float64"
            )
        history.append(_row("lbfgs", iterations, last["loss"], last["terms"]))
        if callback is not None:
            callback("lbfgs", iterations)
    lbfgs_seconds = time.perf_counter() - t0

    if not config.lbfgs_steps:
        # (why) the last Adam step's loss is that of the parameters before its update: an
        # Adam-only fit reported it (6.27 where the returned model's loss was 11.8 after 3
        # steps on Rosenbrock); evaluate at the returned parameters, as after L-BFGS. With
        # the RNG streams kept: a loss_terms that resamples its points drew from them here,
        # and everything random after fit (the next stage's points) changed
        with _rng_kept(params):
            terms = loss_terms()
        last = {"loss": weights.total(terms, params, update=False), "terms": terms}
        if config.adam_steps and not torch.isfinite(last["loss"]):
            raise FloatingPointError(
                f"non-finite PINN loss after the last Adam step ({float(last['loss'])}); the "
                "parameters are those after that step. Lower lr or train in float64"
            )
    return PINNFitResult(
        loss=float(last["loss"].detach()),
        terms={k: float(v.detach()) for k, v in last["terms"].items()},
        adam_steps=config.adam_steps,
        lbfgs_iterations=iterations,
        lbfgs_evaluations=evals,
        adam_seconds=adam_seconds,
        lbfgs_seconds=lbfgs_seconds,
        history=history,
    )
