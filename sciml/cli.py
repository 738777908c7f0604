"""The ``sciml`` command.

    sciml train EXPERIMENT.yaml [--resume [--fresh-optimizer]] [--out DIR]
    sciml evaluate CHECKPOINT DATA.h5 [--split test] [--json]
    sciml evaluate NAME|DIR [--n N] [--seed S] [--json] (shipped model / DIR with card.json:
                                                         fresh data)
    sciml pretrained list | show NAME [--json]
    sciml info [FILE_OR_CHECKPOINT]
    sciml export CHECKPOINT_OR_NAME --shape B,C,H,W --out FILE.pt2 [--t T] [--points P]
                 [--static-batch] [--times T0,...,TK --solver rk4|euler --step-size H] (NODE)
    sciml data generate NAME --n N --resolution R --out FILE [--seed S] [--set key=value ...]
    sciml data generate --recipe datasets/darcy_pwc_r421.yaml [--n N] [--out FILE]
    sciml data generate --list                                  (nothing else beside it)
    sciml data validate FILE.h5
    sciml solve (--matrix A.npz [--grid NXxNYxNZ] | --poisson NXxNYxNZ [--spacing H[,H,H]])
                [--solid MASK.npy] [--rhs b.npy]
                [--method cg|jacobi|sgs|amg|dcdm] [--model NAME|DIR] [--k K] [--deflate B]
                [--rtol R] [--maxiter M] [--out x.npy]        (--model, --k: dcdm only)

Bad arguments and bad files give a one-line error on stderr and exit status 2, never a
traceback (set ``SCIML_DEBUG=1`` to see one).
"""

from __future__ import annotations

import argparse
import json
import math
import os
import sys
from collections.abc import Sequence
from pathlib import Path
from typing import Any, NoReturn

__all__ = ["HelpFormatter", "main"]


class HelpFormatter(argparse.RawDescriptionHelpFormatter, argparse.ArgumentDefaultsHelpFormatter):
    """The ``--help`` layout of sciml's example, benchmark and tool scripts (``formatter_class=
    HelpFormatter``): the description as written, then each option with its default, unless its
    help states the default itself (one that depends on a mode, or that None stands for) or the
    option is required.

    (why) one class here: the scripts had written it twelve times over (each example, and a
    copy each for ``benchmarks/`` and ``tools/``, which do not import from each other); every
    script imports sciml already.
    """

    def _get_help_string(self, action: argparse.Action) -> str | None:
        if action.required or "default:" in (action.help or ""):
            return action.help
        return super()._get_help_string(action)


class _Parser(argparse.ArgumentParser):
    def error(self, message: str) -> NoReturn:
        self.exit(2, f"{self.prog}: error: {message} (see '{self.prog} --help')\n")


class _UserError(Exception):
    """An error the user can fix; printed as one line."""


def main(argv: Sequence[str] | None = None) -> int:
    import warnings

    shown = warnings.showwarning
    # (why) Python's printer wrote two lines per warning, "/path/to/sciml/experiment.py:640:
    # UserWarning: ..." and the source line that raised it, neither of which a user acts on
    warnings.showwarning = _show_warning
    try:
        try:
            return _main(argv)
        finally:
            warnings.showwarning = shown
            # (why) stdout into a pipe is block-buffered: short output is written only here (or
            # at exit, where a closed pipe gave "Exception ignored ... BrokenPipeError", status
            # 120), so it is flushed while the reader's going away can still be handled
            if sys.stdout is not None:
                sys.stdout.flush()
    except BrokenPipeError as exc:
        if not _stdout_reader_gone():
            # (why) another pipe broke (a worker's, a subprocess's): an error, not quiet
            print(f"sciml: error: {exc}", file=sys.stderr)
            return 2
        # the reader went away (`sciml info FILE | head -2`): stop quietly, as other tools do;
        # stdout goes to devnull so the interpreter's final flush does not raise it again
        os.dup2(os.open(os.devnull, os.O_WRONLY), sys.stdout.fileno())
        return 141  # 128 + SIGPIPE, what a shell reports for a process killed by it


def _show_warning(
    message: Warning | str,
    category: type[Warning],
    filename: str,
    lineno: int,
    file: Any = None,
    line: str | None = None,
) -> None:
    """One line on stderr, ``sciml: warning: ...`` (the category where it is not a
    UserWarning), as the command's own warnings read."""
    text = " ".join(part.strip() for part in str(message).splitlines() if part.strip())
    kind = "" if category is UserWarning else f"{category.__name__}: "
    file = sys.stderr if file is None else file
    if file is None:  # no stderr at all (pythonw): nowhere to write, as Python's own printer
        return
    import contextlib

    with contextlib.suppress(OSError):  # (why) as Python's printer: a warning never fails a run
        print(f"sciml: warning: {kind}{text}", file=file)


def _stdout_reader_gone() -> bool:
    """Whether stdout is a pipe whose reader has closed it (POLLERR on its write end); True
    where that cannot be asked (no poll, no file descriptor), as before the check."""
    import select

    try:
        poller = select.poll()
        poller.register(sys.stdout.fileno(), select.POLLOUT)
        return any(events & select.POLLERR for _, events in poller.poll(0))
    except (AttributeError, OSError, ValueError):  # io.UnsupportedOperation is both
        return True


