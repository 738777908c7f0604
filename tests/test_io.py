"""``sciml._io``: atomic writes leave no temporary file behind, also when the process is killed
by SIGTERM in the middle of one, and the SIGTERM handler the user had is chained and restored."""

from __future__ import annotations

import signal
import threading
from pathlib import Path

import numpy as np
import pytest

from sciml import _io

IO_FILE = Path(_io.__file__)

# The child loads sciml/_io.py alone (stdlib only: no torch import, well under a second), starts
# an atomic write of "new" over "old", and blocks inside it reading stdin until the parent has
# sent SIGTERM (and, where a handler of the user's returns, until the parent says "go").
_CHILD = """
import importlib.util, signal, sys
spec = importlib.util.spec_from_file_location("sciml_io", sys.argv[1])
io = importlib.util.module_from_spec(spec)
spec.loader.exec_module(io)
target, mode = sys.argv[2], sys.argv[3]

def handler(signum, frame):
    print("handled", signum, flush=True)
    if mode == "user-exit":
        sys.exit(3)

if mode in ("user-exit", "user-log"):
    signal.signal(signal.SIGTERM, handler)
elif mode == "ignore":
    signal.signal(signal.SIGTERM, signal.SIG_IGN)
before = signal.getsignal(signal.SIGTERM)

def write(f):
    f.write("ne")
    f.flush()
    assert signal.getsignal(signal.SIGTERM) is (before if mode == "ignore" else io._on_sigterm)
    print("ready", flush=True)
    sys.stdin.readline()  # blocks until the parent's SIGTERM (or its "go")
    f.write("w")

io.atomic_write(target, write, mode="w")
assert signal.getsignal(signal.SIGTERM) is before, "the previous handler was not restored"
print("committed", flush=True)
"""


def _run_child(tmp_path: Path, mode: str, start) -> tuple[int, str, str, list[str]]:
    target = tmp_path / "out.txt"
    target.write_text("old")
    child, _ = start(_CHILD, IO_FILE, target, mode)
    mid = sorted(p.name for p in tmp_path.iterdir())
    child.send_signal(signal.SIGTERM)
    if mode in ("user-exit", "user-log"):  # the user's handler has run before we go on
        assert child.stdout.readline().strip() == f"handled {int(signal.SIGTERM)}"
    out, err = child.communicate("go\n", timeout=60)
    return child.returncode, out, err, mid


@pytest.mark.parametrize(
    "mode, rc, content",
    [
        ("default", -signal.SIGTERM, "old"),  # dies of SIGTERM as before, the temp file gone
        ("user-exit", 3, "old"),  # the user's handler exits: the write unwinds and cleans up
        ("user-log", 0, "new"),  # the user's handler returns: the write goes on and commits
        ("ignore", 0, "new"),  # SIG_IGN is left alone
    ],
)
def test_sigterm_in_the_middle_of_an_atomic_write_leaves_no_temporary_file(
    tmp_path, mode, rc, content, blocked_child
):
    """A SIGTERM (kill, a scheduler's time limit) during an atomic write (checkpoint weights,
    `sciml solve --out`, normaliser / split files) killed the process without unwinding it and
    left '.out.txt.<hex>.tmp' beside the target; only the HDF5 writer removed its file. Now every
    temporary file of sciml._io goes, the old file stays, the exit status is still that of
    SIGTERM, and a handler of the user's is called instead of ours and decides."""
    code, out, err, mid = _run_child(tmp_path, mode, blocked_child)
    assert len(mid) == 2 and mid[0].startswith(".out.txt.") and mid[0].endswith(".tmp"), mid
    assert code == rc, err
    assert sorted(p.name for p in tmp_path.iterdir()) == ["out.txt"]
    assert (tmp_path / "out.txt").read_text() == content
    assert ("committed" in out) == (content == "new")


