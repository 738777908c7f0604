"""Data-parallel training under torchrun (2 CPU processes, gloo) equals a single process."""

from __future__ import annotations

import json
import os
import re
import subprocess
import sys
import warnings
from pathlib import Path

import pytest
import torch
import torch.distributed as dist
from safetensors.torch import load_file
from test_train_common import make_trainer, run_script

pytestmark = pytest.mark.skipif(
    not dist.is_available() or not dist.is_gloo_available(), reason="needs torch.distributed gloo"
)


def _launch_two_ranks(out_dir: Path, args: tuple[str, ...]):
    launcher = ("-m", "torch.distributed.run", "--standalone", "--nproc_per_node=2")
    return run_script(str(out_dir), *args, launcher=launcher, timeout=240)


def _aborted_after_results(proc, out_dir: Path) -> bool:
    """torchrun failed because a rank got SIGABRT from std::terminate after its script had
    written its last file (seen-RANK.json, after fit returned): an abort in teardown, not in
    training."""
    died = re.search(r"failed \(exitcode: -6\) local_rank: (\d+)", proc.stderr)
    return (
        proc.returncode != 0
        and died is not None
        and "terminate called without an active exception" in proc.stderr
        and (out_dir / f"seen-{died.group(1)}.json").is_file()
    )


@pytest.mark.parametrize("micro_batch", [None, 2])
def test_two_process_ddp_matches_single_process(tmp_path, micro_batch):
    # 37 samples, global batch 8: 4 full batches and a last one of 5 split 3 + 2 across ranks,
    # which checks the loss weighting that makes uneven shards exact; with micro_batch 2 each
    # rank accumulates chunks of 2, 2 and (last batch) 2 + 1 or 2, reducing only in the last
    # chunk's backward (DDP's no_sync), and the run must still be the single process's
    args = ("--dtype", "float64", "--n-train", "37", "--epochs", "2")
    if micro_batch is not None:
        args += ("--micro-batch", str(micro_batch))
    proc = _launch_two_ranks(tmp_path / "ddp", args)
    if _aborted_after_results(proc, tmp_path / "ddp"):
        # (why) a rank aborting in interpreter teardown ("terminate called without an active
        # exception") once its script had finished: seen in CI once before and once after
        # f1bdab0, whose destroy at exit then left the gloo threads running (fixed in setup();
        # 0 aborts in 90 local runs before the fix and 0 in 90 after, so the fix could not be
        # confirmed by rate). Only that abort is run again, once and with a warning, and the
        # rerun is checked in full; a wrong number, a crash in training, or a second abort fails
        warnings.warn(f"a DDP rank aborted at exit, rerun: {proc.stderr[-600:]}", stacklevel=1)
        proc = _launch_two_ranks(tmp_path / "ddp-rerun", args)
        (tmp_path / "ddp").rename(tmp_path / "ddp-aborted")
        (tmp_path / "ddp-rerun").rename(tmp_path / "ddp")
    assert proc.returncode == 0, proc.stdout[-3000:] + proc.stderr[-3000:]
    result = json.loads((tmp_path / "ddp" / "result.json").read_text())
    assert result["world"] == 2

    single = make_trainer(tmp_path / "single", dtype=torch.float64, n_train=37, epochs=2).fit()
    ddp_rows = json.loads((tmp_path / "ddp" / "metrics.json").read_text())
    ddp_loss = [r["train_loss"] for r in ddp_rows if r["train_loss"] is not None]
    one_loss = [r["train_loss"] for r in single.history if r["train_loss"] is not None]
    assert len(ddp_loss) == len(one_loss) == 10
    assert max(abs(a - b) for a, b in zip(ddp_loss, one_loss)) < 1e-12
    ddp_val = [r["val_rel_l2"] for r in ddp_rows if r["val_rel_l2"] is not None]
    one_val = [r["val_rel_l2"] for r in single.history if r["val_rel_l2"] is not None]
    assert max(abs(a - b) for a, b in zip(ddp_val, one_val)) < 1e-12

    w_ddp = load_file(str(tmp_path / "ddp" / "last" / "model.safetensors"))
    w_one = load_file(str(tmp_path / "single" / "last" / "model.safetensors"))
    diff = max((w_ddp[k] - w_one[k]).abs().max().item() for k in w_one)
    assert diff < 1e-12, diff

    # each rank read a disjoint half of every epoch; together they read every sample once
    seen = [json.loads((tmp_path / "ddp" / f"seen-{r}.json").read_text()) for r in (0, 1)]
    assert (len(seen[0]), len(seen[1])) == (2 * 19, 2 * 18)  # 4 * 4 + 3 and 4 * 4 + 2 per epoch
    train0, train1 = seen[0][:19], seen[1][:18]
    assert not set(train0) & set(train1)
    assert sorted(train0 + train1) == list(range(37))