def _main(argv: Sequence[str] | None) -> int:
    parser = _build_parser()
    args = parser.parse_args(argv)
    if not getattr(args, "handler", None):
        # `sciml data` / `sciml pretrained` without their sub-command: that command's help
        # (its sub-commands), not the top-level list
        getattr(args, "help_parser", parser).print_help()
        return 2
    try:
        return int(args.handler(args) or 0)
    except KeyboardInterrupt:
        print("sciml: interrupted", file=sys.stderr)
        return 130
    except BrokenPipeError:
        raise  # handled in main, not reported as an error
    except Exception as exc:  # one line, no traceback, for every user-facing failure
        if os.environ.get("SCIML_DEBUG"):
            raise
        # every line of the message, joined: the first alone can stop mid-sentence (a YAML error
        # says where the file is wrong on its later lines)
        message = " ".join(line.strip() for line in _text(exc).splitlines() if line.strip())
        print(f"sciml: error: {message or type(exc).__name__}", file=sys.stderr)
        return 2


def _text(exc: BaseException) -> str:
    """``str(exc)``, but a KeyError's message without the quotes ``str`` puts around it.

    (why) ``str(KeyError("f.h5: no field 'v'; ..."))`` is the repr of its argument, so the
    one-line error read ``sciml: error: "f.h5: no field 'v'; fields are ['u']"``."""
    if isinstance(exc, KeyError) and len(exc.args) == 1 and isinstance(exc.args[0], str):
        return exc.args[0]
    return str(exc)


def _build_parser() -> argparse.ArgumentParser:
    from ._version import __version__

    p = _Parser(prog="sciml", description="Neural operators: data, training, evaluation.")
    p.add_argument("--version", action="version", version=f"sciml {__version__}")
    sub = p.add_subparsers(dest="command", parser_class=_Parser)

    t = sub.add_parser("train", help="train the model an experiment file describes")
    t.add_argument("experiment", help="experiment file (.json / .yaml)")
    t.add_argument("--out", help="output directory (overrides the file's 'out')")
    t.add_argument("--resume", action="store_true", help="continue from OUT/last if present")
    t.add_argument(
        "--fresh-optimizer",
        action="store_true",
        help="with --resume: restore the weights, step, schedule and RNG states but start "
        "AdamW's moments afresh (not an exact resume; for a checkpoint whose optimiser state "
        "no longer fits the model)",
    )
    t.add_argument("--no-progress", action="store_true", help="no progress bar")
    t.set_defaults(handler=_train)

    e = sub.add_parser(
        "evaluate",
        help="evaluate a checkpoint on an HDF5 data file, or a shipped model on fresh data",
    )
    e.add_argument(
        "checkpoint",
        help="checkpoint directory (with config.json) or shipped name; without DATA, a shipped "
        "name or a directory with a card.json, measured on fresh data",
    )
    e.add_argument(
        "data",
        nargs="?",
        help="HDF5 data file (omit for a shipped name or a directory with a card.json: fresh "
        "data, its card)",
    )
    e.add_argument("--n", type=int, help="shipped name: fresh test cases (default: the card's)")
    e.add_argument("--seed", type=int, help="shipped name: seed of the fresh data")
    e.add_argument(
        "--split",
        choices=["all", "train", "val", "test"],
        default="all",
        help="use the split recorded at training time (default: every sample)",
    )
    e.add_argument("--batch-size", type=int, help="samples per forward pass (default: 32)")
    e.add_argument("--json", action="store_true", help="print metrics as JSON")
    e.set_defaults(handler=_evaluate)

    i = sub.add_parser(
        "info",
        help="describe an HDF5 file, a checkpoint or a shipped model; without one, sciml's "
        "versions, devices and dependencies",
    )
    i.add_argument(
        "path",
        nargs="?",
        help="HDF5 file, checkpoint directory or shipped name (omit for the versions of sciml, "
        "torch and the dependencies, the devices and whether Triton kernels can run)",
    )
    i.set_defaults(handler=_info)

    x = sub.add_parser(
        "export", help="write a model as a torch.export program (.pt2) that runs without sciml"
    )
    x.add_argument("checkpoint", help="checkpoint directory (with config.json) or shipped name")
    x.add_argument(
        "--shape", required=True, help="example input shape, e.g. 4,1,32,32 (batch first)"
    )
    x.add_argument("--out", required=True, help="output .pt2 file")
    x.add_argument("--t", type=float, help="lead time for time-conditioned models (e.g. scOT)")
    x.add_argument(
        "--points",
        type=int,
        help="number of query points x for models that take them (DeepONet; PROSE's query "
        "times); the program accepts any number",
    )
    x.add_argument(
        "--times",
        help="a NODE's output times T0,...,TK (increasing or decreasing), built into the program",
    )
    x.add_argument(
        "--solver",
        choices=sorted(_FIXED_STEP),
        help="a NODE's fixed-step solver in the program (an adaptive one cannot be exported); "
        "replaces a fixed-step NODE's own",
    )
    x.add_argument(
        "--step-size", type=float, help="the --solver's step size (default: a fixed-step NODE's)"
    )
    x.add_argument("--static-batch", action="store_true", help="fix the batch size at --shape's")
    x.set_defaults(handler=_export)

    d = sub.add_parser("data", help="generate or validate PDE data sets")
    d.set_defaults(help_parser=d)
    dsub = d.add_subparsers(dest="data_command", parser_class=_Parser)
    g = dsub.add_parser("generate", help="solve a PDE and write sciml's HDF5 layout")
    g.add_argument(
        "name", nargs="?", help="generator name (`sciml data generate --list` prints them all)"
    )
    g.add_argument("--recipe", help="YAML recipe from datasets/ (name, n, resolution, options)")
    g.add_argument("--n", type=int, help="number of samples")
    g.add_argument("--resolution", type=int, help="grid points per spatial dim")
    g.add_argument("--out", help="output .h5 file")
    g.add_argument(
        "--seed", type=int, default=None, help="random seed (default: the recipe's, else 0)"
    )
    g.add_argument(
        "--set",
        action="append",
        default=[],
        metavar="KEY=VALUE",
        help="generator option (repeatable), value parsed as JSON when possible",
    )
    g.add_argument("--overwrite", action="store_true", help="replace an existing file")
    g.add_argument("--list", action="store_true", help="print the generators and exit")
    g.set_defaults(handler=_generate)
    v = dsub.add_parser(
        "validate", help="check a data file (sciml's layout, or one sciml.data.open reads)"
    )
    v.add_argument("path", help="HDF5 / NetCDF-4 file in sciml's or a supported layout")
    v.set_defaults(handler=_validate)
    from .linalg._cli import add_parser as _add_solve_parser

    _add_solve_parser(sub)  # `sciml solve` (sciml.linalg)
    from .pretrained._cli import add_parser as _add_pretrained_parser

    _add_pretrained_parser(sub)  # `sciml pretrained list | show`
    return p


