"""Import structure: `import sciml` loads its subpackages on first use, the family registry is
complete whenever it is consulted, and `sciml --help` runs without torch.

Each check runs in a fresh interpreter (subprocess): this test process has imported everything.
"""

from __future__ import annotations

import json
import os
import pydoc
import subprocess
import sys
import textwrap
from pathlib import Path

import pytest
import torch
from _fresh import run_fresh_python as _run

# (why) one small instance and input per family; test_operator.py fails for a registered family
# that has no entry there, so every family is covered here too
from test_operator import EXAMPLES, _build

import sciml

_BUILT_IN = sorted(f for f in sciml.registered_families() if not f.startswith("test-"))


def _modules_after(code: str) -> set[str]:
    out = _run(
        textwrap.dedent(code) + "\nimport json, sys\nprint(json.dumps(sorted(sys.modules)))\n"
    )
    return set(json.loads(out.splitlines()[-1]))


_HEAVY = ("torchdiffeq", "torchsde", "scipy.integrate", "torch", "h5py", "sciml.models")


def test_import_sciml_loads_no_subpackage_and_no_torch():
    loaded = _modules_after("import sciml")
    assert not loaded & set(_HEAVY), sorted(loaded & set(_HEAVY))
    assert not {m for m in loaded if m.startswith("sciml.")} - {
        "sciml._lazy",
        "sciml._version",
        "sciml.errors",
    }


def test_sciml_help_and_usage_errors_do_not_import_torch():
    code = """
        import contextlib, io, sys
        from sciml.cli import main
        quiet = contextlib.redirect_stdout(io.StringIO()), contextlib.redirect_stderr(io.StringIO())
        for argv in (["--help"], ["data", "--help"], ["solve", "--help"], ["pretrained", "--help"],
                     ["no-such-command"], ["info", "--bogus"], ["solve", "--poisson", "8x8", "--k", "x"]):
            with quiet[0], quiet[1]:
                try:
                    main(argv)
                except SystemExit as exc:
                    assert exc.code in (0, 2), (argv, exc.code)
    """
    loaded = _modules_after(code)
    assert not loaded & set(_HEAVY), sorted(loaded & set(_HEAVY))


def test_sciml_info_and_validate_of_an_h5_file_do_not_import_torch(tmp_path):
    import numpy as np

    path = sciml.data.write(tmp_path / "small.h5", fields={"u": np.zeros((4, 3, 16, 8))})
    code = f"""
        import contextlib, io
        from sciml.cli import main
        out = io.StringIO()
        with contextlib.redirect_stdout(out):
            assert main(["info", {str(path)!r}]) == 0
            assert main(["data", "validate", {str(path)!r}]) == 0
        print(out.getvalue())
    """
    out = _run(textwrap.dedent(code) + "\nimport sys\nprint('torch' in sys.modules)\n")
    assert "4 samples x 3 steps x (16, 8)" in out
    assert out.split()[-1] == "False"  # torch not imported


def test_pretrained_list_does_not_import_torch_and_lists_every_shipped_card():
    """``sciml pretrained list`` skips the card checks against the registries (which import
    torch: 4-5 s of the command on the 2-core CI machine, 0.2 s without); the table and the
    JSON still hold every shipped model, with the cards that the full validation returns."""
    code = """
        import contextlib, io, json, sys
        from sciml.cli import main
        table, raw = io.StringIO(), io.StringIO()
        with contextlib.redirect_stdout(table):
            assert main(["pretrained", "list"]) == 0
        with contextlib.redirect_stdout(raw):
            assert main(["pretrained", "list", "--json"]) == 0
        print(json.dumps({"table": table.getvalue(), "json": json.loads(raw.getvalue()),
                          "torch": "torch" in sys.modules}))
    """
    out = json.loads(_run(code).splitlines()[-1])
    assert out["torch"] is False
    shipped = sciml.pretrained.names()
    assert len(shipped) >= 8
    cards = {name: sciml.pretrained.card(name) for name in shipped}  # validated in full here
    assert out["json"] == cards
    rows = [line.split() for line in out["table"].splitlines()[1:]]
    assert [(r[0], r[1], int(r[2].replace(",", ""))) for r in rows] == [
        (name, c["family"], c["parameters"]) for name, c in cards.items()
    ]


def test_names_of_subpackages_that_are_also_submodules_stay_the_functions():
    """sciml.linalg.poisson / .solve are functions and modules of the same name: importing the
    module first (as `from sciml.linalg.solve import METHODS` does) must not replace the
    function on the package (the lazy package kept the module before it refused that binding)."""
    code = """
        import types
        from sciml.linalg.solve import METHODS
        import sciml.linalg.krylov
        import sciml.linalg as la
        from sciml.linalg import poisson, solve
        assert not isinstance(poisson, types.ModuleType) and poisson is la.poisson
        assert not isinstance(solve, types.ModuleType) and solve is la.solve
        import sciml.data.split
        from sciml.data import split, validate
        assert not isinstance(split, types.ModuleType)
        assert not isinstance(validate, types.ModuleType)
        P = poisson((3, 3))
        print(P.stencil().shape)
    """
    assert _run(code).splitlines()[-1] == "(9, 9)"