@pytest.mark.skipif(not os.path.isdir("/proc/self/task"), reason="counts threads in /proc")
def test_setup_destroys_the_process_group_it_made_at_exit(tmp_path):
    """A process leaving with its gloo group alive can abort in interpreter teardown
    ("terminate called without an active exception", SIGABRT: one rank of the test above, once
    in CI): gloo's threads still run while the interpreter goes. setup() destroys the group it
    initialised at exit, and the threads must be gone by then, also after a
    DistributedDataParallel (whose construction imports torch._dynamo, which kept the group
    alive past destroy_process_group: 3 gloo threads left at exit before the fix). A handler
    registered before setup() runs after sciml's (atexit is last in, first out), on both ranks."""
    script = tmp_path / "child.py"
    script.write_text(
        "import atexit, os, sys\n"
        "import torch\n"
        "import torch.distributed as dist\n"
        "def threads():\n"
        "    return len(os.listdir('/proc/self/task'))\n"
        "out = open(os.path.join(sys.argv[1], 'rank' + os.environ['RANK']), 'w')\n"
        "atexit.register(lambda: out.write(\n"
        "    f'at exit alive: {dist.is_initialized()}, threads: {threads()}'))\n"
        "from sciml.train.distributed import setup\n"
        "info = setup('cpu')\n"
        "model = torch.nn.parallel.DistributedDataParallel(torch.nn.Linear(3, 1))\n"
        "model(torch.ones(2, 3)).sum().backward()\n"
        "del model\n"
        "out.write(f'world {info.world_size} alive: {dist.is_initialized()}, '\n"
        "          f'gloo threads: {threads() > 1}; ')\n"
    )
    root = Path(__file__).resolve().parents[1]
    proc = subprocess.run(
        [sys.executable, "-m", "torch.distributed.run", "--standalone", "--nproc_per_node=2",
         str(script), str(tmp_path)],
        env={**os.environ, "PYTHONPATH": str(root), "OMP_NUM_THREADS": "1"},
        capture_output=True, text=True, timeout=120, check=False,
    )  # fmt: skip
    assert proc.returncode == 0, proc.stderr[-3000:]
    for rank in (0, 1):
        text = (tmp_path / f"rank{rank}").read_text()
        assert text == "world 2 alive: True, gloo threads: True; at exit alive: False, threads: 1"


def test_rerun_only_for_an_abort_after_the_rank_finished(tmp_path):
    """The rerun above is for the teardown abort only: the stderr lines are those of the CI run
    where rank 1 aborted (rank 0 was then stopped by torchrun)."""
    from types import SimpleNamespace

    abort = (
        "terminate called without an active exception\n"
        "W1124 15:07:05.574000 9841 api.py:1028] Sending process 9852 closing signal SIGTERM\n"
        "E1124 15:07:05.643000 9841 api.py:1002] failed (exitcode: -6) local_rank: 1 (pid: 9853)"
        " of binary: /work/main/.venv/bin/python\n"
    )
    failed = SimpleNamespace(returncode=1, stderr=abort)
    assert not _aborted_after_results(failed, tmp_path)  # rank 1 had not finished
    (tmp_path / "seen-0.json").write_text("[]")
    assert not _aborted_after_results(failed, tmp_path)  # still not rank 1
    (tmp_path / "seen-1.json").write_text("[]")
    assert _aborted_after_results(failed, tmp_path)
    crash = abort.replace("exitcode: -6", "exitcode: 1")  # an exception, not SIGABRT
    assert not _aborted_after_results(SimpleNamespace(returncode=1, stderr=crash), tmp_path)
    other = abort.replace("without an active exception", "after throwing 'gloo::IoException'")
    assert not _aborted_after_results(SimpleNamespace(returncode=1, stderr=other), tmp_path)