_H5_SUFFIXES = (".h5", ".hdf5", ".hdf", ".he5")


def _not_a_folder(path: str, expected: str) -> None:
    """Refuse a folder where a file is expected (the libraries' own messages say 'does not
    exist', or print HDF5's errno dump, or name a temporary file)."""
    if Path(path).is_dir():
        raise _UserError(f"expected {expected}, got the folder {path}")


def _not_under_a_file(path: str, flag: str) -> None:
    """Refuse an output file whose folder would have to be made where a file is.

    (why) the folder is made only at writing, after the work: export and data generate then
    failed with "[Errno 17] File exists: 'd.h5'", naming neither the flag nor the problem."""
    from ._io import file_in_the_way

    above = file_in_the_way(Path(path).absolute().parent)
    if above is not None:
        raise _UserError(f"expected {flag} in a folder, got {path}, where {above} is a file")


def _train(args: argparse.Namespace) -> int:
    import dataclasses

    from .experiment import _check_out_folder, _name_the_file, load_experiment, run

    if args.out is not None and not args.out.strip():
        # (why) an empty --out ("$OUT" unset in a script) was dropped: the run went to the
        # experiment file's out folder, and --resume continued that one
        raise _UserError(f"--out expects the run's folder, got {args.out!r}")
    _not_a_folder(args.experiment, "an experiment file (.json / .yaml)")
    if args.fresh_optimizer and not args.resume:
        raise ValueError("--fresh-optimizer applies to a resume: pass --resume with it")
    experiment = load_experiment(args.experiment)
    if args.out is not None:
        _check_out_folder(args.out, "--out")
        experiment = dataclasses.replace(experiment, out=args.out)
    held = [] if args.resume else _checkpoints_in(experiment.out)
    if held:
        # (why) the Trainer starts afresh there, replacing the earlier run's checkpoints one
        # by one: until its first checkpoint (for good, if it is killed first) the folder held
        # the earlier run's `last` beside this run's experiment.json and splits.json, which a
        # later --resume or evaluate --split took for that checkpoint's
        raise _UserError(
            f"{experiment.out} holds another run's checkpoints ({', '.join(held)}); pass "
            f"--resume to continue that run, or train this one into another folder (--out, or "
            f"remove {experiment.out} first)"
        )
    before = _last_step(experiment.out) if args.resume else None
    try:
        metrics = run(
            experiment,
            resume="auto" if args.resume else False,
            progress=not args.no_progress,
            optimizer_state=not args.fresh_optimizer,
        )
    except ValueError as exc:
        named = _name_the_file(exc, args.experiment)
        if named is exc:
            raise
        raise named from exc
    if metrics.get("interrupted"):
        print(f"interrupted: state saved in {experiment.out}/last; resume with --resume")
        return 130
    if "best_checkpoint" not in metrics:  # a non-zero torchrun rank: rank 0 reports
        return 0
    if before is not None and _last_step(experiment.out) == before:
        # (why) a resume of a finished run re-printed its result as if it had trained
        from .train import TrainConfig

        epochs = experiment.train.get("epochs", TrainConfig().epochs)
        print(
            f"nothing left to train: {experiment.out}/last is at step {before}, where "
            f"train.epochs = {epochs} ends (raise it to train on); the finished run's result:"
        )
    test = metrics.get("test")
    if test:
        print(
            f"test relative L2: {test['rel_l2']:.4f} (worst sample {test['rel_l2_max']:.4f}, "
            f"{test['n_samples']} samples)"
        )
    print(f"best checkpoint: {metrics['best_checkpoint']}")
    return 0


def _checkpoints_in(out: str | os.PathLike) -> list[str]:
    """The run folder's checkpoint links (``last``, ``best``) and ``ckpt-*`` folders."""
    out = Path(out)
    if not out.is_dir():
        return []
    links = [name for name in ("last", "best") if (out / name).is_symlink()]
    return links + sorted(p.name for p in out.glob("ckpt-*") if p.is_dir())


def _last_step(out: str | os.PathLike) -> int | None:
    """The step of the run's ``OUT/last`` checkpoint, None without a readable one."""
    from .train.checkpoint import STATE_NAME

    path = Path(out) / "last" / f"{STATE_NAME}.json"
    try:
        return int(json.loads(path.read_text())["state"]["step"])
    except (OSError, ValueError, KeyError, TypeError):
        return None


