#!/usr/bin/env sh
# Install PyTorch into the given interpreter's environment without pulling a multi-GB CUDA build
# onto a machine that has no NVIDIA GPU.
#   1. torch already importable: nothing to do.
#   2. NVIDIA GPU present: the default (CUDA) build from the package index.
#   3. No GPU: a CPU wheel from the local wheel directories pip is configured with (find-links),
#      else PyTorch's CPU index, else (with a warning) the default index.
# No version is pinned: pip picks the newest wheel that each source offers.
set -eu
PY="${1:-python3}"

if "$PY" -c "import torch" >/dev/null 2>&1; then
    echo "torch $("$PY" -c 'import torch; print(torch.__version__)') already installed"
    exit 0
fi

if command -v nvidia-smi >/dev/null 2>&1 && nvidia-smi >/dev/null 2>&1; then
    echo "NVIDIA GPU found: installing the default (CUDA) torch build"
    exec "$PY" -m pip install -q torch
fi

echo "no NVIDIA GPU: installing a CPU build of torch"
if "$PY" -m pip install -q --no-index torch 2>/dev/null; then
    echo "installed torch from a local wheel directory"
    exit 0
fi
if "$PY" -m pip install -q --timeout 20 --retries 1 --index-url https://download.pytorch.org/whl/cpu torch; then
    exit 0
fi
echo "WARNING: no CPU build of torch reachable; installing the default build (may be large)" >&2
exec "$PY" -m pip install -q torch
