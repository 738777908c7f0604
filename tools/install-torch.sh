#!/usr/bin/env sh
# Install PyTorch into the given interpreter's environment without pulling a multi-GB CUDA build
# onto a machine that has no NVIDIA GPU.
#   1. torch already importable: nothing to do.
#   2. NVIDIA GPU present: the default (CUDA) build from the package index.
#   3. No GPU: the newest CPU wheel for this interpreter found in the local wheel directories pip
#      is configured with (find-links), else PyTorch's CPU index, else (with a warning) the
#      default index.
# No version is pinned: each source offers its newest build.
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
WHEEL="$("$PY" - <<'PYEOF'
import glob, os, re, subprocess, sys

dirs = os.environ.get("PIP_FIND_LINKS", "").split()
out = subprocess.run([sys.executable, "-m", "pip", "config", "list"], capture_output=True, text=True).stdout
for line in out.splitlines():
    key, _, value = line.partition("=")
    if key.endswith("find-links"):
        dirs += value.strip("'\"").split()
tag = f"cp{sys.version_info.major}{sys.version_info.minor}"
found = []
for d in dirs:
    d = d.removeprefix("file://")
    for path in glob.glob(os.path.join(d, f"torch-*+cpu-{tag}-{tag}-*.whl")):
        m = re.match(r"torch-(\d+)\.(\d+)\.(\d+)", os.path.basename(path))
        if m:
            found.append((tuple(int(x) for x in m.groups()), path))
print(max(found)[1] if found else "")
PYEOF
)"
if [ -n "$WHEEL" ]; then
    echo "using local CPU wheel $WHEEL"
    exec "$PY" -m pip install -q "$WHEEL"
fi
if "$PY" -m pip install -q --timeout 20 --retries 1 --index-url https://download.pytorch.org/whl/cpu torch; then
    exit 0
fi
echo "WARNING: no CPU build of torch reachable; installing the default build (may be large)" >&2
exec "$PY" -m pip install -q torch
