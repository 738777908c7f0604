"""PROSE training step: cutting all-padding token columns vs the padded batch (same model, same data).

Batches of ``PROSEData`` pad every equation to ``max_symbol_len`` (200) tokens while the
equations of the ``prose-ode`` generator are 20-110 tokens long. ``PROSE`` drops the trailing
columns that are padding in every row before the symbol encoder and the symbol decoder
(``sciml.models.prose._trim_padding``); padded positions are masked out of every attention, so
this changes no output, only the work. This script times one full training step (forward, loss,
backward, AdamW step) both ways, on two copies of the same model with the same batches, the
repetitions interleaved in alternating order, and checks first that both give the same loss on
the same weights.
The "padded" side is sciml before the cut (``_trim_padding`` replaced by the identity): there is
no other PROSE implementation on this machine to compare with.

    OMP_NUM_THREADS=2 .venv/bin/python benchmarks/prose_step.py            # small config, batch 32
    OMP_NUM_THREADS=2 .venv/bin/python benchmarks/prose_step.py --width 96 # the 1.23M-param run's

With ``--compiled`` it times instead the forward pass and loss (``training_loss`` under
``no_grad``, eval mode) of a batch of the shortest equations and of one of the longest, three
ways in the same process: eager (which cuts to the longest row), ``torch.compile`` (inductor,
``dynamic=False``) of the batch padded to ``max_symbol_len`` (what a compiled step ran at
before ``PROSEData`` batches came at a bucket width), and compiled on the batch at its bucket
width (``PROSE.bucket_batch``: 16, 32, 64, 128 or 200 tokens). Each compiled width compiles
once (minutes on a CPU) before the timed repetitions.

    OMP_NUM_THREADS=1 .venv/bin/python benchmarks/prose_step.py --compiled --threads 1

Data: ``--data FILE`` (a ``prose-ode`` HDF5 file, e.g. ``runs/prose_ode/data/train_15000_s0.h5``)
or, by default, ``--n`` samples generated with sciml's own generator into a temporary folder.
Writes ``benchmarks/results/prose_step.json`` (``--compiled``: ``prose_step_compiled.json``).
"""

from __future__ import annotations

import argparse
import copy
import json
import platform
import statistics
import tempfile
import time
from pathlib import Path
from unittest import mock

import torch

import sciml.models.prose as prose_module
from sciml._environment import run_environment
from sciml.data.generators import generate
from sciml.data.generators.prose_ode import load_prose_ode
from sciml.models import PROSE, PROSEConfig
from sciml.models.prose_data import PROSEData
from sciml.train import LpLoss

RESULTS = Path(__file__).parent / "results" / "prose_step.json"
RESULTS_COMPILED = Path(__file__).parent / "results" / "prose_step_compiled.json"


def _no_trim(tokens: torch.Tensor, pad_id: int) -> torch.Tensor:
    return tokens


def step(model, opt, batch, loss_fn, trim: bool) -> float:
    """One training step; ``trim=False`` runs it with the padding cut switched off."""
    patch = mock.patch.object(prose_module, "_trim_padding", _no_trim) if not trim else None
    if patch is not None:
        patch.start()
    try:
        t0 = time.perf_counter()
        loss = model.training_loss(batch, loss_fn)
        opt.zero_grad(set_to_none=True)
        loss.backward()
        opt.step()
        return time.perf_counter() - t0
    finally:
        if patch is not None:
            patch.stop()


