"""Fault injection on top of the OpenAI stub: a loopback OpenAI-compatible server whose answers
fail at a configurable, seeded rate.

`Faults(answer, rate=0.1, seed=0)` is a script entry for `OpenAIStub`: for each request it draws
from a seeded RNG and returns either one of FAULT_KINDS or `answer(body)`. `fault_stub(...)` builds
the stub. Faults are the failures a real endpoint shows:

  timeout          no answer for `hang_s` (longer than the client's timeout), then a dropped line
  429              rate limited, with `Retry-After: <retry_after>`
  500 / 503        server error / overloaded (503 carries Retry-After too)
  drop             connection closed without a response
  truncated        a 200 whose JSON body stops half way
  malformed_body   a 200 that is not JSON at all (a proxy's HTML page)
  malformed_json   a completion whose content is broken JSON
  empty_choices    a completion with `choices: []`
  length           a completion cut by the token limit (finish_reason=length)

`schema_reply(body)` answers any request with a minimal object valid for its JSON schema, so one
server can stand in for the generator, judges, reward model and orchestrator. `stage_params` and
`run_script` run the real stage scripts against it.

Run it as a process for benches: `python tests/fault_server.py --rate 0.1 --seed 1` prints its
base URL on the first line of stdout and serves until killed.
"""

from __future__ import annotations

import argparse
import json
import os
import random
import subprocess
import sys
import threading
import time
from collections import Counter
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any

if __package__ in (None, ""):  # run as a script: make `tests.openai_stub` importable
    sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from tests.openai_stub import DROP, Entry, Hang, OpenAIStub, completion, error  # noqa: E402

FAULT_KINDS = ("timeout", "429", "500", "503", "drop", "truncated", "malformed_body",
               "malformed_json", "empty_choices", "length")


def _instance(schema: dict[str, Any]) -> Any:
    """A small value valid for `schema` (the subset our prompts use)."""
    if "enum" in schema:
        return schema["enum"][0]
    kind = schema.get("type", "object")
    if kind == "object":
        props = schema.get("properties", {})
        return {k: _instance(props.get(k, {})) for k in schema.get("required", list(props))}
    if kind == "array":
        return [_instance(schema.get("items", {})) for _ in range(max(1, schema.get("minItems", 1)))]
    if kind in ("integer", "number"):
        return schema.get("maximum", schema.get("minimum", 1))
    if kind == "boolean":
        return True
    return "stub text"


def schema_reply(body: dict[str, Any]) -> dict[str, Any]:
    """A completion whose content is valid for the request's JSON schema (plain text if none)."""
    fmt = body.get("response_format") or {}
    schema = (fmt.get("json_schema") or {}).get("schema")
    if schema is None and fmt.get("type") != "json_object":
        return completion("stub text")
    return completion(json.dumps(_instance(schema or {"type": "object"})))


