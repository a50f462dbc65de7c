"""prepare_data against a tiny archive on a local HTTP server: success, checksum mismatch,
an interrupted transfer (resumed), and a broken archive (nothing left half-extracted)."""

from __future__ import annotations

import hashlib
import io
import tarfile
import threading
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path

import pytest

from datamodules import PetsDataModule
from datamodules.download import DownloadError, Resource, download, extract
from modules.registry import ConfigError


class Server(ThreadingHTTPServer):
    files: dict[str, bytes]
    interrupt: set[str]  # paths whose next transfer stops half-way
    ranges: list[str]


class Handler(BaseHTTPRequestHandler):
    server: Server

    def do_GET(self) -> None:  # noqa: N802
        name = self.path.lstrip("/")
        if name not in self.server.files:
            self.send_error(404)
            return
        data, start = self.server.files[name], 0
        if (wanted := self.headers.get("Range")) is not None:
            self.server.ranges.append(wanted)
            start = int(wanted.split("=")[1].split("-")[0])
        body = data[start:]
        self.send_response(206 if start else 200)
        self.send_header("Content-Length", str(len(body)))
        if start:
            self.send_header("Content-Range", f"bytes {start}-{len(data) - 1}/{len(data)}")
        self.end_headers()
        if name in self.server.interrupt:
            self.server.interrupt.discard(name)
            body = body[: len(body) // 2]
        self.wfile.write(body)

    def log_message(self, *args: object) -> None:
        pass


@pytest.fixture
def server():
    httpd = Server(("127.0.0.1", 0), Handler)
    httpd.files, httpd.interrupt, httpd.ranges = {}, set(), []
    thread = threading.Thread(target=httpd.serve_forever, daemon=True)
    thread.start()
    yield httpd
    httpd.shutdown()
    httpd.server_close()


def tar_gz(folder: Path, *names: str) -> bytes:
    buffer = io.BytesIO()
    with tarfile.open(fileobj=buffer, mode="w:gz") as tar:
        for name in names:
            tar.add(folder / name, arcname=name)
    return buffer.getvalue()


def pets_archives(write_layout) -> dict[str, bytes]:
    layout = write_layout("oxford-iiit-pet", n_classes=3, per_split=(8, 2))
    return {"images.tar.gz": tar_gz(layout.root, "images"), "annotations.tar.gz": tar_gz(layout.root, "annotations")}


def pets_from(server: Server, checksums: dict[str, str]) -> type[PetsDataModule]:
    base = f"http://127.0.0.1:{server.server_address[1]}/"

    class LocalPets(PetsDataModule):
        resources = tuple(Resource(base + name, name, checksums.get(name)) for name in server.files)

    return LocalPets


def sha256(data: bytes) -> str:
    return "sha256:" + hashlib.sha256(data).hexdigest()


def test_prepare_data_downloads_verifies_and_extracts(server, write_layout, tmp_path):
    server.files = pets_archives(write_layout)
    root = tmp_path / "pets"
    dm = pets_from(server, {n: sha256(d) for n, d in server.files.items()})(root=str(root), num_workers=0)
    dm.prepare_data()
    dm.setup()
    assert dm.num_classes == 3 and len(dm.datasets["test"]) == 6
    assert not list(root.glob("*.part")) and not list(root.glob(".extract-*"))
    dm.prepare_data()  # already there: nothing fetched again


def test_checksum_mismatch_is_clear_and_leaves_nothing(server, write_layout, tmp_path):
    server.files = pets_archives(write_layout)
    root = tmp_path / "pets"
    dm = pets_from(server, {"images.tar.gz": "md5:" + "0" * 32})(root=str(root))
    with pytest.raises(DownloadError, match=r"checksum mismatch for .*images\.tar\.gz"):
        dm.prepare_data()
    assert list(root.iterdir()) == []


def test_a_user_checksum_is_used(server, write_layout, tmp_path):
    server.files = pets_archives(write_layout)
    dm = pets_from(server, {})(root=str(tmp_path / "pets"), checksums={"annotations.tar.gz": "sha256:" + "0" * 64})
    with pytest.raises(DownloadError, match="annotations.tar.gz"):
        dm.prepare_data()


def test_interrupted_transfer_is_kept_and_resumed(server, tmp_path):
    data = bytes(range(256)) * 4000
    server.files = {"blob.bin": data}
    server.interrupt = {"blob.bin"}
    url, dest = f"http://127.0.0.1:{server.server_address[1]}/blob.bin", tmp_path / "blob.bin"
    with pytest.raises(DownloadError, match=r"blob\.bin\.part is kept, run again to resume"):
        download(url, dest, sha256(data), retries=0)
    part = tmp_path / "blob.bin.part"
    assert not dest.exists() and 0 < part.stat().st_size < len(data)
    download(url, dest, sha256(data))
    assert dest.read_bytes() == data and not part.exists()
    assert server.ranges == [f"bytes={len(data) // 2}-"]


def test_interruption_is_retried_within_one_call(server, tmp_path):
    data = b"x" * 100_000
    server.files, server.interrupt = {"blob.bin": data}, {"blob.bin"}
    download(f"http://127.0.0.1:{server.server_address[1]}/blob.bin", tmp_path / "blob.bin", sha256(data))
    assert (tmp_path / "blob.bin").read_bytes() == data


def test_broken_archive_leaves_no_half_extracted_folder(write_layout, tmp_path):
    archive = tmp_path / "images.tar.gz"
    archive.write_bytes(pets_archives(write_layout)["images.tar.gz"][:-300])
    dest = tmp_path / "out"
    with pytest.raises(DownloadError, match=r"could not extract .*images\.tar\.gz"):
        extract(archive, dest)
    assert list(dest.iterdir()) == []


def test_cars_has_no_archive_and_says_where_to_get_it(tmp_path):
    from datamodules import CarsDataModule

    with pytest.raises(ConfigError, match=r"(?s)no public archive.*Kaggle.*devkit/cars_meta\.mat.*names\.csv"):
        CarsDataModule(root=str(tmp_path)).prepare_data()