_DIR_CHILD = """
import importlib.util, signal, sys
from pathlib import Path
spec = importlib.util.spec_from_file_location("sciml_io", sys.argv[1])
io = importlib.util.module_from_spec(spec)
spec.loader.exec_module(io)
partial = Path(sys.argv[2])
io.watch_sigterm(partial)  # before it exists, as a checkpoint writer would
(partial / "sub").mkdir(parents=True)
(partial / "sub" / "weights").write_bytes(b"0" * 1000)
print("ready", flush=True)
sys.stdin.readline()
"""


def test_a_directory_registered_for_sigterm_goes_with_its_contents(tmp_path, blocked_child):
    """A directory being filled (a training checkpoint's '.ckpt-<step>.partial-<pid>') can be
    registered like a file: a SIGTERM removes it whole, and the process dies of SIGTERM."""
    partial = tmp_path / ".ckpt-3.partial-1"
    child, _ = blocked_child(_DIR_CHILD, IO_FILE, partial)
    assert (partial / "sub" / "weights").stat().st_size == 1000
    child.send_signal(signal.SIGTERM)
    _, err = child.communicate(timeout=60)
    assert child.returncode == -signal.SIGTERM, err
    assert list(tmp_path.iterdir()) == []


_SAVE_CHILD = """
import signal, sys
import torch
import sciml.operator as op
from sciml.models import FNO, FNOConfig

save = op.save_safetensors
def blocking_save(*args, **kwargs):  # the weights are on disk, not yet renamed into place
    save(*args, **kwargs)
    print("ready", flush=True)
    sys.stdin.readline()
op.save_safetensors = blocking_save
torch.manual_seed(1)
FNO(FNOConfig(modes=(3, 3), width=4, n_layers=1)).save_pretrained(sys.argv[1])
print("committed", flush=True)
"""


def test_sigterm_in_the_middle_of_save_pretrained_keeps_the_old_checkpoint(tmp_path, blocked_child):
    """save_pretrained killed by SIGTERM between writing the new weights and moving them into
    place left '.model.safetensors.<hex>.tmp' (as large as the model) in the checkpoint; now it
    is removed, the process dies of SIGTERM (-15, i.e. shell status 143), and the old checkpoint
    loads with its own weights."""
    import torch

    import sciml
    from sciml.models import FNO, FNOConfig

    torch.manual_seed(0)
    old = FNO(FNOConfig(modes=(3, 3), width=4, n_layers=1)).eval()
    ckpt = old.save_pretrained(tmp_path / "ckpt")
    child, _ = blocked_child(_SAVE_CHILD, ckpt)
    mid = sorted(p.name for p in ckpt.iterdir())
    child.send_signal(signal.SIGTERM)
    out, err = child.communicate(timeout=60)
    assert len(mid) == 3 and mid[0].startswith(".model.safetensors."), mid
    assert child.returncode == -signal.SIGTERM, err
    assert "committed" not in out
    assert sorted(p.name for p in ckpt.iterdir()) == ["config.json", "model.safetensors"]
    loaded = sciml.load(ckpt)
    for name, tensor in old.state_dict().items():
        assert torch.equal(loaded.state_dict()[name], tensor), name