def _evaluate(args: argparse.Namespace) -> int:
    from . import pretrained
    from ._config import config_from_dict
    from .experiment import DataSpec, build_views, evaluate
    from .models import Normalized
    from .operator import load, read_checkpoint_record

    checkpoint = args.checkpoint
    if args.data is None:  # `sciml evaluate NAME`: a shipped model on fresh data, exit 1 if off
        carded = (Path(checkpoint) / pretrained.CARD_FILE).is_file()
        if not pretrained.is_registered(checkpoint) and not carded:
            if Path(checkpoint).exists():
                raise _UserError(
                    f"{checkpoint}: a checkpoint directory needs a DATA file (or a "
                    f"{pretrained.CARD_FILE} saying how to make fresh data)"
                )
            raise _UserError(pretrained.unknown_name_message(checkpoint))
        if args.split != "all" or args.batch_size is not None:  # (why) else silently unused
            raise _UserError(
                "--split / --batch-size apply to 'sciml evaluate CHECKPOINT DATA', not to fresh "
                "data (NAME alone: its card's evaluation settings)"
            )
        # (why) the evaluator's own checks named its arguments 'n:' / 'seed:', not the flags
        if args.n is not None and args.n < 1:
            raise _UserError(f"--n expects a number of fresh test cases >= 1, got {args.n}")
        if args.seed is not None and args.seed < 0:
            raise _UserError(
                f"--seed expects an integer >= 0 (the seed of the fresh data), got {args.seed}; "
                "leave it out for the card's default"
            )
        from .pretrained._cli import evaluate_name

        return evaluate_name(checkpoint, n=args.n, seed=args.seed, as_json=args.json)
    if args.n is not None or args.seed is not None:
        raise _UserError("--n / --seed apply to 'sciml evaluate NAME' (fresh data), not to DATA")
    batch_size = 32 if args.batch_size is None else args.batch_size
    if batch_size < 1:  # (why) torch's DataLoader said 'batch_size should be a positive ...'
        raise _UserError(f"--batch-size expects an integer >= 1, got {batch_size}")
    _not_a_folder(args.data, "DATA to be an HDF5 file")
    shipped = not Path(checkpoint).exists() and pretrained.is_registered(checkpoint)
    if shipped:
        checkpoint = str(pretrained.path_of(checkpoint))
    record, directory = read_checkpoint_record(checkpoint)
    shown = args.checkpoint if shipped else directory  # (why) not the install path
    data_meta = record.get("metadata", {}).get("data")
    if data_meta is None and shipped:
        raise _UserError(
            f"{args.checkpoint} records no data view, so it cannot read a DATA file; "
            f"'sciml evaluate {args.checkpoint}' (no DATA) measures it on fresh data"
        )
    if data_meta is None:
        raise _UserError(
            f"{directory}: checkpoint records no data view (train it with 'sciml train' or save "
            "it with metadata={'data': ...})"
        )
    spec = config_from_dict(DataSpec, {**data_meta, "path": str(args.data)}, where="metadata.data")
    samples = None
    if args.split != "all":
        recorded = record["metadata"].get("splits")
        splits_file = _splits_file(recorded, directory)
        if splits_file is None:
            where = (
                f"looked for {Path(recorded).name} in the run folder {directory.absolute().parent} "
                f"and for {recorded}"
                if recorded
                else "the checkpoint records none; sciml train records one"
            )
            raise _UserError(
                f"{shown}: no recorded splits file to select --split {args.split} ({where})"
            )
        recorded_split = json.loads(splits_file.read_text())
        samples = recorded_split[args.split]
        if not samples:  # (why) the view's refusal blamed DATA ("... cannot give: ...")
            sizes = {k: len(recorded_split.get(k, [])) for k in ("train", "val", "test")}
            raise _UserError(
                f"--split {args.split}: the run's {splits_file} holds no {args.split} samples "
                f"(train / val / test: {sizes['train']} / {sizes['val']} / {sizes['test']}); "
                "pass another --split, or leave it out to evaluate every sample"
            )
    model = load(directory)
    try:
        views = build_views(spec, samples=samples, float64_inputs=isinstance(model, Normalized))
    except IndexError as err:
        if samples is None:
            raise
        # (why) a DATA file with fewer samples than the run split said only "sample index
        # [8, 13] is out of range for n_samples=3", naming neither --split nor the splits file
        raise _UserError(
            f"--split {args.split}: {splits_file} selects samples {samples} of the "
            f"{recorded_split.get('n', '?')} that the run split, and {args.data} holds fewer "
            f"({_text(err).rsplit('n_samples=', 1)[-1]}); --split selects samples of the file "
            "the run trained on: pass that file, or leave out --split to evaluate every sample"
        ) from err
    except (ValueError, KeyError) as err:  # the file does not hold what the model was trained on
        static = f" + static {list(spec.static_fields)}" if spec.static_fields else ""
        raise _UserError(
            f"{shown} was trained on the '{spec.view}' view of inputs "
            f"{list(spec.inputs) or 'all fields'}{static} -> targets "
            f"{list(spec.targets) or 'all fields'}, which {args.data} cannot give: "
            f"{_text(err)}"
        ) from err
    if samples is not None:
        from . import data

        with data.open(args.data) as ds:
            held = len(ds)
        if held != recorded_split.get("n", held):
            # (why) the recorded indices were taken from the larger file without a word: they
            # are the run's split of its own file (a grown copy keeps those samples)
            print(
                f"sciml: warning: --split {args.split}: {splits_file} selects samples of the "
                f"{recorded_split['n']} samples the run split, and {args.data} holds {held}: "
                "they are the run's split only if the file's first "
                f"{recorded_split['n']} samples are the run's",
                file=sys.stderr,
            )
    if shipped:  # (why) before the forward pass: a grid the model refuses needs it most
        _note_resolution(args.checkpoint, args.data)
    try:
        metrics = evaluate(model, views, batch_size=batch_size)
    except ValueError as err:
        # (why) the model's own refusal ("modes=(12, 12) keep 24 frequencies along a dim of
        # size 16") named neither the checkpoint nor DATA
        raise _UserError(f"{shown} cannot be evaluated on {args.data}: {_text(err)}") from err
    if args.json:
        print(json.dumps(metrics))
    else:
        print(
            f"{shown} on {args.data} ({metrics['n_samples']} samples): relative L2 "
            f"{metrics['rel_l2']:.4f}, worst {metrics['rel_l2_max']:.4f}, MSE {metrics['mse']:.3e}"
        )
    return 0