def main() -> None:
    from sciml.cli import HelpFormatter

    ap = argparse.ArgumentParser(description=__doc__, formatter_class=HelpFormatter)
    ap.add_argument("--data", default=None, help="prose-ode HDF5 file (default: generate --n)")
    ap.add_argument("--n", type=int, default=256, help="samples to generate without --data")
    ap.add_argument("--batch-size", type=int, default=32, help="samples per timed step")
    ap.add_argument("--width", type=int, default=0, help="PROSEConfig.small width (0: its default)")
    ap.add_argument("--reps", type=int, default=20, help="timed steps per side (after 2 warm-up)")
    ap.add_argument("--threads", type=int, default=2, help="torch intra-op threads")
    ap.add_argument("--compiled", action="store_true", help="time eager vs torch.compile")
    ap.add_argument("--backend", default="inductor", help="torch.compile backend (--compiled)")
    ap.add_argument("--out", default=None, help="JSON path (default: benchmarks/results/...)")
    args = ap.parse_args()
    args.out = args.out or str(RESULTS_COMPILED if args.compiled else RESULTS)
    torch.set_num_threads(args.threads)

    with tempfile.TemporaryDirectory() as tmp:
        path = Path(args.data) if args.data else Path(tmp) / "prose.h5"
        if args.data is None:
            generate("prose-ode", n=args.n, resolution=192, seed=0, out=path)
        raw = load_prose_ode(path)
    torch.manual_seed(0)
    config = PROSEConfig.small(**({"width": args.width} if args.width else {}))
    model = PROSE(config)
    data = PROSEData(raw, model.vocab, max_symbol_len=config.max_symbol_len)
    if args.compiled:
        return compiled_main(args, model, data)
    loader = torch.utils.data.DataLoader(
        data,
        batch_size=args.batch_size,
        shuffle=True,
        drop_last=True,
        generator=torch.Generator().manual_seed(0),
    )
    # (why) PROSEData's batches come at a bucket width; the padded side is the step at
    # max_symbol_len that every batch ran at before
    batches = [
        _padded(b, config.max_symbol_len) for _, b in zip(range(args.reps + 2), _cycle(loader))
    ]
    tokens = [int((b["target_symbols"] != model.vocab.pad_id).sum(1).max()) for b in batches]

    models = {"trimmed": model, "padded": copy.deepcopy(model)}
    loss_fn = LpLoss(p=2)
    # the same loss on the same weights both ways (dropout is 0 in the small config; eval mode
    # makes the check independent of it)
    with torch.no_grad():
        model.eval()
        same = float(model.training_loss(batches[0], loss_fn))
        with mock.patch.object(prose_module, "_trim_padding", _no_trim):
            padded_loss = float(model.training_loss(batches[0], loss_fn))
        model.train()
    if abs(same - padded_loss) > 1e-5 * max(1.0, abs(same)):
        raise SystemExit(f"losses differ: trimmed {same} vs padded {padded_loss}")

    opts = {k: torch.optim.AdamW(m.parameters(), lr=1e-4) for k, m in models.items()}
    times: dict[str, list[float]] = {k: [] for k in models}
    for i, batch in enumerate(batches):
        # (why) the order alternates, so neither side always runs right after the other
        for k in list(models)[:: 1 if i % 2 == 0 else -1]:
            s = step(models[k], opts[k], batch, loss_fn, trim=k == "trimmed")
            if i >= 2:  # two warm-up steps per side
                times[k].append(s)
    med = {k: statistics.median(v) for k, v in times.items()}
    record = {
        "benchmark": "prose_step",
        "command": "benchmarks/prose_step.py "
        + " ".join(
            f"--{k.replace('_', '-')} {v}"
            for k, v in vars(args).items()
            if k not in ("out", "compiled", "backend")
            and v is not None
            and not (k == "n" and args.data)
        ),
        "config": model.config_dict(),
        "parameters": model.num_parameters(),
        "batch_size": args.batch_size,
        "max_symbol_len": config.max_symbol_len,
        "longest_equation_per_batch": {
            "min": min(tokens),
            "median": statistics.median(tokens),
            "max": max(tokens),
        },
        "loss_trimmed_vs_padded": [same, padded_loss],
        "median_step_s": med,
        "all_step_s": times,
        "speedup": med["padded"] / med["trimmed"],
    }
    out = _save(record, args)
    print(
        f"PROSE step, batch {args.batch_size}, {model.num_parameters():,} params: "
        f"padded {1e3 * med['padded']:.0f} ms, trimmed {1e3 * med['trimmed']:.0f} ms, "
        f"speed-up {record['speedup']:.2f}x (same loss: {same:.6f} / {padded_loss:.6f})"
    )
    print(f"wrote {out}")


def _save(record: dict, args) -> Path:
    """Write ``record`` and the run's threads, machine and torch version to ``args.out``;
    returns that path."""
    record.update(
        threads=args.threads,
        machine=f"{platform.machine()} {platform.processor() or ''}".strip(),
        torch=torch.__version__,
        environment=run_environment("cpu"),
    )
    out = Path(args.out)
    out.parent.mkdir(parents=True, exist_ok=True)
    out.write_text(json.dumps(record, indent=2) + "\n")
    return out


