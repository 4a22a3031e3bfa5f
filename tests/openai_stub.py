"""A loopback OpenAI-compatible server for tests: POST /v1/chat/completions answered from a script.

It fakes the HTTP layer, so the real `openai` client, its error mapping and our retry logic all
run unchanged (CONVENTIONS rule 11). Script entries, used in order (the last one repeats):

- a dict: a JSON body served with status 200 (build chat completions with `completion()`);
- a `(status, headers, body)` triple: body is a dict (sent as JSON), str or bytes;
- `HANG` (or `Hang(seconds)`): answer nothing for longer than any client timeout;
- `DROP`: close the connection without a response;
- a callable `(request body) -> entry`: an answer that depends on the request.

Every request is recorded in `requests` (parsed body and headers), in arrival order.
"""

from __future__ import annotations

import contextlib
import itertools
import json
import socket
import sys
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any, Self

CHAT_PATH = "/v1/chat/completions"


@dataclass(frozen=True)
class Hang:
    seconds: float = 30.0  # released early when the stub closes


@dataclass(frozen=True)
class Drop:
    pass


HANG, DROP = Hang(), Drop()
Triple = tuple[int, dict[str, str], dict | str | bytes]
Entry = dict | Triple | Hang | Drop | Callable[[dict], "Entry"]

_ids = itertools.count(1)


def completion(content: str | None, finish_reason: str = "stop", prompt_tokens: int = 10,
               completion_tokens: int = 5, model: str = "stub-model") -> dict[str, Any]:
    """A chat.completion body with one choice holding `content`."""
    return {
        "id": f"chatcmpl-stub-{next(_ids)}",
        "object": "chat.completion",
        "created": int(time.time()),
        "model": model,
        "choices": [{"index": 0, "finish_reason": finish_reason,
                     "message": {"role": "assistant", "content": content}}],
        "usage": {"prompt_tokens": prompt_tokens, "completion_tokens": completion_tokens,
                  "total_tokens": prompt_tokens + completion_tokens},
    }


def error(status: int, message: str = "stub error", headers: dict[str, str] | None = None) -> Triple:
    """An OpenAI-style error reply, e.g. error(429, headers={"Retry-After": "1"})."""
    return status, dict(headers or {}), {"error": {"message": message, "type": "stub", "code": status}}


@dataclass
class Received:
    path: str
    headers: dict[str, str]  # lower-cased names
    body: Any  # parsed JSON, or the raw text when it was not JSON


class Loopback:
    """A loopback HTTP server on a free port, served from a daemon thread; use as a context manager.
    Shared by the stubs: a subclass builds its server in `_server()` and may release answers that
    are still waiting in `_stopping()`, which `close()` calls first."""

    _httpd: ThreadingHTTPServer | None = None

    def _server(self) -> ThreadingHTTPServer:
        raise NotImplementedError

    def _stopping(self) -> None:
        pass

    @property
    def base_url(self) -> str:
        assert self._httpd is not None, "the stub is not running"
        host, port = self._httpd.server_address[:2]
        return f"http://{host}:{port}/v1"

    def start(self) -> Self:
        self._httpd = self._server()
        threading.Thread(target=self._httpd.serve_forever, args=(0.05,),  # fast shutdown
                         name=type(self).__name__, daemon=True).start()
        return self

    def close(self) -> None:
        self._stopping()
        if self._httpd is not None:
            self._httpd.shutdown()
            self._httpd.server_close()
            self._httpd = None

    def __enter__(self) -> Self:
        return self.start()

    def __exit__(self, *exc: object) -> None:
        self.close()


@dataclass
class OpenAIStub(Loopback):
    """Serves `script` on 127.0.0.1 from a background thread; use as a context manager.

    `delay` (seconds) holds every answer back, so that concurrent requests overlap;
    `max_in_flight` is the most requests the stub was handling at one time."""

    script: list[Entry]
    delay: float = 0.0
    requests: list[Received] = field(default_factory=list)
    max_in_flight: int = 0
    server_errors: list[BaseException] = field(default_factory=list)  # raised in handler threads

    def __post_init__(self) -> None:
        if not self.script:
            raise ValueError("the script needs at least one entry")
        self._lock = threading.Lock()
        self._closing = threading.Event()
        self._in_flight = 0

    @property
    def bodies(self) -> list[Any]:
        return [r.body for r in self.requests]

    def _server(self) -> ThreadingHTTPServer:
        server = _Server(("127.0.0.1", 0), _handler(self))
        server.errors = self.server_errors
        return server

    def _stopping(self) -> None:
        self._closing.set()  # releases hanging answers

    def _next(self, received: Received) -> Entry:
        with self._lock:
            index = min(len(self.requests), len(self.script) - 1)
            self.requests.append(received)
            self._in_flight += 1
            self.max_in_flight = max(self.max_in_flight, self._in_flight)
        entry = self.script[index]
        while callable(entry):
            entry = entry(received.body)
        return entry

    def _done(self) -> None:
        with self._lock:
            self._in_flight -= 1


class _Server(ThreadingHTTPServer):
    daemon_threads = True
    block_on_close = False  # idle keep-alive connections must not hold up close()
    errors: list[BaseException]

    def handle_error(self, request: Any, client_address: Any) -> None:
        exc = sys.exc_info()[1]
        if exc is not None and not isinstance(exc, ConnectionError):  # clients hang up: normal
            self.errors.append(exc)


def _handler(stub: OpenAIStub) -> type[BaseHTTPRequestHandler]:
    class Handler(BaseHTTPRequestHandler):
        protocol_version = "HTTP/1.1"  # keep-alive, like a real server: the client pools connections

        def log_message(self, format: str, *args: Any) -> None:
            pass  # quiet: tests read `requests`, not an access log

        def do_POST(self) -> None:
            raw = self.rfile.read(int(self.headers.get("Content-Length") or 0))
            if self.path.split("?")[0] != CHAT_PATH:
                self._send((404, {}, {"error": {"message": f"no route {self.path}"}}))
                return
            try:
                body: Any = json.loads(raw)
            except ValueError:
                body = raw.decode("utf-8", "replace")
            received = Received(self.path, {k.lower(): v for k, v in self.headers.items()}, body)
            entry = stub._next(received)
            try:
                if stub.delay and not isinstance(entry, (Hang, Drop)):
                    stub._closing.wait(stub.delay)
                self._answer(entry)
            finally:
                stub._done()

        def _answer(self, entry: Entry) -> None:
            if isinstance(entry, Hang):
                stub._closing.wait(entry.seconds)
                self._drop()
            elif isinstance(entry, Drop):
                self._drop()
            elif isinstance(entry, dict):
                self._send((200, {}, entry))
            else:
                self._send(entry)

        def _drop(self) -> None:
            self.close_connection = True
            with contextlib.suppress(OSError):  # the client may already have gone
                self.connection.shutdown(socket.SHUT_RDWR)

        def _send(self, triple: Triple) -> None:
            status, headers, body = triple
            is_json = isinstance(body, dict)
            payload = json.dumps(body).encode() if is_json else body if isinstance(body, bytes) else body.encode()
            self.send_response(status)
            sent = {k.lower() for k in headers}
            if "content-type" not in sent:
                self.send_header("Content-Type", "application/json" if is_json else "text/plain")
            for name, value in headers.items():
                self.send_header(name, value)
            self.send_header("Content-Length", str(len(payload)))
            self.end_headers()
            try:
                self.wfile.write(payload)
            except OSError:
                self.close_connection = True  # the client timed out and left

    return Handler