def test_the_sigterm_handler_is_installed_during_a_write_and_restored_after(tmp_path):
    """Ours only while a temporary file is live (the user's handler is back afterwards, also
    after a failed write), and never installed from another thread, where signal.signal
    raises ValueError."""

    def user_handler(signum, frame):  # pragma: no cover - never called
        pass

    old = signal.signal(signal.SIGTERM, user_handler)
    try:
        seen = []
        _io.atomic_write(tmp_path / "a", lambda f: seen.append(signal.getsignal(signal.SIGTERM)))
        assert seen == [_io._on_sigterm]
        assert signal.getsignal(signal.SIGTERM) is user_handler

        def fail(f):
            raise OSError("disk full")

        with pytest.raises(OSError, match="disk full"):
            _io.atomic_write(tmp_path / "b", fail)
        assert signal.getsignal(signal.SIGTERM) is user_handler
        with _io.tmp_path(tmp_path / "c") as outer:  # nested: the last one out restores
            _io.atomic_write(tmp_path / "d", lambda f: f.write(b"x"))
            assert signal.getsignal(signal.SIGTERM) is _io._on_sigterm
            assert outer.is_file() and outer in _io._live_tmp
        assert not outer.exists() and outer not in _io._live_tmp
        assert signal.getsignal(signal.SIGTERM) is user_handler

        errors = []

        def in_thread():
            try:
                _io.atomic_write(tmp_path / "e", lambda f: f.write(b"y"))
                assert signal.getsignal(signal.SIGTERM) is user_handler
            except BaseException as e:  # noqa: BLE001 - reported below
                errors.append(e)

        t = threading.Thread(target=in_thread)
        t.start()
        t.join()
        assert not errors, errors
        assert signal.getsignal(signal.SIGTERM) is user_handler
        assert not _io._live_tmp
        assert sorted(p.name for p in tmp_path.iterdir()) == ["a", "d", "e"]
        assert (tmp_path / "e").read_bytes() == b"y"
    finally:
        signal.signal(signal.SIGTERM, old)


def test_tmp_path_is_removed_when_the_block_fails(tmp_path):
    target = tmp_path / "x.npy"
    np.save(target, np.arange(3.0))
    with pytest.raises(RuntimeError, match="boom"), _io.tmp_path(target) as tmp:
        tmp.write_bytes(b"partial")
        raise RuntimeError("boom")
    assert [p.name for p in tmp_path.iterdir()] == ["x.npy"]
    np.testing.assert_array_equal(np.load(target), np.arange(3.0))


def test_metadata_json_takes_any_mapping(tmp_path):
    """metadata_json took a dict only (json.dumps refuses other mappings: "Object of type
    mappingproxy is not JSON serializable"), so its callers wrapped the metadata in dict(...);
    it now takes any Mapping and writes what json.dumps writes for the equal dict."""
    import json
    from types import MappingProxyType

    import torch

    from sciml.train.checkpoint import METADATA_FILE, write_checkpoint

    plain = {"run": "a", "lr": [1e-3, 5e-4], "notes": {"seed": 0, "ok": True}, "none": None}
    assert _io.metadata_json(MappingProxyType(plain), indent=2) == json.dumps(plain, indent=2)
    # a plain module's checkpoint writes metadata.json through it: json.loads gives it back
    write_checkpoint(
        tmp_path / "ck", torch.nn.Linear(2, 1), {"step": 3}, metadata=MappingProxyType(plain)
    )
    assert json.loads((tmp_path / "ck" / METADATA_FILE).read_text()) == plain
    # what JSON cannot hold is still refused with the message that says what it can
    with pytest.raises(TypeError, match=r"expected metadata that JSON can hold .*Tensor"):
        _io.metadata_json(MappingProxyType({"w": torch.ones(2)}))


def _saved_by_both(tmp_path, tensors, metadata=None):
    """(sciml's file bytes, safetensors.torch.save_file's file bytes) for ``tensors``."""
    from safetensors.torch import save_file

    _io.save_safetensors(tensors, tmp_path / "ours.safetensors", metadata=metadata)
    save_file(tensors, str(tmp_path / "ref.safetensors"), metadata=metadata)
    return (tmp_path / "ours.safetensors").read_bytes(), (tmp_path / "ref.safetensors").read_bytes()


def _header(data: bytes) -> bytes:
    n = int.from_bytes(data[:8], "little")
    return data[8 : 8 + n]


def _bits(t):
    """The bytes of ``t``'s values, for comparisons that NaNs and -0.0 cannot fool."""
    import torch

    return t.contiguous().reshape(-1).view(torch.uint8)


