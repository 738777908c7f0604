"""Check that the wheel ships the pretrained zoo and that it loads offline in a fresh environment.

    .venv/bin/python tools/check_wheel.py [--keep] [--no-isolation]

1. ``python -m build`` (sdist, then the wheel from it) of a clean copy of ``sciml/``,
   ``pyproject.toml`` and ``README.md`` in a temporary directory (needs ``pip install build``);
2. the wheel and the sdist must list ``config.json``, ``model.safetensors`` and ``card.json``
   of every shipped surrogate (the names in this source tree's ``sciml/pretrained/weights``);
3. a fresh virtual environment (plain ``python -m venv``, no system site packages) gets torch
   the way the Makefile installs it (``tools/install-torch.sh``), then the wheel (not editable)
   and its dependencies from the package index;
4. in that environment, from a directory outside the repository, with the network cut for the
   Python process (a ``sitecustomize`` that makes every socket connect and DNS lookup raise,
   checked to be active, and ``HF_HUB_OFFLINE=1``), ``sciml.load(name)`` runs for every registry
   entry, its parameter count is compared with its card, and ``sciml pretrained list`` runs.

Prints a summary with the time of each step; exits 1 on any failure.
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import subprocess
import sys
import tarfile
import tempfile
import time
import zipfile
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
WEIGHTS = ROOT / "sciml" / "pretrained" / "weights"
FILES = ("config.json", "model.safetensors", "card.json")
_NOT_COPIED = shutil.ignore_patterns("__pycache__", "*.pyc", "*.egg-info")

GUARD = '''"""Installed by tools/check_wheel.py: no network for this interpreter."""
import socket


def _refuse(*args, **kwargs):
    raise OSError("network disabled by tools/check_wheel.py")


socket.socket.connect = _refuse
socket.socket.connect_ex = _refuse
socket.create_connection = _refuse
socket.getaddrinfo = _refuse
'''

CHECK = r"""
import json, socket, sys
from pathlib import Path

try:
    socket.create_connection(("pypi.org", 443), timeout=2)
except OSError as exc:
    assert "network disabled" in str(exc), exc
else:
    sys.exit("the network guard is not active")

import sciml
from sciml import pretrained

where = Path(sciml.__file__).resolve()
assert str(where).startswith(sys.prefix), f"sciml imported from {where}, not the fresh venv"
expected = json.loads(sys.argv[1])
found = pretrained.names()
missing = sorted(set(expected) - set(found))
report = {"sciml": str(where), "names": found, "missing": missing, "models": {}}
for name in found:
    model = sciml.load(name)
    card = pretrained.card(name)
    report["models"][name] = {
        "family": model.family,
        "parameters": model.num_parameters(),
        "card_parameters": card["parameters"],
    }