def _padded(batch: dict, width: int) -> dict:
    """``batch`` with its token tensors padded with ``<pad> = 0`` to ``width`` columns."""
    tok = ("symbols", "target_symbols")
    pad = torch.nn.functional.pad
    return {k: pad(v, (0, width - v.shape[1])) if k in tok else v for k, v in batch.items()}


def compiled_main(args, model: PROSE, data: PROSEData) -> None:
    """Forward + loss, eager vs compiled at ``max_symbol_len`` vs compiled at the bucket width,
    on the ``batch_size`` samples with the shortest equations and those with the longest."""
    eq_len = [len(data[i]["target_symbols"].nonzero()) for i in range(len(data))]
    order = sorted(range(len(data)), key=lambda i: (eq_len[i], i))
    picks = {"short": order[: args.batch_size], "long": order[-args.batch_size :]}
    collate = torch.utils.data.default_collate
    model.eval()
    loss_fn = LpLoss(p=2)
    compiled = torch.compile(model.training_loss, backend=args.backend, dynamic=False)
    cases, record_cases = {}, {}
    for name, idx in picks.items():
        padded = collate([data[i] for i in idx])
        bucketed = model.bucket_batch(padded)
        assert all(
            torch.equal(b, c)
            for b, c in zip(collate(data.__getitems__(idx)).values(), bucketed.values())
        )
        longest = int((padded["target_symbols"] != 0).sum(1).max())
        cases[name] = {"eager": (model.training_loss, padded),
                       f"compiled_{padded['symbols'].shape[1]}": (compiled, padded),
                       "compiled_bucket": (compiled, bucketed)}  # fmt: skip
        record_cases[name] = {"longest_equation": longest, "bucket_width": bucketed["symbols"].shape[1],
                              "padded_width": padded["symbols"].shape[1]}  # fmt: skip
    compile_s, losses = {}, {}
    with torch.no_grad():
        for name, sides in cases.items():
            for side, (fn, b) in sides.items():  # compile (or warm up) once per width
                t0 = time.perf_counter()
                losses[f"{name}/{side}"] = float(fn(b, loss_fn))
                compile_s[f"{name}/{side}"] = time.perf_counter() - t0
        times: dict[str, list[float]] = {
            f"{n}/{s}": [] for n, sides in cases.items() for s in sides
        }
        for i in range(args.reps):
            for name, sides in cases.items():
                # (why) the order alternates, so no side always runs right after another
                for side, (fn, b) in list(sides.items())[:: 1 if i % 2 == 0 else -1]:
                    t0 = time.perf_counter()
                    fn(b, loss_fn)
                    times[f"{name}/{side}"].append(time.perf_counter() - t0)
    med = {k: statistics.median(v) for k, v in times.items()}
    for name in cases:  # the compiled losses are eager's
        for k, v in losses.items():
            if k.startswith(name) and abs(v - losses[f"{name}/eager"]) > 1e-5 * abs(v):
                raise SystemExit(f"losses differ: {k} {v} vs eager {losses[f'{name}/eager']}")
    record = {
        "benchmark": "prose_step_compiled",
        "command": f"benchmarks/prose_step.py --compiled --batch-size {args.batch_size} "
        f"--reps {args.reps} --threads {args.threads}"
        + (f" --data {args.data}" if args.data else f" --n {args.n}")
        + (f" --width {args.width}" if args.width else "")
        + (f" --backend {args.backend}" if args.backend != "inductor" else ""),
        "what": "training_loss (forward + loss) under no_grad, eval mode; compiled: "
        f"backend {args.backend}, dynamic=False",
        "config": model.config_dict(),
        "parameters": model.num_parameters(),
        "batch_size": args.batch_size,
        "cases": record_cases,
        "loss": losses,
        "first_call_s": compile_s,
        "median_s": med,
        "all_s": times,
        "compiled_over_eager": {k: med[k] / med[k.split("/")[0] + "/eager"] for k in med},
    }
    out = _save(record, args)
    for name in cases:
        row = ", ".join(
            f"{k.split('/')[1]} {1e3 * v:.0f} ms" for k, v in med.items() if k.startswith(name)
        )
        print(f"{name} ({record_cases[name]}): {row}")
    print(f"wrote {out}")


def _cycle(loader):
    while True:
        yield from loader


if __name__ == "__main__":
    main()