def test_public_names_resolve_on_first_use():
    code = """
        import sys
        import sciml
        assert set(sciml.__all__) <= set(dir(sciml)), set(sciml.__all__) - set(dir(sciml))
        from sciml import CheckpointError, Operator, data, export, load
        assert sciml.data is data and sciml.data.open is data.open
        assert data.H5Dataset.__module__ == "sciml.data.dataset"
        assert "sciml.de" not in sys.modules  # only what was asked for
        from sciml.models import FNO
        assert issubclass(FNO, Operator) and sciml.load is load
        for module in (sciml, sciml.data, sciml.linalg, sciml.pretrained):
            for name in module.__all__:
                getattr(module, name)
            assert set(module.__all__) <= set(dir(module)), module.__name__
        # modules the eager imports bound on their packages
        assert sciml.operator.family_class("fno") is FNO
        assert sciml.data.views.Windows is sciml.data.Windows
        assert sciml.linalg.krylov.CG is sciml.linalg.CG
        assert sciml.pretrained.evaluate.EVALUATORS is sciml.pretrained.EVALUATORS
        try:
            sciml.no_such_name
        except AttributeError as exc:
            assert "no_such_name" in str(exc)
        else:
            raise AssertionError("sciml.no_such_name resolved")
    """
    _run(code)


def test_help_of_the_package_lists_its_subpackages():
    text = pydoc.render_doc(sciml, renderer=pydoc.plaintext)
    for name in ("data", "de", "linalg", "models", "pinn", "pretrained", "train"):
        assert f"    {name} (package)" in text, name


def _save_examples(tmp_path: Path, families: list[str]) -> dict[str, Path]:
    """Save one tiny model per family with its input and output; family -> directory."""
    out = {}
    for family in families:
        config, make_input = EXAMPLES[family]
        torch.manual_seed(0)
        model = _build(family, config).eval()  # (why) a POD-DeepONet needs its basis fitted
        made = make_input()
        u, kwargs = made if isinstance(made, tuple) else (made, {})
        with torch.no_grad():
            y = model(u, **kwargs)
        directory = model.save_pretrained(tmp_path / family)
        torch.save({"u": u, "kwargs": kwargs, "y": y}, tmp_path / f"{family}.pt")
        out[family] = directory
    return out


# the child: `sciml.load` of each given checkpoint, sciml.models / sciml.linalg not imported
# first; the outputs, recomputed, go back in a file
_LOAD = """
    import sys
    import torch
    import sciml
    assert "sciml.models" not in sys.modules and "sciml.linalg" not in sys.modules
    torch.set_num_threads(1)
    results = {}
    for family, folder, case in zip(sys.argv[1::3], sys.argv[2::3], sys.argv[3::3]):
        model = sciml.load(folder)
        assert model.family == family, (model.family, family)
        saved = torch.load(case, weights_only=True)
        with torch.no_grad():
            results[family] = model(saved["u"], **saved["kwargs"])
    torch.save(results, sys.argv[0] + ".out")
"""


def _load_in_fresh_interpreter(tmp_path: Path, folders: dict[str, Path], tag: str) -> None:
    args = [str(a) for f, d in folders.items() for a in (f, d, tmp_path / f"{f}.pt")]
    script = tmp_path / f"load_{tag}.py"
    script.write_text(textwrap.dedent(_LOAD))
    env = {**os.environ, "OMP_NUM_THREADS": "1", "PYTHONWARNINGS": "ignore"}
    proc = subprocess.run(
        [sys.executable, str(script), *args], capture_output=True, text=True, env=env, timeout=300
    )
    assert proc.returncode == 0, proc.stderr
    results = torch.load(f"{script}.out", weights_only=True)
    for family in folders:
        expected = torch.load(tmp_path / f"{family}.pt", weights_only=True)["y"]
        # the model computed before saving: the loaded one gives the same numbers
        torch.testing.assert_close(results[family], expected, rtol=0, atol=0, msg=family)


def test_every_family_loads_in_a_fresh_interpreter(tmp_path):
    """One interpreter, `sciml.load` first, "dcdm" first (its class lives in sciml.linalg)."""
    assert "dcdm" in _BUILT_IN and "node" in _BUILT_IN
    order = ["dcdm"] + [f for f in _BUILT_IN if f != "dcdm"]
    _load_in_fresh_interpreter(tmp_path, _save_examples(tmp_path, order), "all")


@pytest.mark.slow
@pytest.mark.parametrize("family", _BUILT_IN)
def test_each_family_loads_first_in_a_fresh_interpreter(family, tmp_path):
    _load_in_fresh_interpreter(tmp_path, _save_examples(tmp_path, [family]), family)


def test_registered_families_is_complete_in_a_fresh_interpreter():
    out = _run("import sciml, json; print(json.dumps(sorted(sciml.registered_families())))")
    assert json.loads(out) == _BUILT_IN