print(json.dumps(report))
"""


def _run(cmd: list[str], **kw) -> subprocess.CompletedProcess:
    shown = [str(c) if len(str(c)) < 80 else str(c)[:40].split("\n")[0] + "..." for c in cmd]
    print("+", " ".join(shown), flush=True)
    return subprocess.run(cmd, check=True, text=True, **kw)


def main() -> int:
    from sciml.cli import HelpFormatter

    ap = argparse.ArgumentParser(description=__doc__, formatter_class=HelpFormatter)
    ap.add_argument("--keep", action="store_true", help="keep the temporary directory")
    ap.add_argument(
        "--no-isolation", action="store_true", help="build with this interpreter's setuptools"
    )
    args = ap.parse_args()
    expected = sorted(p.name for p in WEIGHTS.iterdir() if all((p / f).is_file() for f in FILES))
    tmp = Path(tempfile.mkdtemp(prefix="sciml-wheel-"))
    times: dict[str, float] = {}
    failures: list[str] = []
    try:
        t0 = time.perf_counter()
        # build from a clean copy: no stale build/ or *.egg-info, nothing written to the tree
        src = tmp / "src"
        shutil.copytree(ROOT / "sciml", src / "sciml", ignore=_NOT_COPIED)
        for f in [ROOT / "pyproject.toml", ROOT / "README.md", *ROOT.glob("LICENSE*")]:
            shutil.copy2(f, src / f.name)
        # plain `python -m build`: the sdist, then the wheel built from the sdist
        build = [sys.executable, "-m", "build", "--outdir", str(tmp / "dist")]
        _run(build + (["--no-isolation"] if args.no_isolation else []) + [str(src)])
        times["build sdist + wheel"] = time.perf_counter() - t0
        (wheel,) = (tmp / "dist").glob("sciml-*.whl")
        (sdist,) = (tmp / "dist").glob("sciml-*.tar.gz")

        listed = set(zipfile.ZipFile(wheel).namelist())
        with tarfile.open(sdist) as tar:
            in_sdist = {m.split("/", 1)[1] for m in tar.getnames() if "/" in m}
        for name in expected:
            for f in FILES:
                member = f"sciml/pretrained/weights/{name}/{f}"
                if member not in listed:
                    failures.append(f"wheel lacks {member}")
                if member not in in_sdist:
                    failures.append(f"sdist lacks {member}")
        weights = sorted(n for n in listed if n.startswith("sciml/pretrained/weights/"))

        t0 = time.perf_counter()
        venv = tmp / "venv"
        _run([sys.executable, "-m", "venv", str(venv)])
        py = venv / "bin" / "python"
        _run(["sh", str(ROOT / "tools" / "install-torch.sh"), str(py)])
        times["fresh venv + torch"] = time.perf_counter() - t0
        t0 = time.perf_counter()
        _run([str(py), "-m", "pip", "install", "-q", str(wheel)])
        times["install wheel + deps"] = time.perf_counter() - t0

        guard = tmp / "guard"
        guard.mkdir()
        (guard / "sitecustomize.py").write_text(GUARD)
        env = {
            k: v
            for k, v in os.environ.items()
            if not k.startswith(("PYTHON", "VIRTUAL_ENV")) and k.lower() not in ("pip_find_links",)
        }
        env.update(
            PYTHONPATH=str(guard),
            HF_HUB_OFFLINE="1",
            TRANSFORMERS_OFFLINE="1",
            PATH=f"{venv / 'bin'}{os.pathsep}{env.get('PATH', '')}",
        )
        workdir = tmp / "elsewhere"  # not the repository: `import sciml` must find the wheel
        workdir.mkdir()
        t0 = time.perf_counter()
        out = _run(
            [str(py), "-c", CHECK, json.dumps(expected)],
            cwd=workdir,
            env=env,
            capture_output=True,
        ).stdout
        report = json.loads(out.strip().splitlines()[-1])
        listing = _run(
            [str(venv / "bin" / "sciml"), "pretrained", "list"],
            cwd=workdir,
            env=env,
            capture_output=True,
        ).stdout
        times["offline sciml.load of every model"] = time.perf_counter() - t0
        failures += [f"not shipped in the installed wheel: {n}" for n in report["missing"]]
        for name, m in report["models"].items():
            if m["parameters"] != m["card_parameters"]:
                failures.append(
                    f"{name}: model has {m['parameters']} parameters, card says "
                    f"{m['card_parameters']}"
                )

        print("\n== summary ==")
        print(
            f"wheel: {wheel.name} ({wheel.stat().st_size / 1e6:.2f} MB), {len(weights)} zoo files"
        )
        print(f"sciml imported from: {report['sciml']}")
        for name, m in report["models"].items():
            print(f"  loaded offline: {name} ({m['family']}, {m['parameters']} parameters)")
        print("`sciml pretrained list` in the fresh venv:\n" + listing.rstrip())
        for step, seconds in times.items():
            print(f"  {step}: {seconds:.1f} s")
    except subprocess.CalledProcessError as exc:
        failures.append(f"command failed ({exc.returncode}): {' '.join(map(str, exc.cmd))[:200]}")
        for stream in (exc.stdout, exc.stderr):
            if stream:
                print(stream[-3000:], file=sys.stderr)
    finally:
        if args.keep:
            print(f"kept {tmp}")
        else:
            shutil.rmtree(tmp, ignore_errors=True)
    if failures:
        print("\nFAILED:\n  " + "\n  ".join(failures))
        return 1
    print(f"\nOK: {len(expected)} shipped model(s) in the wheel, all load offline in a fresh venv")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
