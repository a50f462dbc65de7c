"""Download and extract a dataset's official archives, safely.

- A download goes to `<file>.part`; an interrupted one is resumed with an HTTP Range request
  (or restarted when the server ignores it), and the file gets its final name only once it
  is complete and its checksum matches.
- An archive is extracted into a temporary folder beside the destination; its top-level
  entries are moved into place only after the whole archive extracted, so a failure leaves
  no half-extracted folder behind.
"""

from __future__ import annotations

import hashlib
import http.client
import logging
import os
import shutil
import tarfile
import tempfile
import urllib.request
import zipfile
from dataclasses import dataclass
from pathlib import Path

from rich.progress import BarColumn, DownloadColumn, Progress, TextColumn, TimeRemainingColumn, TransferSpeedColumn

from modules.registry import ConfigError

log = logging.getLogger(__name__)
CHUNK = 1 << 20


class DownloadError(ConfigError):
    """A download or extraction failed; the message names the URL or file."""


@dataclass(frozen=True)
class Resource:
    """One official file. `checksum` is "md5:<hex>" or "sha256:<hex>", or None where no value is known."""

    url: str
    filename: str
    checksum: str | None = None
    extract: bool = True
    nested: tuple[str, ...] = ()  # archives inside this archive to extract as well (relative paths)


def file_digest(path: Path, algorithm: str) -> str:
    digest = hashlib.new(algorithm)
    with open(path, "rb") as handle:
        while block := handle.read(CHUNK):
            digest.update(block)
    return digest.hexdigest()


def verify_checksum(path: Path, checksum: str | None, url: str = "") -> None:
    """Raise DownloadError if `path` does not match `checksum`; with no checksum, log its sha256."""
    if checksum is None:
        log.warning(
            "no checksum known for %s (sha256 %s); pass one in `checksums` to verify it",
            path,
            file_digest(path, "sha256"),
        )
        return
    algorithm, _, expected = checksum.partition(":")
    if algorithm not in ("md5", "sha256") or not expected:
        raise ConfigError(f"checksum {checksum!r} for {path.name}: expected 'md5:<hex>' or 'sha256:<hex>'")
    actual = file_digest(path, algorithm)
    if actual.lower() != expected.lower():
        raise DownloadError(
            f"checksum mismatch for {path} (from {url or 'a local file'}): {algorithm} is {actual}, "
            f"expected {expected}; the file was removed, run again to download it afresh"
        )


def _progress() -> Progress:
    return Progress(
        TextColumn("{task.description}"),
        BarColumn(),
        DownloadColumn(),
        TransferSpeedColumn(),
        TimeRemainingColumn(),
        transient=True,
    )


def _fetch(url: str, part: Path, timeout: float) -> None:
    """Append the rest of `url` to `part` (resuming from its size); raises on an incomplete transfer."""
    start = part.stat().st_size if part.exists() else 0
    request = urllib.request.Request(url, headers={"Range": f"bytes={start}-"} if start else {})
    with urllib.request.urlopen(request, timeout=timeout) as response:
        if start and response.status != 206:  # the server ignored the Range: start over
            start = 0
        length = response.headers.get("Content-Length")
        total = start + int(length) if length is not None else None
        with open(part, "ab" if start else "wb") as out, _progress() as progress:
            task = progress.add_task(part.name.removesuffix(".part"), total=total, completed=start)
            received = start
            while block := response.read(CHUNK):
                out.write(block)
                received += len(block)
                progress.update(task, completed=received)
    if total is not None and received != total:
        raise OSError(f"transfer ended after {received} of {total} bytes")


def download(url: str, dest: Path, checksum: str | None = None, retries: int = 3, timeout: float = 60.0) -> Path:
    """Download `url` to `dest` (kept if it is already there and matches `checksum`)."""
    dest = Path(dest)
    if dest.exists():
        try:
            verify_checksum(dest, checksum, url)
            return dest
        except DownloadError:
            dest.unlink()
    dest.parent.mkdir(parents=True, exist_ok=True)
    part = dest.with_name(dest.name + ".part")
    for attempt in range(retries + 1):
        try:
            _fetch(url, part, timeout)
            break
        except (OSError, http.client.HTTPException) as error:  # URLError is an OSError; IncompleteRead is not
            failure: BaseException = error
        log.warning("download of %s interrupted (%s); attempt %d of %d", url, failure, attempt + 1, retries + 1)
    else:
        raise DownloadError(
            f"could not download {url} to {dest}: {failure}; the partial file {part} is kept, run again to resume"
        )
    try:
        verify_checksum(part, checksum, url)
    except DownloadError:
        part.unlink()
        raise
    os.replace(part, dest)
    return dest


def _extract_into(archive: Path, target: Path) -> None:
    name = archive.name.lower()
    if name.endswith(".zip"):
        with zipfile.ZipFile(archive) as zf:
            for member in zf.namelist():
                resolved = (target / member).resolve()
                if not resolved.is_relative_to(target.resolve()):
                    raise DownloadError(f"{archive} holds an unsafe path {member!r}")
            zf.extractall(target)
    elif any(name.endswith(s) for s in (".tar", ".tar.gz", ".tgz", ".tar.bz2", ".tar.xz")):
        with tarfile.open(archive) as tf:
            tf.extractall(target, filter="data")
    else:
        raise DownloadError(f"{archive}: unknown archive type (expected .zip, .tar, .tar.gz or .tgz)")


def extract(archive: Path, dest: Path, nested: tuple[str, ...] = ()) -> None:
    """Extract `archive` (and the archives `nested` inside it) into `dest`, all or nothing."""
    dest.mkdir(parents=True, exist_ok=True)
    staging = Path(tempfile.mkdtemp(prefix=f".extract-{archive.name}-", dir=dest))
    try:
        try:
            _extract_into(archive, staging)
            for inner in nested:
                inner_path = staging / inner
                _extract_into(inner_path, inner_path.parent)
                inner_path.unlink()
        except (OSError, EOFError, tarfile.TarError, zipfile.BadZipFile) as error:
            raise DownloadError(f"could not extract {archive} into {dest}: {error}") from error
        for entry in sorted(staging.iterdir()):
            target = dest / entry.name
            if target.exists():
                shutil.rmtree(target) if target.is_dir() else target.unlink()
            os.replace(entry, target)
    finally:
        shutil.rmtree(staging, ignore_errors=True)


def fetch_resources(resources: tuple[Resource, ...], root: Path, checksums: dict[str, str] | None = None) -> None:
    """Download every resource into `root` and extract the archives there.

    `checksums` (filename -> "md5:..." / "sha256:...") overrides or supplies the built-in values.
    """
    checksums = checksums or {}
    for resource in resources:
        path = download(resource.url, root / resource.filename, checksums.get(resource.filename, resource.checksum))
        if resource.extract:
            log.info("extracting %s into %s", path, root)
            extract(path, root, resource.nested)
