"""A loopback OpenAI-style Batch API for tests: /v1/files (upload, content) and /v1/batches
(create, retrieve, list, cancel), served over real HTTP so the real `openai` client runs unchanged.

A batch moves one status per retrieve: validating -> in_progress -> completed, and stays
in_progress while `hold` is cleared. When it completes, each input line is answered by
`answer(body)`: a dict is a chat completion (output file, status 200), a `(status, body)` pair
is a failed request (error file). Batches whose creation number is in `expire` end `expired`
after answering `expire_keep` lines; the rest go to the error file as `batch_expired`.
`create_gate`, when given, holds every create's reply (the batch already exists) until it is set.
"""

from __future__ import annotations

import itertools
import json
import re
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from email.parser import BytesParser
from email.policy import HTTP
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any

from tests.openai_stub import Loopback, completion

Answer = Callable[[dict], "dict | tuple[int, dict]"]


def echo(body: dict) -> dict:
    """A JSON answer naming the request's last message: shows which reply went to which request."""
    return completion(json.dumps({"answer": body["messages"][-1]["content"]}), prompt_tokens=10,
                      completion_tokens=5)


@dataclass
class BatchStub(Loopback):
    answer: Answer = echo
    expire: set[int] = field(default_factory=set)
    expire_keep: int = 1
    hold: threading.Event = field(default_factory=threading.Event)
    create_gate: threading.Event | None = None
    files: dict[str, dict[str, Any]] = field(default_factory=dict)
    batches: dict[str, dict[str, Any]] = field(default_factory=dict)  # in creation order
    calls: list[str] = field(default_factory=list)  # "METHOD /path", in arrival order
    errors: list[BaseException] = field(default_factory=list)

    def __post_init__(self) -> None:
        self.hold.set()
        self._lock = threading.Lock()
        self._ids = itertools.count(1)

    def count(self, call: str) -> int:
        return sum(c == call for c in self.calls)

    def input_lines(self, batch: dict[str, Any]) -> list[dict[str, Any]]:
        data = self.files[batch["input_file_id"]]["data"]
        return [json.loads(line) for line in data.decode().splitlines() if line.strip()]

    def _server(self) -> ThreadingHTTPServer:
        server = ThreadingHTTPServer(("127.0.0.1", 0), _handler(self))
        server.daemon_threads = True
        return server

    def _stopping(self) -> None:
        if self.create_gate is not None:
            self.create_gate.set()

    def _new_id(self, prefix: str) -> str:
        return f"{prefix}-{next(self._ids)}"

    def _file(self, data: bytes, purpose: str, filename: str = "out.jsonl") -> dict[str, Any]:
        meta = {"id": self._new_id("file"), "object": "file", "bytes": len(data), "created_at": int(time.time()),
                "filename": filename, "purpose": purpose, "status": "processed"}
        self.files[meta["id"]] = {**meta, "data": data}
        return meta

    def upload(self, content_type: str, raw: bytes) -> dict[str, Any]:
        msg = BytesParser(policy=HTTP).parsebytes(f"Content-Type: {content_type}\r\n\r\n".encode() + raw)
        parts = {p.get_param("name", header="content-disposition"): p for p in msg.iter_parts()}
        data = parts["file"].get_payload(decode=True)
        with self._lock:
            return self._file(data, parts["purpose"].get_content().strip(), parts["file"].get_filename())

    def create(self, body: dict[str, Any]) -> dict[str, Any]:
        if body["input_file_id"] not in self.files:
            raise KeyError(body["input_file_id"])
        with self._lock:
            batch = {"id": self._new_id("batch"), "object": "batch", "endpoint": body["endpoint"],
                     "input_file_id": body["input_file_id"], "completion_window": body["completion_window"],
                     "metadata": body.get("metadata"), "created_at": int(time.time()), "status": "validating",
                     "output_file_id": None, "error_file_id": None, "errors": None,
                     "request_counts": {"total": 0, "completed": 0, "failed": 0}, "_number": len(self.batches)}
            self.batches[batch["id"]] = batch
        return batch

    def retrieve(self, batch_id: str) -> dict[str, Any]:
        with self._lock:
            batch = self.batches[batch_id]
            if batch["status"] == "validating":
                batch["status"] = "in_progress"
                batch["request_counts"]["total"] = len(self.input_lines(batch))
            elif batch["status"] == "in_progress" and self.hold.is_set():
                self._finish(batch)
            elif batch["status"] == "cancelling":
                batch["status"] = "cancelled"
            return batch

    def _finish(self, batch: dict[str, Any]) -> None:
        expiring = batch["_number"] in self.expire
        out, err = [], []
        for i, line in enumerate(self.input_lines(batch)):
            row = {"id": f"req-{i}", "custom_id": line["custom_id"], "response": None, "error": None}
            if expiring and i >= self.expire_keep:
                err.append(row | {"error": {"code": "batch_expired", "message": "not done in the window"}})
                continue
            reply = self.answer(line["body"])
            status, body = (200, reply) if isinstance(reply, dict) else reply
            row["response"] = {"status_code": status, "request_id": f"r-{i}", "body": body}
            (out if status == 200 else err).append(row)
        for name, rows in (("output_file_id", out), ("error_file_id", err)):
            if rows:
                data = "".join(json.dumps(r) + "\n" for r in rows).encode()
                batch[name] = self._file(data, "batch_output")["id"]
        batch["request_counts"] |= {"completed": len(out), "failed": len(err)}
        batch["status"] = "expired" if expiring else "completed"

    def cancel(self, batch_id: str) -> dict[str, Any]:
        with self._lock:
            batch = self.batches[batch_id]
            if batch["status"] in ("validating", "in_progress"):
                batch["status"] = "cancelling"
            return batch

    def listing(self) -> dict[str, Any]:
        with self._lock:
            data = list(reversed(self.batches.values()))  # newest first, like the real API
        return {"object": "list", "data": data, "has_more": False,
                "first_id": data[0]["id"] if data else None, "last_id": data[-1]["id"] if data else None}