def _note_resolution(name: str, data_path: str) -> None:
    """A note on stderr when DATA's grid is not the one the shipped model's card says it was
    trained at: (why) mgno-darcy scored 0.53 on a 33x33 Darcy file without a word, against
    0.011 on its card at 64x64, and a user could read that as the model's error."""
    from . import data, pretrained

    trained = pretrained.card(name).get("data", {}).get("options", {}).get("resolution")
    with data.open(data_path) as ds:
        grid = tuple(ds.spatial_shape)
    if isinstance(trained, int) and grid and any(n != trained for n in grid):
        print(
            f"note: {name} was trained on a grid of {trained} points per axis, {data_path} holds "
            f"{'x'.join(map(str, grid))}: its error here is not its card's test error",
            file=sys.stderr,
        )


def _splits_file(recorded: str | None, checkpoint: Path) -> Path | None:
    """The splits file of a training run: ``splits.json`` beside the checkpoint (``sciml train``
    writes ``OUT/splits.json`` and the checkpoints ``OUT/best``, ``OUT/last``), else the path
    the checkpoint records.

    (why) the recorded path is ``OUT/splits.json`` as written at training time, relative to
    the directory ``sciml train`` ran in, so read from anywhere else (or after the run folder
    moved) it named no file and ``--split`` failed."""
    if not recorded:
        return None
    beside = checkpoint.absolute().parent / Path(recorded).name
    if beside.is_file():
        return beside
    return Path(recorded) if Path(recorded).is_file() else None


def _info(args: argparse.Namespace) -> int:
    if args.path is None:
        from ._environment import describe

        print(describe())
        return 0
    if not args.path:
        # (why) Path('') is '.', so the current folder was read as a checkpoint
        # ("config.json: missing")
        raise _UserError(
            f"expected an HDF5 file, a checkpoint folder or a shipped model name, got {args.path!r}"
        )
    path = Path(args.path)
    if not path.exists():
        from . import pretrained

        if args.path not in pretrained.names():
            raise _UserError(
                f"{path}: no such file or directory, and not a shipped model "
                f"({', '.join(pretrained.names())})"
            )
        # a shipped model, as sciml.load and `sciml evaluate NAME` take it
        print(_describe_checkpoint(pretrained.path_of(args.path), name=args.path))
        print(f"model card: sciml pretrained show {args.path}")
        return 0
    if path.is_dir() or path.name == "config.json":
        from .pretrained import poseidon

        folder = path if path.is_dir() else path.parent
        if poseidon.is_poseidon_checkpoint(folder):  # sciml.load reads it: describe it too
            print(_describe_poseidon(folder))
            return 0
        print(_describe_checkpoint(path))
        return 0
    from . import data

    print(data.describe(path))
    return 0


_FIXED_STEP = {"rk4": "RK4", "euler": "Euler"}  # --solver: class names in sciml.de
# sciml's families whose forward takes no lead time t (a NODE's --t is refused on its own:
# its output times are --times; a scOT takes one iff config.time_conditioning)
_NO_LEAD_TIME = frozenset({"fno", "t1", "mgno", "deeponet", "pod_deeponet", "prose", "dcdm"})