def _random_tensor(dtype, shape, g):
    """A tensor of ``dtype`` and ``shape`` with random bit patterns (random truth values for
    bool), built from random bytes so that every dtype, float8 included, gets one."""
    import torch

    n = 1
    for s in shape:
        n *= s
    if dtype == torch.bool:
        return torch.rand(shape, generator=g) < 0.5
    size = torch.empty(0, dtype=dtype).element_size()
    raw = torch.randint(0, 256, (n * size,), dtype=torch.uint8, generator=g)
    return raw.view(dtype).reshape(shape)


def _stored_dtypes():
    """Every torch dtype that safetensors 0.8's ``safetensors.torch`` writes and this torch has."""
    import torch

    return [getattr(torch, name) for name in _io._SAFETENSORS_DTYPES if hasattr(torch, name)]


def test_save_safetensors_writes_the_bytes_safetensors_torch_writes(tmp_path):
    """sciml writes safetensors files itself (safetensors.torch leaks, see the next test); the
    file is the one ``safetensors.torch.save_file`` writes, byte for byte, for every dtype that
    safetensors stores (float8 and bfloat16 included), each alone and all together (the order
    of tensors in the file: by dtype, then name), 0-d, empty and 2-d tensors, a Parameter, a
    view at a storage offset, and with no metadata, empty metadata and one key. Every file loads
    back with ``safetensors.torch.load_file`` bit for bit (where it has a reader for the dtype:
    0.8 has none for F8_E8M0 and F4)."""
    import torch
    from safetensors.torch import _TYPES, load_file

    g = torch.Generator().manual_seed(0)
    readable = set(_TYPES.values())
    everything = {}
    for dtype in _stored_dtypes():
        name = str(dtype).removeprefix("torch.")
        tensors = {
            f"{name}/2d": _random_tensor(dtype, (3, 4), g),
            f"{name}/empty": _random_tensor(dtype, (0, 3), g),
            f"{name}/row": _random_tensor(dtype, (3, 4), g)[1],  # at a storage offset
        }
        if dtype != torch.float4_e2m1fn_x2:  # safetensors refuses a 0-d float4 pair (0.8)
            tensors[f"{name}/0d"] = _random_tensor(dtype, (), g)
        for metadata in (None, {}, {"format": "pt"}):
            ours, ref = _saved_by_both(tmp_path, tensors, metadata)
            assert ours == ref, (name, metadata, _header(ours), _header(ref))
        if dtype in readable:
            back = load_file(str(tmp_path / "ours.safetensors"))
            assert back.keys() == tensors.keys()
            for key, t in tensors.items():
                assert back[key].dtype == dtype and back[key].shape == t.shape, key
                assert torch.equal(_bits(back[key]), _bits(t)), key
        everything.update(tensors)
    everything["param"] = torch.nn.Parameter(torch.randn(2, generator=g))
    ours, ref = _saved_by_both(tmp_path, everything, {"format": "pt"})
    assert ours == ref
    x = torch.randn(4, 4, generator=g)
    ours, ref = _saved_by_both(tmp_path, {"a": x[0], "b": x[1]})  # one storage, no overlap
    assert ours == ref


def test_save_safetensors_writes_names_and_metadata_as_safetensors_escapes_them(tmp_path):
    """Header text: names and a metadata key / value with quotes, backslashes, control
    characters, DEL, non-ASCII and the empty name are written as safetensors' serde_json writes
    them (UTF-8, control characters escaped), and sorted as it sorts them (by UTF-8 bytes)."""
    import torch

    names = ["é", 'a"b', "a\\b", "a\nb\x01\x1f\x7f\b\f\r\t", "\u2028", "😀", "/x", "B", "a", ""]
    tensors = {n: torch.full((1,), float(i)) for i, n in enumerate(names)}
    ours, ref = _saved_by_both(tmp_path, tensors, {'k\x00"é': "v\t😀</"})
    assert ours == ref


