"""Stand-ins for the Hugging Face hub, built inside the test run: a local hub cache laid
out as huggingface_hub lays it out, a port where no hub listens, a hub that never
answers, and a small hub server that serves a folder as a repository."""

from __future__ import annotations

import hashlib
import json
import os
import socket
import subprocess
import sys
import threading
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from urllib.parse import unquote, urlparse

from helpers import ROOT

REVISION = "0123456789abcdef0123456789abcdef01234567"


def cache_snapshot(hf_home: Path, repo: str, folder: Path, leave_out: tuple[str, ...] = ()) -> Path:
    """Put ``folder`` into the hub cache under ``hf_home`` as ``repo`` at ``main``: blobs
    named by their hash, the snapshot's files linked to them, refs/main naming the
    revision. ``leave_out``: files (relative paths) a cut-short download did not bring."""
    storage = hf_home / "hub" / f"models--{repo.replace('/', '--')}"
    snapshot = storage / "snapshots" / REVISION
    (storage / "blobs").mkdir(parents=True, exist_ok=True)
    for file in sorted(p for p in folder.rglob("*") if p.is_file()):
        relative = file.relative_to(folder).as_posix()
        if relative in leave_out:
            continue
        data = file.read_bytes()
        blob = storage / "blobs" / hashlib.sha256(data).hexdigest()
        blob.write_bytes(data)
        link = snapshot / relative
        link.parent.mkdir(parents=True, exist_ok=True)
        link.symlink_to(os.path.relpath(blob, link.parent))
    (storage / "refs").mkdir(exist_ok=True)
    (storage / "refs" / "main").write_text(REVISION)
    return snapshot


def closed_port() -> int:
    """A local port nothing listens on: connecting is refused at once."""
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return probe.getsockname()[1]


class SilentServer:
    """Accepts connections and never answers: a hub behind a black-holed network.
    ``connections`` counts who tried."""

    def __init__(self) -> None:
        self.socket = socket.socket()
        self.socket.bind(("127.0.0.1", 0))
        self.socket.listen(16)
        self.connections = 0
        self._held: list[socket.socket] = []
        threading.Thread(target=self._accept, daemon=True).start()

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.socket.getsockname()[1]}"

    def _accept(self) -> None:
        while True:
            try:
                connection, _ = self.socket.accept()
            except OSError:
                return
            self.connections += 1
            self._held.append(connection)

    def close(self) -> None:
        self.socket.close()
        for connection in self._held:
            connection.close()


def lse_env(hf_home: Path, endpoint: str | None = None, offline: bool = False) -> dict[str, str]:
    """The environment of an `lse` process with its own hub cache and hub endpoint."""
    env = {k: v for k, v in os.environ.items()
           if not k.startswith("HF_") and k != "TRANSFORMERS_OFFLINE"}
    env["HF_HOME"] = str(hf_home)
    if endpoint:
        env["HF_ENDPOINT"] = endpoint
    if offline:
        env["HF_HUB_OFFLINE"] = "1"
    return env


def run_lse(*args: str, env: dict[str, str], timeout: float = 300,
            stdin: str | None = None) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, "-m", "lse_core.cli", *args], env=env, cwd=ROOT,
                          capture_output=True, text=True, timeout=timeout, input=stdin)


def run_lse_in_terminal(*args: str, env: dict[str, str], timeout: float = 120) -> tuple[int, str]:
    """`lse` on a pseudo-terminal of 100×24 (progress bars draw only on a terminal with a
    width): its exit code and everything it wrote."""
    import fcntl
    import pty
    import struct
    import termios
    import time

    master, slave = pty.openpty()
    fcntl.ioctl(slave, termios.TIOCSWINSZ, struct.pack("HHHH", 24, 100, 0, 0))
    process = subprocess.Popen([sys.executable, "-m", "lse_core.cli", *args], env=env, cwd=ROOT,
                               stdin=slave, stdout=slave, stderr=slave, close_fds=True)
    os.close(slave)
    written, deadline = b"", time.monotonic() + timeout
    try:
        while time.monotonic() < deadline:
            try:
                chunk = os.read(master, 65536)
            except OSError:  # the other end closed
                break
            if not chunk:
                break
            written += chunk
        return process.wait(timeout=max(1.0, deadline - time.monotonic())), written.decode(errors="replace")
    finally:
        os.close(master)
        if process.poll() is None:
            process.kill()