def _export(args: argparse.Namespace) -> int:
    import torch

    from ._export import check_out_path, export

    try:
        shape = tuple(int(v) for v in args.shape.split(","))
    except ValueError:
        shape = ()
    if not shape or min(shape) < 1:
        raise _UserError(f"--shape expects positive integers like 4,1,32,32, got {args.shape!r}")
    try:  # (why) the one rule of sciml.export(path=...), before the model is loaded
        check_out_path(args.out, "--out")
    except ValueError as exc:
        raise _UserError(str(exc)) from None
    if shape[0] < 2 and not args.static_batch:
        raise _UserError(
            f"--shape {args.shape}: a free batch needs an example batch of at least 2 "
            "(torch.export fixes sizes 0 and 1); pass --static-batch to fix it at 1"
        )
    from .models import PROSE, Normalized, PODDeepONet
    from .operator import load

    model = load(args.checkpoint)
    gen = torch.Generator().manual_seed(0)
    u = torch.randn(shape, generator=gen)
    # (why) a Normalized wrapper (what `sciml train` saves) forwards x and t to its inner model,
    # whose family decides which of them the program needs
    core = model.inner if isinstance(model, Normalized) else model
    kind = _kind(model)
    if args.t is None and getattr(getattr(core, "config", None), "time_conditioning", False):
        # (why) the model's own message said "pass t", which names no flag of this command
        raise _UserError(
            f"{args.checkpoint} ({kind}) is time-conditioned: pass its lead "
            "time as --t T (the program then takes t of shape (batch,))"
        )
    conditioned = getattr(getattr(core, "config", None), "time_conditioning", None)
    if args.t is not None and (conditioned is False or core.family in _NO_LEAD_TIME):
        # (why) the model's own message ("FNO takes no query points x or lead time t; pass
        # only u") named no flag, and DCDM took t unused, into a program that asks for it
        raise _UserError(
            f"--t: {args.checkpoint} ({kind}) takes no lead time; export it without --t"
        )
    if args.t is not None and not math.isfinite(args.t):
        # (why) a nan lead time was traced, then failed the program's check with nan differences
        raise _UserError(f"--t expects a finite lead time, got {args.t}")
    if args.t is not None and args.t < 0:
        # (why) -1 was traced into a program without a word: sciml's time-conditioned models
        # see lead times t_j - t_i >= 0 only (AllPairs, Windows; SnapshotPairs refuses a
        # backward pair with a lead time, sciml evaluate scores j > i)
        raise _UserError(
            f"--t expects a lead time >= 0 ({args.checkpoint} was trained on t >= 0, the time "
            f"from input to output), got {args.t}"
        )
    kwargs = {} if args.t is None else {"t": torch.full((shape[0],), args.t)}
    node = _node_options(args, model)
    if node:
        kwargs.update(node)
        # (why) states where the NODE was trained (center, scale: its data's mean and spread),
        # not standard normal ones: the shipped one's are positive populations
        c = model.config
        if shape[-1] == c.state_dim:  # (else the NODE names the shape it expects)
            u = torch.tensor(c.center or 0.0) + torch.tensor(c.scale or 1.0) * u
    coord_dim = getattr(getattr(core, "config", None), "coord_dim", None)
    if isinstance(core, PROSE):
        coord_dim = 0  # query times x of shape (points,)
    fixed_points = isinstance(core, PODDeepONet)
    if fixed_points:
        # (why) its config has a coord_dim, but its POD modes exist only at its training
        # points: the command asked for --points, whose random points the model then refused
        coord_dim = None
    if args.points is not None:
        if fixed_points:
            raise _UserError(
                f"--points: {args.checkpoint} ({kind}) evaluates only at its "
                f"{core.config.points} training points; export it without --points (the "
                "program gives the output at those points)"
            )
        if coord_dim is None:
            raise _UserError(f"--points: {args.checkpoint} ({kind}) takes no query points")
        if args.points < 1:
            raise _UserError(f"--points expects a positive integer, got {args.points}")
        points = (args.points, coord_dim) if coord_dim else (args.points,)
        kwargs["x"] = torch.rand(points, generator=gen)
    elif coord_dim is not None:
        x_shape = f"(points, {coord_dim})" if coord_dim else "(points,)"
        raise _UserError(
            f"{args.checkpoint} ({kind}) is evaluated at query points: pass "
            f"--points P (the program takes x of shape {x_shape} with any P)"
        )
    program = export(model, u, path=args.out, dynamic_batch=not args.static_batch, **kwargs)
    size = Path(args.out).stat().st_size
    batch = "fixed" if args.static_batch else "free"
    if node:  # the times are in the program; say how far the fixed steps are from the model
        with torch.no_grad():
            gap = float((program.module()(u) - model.eval()(u, t=node["t"])).abs().max())
        print(
            f"wrote {args.out} ({size / 2**20:.1f} MiB): input {shape} (batch {batch}), output "
            f"at the {len(node['t'])} times {args.times}; run it with torch.export.load("
            f"{str(args.out)!r}).module()(u). On the example its {_solve_name(model, node)} "
            f"differs from the model's {model.config.solver} one by at most {gap:.3g}"
            + (" (make --step-size smaller to bring it closer)" if gap else "")
        )
        return 0
    call = (
        "(u" + ("" if "x" not in kwargs else ", x=x") + ("" if "t" not in kwargs else ", t=t") + ")"
    )
    print(
        f"wrote {args.out} ({size / 2**20:.1f} MiB): input {shape} (batch {batch}); run it with "
        f"torch.export.load({str(args.out)!r}).module(){call}"
    )
    return 0


def _kind(model: Any) -> str:
    """The model's class, and the wrapped one's for a Normalized model (``FNO in
    Normalized``): the wrapped family is what decides the export's inputs."""
    from .models import Normalized

    if isinstance(model, Normalized):
        return f"{type(model.inner).__name__} in Normalized"
    return type(model).__name__


