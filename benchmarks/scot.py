"""scOT (Poseidon-T) on the CPU: sciml's ScOT vs the reference ``scOT`` implementation.

Same weights (copied from sciml's model into the reference one through the Poseidon parameter
names; the outputs are checked to agree), same input, batch 4, 128 x 128, 4 channels:

* time: forward (eval, ``no_grad``) and forward + backward (train mode, mean-square loss); both
  models live in one process and their calls are interleaved, so both see the same load on a
  shared machine; wall-clock and process CPU time, median over ``--repeats``;
* memory: peak resident memory added by one call above the resident size right before it, in a
  fresh subprocess per (implementation, mode), after a warm-up call and ``malloc_trim``, with
  glibc's mmap threshold fixed at 64 KiB (``MALLOC_MMAP_THRESHOLD_``) so that freed tensors leave
  the resident set, the peak counter reset through ``/proc/self/clear_refs``; and what the
  warm-up call left resident (``memory_retained_by_warm_up_mib``: caches such as sciml's
  inference position biases, which the peak of a later call does not see).

Ratios are reference / sciml (> 1: sciml is faster / uses less memory).

The reference (github.com/camlab-ethz/poseidon, package ``scOT``, on HF ``transformers`` 4.x) is
optional: point ``--reference`` at the folders that hold ``scOT`` and ``transformers``, e.g.::

    python benchmarks/scot.py --reference /tmp/poseidon-src \\
        --reference /tmp/poseidon-venv/lib/python3.11/site-packages

Without it only sciml is measured. On CUDA (``--device cuda``) memory is
``torch.cuda.max_memory_allocated`` and sciml's attention runs in PyTorch's fused SDPA kernels.
Results: ``benchmarks/results/scot.json``. Options: ``--size T|B|L``, ``--batch``, ``--threads``.
"""

from __future__ import annotations

import argparse
import ctypes
import json
import os
import platform
import statistics
import subprocess
import sys
import time
from pathlib import Path

import torch

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from sciml._environment import run_environment  # noqa: E402
from sciml.models.scot import ScOT, ScOTConfig  # noqa: E402
from sciml.pretrained.poseidon import _config_to_poseidon, to_poseidon_state_dict  # noqa: E402

MODES = ("forward", "forward_backward")


def _reference(config: ScOTConfig, sciml_model: ScOT):
    from scOT.model import ScOT as RefScOT
    from scOT.model import ScOTConfig as RefConfig

    fields = _config_to_poseidon(config)
    for k in (
        "architectures",
        "model_type",
        "num_layers",
        "hidden_size",
        "pretrained_window_sizes",
        "torch_dtype",
    ):
        fields.pop(k)
    ref = RefScOT(RefConfig(**fields))
    ref.load_state_dict(to_poseidon_state_dict(sciml_model), strict=True)
    return ref


def _build(size: str, impls, device):
    torch.manual_seed(0)
    config = ScOTConfig.poseidon(size)
    model = ScOT(config)
    with torch.no_grad():  # nontrivial layer scales, so the ConvNeXt skips matter in the check
        for name, p in model.named_parameters():
            if name.endswith("gamma"):
                p.normal_(0, 0.3)
    models = {"sciml": model}
    if "reference" in impls:
        models["reference"] = _reference(config, model)
    return config, {k: m.to(device) for k, m in models.items() if k in impls}


def _step(impl, model, u, t, mode):
    if mode == "forward":
        model.eval()
        with torch.no_grad():
            return model(pixel_values=u, time=t).output if impl == "reference" else model(u, t=t)
    model.train()
    model.zero_grad(set_to_none=True)
    y = model(pixel_values=u, time=t).output if impl == "reference" else model(u, t=t)
    y.square().mean().backward()
    return y.detach()


def _inputs(config, batch, device):
    g = torch.Generator().manual_seed(1)
    u = torch.randn(batch, config.in_channels, config.image_size, config.image_size, generator=g)
    return u.to(device), torch.rand(batch, generator=g).to(device)


def _sync(device):
    if device.type == "cuda":
        torch.cuda.synchronize()


def _time(args, impls, device) -> dict:
    config, models = _build(args.size, impls, device)
    u, t = _inputs(config, args.batch, device)
    out: dict = {}
    for mode in MODES:
        ys = {k: _step(k, m, u, t, mode) for k, m in models.items()}  # warm-up
        wall = {k: [] for k in models}
        cpu = {k: [] for k in models}
        for _ in range(args.repeats):
            for k, m in models.items():
                _sync(device)
                w0, c0 = time.perf_counter(), time.process_time()
                _step(k, m, u, t, mode)
                _sync(device)
                wall[k].append(time.perf_counter() - w0)
                cpu[k].append(time.process_time() - c0)
        row = {
            k: {"wall_s": statistics.median(wall[k]), "cpu_s": statistics.median(cpu[k])}
            for k in models
        }
        if "reference" in ys:
            a, b = ys["sciml"].float(), ys["reference"].float()
            row["max_rel_diff_outputs"] = float((a - b).abs().max() / b.abs().max())
            row["speedup_wall"] = row["reference"]["wall_s"] / row["sciml"]["wall_s"]
            row["speedup_cpu"] = row["reference"]["cpu_s"] / row["sciml"]["cpu_s"]
        out[mode] = row
    return out


