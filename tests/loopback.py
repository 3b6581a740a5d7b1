"""Real TCP endpoints on loopback for the reachability probe: one that answers, one that refuses; and an HTTP(S)
server that gives every GET one canned answer."""

from __future__ import annotations

import contextlib
import http.server
import socket
import ssl
import threading
from collections.abc import Iterator, Mapping
from types import TracebackType
from typing import Any


class Listener:
    """A TCP server on 127.0.0.1 that accepts every connection and closes it (what the probe needs); ``silent``:
    keeps each one open and never answers (a route that hangs: a client's read timeout is what ends it)."""

    def __init__(self, *, silent: bool = False) -> None:
        self.sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
        self.sock.bind(("127.0.0.1", 0))
        self.sock.listen(64)
        self.port: int = self.sock.getsockname()[1]
        self.accepted = 0
        self.silent = silent
        self.held: list[socket.socket] = []
        self._thread = threading.Thread(target=self._serve, daemon=True)
        self._thread.start()

    @property
    def url(self) -> str:
        return f"https://127.0.0.1:{self.port}"

    def _serve(self) -> None:
        while True:
            try:
                conn, _ = self.sock.accept()
            except OSError:
                return
            self.accepted += 1
            if self.silent:
                self.held.append(conn)
            else:
                conn.close()

    def close(self) -> None:
        for conn in self.held:
            conn.close()
        try:
            self.sock.shutdown(socket.SHUT_RDWR)
        except OSError:
            pass
        self.sock.close()
        self._thread.join(timeout=5)

    def __enter__(self) -> Listener:
        return self

    def __exit__(self, kind: type[BaseException] | None, value: BaseException | None,
                 traceback: TracebackType | None) -> None:
        self.close()


def closed_port() -> int:
    """A loopback port nothing listens on (connecting to it is refused at once)."""
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def canned_answer(status: int, headers: Mapping[str, str],
                  body: bytes = b"") -> type[http.server.BaseHTTPRequestHandler]:
    """A request handler that answers every GET with ``status``, ``headers`` (in order) and ``body``, then closes the
    connection, and logs nothing. A ``Content-Length`` longer than ``body`` makes an answer cut short."""

    class Canned(http.server.BaseHTTPRequestHandler):
        def do_GET(self) -> None:
            self.send_response(status)
            for name, value in headers.items():
                self.send_header(name, value)
            self.end_headers()
            self.wfile.write(body)
            self.close_connection = True

        def log_message(self, *args: Any) -> None:
            pass

    return Canned


@contextlib.contextmanager
def http_server(handler: type[http.server.BaseHTTPRequestHandler], *,
                tls: ssl.SSLContext | None = None) -> Iterator[http.server.ThreadingHTTPServer]:
    """``handler`` served on 127.0.0.1 (a free port: ``server_port``) from a thread, over ``tls`` when given, until
    the block ends."""
    server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), handler)
    if tls is not None:
        server.socket = tls.wrap_socket(server.socket, server_side=True)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    try:
        yield server
    finally:
        server.shutdown()
        server.server_close()


class RedirectRecorder:
    """Two HTTP servers on loopback: ``first`` answers every GET with a 302 to ``second``, which answers ``body``
    with 200; each records the ``Authorization`` header of every request it got (None where there was none)."""

    def __init__(self, body: bytes) -> None:
        self.seen: dict[str, list[str | None]] = {"first": [], "second": []}
        self.body = body
        self._stack = contextlib.ExitStack()

    def _handler(self, which: str, answer: Any) -> type[http.server.BaseHTTPRequestHandler]:
        seen = self.seen[which]

        class Recording(http.server.BaseHTTPRequestHandler):
            def do_GET(self) -> None:
                seen.append(self.headers.get("Authorization"))
                answer(self)
                self.close_connection = True

            def log_message(self, *args: Any) -> None:
                pass

        return Recording

    def __enter__(self) -> RedirectRecorder:
        def found(handler: http.server.BaseHTTPRequestHandler) -> None:
            handler.send_response(200)
            handler.send_header("Content-Length", str(len(self.body)))
            handler.end_headers()
            handler.wfile.write(self.body)

        second = self._stack.enter_context(http_server(self._handler("second", found)))

        def moved(handler: http.server.BaseHTTPRequestHandler) -> None:
            handler.send_response(302)
            handler.send_header("Location", f"http://127.0.0.1:{second.server_port}{handler.path}")
            handler.send_header("Content-Length", "0")
            handler.end_headers()

        first = self._stack.enter_context(http_server(self._handler("first", moved)))
        self.url = f"http://127.0.0.1:{first.server_port}"
        return self

    def __exit__(self, kind: type[BaseException] | None, value: BaseException | None,
                 traceback: TracebackType | None) -> None:
        self._stack.close()