def test_save_safetensors_writes_metadata_keys_in_one_order(tmp_path):
    """Regression: safetensors writes ``__metadata__`` in a Rust HashMap's random order, so two
    saves of one model differed byte-wise (the shipped weights show both orders of "format" and
    "family"). sciml writes the keys sorted: 6 saves of 5 keys give one file, whose metadata is
    the dict given (read back with ``safe_open``), keys in sorted order."""
    import json

    import torch
    from safetensors import safe_open

    metadata = {"zeta": "1", "format": "pt", "family": "fno", "Alpha": "2", "beta": "3"}
    files = set()
    for i in range(6):
        path = tmp_path / f"m{i}.safetensors"
        _io.save_safetensors({"w": torch.arange(3.0)}, path, metadata=metadata)
        files.add(path.read_bytes())
    assert len(files) == 1
    (data,) = files
    assert list(json.loads(_header(data))["__metadata__"]) == sorted(metadata)
    with safe_open(str(tmp_path / "m0.safetensors"), framework="pt") as f:
        assert f.metadata() == metadata


def test_save_safetensors_rewrites_the_shipped_weights_as_safetensors_does(tmp_path):
    """The 8 shipped models' weights, read and saved again: the bytes ``safetensors.torch``
    writes (with one metadata key); with the file's own two keys, the same header (as JSON) and
    the same data bytes as the shipped file, which safetensors wrote."""
    import json

    from safetensors import safe_open
    from safetensors.torch import load_file

    weights = sorted((Path(_io.__file__).parent / "pretrained" / "weights").glob("*/*.safetensors"))
    assert len(weights) == 8
    for path in weights:
        state = load_file(str(path))
        ours, ref = _saved_by_both(tmp_path, state, {"format": "pt"})
        assert ours == ref, path.parent.name
        with safe_open(str(path), framework="pt") as f:
            metadata = f.metadata()
        _io.save_safetensors(state, tmp_path / "again.safetensors", metadata=metadata)
        again, shipped = (tmp_path / "again.safetensors").read_bytes(), path.read_bytes()
        assert json.loads(_header(again)) == json.loads(_header(shipped)), path.parent.name
        assert len(_header(again)) == len(_header(shipped))
        assert again[8 + len(_header(again)) :] == shipped[8 + len(_header(shipped)) :]


def test_save_safetensors_writes_a_non_contiguous_tensor_as_its_values(tmp_path):
    """A transposed or strided view (which ``safetensors.torch`` refuses) is written as its
    values: the file of ``t.contiguous()``, byte for byte."""
    import torch
    from safetensors.torch import load_file, save_file

    g = torch.Generator().manual_seed(1)
    x, y, w = (torch.randn(4, 6, generator=g) for _ in range(3))
    # (why) one base each: views of one tensor overlap, which is refused
    views = {"t": x.t(), "step": y[:, ::2], "bf16": x.bfloat16().t(), "expanded": w[0].expand(3, 6)}
    _io.save_safetensors(views, tmp_path / "ours.safetensors")
    save_file({k: v.contiguous() for k, v in views.items()}, str(tmp_path / "ref.safetensors"))
    assert (tmp_path / "ours.safetensors").read_bytes() == (
        tmp_path / "ref.safetensors"
    ).read_bytes()
    back = load_file(str(tmp_path / "ours.safetensors"))
    assert torch.equal(back["t"], x.t()) and torch.equal(back["step"], y[:, ::2])