class Faults:
    """A callable script entry: `answer(body)` for most requests, a seeded fault for `rate` of them.

    `injected` counts the faults served by kind; `answered` counts the good answers."""

    def __init__(self, answer: Callable[[dict], Entry] = schema_reply, rate: float = 0.1, seed: int = 0,
                 kinds: Sequence[str] = FAULT_KINDS, retry_after: str = "1", hang_s: float = 30.0):
        unknown = set(kinds) - set(FAULT_KINDS)
        if unknown or not kinds:
            raise ValueError(f"unknown fault kinds {sorted(unknown)}; known: {FAULT_KINDS}")
        self.answer, self.rate, self.kinds = answer, rate, tuple(kinds)
        self.retry_after, self.hang_s = retry_after, hang_s
        self.injected: Counter[str] = Counter()
        self.answered = 0
        self._rng = random.Random(seed)
        self._lock = threading.Lock()

    def __call__(self, body: dict) -> Entry:
        with self._lock:
            kind = self._rng.choice(self.kinds) if self._rng.random() < self.rate else None
            if kind:
                self.injected[kind] += 1
            else:
                self.answered += 1
        return self.fault(kind, body) if kind else self.answer(body)

    def fault(self, kind: str, body: dict) -> Entry:
        """The reply for one fault kind."""
        good = self.answer(body)
        good = good if isinstance(good, dict) else completion('{"ok": true}')
        if kind == "timeout":
            return Hang(self.hang_s)
        if kind == "429":
            return error(429, "rate limited by the fault server", {"Retry-After": self.retry_after})
        if kind in ("500", "503"):
            headers = {"Retry-After": self.retry_after} if kind == "503" else {}
            return error(int(kind), f"injected {kind}", headers)
        if kind == "drop":
            return DROP
        if kind == "truncated":
            text = json.dumps(good)
            return 200, {"Content-Type": "application/json"}, text[: len(text) // 2]
        if kind == "malformed_body":
            return 200, {"Content-Type": "text/html"}, "<html><body>502 Bad Gateway</body></html>"
        if kind == "malformed_json":
            return completion('{"question": "What is" "answer": }', finish_reason="stop")
        if kind == "empty_choices":
            return good | {"choices": []}
        content = good["choices"][0]["message"]["content"] or ""
        return completion(content[: len(content) // 2], finish_reason="length")


def fault_stub(answer: Callable[[dict], Entry] = schema_reply, *, rate: float = 0.1, seed: int = 0,
               kinds: Sequence[str] = FAULT_KINDS, retry_after: str = "1", hang_s: float = 30.0,
               delay: float = 0.0) -> tuple[OpenAIStub, Faults]:
    """(a not yet started OpenAIStub serving `answer` with faults, its Faults counters)."""
    faults = Faults(answer, rate=rate, seed=seed, kinds=kinds, retry_after=retry_after, hang_s=hang_s)
    return OpenAIStub([faults], delay=delay), faults


class _Counting(OpenAIStub):
    """A stub that keeps a request count, not every request: for long soak runs."""

    def _next(self, received):  # type: ignore[override]
        entry = super()._next(received)
        with self._lock:
            self.requests.clear()
        return entry


ROOT = Path(__file__).resolve().parents[1]


def stage_params(path: Path, base_url: str, cache_dir: Path, endpoint: dict | None = None,
                 **sections: dict) -> Path:
    """Write a minimal params.yaml at `path` (defaults for everything optional): every LLM role on
    one endpoint named `stub` at `base_url` (fields in `endpoint` override), and `sections` merged
    into the top-level sections (e.g. generate={"max_chunks": 8})."""
    import yaml

    stub = {"base_url": base_url, "model": "stub-model", "concurrency": 4, "timeout_s": 5.0,
            "max_retries": 3} | (endpoint or {})
    params = {"seed": 42,
              "llm": {"cache_dir": str(cache_dir), "endpoints": {"stub": stub}},
              "generate": {"endpoint": "stub", "max_chunks": 0},
              "critique": {"judges": ["stub"], "max_error_rate": 1.0},
              "filter": {"pii": {"entities": ["EMAIL_ADDRESS", "PHONE_NUMBER", "PERSON", "CREDIT_CARD"],
                                 "threshold": 0.4, "allow": ["Lumo", "Hearth", "Brightwell"]}},
              "export": {"dataset_name": "fault-test"}}
    for name, values in sections.items():
        params[name] = params[name] | values if isinstance(params.get(name), dict) else values
    path.write_text(yaml.safe_dump(params, sort_keys=False))
    return path


def write_chunks(path: Path, n: int) -> Path:
    """A chunks Parquet of `n` distinct prose chunks, made by the real ingest code."""
    from assay.config import Ingest
    from assay.ingest import ingest
    from assay.records import CHUNK_COLUMNS, write_table

    seeds = path.parent / f"{path.stem}-seeds"
    seeds.mkdir(parents=True, exist_ok=True)
    sections = [f"# Topic {i}\n\nThe Lumo Hearth H2 setting number {i} keeps the room at {i + 10} degrees "
                f"when the schedule says so, and the display shows code P{i:03d} while it does." for i in range(n)]
    (seeds / "kb.md").write_text("\n\n".join(sections))
    rows, _ = ingest(seeds, Ingest())
    assert len(rows) == n, f"expected {n} chunks, ingest made {len(rows)}"
    write_table(rows, path, columns=CHUNK_COLUMNS)
    return path


def run_script(stage: str, *args: str, env: dict[str, str] | None = None, cwd: Path | None = None,
               timeout: float = 120) -> subprocess.CompletedProcess:
    """`python stages/<stage>.py <args> --no-mlflow` (unless args hold --mlflow), as a user runs it."""
    flags = [a for a in args if a != "--mlflow"] + ([] if "--mlflow" in args else ["--no-mlflow"])
    return subprocess.run([sys.executable, str(ROOT / "stages" / f"{stage}.py"), *flags], cwd=cwd or ROOT,
                          env={**os.environ, **(env or {})}, capture_output=True, text=True, timeout=timeout)


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--rate", type=float, default=0.1, help="fraction of requests that fault")
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--kinds", default=",".join(FAULT_KINDS), help="comma-separated fault kinds")
    parser.add_argument("--retry-after", default="1", help="Retry-After seconds on 429/503")
    parser.add_argument("--hang-s", type=float, default=30.0, help="how long a timeout fault hangs")
    parser.add_argument("--delay", type=float, default=0.0, help="seconds before every answer")
    args = parser.parse_args(argv)
    faults = Faults(rate=args.rate, seed=args.seed, kinds=args.kinds.split(","),
                    retry_after=args.retry_after, hang_s=args.hang_s)
    stub = _Counting([faults], delay=args.delay).start()
    print(stub.base_url, flush=True)
    try:
        while True:
            time.sleep(5)
            print(json.dumps({"answered": faults.answered, "injected": dict(faults.injected)}), flush=True)
    except KeyboardInterrupt:
        stub.close()


if __name__ == "__main__":
    main()
