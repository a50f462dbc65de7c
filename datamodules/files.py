"""Reading a dataset's official files: image decoding and checks, file-set fingerprints, required
files, text and MATLAB annotations, and locating the layout under a root folder."""

from __future__ import annotations

import hashlib
import os
from collections.abc import Iterable, Sequence
from pathlib import Path

import numpy as np
import torch
from PIL import Image

from modules.registry import ConfigError

IMAGE_EXTENSIONS = (".jpg", ".jpeg", ".png", ".bmp", ".tif", ".tiff", ".webp")


class DatasetFileError(ConfigError, FileNotFoundError):
    """A dataset file or folder is missing or malformed; the message names the path."""


class BadImageError(ConfigError):
    """An image cannot be read or decoded; the message names the path."""


def read_image(path: str | os.PathLike) -> torch.Tensor:
    """One image file as a uint8 tensor, 3 x H x W (grey, CMYK and palette images become RGB)."""
    try:
        with Image.open(path) as image:
            array = np.array(image.convert("RGB"))  # a writable copy
    except Exception as error:  # noqa: BLE001 - PIL raises many types; all mean "bad image"
        raise BadImageError(f"cannot read image {path}: {type(error).__name__}: {error}") from error
    return torch.from_numpy(array).permute(2, 0, 1)


def check_image(path: Path) -> str | None:
    """None if `path` decodes completely, else why not. JPEGs decode at reduced scale (fast),
    which still reads the whole compressed stream, so truncation is caught."""
    try:
        with Image.open(path) as image:
            image.draft("RGB", (64, 64))
            image.load()
    except Exception as error:  # noqa: BLE001
        return f"{type(error).__name__}: {error}"
    return None


def fingerprint(paths: Sequence[Path], *extra: object) -> str:
    """A short key over file names, sizes and modification times: changes when any file does."""
    digest = hashlib.sha1(repr(extra).encode())
    for path in paths:
        try:
            stat = path.stat()
            digest.update(f"{path}\0{stat.st_size}\0{stat.st_mtime_ns}\n".encode())
        except OSError:
            digest.update(f"{path}\0missing\n".encode())
    return digest.hexdigest()[:16]


def require(path: Path, what: str) -> Path:
    """`path`, or a DatasetFileError that names it and says what it should be."""
    if not path.exists():
        raise DatasetFileError(f"missing {what}: {path}")
    return path


def read_lines(path: Path, what: str) -> list[str]:
    """The non-empty, non-comment lines of an index file."""
    text = require(path, what).read_text(encoding="utf-8")
    return [line.strip() for line in text.splitlines() if line.strip() and not line.startswith("#")]


def load_mat(path: Path, what: str, *keys: str) -> dict:
    """A MATLAB annotation file (scipy, squeezed), checked for `keys`."""
    from scipy.io import loadmat

    try:
        contents = loadmat(require(path, what), squeeze_me=True)
    except DatasetFileError:
        raise
    except Exception as error:  # noqa: BLE001 - scipy raises several types for a bad file
        raise DatasetFileError(f"cannot read {what} {path}: {error}") from error
    missing = [key for key in keys if key not in contents]
    if missing:
        raise DatasetFileError(f"{what} {path} lacks the key(s) {', '.join(missing)}")
    return contents


def image_files(folder: Path) -> list[Path]:
    """The image files directly in `folder`, sorted by name (stable across machines)."""
    return sorted(
        p
        for p in folder.iterdir()
        if p.is_file() and p.suffix.lower() in IMAGE_EXTENSIONS and not p.name.startswith(".")
    )


def locate(root: Path, markers: Iterable[str], depth: int = 3) -> tuple[Path, str] | None:
    """The shallowest folder under `root` (itself included) that holds one of `markers`, and that marker."""
    level = [root]
    for _ in range(depth + 1):
        for folder in level:
            for marker in markers:
                if (folder / marker).exists():
                    return folder, marker
        level = sorted(
            child for folder in level for child in folder.iterdir() if child.is_dir() and not child.name.startswith(".")
        )
    return None