def _public(obj: dict[str, Any]) -> dict[str, Any]:
    return {k: v for k, v in obj.items() if not k.startswith("_") and k != "data"}


def _handler(stub: BatchStub) -> type[BaseHTTPRequestHandler]:
    class Handler(BaseHTTPRequestHandler):
        protocol_version = "HTTP/1.1"

        def log_message(self, format: str, *args: Any) -> None:
            pass

        def _route(self, method: str) -> None:
            path = self.path.split("?")[0]
            raw = self.rfile.read(int(self.headers.get("Content-Length") or 0))
            stub.calls.append(f"{method} {re.sub(r'(batch|file)-[0-9]+', lambda m: m[1], path)}")
            try:
                status, body = self._dispatch(method, path, raw)
            except KeyError as exc:
                status, body = 404, {"error": {"message": f"no such object {exc}", "type": "invalid_request_error"}}
            except Exception as exc:  # a bug in the stub: fail the test that reads `errors`
                stub.errors.append(exc)
                status, body = 500, {"error": {"message": repr(exc)}}
            payload = body if isinstance(body, bytes) else json.dumps(body).encode()
            try:
                self.send_response(status)
                self.send_header("Content-Type", "application/octet-stream" if isinstance(body, bytes)
                                 else "application/json")
                self.send_header("Content-Length", str(len(payload)))
                self.end_headers()
                self.wfile.write(payload)
            except OSError:
                self.close_connection = True  # the client was killed while we held the reply

        def _dispatch(self, method: str, path: str, raw: bytes) -> tuple[int, Any]:
            if (method, path) == ("POST", "/v1/files"):
                return 200, stub.upload(self.headers["Content-Type"], raw)
            if method == "GET" and (m := re.fullmatch(r"/v1/files/([\w-]+)/content", path)):
                return 200, stub.files[m[1]]["data"]
            if (method, path) == ("POST", "/v1/batches"):
                batch = stub.create(json.loads(raw))
                if stub.create_gate is not None:
                    stub.create_gate.wait(30)
                return 200, _public(batch)
            if (method, path) == ("GET", "/v1/batches"):
                listing = stub.listing()
                return 200, listing | {"data": [_public(b) for b in listing["data"]]}
            if method == "GET" and (m := re.fullmatch(r"/v1/batches/([\w-]+)", path)):
                return 200, _public(stub.retrieve(m[1]))
            if method == "POST" and (m := re.fullmatch(r"/v1/batches/([\w-]+)/cancel", path)):
                return 200, _public(stub.cancel(m[1]))
            return 404, {"error": {"message": f"no route {method} {path}"}}

        def do_GET(self) -> None:
            self._route("GET")

        def do_POST(self) -> None:
            self._route("POST")

    return Handler