def _node_options(args: argparse.Namespace, model: Any) -> dict[str, Any]:
    """``{"t": times, "solver": fixed-step solver}`` from --times, --solver, --step-size for a
    NODE; {} for another model (which must not be given them)."""
    given = [
        f"--{k.replace('_', '-')}"
        for k in ("times", "solver", "step_size")
        if getattr(args, k) is not None
    ]
    from .models import NODE

    if not isinstance(model, NODE):
        if given:
            raise _UserError(
                f"{', '.join(given)}: only for a NODE, got {args.checkpoint} ({_kind(model)})"
            )
        return {}
    if args.t is not None:  # (why) --times would replace it without a word
        raise _UserError(
            f"--t: a NODE takes its output times as --times T0,...,TK, got --t {args.t}"
        )
    own = model.config.solver if model.config.solver in _FIXED_STEP else None
    if own is None and (args.times is None or args.solver is None or args.step_size is None):
        # (why) name what is missing: with --times and --solver given, the message read as if
        # neither had been
        missing = [flag for flag in ("--times", "--solver", "--step-size") if flag not in given]
        raise _UserError(
            f"{args.checkpoint} is a NODE: its adaptive solver cannot be exported; pass its "
            "output times and a fixed-step solver, e.g. --times 0,0.5,1 --solver rk4 "
            f"--step-size 0.01 (missing {', '.join(missing)})"
        )
    if args.times is None:
        raise _UserError(
            f"{args.checkpoint} is a NODE with a fixed-step {own} solver: pass its output "
            "times, e.g. --times 0,0.5,1 (--solver / --step-size replace its own solver)"
        )
    import torch

    from . import de

    try:
        times = [float(v) for v in args.times.split(",")]
    except ValueError:
        times = []
    if len(times) < 2:
        raise _UserError(f"--times expects at least two numbers like 0,0.5,1, got {args.times!r}")
    from .de.neural_ode import check_times

    try:  # (why) the NODE's own check, at the export, said "times t", not the flag
        check_times(torch.tensor(times), decreasing=True)
    except ValueError as e:
        raise _UserError(f"--times {args.times}: {e}") from None
    if args.step_size is not None:  # the solvers' own rule, checked before any work
        from .de.solvers import _check_fixed_step

        try:
            _check_fixed_step(args.step_size, "--step-size")
        except ValueError as e:
            raise _UserError(str(e)) from None
    options: dict[str, Any] = {"t": torch.tensor(times)}
    if args.solver is not None or args.step_size is not None:
        # (why) either flag replaces the model's own fixed-step solver (a deployment may want
        # a coarser step); the other keeps the model's value
        kind = args.solver or own
        step = model.config.step_size if args.step_size is None else args.step_size
        options["solver"] = getattr(de, _FIXED_STEP[kind])(step_size=step)
    return options


def _solve_name(model: Any, node: dict[str, Any]) -> str:
    """How the exported NODE's solve is named in ``sciml export``'s message."""
    if "solver" not in node:
        c = model.config
        return f"own {c.solver} solve (step {c.step_size:g})"
    solver = node["solver"]
    # (why) the --solver value that built it (the inverse of _FIXED_STEP), not the class name
    # lower-cased, which equals the flag only while each class is named as its flag
    flag = {cls: name for name, cls in _FIXED_STEP.items()}[type(solver).__name__]
    return f"{flag} solve (step {solver.step_size:g})"


def _describe_checkpoint(path: Path, name: str | None = None) -> str:
    """The checkpoint's record; ``name``: the shipped model's, which heads it (the folder, in
    sciml's install, follows: where its files are)."""
    from .operator import read_checkpoint_record

    record, directory = read_checkpoint_record(path)
    weights = directory / record["weights"].get("file", "model.safetensors")
    lines = [
        f"checkpoint {directory}"
        if name is None
        else f"shipped model {name} (files in {directory})",
        f"  family:        {record['family']}",
        f"  sciml version: {record.get('sciml_version')}",
        f"  weights:       {weights.name} ({weights.stat().st_size if weights.exists() else 'missing'} bytes, "
        f"sha256 {str(record['weights'].get('sha256'))[:16]}...)",
        "  config:",
    ]
    lines += [f"    {k}: {json.dumps(v)}" for k, v in record["config"].items()]
    meta = record.get("metadata") or {}
    if meta:
        lines.append("  metadata:")
        lines += [f"    {k}: {json.dumps(v)}" for k, v in meta.items()]
    return "\n".join(lines)


def _describe_poseidon(directory: Path) -> str:
    """A public Poseidon / scOT checkpoint folder (HF ``config.json``): its weights files and
    the :class:`~sciml.models.ScOTConfig` that ``sciml.load`` builds from it.

    (why) ``sciml.load`` and ``ScOT.from_pretrained`` read this layout, but ``sciml info`` said
    it was not a sciml checkpoint."""
    from dataclasses import asdict

    from .pretrained import poseidon

    config, extras = poseidon.poseidon_config(directory)
    names = ("model.safetensors", "pytorch_model.bin")
    files = [
        f for n in names for f in (directory / n, directory / f"{n}.index.json") if f.is_file()
    ]
    lines = [
        f"Poseidon / scOT checkpoint {directory} (the public layout; sciml.load and "
        "ScOT.from_pretrained read it)",
        "  family:        scot",
        "  weights:       "
        + (", ".join(f"{f.name} ({f.stat().st_size} bytes)" for f in files) or "missing"),
        "  config (as sciml's ScOTConfig):",
    ]
    lines += [f"    {k}: {json.dumps(v)}" for k, v in asdict(config).items()]
    if extras.get("channel_slices") is not None:
        lines.append(f"  loss channel groups: {json.dumps(extras['channel_slices'])}")
    return "\n".join(lines)


def _parse_value(text: str) -> Any:
    try:
        return json.loads(text)
    except json.JSONDecodeError:
        return text


def _summary(doc: str | None) -> str:
    """A docstring's first paragraph on one line, without reST markup: its first line alone
    stopped mid-sentence where the paragraph wraps ("... on ``resolution`` points of")."""
    import inspect
    import re

    first = inspect.cleandoc(doc or "").split("\n\n")[0]
    return re.sub(r":\w+:`~?([^`]+)`", r"\1", " ".join(first.split())).replace("``", "")