def test_save_safetensors_writes_a_contiguous_tensor_with_a_long_last_stride(tmp_path):
    """Regression: a tensor that torch calls contiguous although its last stride is not 1 (a
    last dim of one element: ``w.t()[:, :1]``, the transpose of a one-output Linear's weight;
    an empty slice) raised "self.stride(-1) must be 1 to view Float as Byte" (since the writer
    stopped reshaping before viewing as bytes). Written as ``safetensors.torch.save_file``
    writes it, byte for byte, for 1-, 2-, 4- and 8-byte dtypes, and loads back."""
    import torch
    from safetensors.torch import load_file

    g = torch.Generator().manual_seed(3)
    tensors = {}
    for dtype in (torch.uint8, torch.bfloat16, torch.float32, torch.complex64, torch.float64):
        name = str(dtype).removeprefix("torch.")
        column = _random_tensor(dtype, (4, 3), g).t()[:, :1]  # (3, 1), strides (1, 3)
        empty = _random_tensor(dtype, (0, 4), g)[:, ::2]  # (0, 2), strides (4, 2)
        assert column.is_contiguous() and column.stride(-1) == 3
        assert empty.is_contiguous() and empty.stride(-1) == 2
        tensors[f"{name}/column"], tensors[f"{name}/empty"] = column, empty
    ours, ref = _saved_by_both(tmp_path, tensors, {"format": "pt"})
    assert ours == ref
    back = load_file(str(tmp_path / "ours.safetensors"))
    for key, t in tensors.items():
        assert back[key].shape == t.shape and torch.equal(_bits(back[key]), _bits(t)), key


def test_save_safetensors_refuses_what_safetensors_cannot_hold(tmp_path):
    """Refused before the file is touched, with what was expected: two tensors whose memory
    overlaps (they would load as two), a dtype with no safetensors name, a sparse tensor, a
    meta tensor (it was refused only once the header was written), the name ``__metadata__``,
    metadata that is not text, a 0-d float4 pair."""
    import torch

    path = tmp_path / "x.safetensors"
    path.write_bytes(b"old")
    x = torch.randn(4, 4)
    cases = [
        ({"a": x, "b": x}, None, RuntimeError, "share memory"),
        ({"a": x, "b": x.t()}, None, RuntimeError, "share memory"),
        ({"a": x[1:3], "b": x[2]}, None, RuntimeError, "share memory"),
        ({"z": torch.zeros(2, dtype=torch.complex128)}, None, ValueError, "view_as_real"),
        ({"s": torch.eye(2).to_sparse()}, None, ValueError, "to_dense"),
        ({"a": x, "m": torch.empty(2, 3, device="meta")}, None, ValueError, "meta device"),
        ({"__metadata__": x}, None, ValueError, "__metadata__"),
        ({"a": x}, {"epoch": 3}, TypeError, "str keys and str values"),
        ({"a": [1.0]}, None, TypeError, "expected a torch.Tensor"),
    ]
    if hasattr(torch, "float4_e2m1fn_x2"):
        f4 = torch.zeros((), dtype=torch.uint8).view(torch.float4_e2m1fn_x2)
        cases.append(({"f4": f4}, None, ValueError, "reshape"))
    for tensors, metadata, error, match in cases:
        with pytest.raises(error, match=match):
            _io.save_safetensors(tensors, path, metadata=metadata)
        assert path.read_bytes() == b"old"


def test_little_endian_bytes_swaps_each_number_on_a_big_endian_machine():
    """On a big-endian machine each number's bytes are swapped into the format's little-endian
    order (a complex number's two floats each on their own); checked on this little-endian
    machine against NumPy's big-endian encoding of the same values (the swap is symmetric)."""
    import torch

    g = torch.Generator().manual_seed(2)
    f32 = torch.randn(5, generator=g)
    c64 = torch.randn(3, dtype=torch.complex64, generator=g)
    i16 = torch.arange(-3, 3, dtype=torch.int16)
    bf16 = torch.randn(4, generator=g).bfloat16()
    flags = torch.tensor([True, False])
    expected = {
        "f32": f32.numpy().astype(">f4").tobytes(),
        "c64": c64.numpy().astype(">c8").tobytes(),
        "i16": i16.numpy().astype(">i2").tobytes(),
        "bf16": bf16.view(torch.int16).numpy().astype(">i2").tobytes(),
        "bool": flags.numpy().tobytes(),
    }
    tensors = {"f32": f32, "c64": c64, "i16": i16, "bf16": bf16, "bool": flags}
    for name, t in tensors.items():
        assert bytes(_io._little_endian_bytes(t, byteorder="big")) == expected[name], name
        assert bytes(_io._little_endian_bytes(t, byteorder="little")) == bytes(_bits(t).numpy())