def _sha256(data: bytes) -> str:
    return hashlib.sha256(data).hexdigest()


class FakeHub:
    """A hub serving folders as model repositories, with the calls huggingface_hub makes
    to list and download a repository. ``delay`` slows every file by that many seconds per
    64 KiB, so that a download can be interrupted part way."""

    def __init__(self, repos: dict[str, Path], delay: float = 0.0) -> None:
        self.repos = repos
        self.delay = delay
        self.requests: list[str] = []
        hub = self

        class Handler(BaseHTTPRequestHandler):
            def log_message(self, *args) -> None:
                pass

            def do_HEAD(self) -> None:
                hub._serve(self, body=False)

            def do_GET(self) -> None:
                hub._serve(self, body=True)

        self.server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.server.daemon_threads = True
        threading.Thread(target=self.server.serve_forever, daemon=True).start()

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.server.server_address[1]}"

    def close(self) -> None:
        self.server.shutdown()
        self.server.server_close()

    def _files(self, repo: str) -> dict[str, Path]:
        folder = self.repos[repo]
        return {p.relative_to(folder).as_posix(): p for p in sorted(folder.rglob("*")) if p.is_file()}

    def _serve(self, request: BaseHTTPRequestHandler, body: bool) -> None:
        path = unquote(urlparse(request.path).path)
        wanted = request.headers.get("Range")
        self.requests.append(f"{request.command} {path}" + (f" {wanted}" if wanted else ""))
        parts = path.strip("/").split("/")
        if parts[:2] == ["api", "models"] and len(parts) >= 4:
            repo = "/".join(parts[2:4])
            if repo not in self.repos:
                return self._reply(request, 404, b'{"error": "Repository not found"}', body,
                                   {"X-Error-Code": "RepoNotFound"})
            if len(parts) >= 6 and parts[4] == "tree":
                listing = [{"type": "file", "path": name, "size": file.stat().st_size,
                            "oid": _sha256(file.read_bytes())[:40]}
                           for name, file in self._files(repo).items()]
                return self._json(request, listing, body)
            info = {"id": repo, "modelId": repo, "sha": REVISION, "private": False,
                    "siblings": [{"rfilename": name} for name in self._files(repo)]}
            return self._json(request, info, body)
        if len(parts) >= 5 and parts[2] == "resolve":
            repo, name = "/".join(parts[:2]), "/".join(parts[4:])
            files = self._files(repo) if repo in self.repos else {}
            if name not in files:
                return self._reply(request, 404, b"", body, {"X-Error-Code": "EntryNotFound"})
            data = files[name].read_bytes()
            return self._file(request, data, body)
        self._reply(request, 404, b"", body)

    def _json(self, request, data, body: bool) -> None:
        self._reply(request, 200, json.dumps(data).encode(), body,
                    {"Content-Type": "application/json"})

    def _file(self, request, data: bytes, body: bool) -> None:
        start = 0
        wanted = request.headers.get("Range", "")
        if wanted.startswith("bytes=") and body:
            start = int(wanted[len("bytes="):].split("-")[0] or 0)
        headers = {"X-Repo-Commit": REVISION, "ETag": f'"{_sha256(data)}"',
                   "Accept-Ranges": "bytes"}
        if start:
            headers["Content-Range"] = f"bytes {start}-{len(data) - 1}/{len(data)}"
        self._reply(request, 206 if start else 200, data[start:], body, headers,
                    length=len(data) - start)

    def _reply(self, request, status: int, data: bytes, body: bool, headers=None,
               length: int | None = None) -> None:
        import time

        request.send_response(status)
        for key, value in (headers or {}).items():
            request.send_header(key, value)
        request.send_header("Content-Length", str(len(data) if length is None else length))
        request.end_headers()
        if not body:
            return
        try:
            for offset in range(0, len(data), 65536):
                if self.delay:
                    time.sleep(self.delay)
                request.wfile.write(data[offset : offset + 65536])
        except (BrokenPipeError, ConnectionResetError):
            pass
