"""``metrics.csv`` and ``metrics.json``: the run's history, one row per logging event."""

from __future__ import annotations

import csv
import json
import math
import os
from collections.abc import Sequence
from pathlib import Path
from typing import Any

__all__ = ["MetricsLog"]


class MetricsLog:
    """Appends rows to ``metrics.csv`` and rewrites ``metrics.json`` (atomically) in ``run_dir``.

    Every row has the same ``columns`` (missing values are empty in CSV, ``null`` in JSON), so the
    CSV reads straight into a data frame. With ``run_dir=None`` nothing is written.
    """

    def __init__(self, run_dir: Path | None, columns: Sequence[str]) -> None:
        self.run_dir = run_dir
        self.columns = list(columns)
        self.rows: list[dict[str, Any]] = []

    def reset(self, rows: list[dict[str, Any]]) -> None:
        """Replace the history (after a resume) and rewrite both files from it."""
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
        it to ``metrics.csv`` and rewrite ``metrics.json``."""
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
        self._write_json()

    def _csv_row(self, row: dict[str, Any]) -> dict[str, Any]:
        return {c: ("" if row.get(c) is None else row[c]) for c in self.columns}

    def _write_json(self) -> None:
        assert self.run_dir is not None
        path = self.run_dir / "metrics.json"
        tmp = path.with_name(f".metrics.json.tmp-{os.getpid()}")
        rows = [{k: _finite_or_none(v) for k, v in r.items()} for r in self.rows]
        tmp.write_text(json.dumps(rows, indent=1) + "\n")
        os.replace(tmp, path)


def _finite_or_none(v: Any) -> Any:
    return None if isinstance(v, float) and not math.isfinite(v) else v
