"""``sciml info`` without a path: the versions and devices a bug report needs.

Versions are the installed distributions' (``importlib.metadata``), which is what ``pip`` and a
requirements file name; an import's ``__version__`` can differ from it (a source checkout on
``sys.path`` beside an older install) and is shown beside it where it does.
"""

from __future__ import annotations

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
