"""A stand-in for the Hugging Face hub on 127.0.0.1: answers HEAD and GET on
`/<repo>/resolve/<revision>/<file>` with the headers `huggingface_hub` reads (commit, ETag, size)."""

from __future__ import annotations

import hashlib
import threading
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer


class Hub(ThreadingHTTPServer):
    def __init__(self, files: dict[str, bytes]) -> None:
        """`files`: "<repo>/<file>" -> content, e.g. "timm/test_resnet.r160_in1k/model.safetensors"."""
        self.files = files
        self.requests: list[str] = []
        super().__init__(("127.0.0.1", 0), _Handler)
        threading.Thread(target=self.serve_forever, daemon=True).start()

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.server_address[1]}"


class _Handler(BaseHTTPRequestHandler):
    server: Hub

    def log_message(self, *args) -> None:
        pass

    def _content(self) -> bytes | None:
        parts = self.path.split("?")[0].strip("/").split("/")
        self.server.requests.append(f"{self.command} {self.path}")
        if len(parts) < 5 or parts[2] != "resolve":
            return None
        return self.server.files.get("/".join([*parts[:2], *parts[4:]]))

    def _head(self, content: bytes | None) -> bool:
        if content is None:
            self.send_response(404)
            self.send_header("X-Error-Code", "EntryNotFound")
            self.send_header("Content-Length", "0")
            self.end_headers()
            return False
        self.send_response(200)
        self.send_header("X-Repo-Commit", "0" * 40)
        self.send_header("ETag", f'"{hashlib.sha256(content).hexdigest()}"')
        self.send_header("Content-Length", str(len(content)))
        self.end_headers()
        return True

    def do_HEAD(self) -> None:
        self._head(self._content())

    def do_GET(self) -> None:
        content = self._content()
        if self._head(content):
            self.wfile.write(content)
