"""Measured examples kept as they are measured, so that a stopped test resumes where it stopped.

After every batch, each measurement appends the batch's per-example outcomes (correct or not; for
an attack, which component broke the example) to
`<run>/measurements/<measurement>.<dataset>-<split>.rank<r>.jsonl`, one file per process, flushed
and fsync'ed. The first line of a file is its header: what was
measured (dataset, split, number of examples), with which weights (a digest of the model's
tensors) and which settings (the measurement's recorded settings). Every later line is one batch:
`{"i": [dataset indices], "r": [outcomes]}`. A line cut short by a SIGKILL has no newline, or is
not JSON: it is dropped, and the file is cut back to its last whole line before anything is
appended.

A test that starts in a folder holding such files reads them all (whatever process wrote them):
files of the same dataset, split, weights and settings give the examples already measured; a file
of other weights or settings is started over, with one line saying what changed; a file of
another dataset or split is named and left alone.
"""

from __future__ import annotations

import hashlib
import json
import os
from collections.abc import Callable
from pathlib import Path
from typing import IO, Any

import torch
from torch import nn

Rows = dict[int, object]
FOLDER = "measurements"
SAME_DATA = ("dataset", "split", "num_examples")  # another value: a file of other data, left alone


def weights_digest(model: nn.Module) -> str:
    """A digest of every tensor of the model (names, dtypes, shapes, values): the weights measured."""
    digest = hashlib.blake2b(digest_size=16)
    for name, tensor in sorted(model.state_dict().items()):
        value = tensor.detach().cpu().contiguous().reshape(-1)
        digest.update(f"{name}|{value.dtype}|{tuple(tensor.shape)}|".encode())
        digest.update(value.view(torch.uint8).numpy().tobytes() if value.numel() else b"")
    return digest.hexdigest()


def read(path: Path) -> tuple[dict[str, Any] | None, Rows, int]:
    """(header, rows, bytes of whole lines) of one file; a torn or unreadable last line is left out,
    and a file another process has just removed (started over) is empty."""
    header, rows, good = None, {}, 0
    try:
        data = path.read_bytes()
    except FileNotFoundError:
        return None, {}, 0
    for line in data.splitlines(keepends=True):
        if not line.endswith(b"\n"):
            break
        try:
            record = json.loads(line)
        except (json.JSONDecodeError, UnicodeDecodeError):
            break
        if header is None:
            if not isinstance(record, dict) or "measurement" not in record:
                break
            header = record
        else:
            rows.update(zip(record["i"], record["r"]))
        good += len(line)
    return header, rows, good


class OutcomeStore:
    """The outcome files of one test in `folder`, for process `rank`; `about`: the dataset, split,
    number of examples and weights digest every file of this test carries in its header."""

    def __init__(self, folder: Path, rank: int, about: dict[str, Any], log: Callable[[str], None]) -> None:
        self.folder, self.rank, self.about, self.log = folder / FOLDER, rank, about, log
        self._files: dict[str, IO[bytes]] = {}
        self._headers: dict[str, dict[str, Any]] = {}

    def path(self, name: str) -> Path:
        return self.folder / f"{name}.{self.about['dataset']}-{self.about['split']}.rank{self.rank}.jsonl"

    def load(self, name: str, settings: dict[str, Any]) -> Rows:
        """The examples of measurement `name` already measured with these weights and settings."""
        header = self.about | {"measurement": name, "settings": settings}
        self._headers[name] = json.loads(json.dumps(header))  # as it reads back from the file
        done: Rows = {}
        for path in sorted(self.folder.glob(f"{name}.*.jsonl")):
            found, rows, _ = read(path)
            if found is None:
                continue
            if any(found.get(key) != self._headers[name].get(key) for key in SAME_DATA):
                other = ", ".join(f"{key} {found.get(key)!r}" for key in SAME_DATA)
                self.log(f"{path}: outcomes of another dataset or split ({other}): not used")
                continue
            changed = [key for key in ("weights", "settings") if found.get(key) != self._headers[name].get(key)]
            if changed:
                self.log(f"{path}: measured with other {' and '.join(changed)}: {name} starts over")
                path.unlink(missing_ok=True)  # every process finds it: the first removes it
                continue
            done.update(rows)
        return done

    def append(self, name: str, indices: list[int], rows: list[object]) -> None:
        """Record one batch of measurement `name`, durably, before the next batch starts."""
        handle = self._files.get(name) or self._open(name)
        handle.write((json.dumps({"i": indices, "r": rows}, separators=(",", ":")) + "\n").encode())
        handle.flush()
        os.fsync(handle.fileno())

    def _open(self, name: str) -> IO[bytes]:
        path = self.path(name)
        self.folder.mkdir(parents=True, exist_ok=True)
        header, _, good = read(path) if path.is_file() else (None, {}, 0)
        if header == self._headers[name]:
            handle = path.open("r+b")
            handle.truncate(good)  # a torn last line goes before anything is appended
            handle.seek(good)
        else:
            handle = path.open("wb")
            handle.write((json.dumps(self._headers[name], separators=(",", ":")) + "\n").encode())
        self._files[name] = handle
        return handle

    def close(self) -> None:
        for handle in self._files.values():
            handle.close()
        self._files.clear()
