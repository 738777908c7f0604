"""``metrics.csv`` and ``metrics.json``: the run's history, one row per logging event."""

from __future__ import annotations

import csv
import itertools
import json
import math
import operator
import time
from collections.abc import Callable, Iterable, Iterator, Sequence
from pathlib import Path
from typing import Any

import numpy as np
import torch

from .._io import atomic_write_text

__all__ = ["MetricsLog", "pack_rows", "unpack_rows"]


class MetricsLog:
    """Appends rows to ``metrics.csv`` and rewrites ``metrics.json`` (atomically) in ``run_dir``.

    Every row has the same ``columns`` (missing values are empty in CSV, ``null`` in JSON), so the
    CSV reads straight into a data frame. With ``run_dir=None`` nothing is written.

    ``metrics.csv`` gets each row as it comes (a crash loses none). ``metrics.json`` is the whole
    history in one document, so writing it costs time in the number of rows: it is rewritten
    by :meth:`flush` (the Trainer calls it at every checkpoint and at the end of ``fit``) and by
    :meth:`append` only once ``json_interval_s`` seconds, or 20 times the last rewrite's
    duration if that is longer, have passed since the last rewrite. (Rewriting it on every row
    cost O(rows^2): 20,000 rows at ``log_every=1`` spent minutes in writes.) Each row's JSON text
    is kept once encoded, with a copy of the row, so a rewrite encodes only the rows that are
    new or no longer equal their copy, value for value and type for type (the same text
    ``json.dumps(rows, indent=1)`` gives; encoding them all took 0.12-0.7 s per rewrite at
    10,000 rows, comparing them about 6 ms of CPU).
    :attr:`rows` is the live list: a row changed in place (a callback adding a value to the
    newest row) is in ``metrics.json`` from its next rewrite, :meth:`flush` included;
    ``metrics.csv`` keeps each row as it was appended.

    Args:
        run_dir: the run directory, or None.
        columns: the column names, in order.
        json_interval_s: least seconds between two rewrites of ``metrics.json`` by
            :meth:`append`.
        clock: the time source (seconds); injectable for tests.
    """

    def __init__(
        self,
        run_dir: Path | None,
        columns: Sequence[str],
        *,
        json_interval_s: float = 5.0,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        self.run_dir = run_dir
        self.columns = list(columns)
        self.rows: list[dict[str, Any]] = []
        self.json_interval_s = json_interval_s
        self.clock = clock
        self._json_at = clock()  # when metrics.json was last rewritten
        self._json_cost = 0.0  # how long that took
        # (why) the JSON text of each row in metrics.json, and a copy of the row it was encoded
        # from (None: not kept, so encoded at every rewrite); the types of the copies' values,
        # one copy after another
        self._encoded_rows: list[dict[str, Any] | None] = []
        self._encoded_text: list[str] = []
        self._encoded_types: list[type] = []

    def reset(self, rows: list[dict[str, Any]]) -> None:
        """Replace the history (after a resume) and rewrite both files from it: rows logged
        after the checkpoint that a resume read are dropped, and logged again by the run."""
        self.rows = [dict(r) for r in rows]
        if self.run_dir is None:
            return
        self.run_dir.mkdir(parents=True, exist_ok=True)
        with open(self.run_dir / "metrics.csv", "w", newline="") as f:
            writer = csv.DictWriter(f, fieldnames=self.columns)
            writer.writeheader()
            for r in self.rows:
                writer.writerow(self._csv_row(r))
        self._write_json()

    def append(self, row: dict[str, Any]) -> None:
        """Add ``row`` (columns it lacks are None, keys outside ``columns`` are dropped), append
        it to ``metrics.csv``, and rewrite ``metrics.json`` if enough time has passed."""
        full = {c: row.get(c) for c in self.columns}
        self.rows.append(full)
        if self.run_dir is None:
            return
        csv_path = self.run_dir / "metrics.csv"
        new = not csv_path.exists()
        with open(csv_path, "a", newline="") as f:
            writer = csv.DictWriter(f, fieldnames=self.columns)
            if new:
                writer.writeheader()
            writer.writerow(self._csv_row(full))
        if self.clock() - self._json_at >= max(self.json_interval_s, 20 * self._json_cost):
            self._write_json()

    def flush(self) -> None:
        """Rewrite ``metrics.json`` now if it lacks rows or a row changed since it was written."""
        if self.run_dir is not None:
            self._write_json(if_changed=True)

    def _csv_row(self, row: dict[str, Any]) -> dict[str, Any]:
        return {c: ("" if row.get(c) is None else row[c]) for c in self.columns}

    def _write_json(self, *, if_changed: bool = False) -> None:
        assert self.run_dir is not None
        start = self.clock()
        rows, copies, texts = self.rows, self._encoded_rows, self._encoded_text
        changed = len(copies) != len(rows)
        del copies[len(rows) :], texts[len(rows) :]
        kept = len(copies)
        # (why) a row's text is reused while the row equals the copy it was encoded from, value
        # for value and type for type: rows are the live list, and a callback may add a value to
        # the newest row after a rewrite (the text cached by identity alone stayed the old one);
        # equality alone kept the text of a value replaced by an equal one of another type (1.0
        # or True for 1 stayed "1"). Dict equality holds a nan that is the same object (the
        # copy's); -0.0 for 0.0 keeps its text "0.0" (the file still loads equal). The types of
        # the rows before the first that differs from its copy (all of them, where rows were
        # only appended) are compared in one C-speed pass with those kept, the rest row by row
        # (all, where that pass fails). CPU time of a flush with nothing new at 10,000 rows of a
        # Trainer's 9 columns: 2.4 ms by equality alone, 8.2 ms with a type tuple per row, 5.8 ms
        # this way; after a value of an old row changed type, 14 ms against 25 ms this way
        same = list(map(operator.eq, rows, copies))
        first = next(itertools.compress(range(kept), map(operator.not_, same)), kept)
        n_values = sum(map(len, filter(None, copies[:first])))  # dicts all: rows equal them
        if list(map(type, _values(rows[:first]))) != self._encoded_types[:n_values]:
            first = n_values = 0
        same[first:] = map(_same_types, rows[first:kept], copies[first:], same[first:])
        same += [False] * (len(rows) - kept)  # the rows new since the last rewrite
        copies += [None] * (len(rows) - kept)
        texts += [""] * (len(rows) - kept)
        for i in itertools.compress(range(len(rows)), map(operator.not_, same)):
            r = rows[i]
            # (why) the row as an element of a list dumped with indent=1: "[\n" + text + "\n]"
            finite = {k: _finite_or_none(v) for k, v in r.items()}
            texts[i] = json.dumps([finite], indent=1)[2:-2]
            # (why) only a row of immutable scalars is kept: a list inside one can change in
            # place, unseen by a shallow copy. Subclasses count (a float subclass's text is its
            # value's): an lr from NumPy (np.logspace) is an np.float64 in every row, and each
            # flush encoded all rows again (0.48 s against 0.02 s at 10,000 rows)
            copies[i] = dict(r) if all(isinstance(v, _SCALAR) for v in r.values()) else None
            changed = True
        self._encoded_types[n_values:] = map(type, _values(filter(None, copies[first:])))
        if if_changed and not changed:
            return
        text = "[\n" + ",\n".join(texts) + "\n]" if texts else "[]"
        # (why) sciml._io's atomic write: a SIGTERM in the middle leaves no temporary file
        atomic_write_text(self.run_dir / "metrics.json", text + "\n")
        self._json_at = self.clock()
        self._json_cost = self._json_at - start


_SCALAR = (int, float, str, type(None))  # bool is an int


def _values(rows: Iterable[dict[str, Any]]) -> Iterator[Any]:
    """The values of ``rows``, one row after another."""
    return itertools.chain.from_iterable(map(dict.values, rows))


def _same_types(row: dict[str, Any], copy: dict[str, Any] | None, equal: bool) -> bool:
    """Whether ``row``, ``equal`` to ``copy``, holds values of the same types in the same order."""
    if not equal or copy is None:
        return False
    return tuple(map(type, row.values())) == tuple(map(type, copy.values()))


def _finite_or_none(v: Any) -> Any:
    return None if isinstance(v, float) and not math.isfinite(v) else v


def pack_rows(rows: list[dict[str, Any]]) -> Any:
    """``rows`` as columns for a checkpoint's state tree: ``{"rows": n, "columns": [[name,
    values, none_mask], ...]}``, a column of ints an int64 tensor, of floats a float64 tensor
    (both exact), ``none_mask`` a bool tensor where some values are None (else None).

    (why) each checkpoint stores the whole history: as a list of dicts in trainer_state.json it
    took 2.5 MB per checkpoint at 10,000 rows of a Trainer's 9 columns (JSON with indent, in
    pure Python), and the checkpoint 2.5-5 times as long to write as with the columns (0.77 MB
    of tensors). A column holding anything
    else (mixed ints and floats, ints past int64, strings, tensors) is kept as a list. Rows
    whose keys differ (a callback added a value to some rows) are packed over all their keys,
    with ``"absent": [[name, mask], ...]`` marking the rows a key is missing from (a reader
    without it reads None there); rows whose keys come in another order are kept as they are."""
    if not rows:
        return []
    names = list(rows[0])
    absent: list[list[Any]] = []
    if any(list(r) != names for r in rows):
        # (why) `trainer.history[-1]["val_psnr"] = ...` in on_evaluate, as the docs show it,
        # made every later checkpoint store the history as rows in the JSON (the size and time
        # above); the order of the keys' first appearance is each row's order where it holds
        names = list(dict.fromkeys(k for r in rows for k in r))
        if any([k for k in names if k in r] != list(r) for r in rows):
            return [dict(r) for r in rows]
        for name in names:
            missing = [name not in r for r in rows]
            if any(missing):
                absent.append([name, torch.tensor(missing)])
        table = [[r.get(name) for r in rows] for name in names]
    else:
        # (why) the same keys in the same order in every row: the columns in one pass (getting
        # each name from each row took a third of the time)
        table = [list(values) for values in zip(*(r.values() for r in rows))]
    columns: list[list[Any]] = []
    for name, values in zip(names, table):
        kinds = set(map(type, values))
        some_none = type(None) in kinds
        kinds.discard(type(None))
        # (why) a float subclass (np.float64: an lr from np.logspace) is a float here, as JSON
        # stores it: the column went into trainer_state.json as a list of 10,000 numbers
        kinds = {float if issubclass(k, float) else k for k in kinds}
        if kinds != {int} and kinds != {float}:
            columns.append([name, values, None])
            continue
        zero = 0 if kinds == {int} else 0.0
        filled: list[Any] = [zero if v is None else v for v in values] if some_none else values
        # (why) an int past int64 (a callback's counter or hash) made torch.tensor raise, and
        # the checkpoint with it; JSON holds any int
        if kinds == {int} and not -(2**63) <= min(filled) <= max(filled) < 2**63:
            columns.append([name, values, None])
            continue
        # (why) through NumPy: torch.tensor on a list of 10,000 Python numbers took 0.6 ms (of
        # bools 1.9 ms), np.array 0.2 ms (0.4 ms); the values are the same int64 / float64
        data = torch.from_numpy(np.array(filled, dtype=np.int64 if kinds == {int} else np.float64))
        mask = torch.from_numpy(np.array([v is None for v in values])) if some_none else None
        columns.append([name, data, mask])
    packed: dict[str, Any] = {"rows": len(rows), "columns": columns}
    if absent:
        packed["absent"] = absent
    return packed


def unpack_rows(packed: Any) -> list[dict[str, Any]]:
    """Inverse of :func:`pack_rows`; a list (checkpoints written before, or rows kept as they
    were) is returned as a list of row dicts."""
    if isinstance(packed, list):
        return [dict(r) for r in packed]
    columns = []
    for name, data, mask in packed["columns"]:
        values = data.tolist() if isinstance(data, torch.Tensor) else list(data)
        if mask is not None:
            values = [None if m else v for v, m in zip(values, mask.tolist(), strict=True)]
        columns.append((name, values))
    n = int(packed["rows"])
    if not packed.get("absent"):
        return [{name: values[i] for name, values in columns} for i in range(n)]
    gone = {name: mask.tolist() for name, mask in packed["absent"]}
    no = [False] * n
    return [
        {name: values[i] for name, values in columns if not gone.get(name, no)[i]} for i in range(n)
    ]