# generate()'s own arguments, which `sciml data generate` takes as flags, not as --set options
_GENERATE_FLAGS = {
    "name": "NAME", "n": "--n", "resolution": "--resolution", "out": "--out", "seed": "--seed",
    "overwrite": "--overwrite",
}  # fmt: skip


def _generate(args: argparse.Namespace) -> int:
    from .data.generators import GENERATORS, generate

    if args.list:
        # (why) `--list --n 3` printed the list and dropped --n without a word
        given = [
            flag
            for flag, v in (
                ("NAME", args.name), ("--recipe", args.recipe), ("--n", args.n),
                ("--resolution", args.resolution), ("--out", args.out), ("--seed", args.seed),
                ("--set", args.set or None), ("--overwrite", args.overwrite or None),
            )
            if v is not None
        ]  # fmt: skip
        if given:
            raise _UserError(
                f"--list prints the generators and takes nothing else, got {', '.join(given)}; "
                "drop --list to generate"
            )
        for key, fn in sorted(GENERATORS.items()):
            print(f"{key:20s} {_summary(fn.__doc__)}")
        return 0
    options: dict[str, Any] = {}
    name, n, resolution, out, seed = args.name, args.n, args.resolution, args.out, args.seed
    if args.recipe:
        from .data.generators.recipe import load_recipe

        _not_a_folder(args.recipe, "--recipe to be a YAML file")
        if not Path(args.recipe).is_file():
            raise _UserError(f"--recipe: no such file: {args.recipe}")
        import yaml

        try:
            recipe = load_recipe(args.recipe)  # strict: known keys, generator and options
        except yaml.YAMLError as err:  # yaml's message does not name the file
            raise _UserError(f"--recipe {args.recipe}: not valid YAML ({err})") from None
        except UnicodeDecodeError as err:  # (why) "'utf-8' codec can't decode ...", no file
            raise _UserError(
                f"--recipe {args.recipe}: expected a YAML text file, got bytes that are not "
                f"UTF-8 text ({err.reason} at byte {err.start})"
            ) from None
        if name and name != recipe["generator"]:
            # (why) darcy took the Burgers recipe's options and said "unknown option(s) ['T',
            # ...]" without naming the recipe; a recipe is one generator's settings
            raise _UserError(
                f"--recipe {args.recipe} is for generator {recipe['generator']!r}, got "
                f"generator {name!r}; drop NAME to run the recipe, or --recipe to run {name!r}"
            )
        name = recipe["generator"]
        n = n if n is not None else recipe["n"]
        resolution = resolution if resolution is not None else recipe["resolution"]
        out = out or recipe["out"]
        seed = seed if seed is not None else recipe["seed"]
        options.update(recipe["options"])
    if not name:
        raise _UserError("name a generator or pass --recipe FILE")
    if name not in GENERATORS:
        raise _UserError(f"unknown generator {name!r}; available: {sorted(GENERATORS)}")
    missing = [
        flag for flag, v in (("--n", n), ("--resolution", resolution), ("--out", out)) if v is None
    ]
    if missing:
        raise _UserError(f"missing {', '.join(missing)} for generator {name!r}")
    if args.seed is not None and args.seed < 0:  # (why) NumPy said "expected non-negative integer"
        raise _UserError(f"--seed expects an integer >= 0, got {args.seed}")
    given: dict[str, str] = {}
    for item in args.set:
        key, sep, value = item.partition("=")
        if not sep or not key:
            raise _UserError(f"--set expects KEY=VALUE, got {item!r}")
        if key in _GENERATE_FLAGS:
            # (why) generate() said "got multiple values for keyword argument 'n'"
            raise _UserError(
                f"--set {item}: {key} is set by {_GENERATE_FLAGS[key]}, not by --set (which sets "
                "the generator's options)"
            )
        if key in given:  # (why) the last of two won without a word
            raise _UserError(f"--set {key} given twice ({given[key]} and {value}); give it once")
        given[key] = value
        options[key] = _parse_value(value)
    _not_a_folder(out, "--out to name the .h5 file to write")
    _not_under_a_file(out, "--out")
    if Path(out).suffix.lower() not in _H5_SUFFIXES:
        raise _UserError(
            f"--out expects an HDF5 file name ending in {' / '.join(_H5_SUFFIXES)}, got {out!r} "
            f"(the file is HDF5 whatever its name: name it so that tools recognise it)"
        )
    if Path(out).exists() and not args.overwrite:
        raise _UserError(f"{out} exists; pass --overwrite to replace it")
    path = generate(
        name,
        n=int(n),
        resolution=int(resolution),
        out=out,
        seed=int(seed or 0),
        overwrite=args.overwrite,
        **options,
    )
    print(f"wrote {path}")
    return 0


def _validate(args: argparse.Namespace) -> int:
    from . import data

    _not_a_folder(args.path, "an HDF5 file")
    # (why) not data.validate, which returns the problems: every file, NaN-filled or of another
    # layout, was called valid with status 0
    data.check(args.path)
    layout = data.open(args.path).layout
    what = "sciml HDF5" if layout == "sciml" else f"{layout} (read by sciml.data.open)"
    print(f"{args.path}: valid {what} file")
    return 0


if __name__ == "__main__":  # pragma: no cover
    sys.exit(main())