def _status_kib(field: str) -> int:
    for line in Path("/proc/self/status").read_text().splitlines():
        if line.startswith(field):
            return int(line.split()[1])
    raise RuntimeError(field)


def _memory_child(args, impl, mode, device) -> dict:
    """``peak_mib``: the peak one call adds above the memory right before it (after a warm-up
    call); ``retained_mib``: what the warm-up call left behind (memory right before the timed
    call minus right before the warm-up). The second matters because the two sides do not keep
    the same state between calls: sciml caches its position biases for inference (Poseidon-T:
    32 tensors, 19.7 MiB), which the reference recomputes inside every call, so the first
    number alone leaves sciml's cache out and counts the reference's recomputation."""
    config, models = _build(args.size, [impl], device)
    model = models[impl]
    u, t = _inputs(config, args.batch, device)
    cuda = device.type == "cuda"
    libc = None if cuda else ctypes.CDLL("libc.so.6")

    def resident_kib() -> float:
        if cuda:
            torch.cuda.synchronize()
            return torch.cuda.memory_allocated() / 1024
        libc.malloc_trim(0)
        return _status_kib("VmRSS:")

    before_warm_up = resident_kib()
    _step(impl, model, u, t, mode)  # warm-up: kernels, caches, lazily built masks
    if mode == "forward_backward":
        model.zero_grad(set_to_none=True)
    base = resident_kib()
    if cuda:
        torch.cuda.reset_peak_memory_stats()
        _step(impl, model, u, t, mode)
        torch.cuda.synchronize()
        peak = torch.cuda.max_memory_allocated() / 1024 - base
    else:
        Path("/proc/self/clear_refs").write_text("5")  # reset the peak RSS (VmHWM)
        base = _status_kib("VmRSS:")
        _step(impl, model, u, t, mode)
        peak = _status_kib("VmHWM:") - base
    return {"peak_mib": peak / 1024, "retained_mib": (base - before_warm_up) / 1024}


def main() -> None:
    from sciml.cli import HelpFormatter

    ap = argparse.ArgumentParser(description=__doc__, formatter_class=HelpFormatter)
    ap.add_argument("--size", default="T", help="Poseidon size: T, B or L")
    ap.add_argument("--batch", type=int, default=4, help="samples per forward")
    ap.add_argument("--threads", type=int, default=2, help="torch intra-op threads")
    ap.add_argument("--repeats", type=int, default=5, help="timed runs per implementation")
    ap.add_argument("--device", default="cpu", help="torch device, e.g. cpu, cuda")
    ap.add_argument(
        "--reference",
        action="append",
        default=[],
        help="folder holding scOT / transformers, repeatable (default: none)",
    )
    ap.add_argument(
        "--out", default=str(ROOT / "benchmarks" / "results" / "scot.json"), help="JSON path"
    )
    ap.add_argument("--_memory", nargs=2, metavar=("IMPL", "MODE"), help=argparse.SUPPRESS)
    args = ap.parse_args()
    sys.path.extend(args.reference)
    torch.set_num_threads(args.threads)
    device = torch.device(args.device)
    if args._memory:
        print(json.dumps(_memory_child(args, *args._memory, device)))
        return

    try:
        import scOT.model  # noqa: F401

        impls = ["sciml", "reference"]
    except ImportError as exc:
        print(f"reference scOT not importable ({exc}); pass --reference; measuring sciml only")
        impls = ["sciml"]

    results: dict = {
        "config": f"Poseidon-{args.size}",
        "batch": args.batch,
        "threads": args.threads,
        "repeats": args.repeats,
        "device": args.device,
        "device_name": torch.cuda.get_device_name(device)
        if device.type == "cuda"
        else f"cpu ({platform.processor() or platform.machine()})",
        "torch": torch.__version__,
        "note": "shared, contended CPU: compare the columns of one run; cpu_s is process CPU time",
        "time": _time(args, impls, device),
        "memory_peak_mib": {},
        "environment": run_environment(device),
    }
    env = dict(os.environ, MALLOC_MMAP_THRESHOLD_="65536")
    results["memory_retained_by_warm_up_mib"] = {}
    for mode in MODES:
        row, kept = {}, {}
        for impl in impls:
            cmd = [
                sys.executable,
                __file__,
                "--size",
                args.size,
                "--batch",
                str(args.batch),
                "--threads",
                str(args.threads),
                "--device",
                args.device,
                "--_memory",
                impl,
                mode,
            ]
            for r in args.reference:
                cmd += ["--reference", r]
            res = subprocess.run(cmd, check=True, capture_output=True, text=True, env=env).stdout
            child = json.loads(res.strip().splitlines()[-1])
            row[impl], kept[impl] = child["peak_mib"], child["retained_mib"]
        if "reference" in row:
            row["ratio"] = row["reference"] / row["sciml"]
        results["memory_peak_mib"][mode] = row
        results["memory_retained_by_warm_up_mib"][mode] = kept
    print(json.dumps(results, indent=1))
    Path(args.out).parent.mkdir(parents=True, exist_ok=True)
    Path(args.out).write_text(json.dumps(results, indent=2) + "\n")
    print(f"wrote {args.out}")


if __name__ == "__main__":
    main()