def test_save_safetensors_keeps_no_ctypes_type_per_tensor_size(tmp_path):
    """Regression (a leak in long training runs): safetensors.torch.save_file views each tensor
    through a ctypes array type of its byte size, and ctypes keeps every such type (and its
    pointer type) for good; the history columns of a training checkpoint have a new size at
    every checkpoint, so each checkpoint left 2-3 types behind (5.6 KB of Python memory and 14
    objects per size, measured). NumPy dtypes stopped leaking when sciml wrote them through
    safetensors.numpy, bfloat16 and float8 did not (a bf16 model's checkpoints). Saving tensors
    of 8 new sizes of every dtype now leaves the number of ctypes array types as it was (exact:
    counted among the live objects)."""
    import ctypes
    import gc

    import torch

    array_type = type(ctypes.c_ubyte * 1)  # the metaclass of every ctypes array type

    def array_types() -> int:
        gc.collect()
        return sum(type(o) is array_type for o in gc.get_objects())

    sizes = range(1237, 1245)  # sizes nothing else in the test run saves
    _io.save_safetensors({"w": torch.zeros(3)}, tmp_path / "warm.safetensors")
    before = array_types()
    for n in sizes:
        columns = {str(d): torch.zeros(n, dtype=d) for d in _stored_dtypes() if d.itemsize > 1}
        columns["mask"] = torch.rand(n) < 0.5
        columns["f8"] = torch.zeros(n + 3, dtype=torch.uint8).view(torch.float8_e4m3fn)
        _io.save_safetensors(columns, tmp_path / "h.safetensors")
    assert array_types() == before


def test_save_safetensors_writes_the_values_of_conjugated_and_negated_views(tmp_path):
    """Regression: a lazily conjugated view (``z.conj()``: contiguous, complex64, the memory
    under it unconjugated) made the NumPy writer raise "Can't call numpy() on Tensor that has
    conjugate bit set" (a model with such a buffer could not be saved), and safetensors.torch
    wrote the memory, i.e. the unconjugated values; a lazily negated 0-d view
    (``z.conj().imag``) was written with the wrong sign. Both are now written as their values,
    checked against the conjugate and the negation computed from the parts, alone and beside a
    bfloat16 tensor (which once took another writer)."""
    import torch
    from safetensors.torch import load_file

    z = torch.tensor([1.0 + 2.0j, -3.0 + 0.5j], dtype=torch.complex64)
    lazy_conj = z.conj()
    lazy_neg = torch.tensor(1.0 + 2.0j, dtype=torch.complex64).conj().imag
    assert lazy_conj.is_conj() and lazy_neg.is_neg() and lazy_neg.is_contiguous()
    for extra in ({}, {"bf16": torch.ones(2, dtype=torch.bfloat16)}):
        _io.save_safetensors({"z": lazy_conj, "n": lazy_neg, **extra}, tmp_path / "v.safetensors")
        back = load_file(str(tmp_path / "v.safetensors"))
        assert torch.equal(back["z"], torch.complex(z.real, -z.imag))
        assert back["n"].item() == -2.0
    # the tensors given are left as they were
    assert lazy_conj.is_conj() and lazy_neg.is_neg()


def test_resolve_lazy_gives_the_values_of_a_view_and_leaves_other_objects():
    """The one rule for lazily conjugated / negated views: their values (against the conjugate
    and negation computed from the parts), the same object for a plain tensor or a non-tensor."""
    import torch

    z = torch.tensor([1.0 + 2.0j, -3.0 - 0.5j], dtype=torch.complex64)
    conj = _io.resolve_lazy(z.conj())
    assert not conj.is_conj() and torch.equal(conj, torch.complex(z.real, -z.imag))
    neg = _io.resolve_lazy(z.conj().imag)
    assert not neg.is_neg() and neg.tolist() == [-2.0, 0.5]
    assert _io.resolve_lazy(z) is z and _io.resolve_lazy("x") == "x"
