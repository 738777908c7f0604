"""``sciml info`` without a path: the versions and devices a bug report needs.

Versions are the installed distributions' (``importlib.metadata``), which is what ``pip`` and a
requirements file name; an import's ``__version__`` can differ from it (a source checkout on
``sys.path`` beside an older install) and is shown beside it where it does.
"""

from __future__ import annotations

import importlib
import importlib.metadata
import platform
import sys
from pathlib import Path

#: sciml's dependencies (``pyproject.toml``'s ``dependencies``), distribution names
REQUIRED = (
    "torch",
    "torchdiffeq",
    "torchsde",
    "h5py",
    "xarray",
    "einops",
    "numpy",
    "safetensors",
    "tqdm",
    "pyyaml",
    "scipy",
    "sympy",
)
#: optional packages that sciml uses where present: distribution name -> the extra naming it
OPTIONAL = {
    "triton": "kernels",
    "pyamg": "amg",
    "matplotlib": "plot",
    "netCDF4": "interop",
    "neuraloperator": "bench",
}


def version_of(name: str) -> str | None:
    """The installed version of the distribution ``name``, None where it is not installed."""
    try:
        return importlib.metadata.version(name)
    except importlib.metadata.PackageNotFoundError:
        return None


def optional_missing(module: str, distribution: str) -> str | None:
    """Why the optional package ``distribution`` (imported as ``module``) cannot be used here,
    with the command that installs it, or None where it imports (benchmarks that compare with
    it skip it with this message)."""
    try:
        importlib.import_module(module)
    except ImportError as exc:
        return f"{distribution} is not installed ({exc}); pip install {distribution}"
    return None


def optional_version(module: str, distribution: str) -> str | None:
    """The installed version of ``distribution`` where ``module`` imports, else None."""
    return None if optional_missing(module, distribution) else version_of(distribution)


def describe() -> str:
    """The report: sciml (version, where it is imported from), Python, torch (version, build,
    devices), Triton (whether sciml's kernels can run), then every dependency and optional
    package with its installed version or ``not installed``."""
    import sciml

    lines = []
    installed = version_of("sciml")
    here = Path(sciml.__file__).parent
    if installed is None:
        lines.append(f"sciml {sciml.__version__} from {here} (no installed distribution)")
    elif installed != sciml.__version__:
        # (why) a checkout imported ahead of another install: name both, they are not the same
        lines.append(
            f"sciml {sciml.__version__} from {here} (the installed distribution is {installed})"
        )
    else:
        lines.append(f"sciml {sciml.__version__} from {here}")
    lines.append(f"python {platform.python_version()} ({sys.executable}) on {platform.platform()}")
    lines.append(_torch_line())
    lines.append(_triton_line())
    lines.append("dependencies:")
    width = max(map(len, (*REQUIRED, *OPTIONAL)))
    for name in REQUIRED:
        lines.append(f"  {name:<{width}}  {version_of(name) or 'not installed (required)'}")
    lines.append("optional:")
    for name, extra in OPTIONAL.items():
        v = version_of(name)
        lines.append(
            f"  {name:<{width}}  {v or 'not installed'}"
            + ("" if v else f" (pip install 'sciml[{extra}]')")
        )
    return "\n".join(lines)


def _torch_line() -> str:
    import torch

    out = f"torch {torch.__version__}"
    if torch.cuda.is_available():
        # (why) torch.version.hip is set on a ROCm build, whose devices torch also calls cuda
        build = f"ROCm {torch.version.hip}" if torch.version.hip else f"CUDA {torch.version.cuda}"
        names = [torch.cuda.get_device_name(i) for i in range(torch.cuda.device_count())]
        return f"{out} ({build}): {len(names)} GPU(s): {', '.join(names)}"
    mps = getattr(torch.backends, "mps", None)
    if mps is not None and mps.is_available():
        return f"{out}: Apple MPS device, no CUDA"
    built = torch.version.cuda or torch.version.hip
    why = "no GPU found" if built else "a CPU-only build"
    return f"{out}: CPU only ({why})"


def _triton_line() -> str:
    import torch

    from .kernels import triton_available

    v = version_of("triton")
    if v is None:
        return "triton: not installed (sciml's Triton kernels off; pip install 'sciml[kernels]')"
    if not torch.cuda.is_available():
        return f"triton {v}: installed, but sciml's Triton kernels need a CUDA GPU (none here)"
    if not triton_available():
        return f"triton {v}: installed, but it does not import (sciml's Triton kernels off)"
    return f"triton {v}: sciml's Triton kernels available (TritonSpectral)"


#: thread-count variables that OpenMP, MKL and OpenBLAS read at start-up
THREAD_VARS = ("OMP_NUM_THREADS", "MKL_NUM_THREADS", "OPENBLAS_NUM_THREADS")


def _is_allocator_var(name: str) -> bool:
    # (why) LD_PRELOAD swaps malloc (jemalloc, tcmalloc); MALLOC_* tune glibc's (and MALLOC_CONF
    # jemalloc's); PYTORCH_*ALLOC* / PYTORCH_NO_CUDA_MEMORY_CACHING set torch's caching allocator
    return (
        name == "LD_PRELOAD"
        or name.startswith("MALLOC_")
        or (name.startswith("PYTORCH_") and ("ALLOC" in name or "MEMORY_CACHING" in name))
    )


def allocator_vars(env=None) -> dict[str, str]:
    """The allocator variables set in ``env`` (``os.environ`` by default), name -> value:
    ``LD_PRELOAD``, ``MALLOC_*``, ``PYTORCH_CUDA_ALLOC_CONF`` and torch's other allocator
    variables. Empty where none is set."""
    import os

    env = os.environ if env is None else env
    return {k: env[k] for k in sorted(env) if _is_allocator_var(k)}


def _cpu_model() -> str:
    try:
        with open("/proc/cpuinfo", encoding="utf-8", errors="replace") as f:
            for line in f:
                if line.lower().startswith(("model name", "hardware", "cpu model")):
                    return line.split(":", 1)[1].strip()
    except OSError:
        pass
    return platform.processor() or platform.machine()


def run_environment(device=None) -> dict:
    """What a benchmark's numbers depend on besides its arguments, for its JSON's
    ``environment``: torch's intra- and inter-op thread counts, ``OMP_NUM_THREADS`` /
    ``MKL_NUM_THREADS`` / ``OPENBLAS_NUM_THREADS`` as set (None where unset), the allocator
    variables set, torch's, sciml's and Python's versions, the CPU model (``/proc/cpuinfo``, else
    ``platform``) with its core count, and the GPU: the name of ``device`` where it is a CUDA
    device, else of CUDA device 0 where one is present, else None."""
    import os

    import torch

    import sciml

    gpu = None
    if torch.cuda.is_available():
        dev = torch.device(device) if device is not None else torch.device("cuda")
        if dev.type == "cuda":
            gpu = torch.cuda.get_device_name(dev)
    return {
        "torch_threads": torch.get_num_threads(),
        "interop_threads": torch.get_num_interop_threads(),
        "thread_env": {k: os.environ.get(k) for k in THREAD_VARS},
        "allocator_env": allocator_vars(),
        "torch": torch.__version__,
        "sciml": sciml.__version__,
        "python": platform.python_version(),
        "cpu": _cpu_model(),
        "cpu_count": os.cpu_count(),
        "gpu": gpu,
    }
