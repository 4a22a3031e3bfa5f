"""The provider's Batch API (OpenAI-style `/v1/files` + `/v1/batches`) behind the same seam as
live calls: `run_batch` on an endpoint with `batch: true` comes here, and the answers land in the
same response cache, so everything downstream (responses.jsonl replay, the ledger) is unchanged.

Cache hits are answered at once. The rest is written as JSONL (`custom_id` = the request's cache
key), uploaded and submitted in chunks of at most `batch_max_requests` lines / `batch_max_mb`,
polled with growing waits until each batch ends, and collected from its output and error files.
Requests that failed, expired or came back unusable are resubmitted, up to `batch_resubmits`
rounds; what is still missing then comes back as results with `error`, like a failed live call.
Submitted batches are recorded (batchstate.py), so a restarted stage re-attaches to them.
"""

from __future__ import annotations

import json
import logging
import random
import re
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any, TypeVar

import openai
from openai.types.chat import ChatCompletion
from tqdm import tqdm

from assay.errors import AssayError
from assay.llm.batchstate import BatchState, Submitted
from assay.llm.client import RETRYABLE, ChatRequest, ChatResult, OpenAIChat

log = logging.getLogger(__name__)
CHAT_URL = "/v1/chat/completions"
DONE = {"completed", "failed", "expired", "cancelled"}
T = TypeVar("T")


@dataclass(frozen=True)
class BatchOptions:
    max_requests: int = 50_000
    max_bytes: int = 200 * 1024 * 1024
    discount: float = 0.5  # share of the live price taken off
    poll_s: float = 30.0
    poll_max_s: float = 600.0
    resubmits: int = 2
    window: str = "24h"


class BatchChat(OpenAIChat):
    """An endpoint with `batch: true`: `run_batch` sends its requests through the Batch API; a
    single `complete` stays a live call (rate-limited like any other)."""

    def __init__(self, name: str, *, batch: BatchOptions, **kwargs: Any):
        super().__init__(name, **kwargs)
        self.batch = batch
        self.sleep: Callable[[float], None] = time.sleep  # tests poll without waiting

    def complete_all(self, requests: list[ChatRequest], desc: str = "batch") -> list[ChatResult]:
        """Results in request order; failures as results with `error` (never raises for one
        request). Raises AssayError when the Batch API cannot be reached at all."""
        return _Run(self, desc).run(requests)

    def recorded(self, cancel: bool = False) -> list[tuple[str, str, int]]:
        """(batch id, status, requests) of the batches submitted for this model and not yet
        collected. `cancel`: ask the provider to stop them; the next run still collects what
        they finished and submits the rest afresh."""
        run, out = _Run(self, "batches"), []
        try:
            for sub in run.state.open(self.model_id):
                if sub.batch_id is None:
                    continue
                call = run.client.batches.cancel if cancel else run.client.batches.retrieve
                batch = run._api("cancel" if cancel else "retrieve", lambda c=call, b=sub.batch_id: c(b))
                out.append((sub.batch_id, batch.status, len(sub.budgets)))
        finally:
            run.state.close()
            run.client.close()
        return out


@dataclass
class _Open:
    sub: Submitted
    batch: Any = None  # the last retrieved Batch object


@dataclass
class _Run:
    model: BatchChat
    desc: str
    todo: dict[str, ChatRequest] = field(default_factory=dict)  # cache key -> request, still unanswered
    budgets: dict[str, int] = field(default_factory=dict)  # key -> max_tokens to send next
    answered: dict[str, ChatResult] = field(default_factory=dict)
    last: dict[str, ChatResult] = field(default_factory=dict)  # key -> latest failure

    def __post_init__(self) -> None:
        m = self.model
        self.client = openai.OpenAI(base_url=str(m._base_url), api_key=m._api_key, timeout=m._timeout,
                                    max_retries=0)  # retries are ours (_api)
        self.state = BatchState(m.cache.path)

    def run(self, requests: list[ChatRequest]) -> list[ChatResult]:
        keys = [self.model._key(r) for r in requests]
        for key, req in zip(keys, requests, strict=True):
            hit = self.model.cache.get(key)
            if hit is not None:
                self.answered[key] = ChatResult(**hit, cached=True)
            else:
                self.todo.setdefault(key, req)
                self.budgets.setdefault(key, req.max_tokens)
        try:
            for round_ in range(self.model.batch.resubmits + 1):
                if not self.todo:
                    break
                opened = self._attach()
                covered = {key for o in opened for key in o.sub.budgets}
                opened += self._submit([key for key in self.todo if key not in covered])
                if round_:
                    self._count("resubmitted_requests", sum(len(o.sub.budgets) for o in opened))
                self._wait(opened)
        finally:
            self.state.close()
            self.client.close()
        return self._results(keys, requests)

    def _results(self, keys: list[str], requests: list[ChatRequest]) -> list[ChatResult]:
        m, seen, out = self.model, set(), []
        for key, req in zip(keys, requests, strict=True):
            result = self.answered.get(key) or self.last.get(key) or ChatResult(
                text=None, error="batch: no answer", model=m.model_id)
            if key in seen and result.error is None and not result.cached:
                result = ChatResult(**{**vars(result), "cached": True})  # the same request twice: paid once
            seen.add(key)
            cost = 0.0 if result.cached else (result.prompt_tokens * m.prices[0] + result.completion_tokens
                                              * m.prices[1]) / 1e6 * (1 - m.batch.discount)
            m.ledger.add(m.name, req.tag, result, cost, 0.0)
            out.append(result)
        return out

    def _count(self, event: str, n: int = 1) -> None:
        self.model.ledger.batch[(self.model.name, event)] += n

    def _api(self, what: str, call: Callable[[], T]) -> T:
        """One Batch/Files API call, retried on transport errors, 429 and 5xx like live calls; a
        refusal (4xx) raises AssayError, except 404 (openai.NotFoundError: the caller decides)."""
        m = self.model
        for attempt in range(m.max_retries + 1):
            try:
                return call()
            except openai.NotFoundError:
                raise
            except (openai.AuthenticationError, openai.PermissionDeniedError, openai.BadRequestError) as exc:
                raise AssayError(f"llm.endpoints.{m.name}: the Batch API at {m._base_url} refused the {what} "
                                 f"(HTTP {exc.status_code}: {exc.message}); check api_key_env, model and the "
                                 f"batch_* params") from exc
            except RETRYABLE as exc:
                if attempt == m.max_retries:
                    raise AssayError(f"llm.endpoints.{m.name}: Batch API {what} failed at {m._base_url} "
                                     f"({type(exc).__name__}: {exc}); submitted batches are recorded in "
                                     f"{m.cache.path}: rerun the stage to re-attach to them") from exc
                m.sleep(min(30.0, 0.5 * 2**attempt) * (0.5 + random.random()))
        raise AssertionError("unreachable")

    def _attach(self) -> list[_Open]:
        """Recorded batches holding a request still to answer: follow them instead of resubmitting."""
        opened = []
        for sub in self.state.open(self.model.model_id):
            if not self.todo.keys() & sub.budgets.keys():
                continue  # another stage's or an old run's: not ours to collect
            try:
                if sub.batch_id is None:  # killed between upload and create: did the create get through?
                    found = self._api("list", lambda f=sub.input_file_id: next(
                        (b for b in self.client.batches.list(limit=100) if b.input_file_id == f), None))
                    sub = Submitted(sub.input_file_id, found.id if found else self._create(sub.input_file_id),
                                    sub.budgets)
                    if found:
                        self.state.created(sub.input_file_id, found.id)
                batch = self._api("retrieve", lambda b=str(sub.batch_id): self.client.batches.retrieve(b))
            except openai.NotFoundError:  # another account, or deleted: its requests are submitted afresh
                log.warning("%s: recorded batch %s is gone; submitting its requests again", self.model.name,
                            sub.batch_id or sub.input_file_id)
                self.state.collected(sub.input_file_id)
                continue
            log.info("%s: re-attaching to batch %s (%d requests)", self.model.name, sub.batch_id, len(sub.budgets))
            self._count("reattached")
            opened.append(_Open(sub, batch))
        return opened

    def _create(self, input_file_id: str) -> str:
        m = self.model
        batch = self._api("create", lambda: self.client.batches.create(
            input_file_id=input_file_id, endpoint=CHAT_URL, completion_window=m.batch.window,  # type: ignore[arg-type]
            metadata={"assay_endpoint": m.name}))
        self.state.created(input_file_id, batch.id)
        self._count("submitted")
        return batch.id

    def _lines(self, keys: list[str]) -> list[tuple[str, bytes]]:
        out = []
        for key in keys:
            body = self.model._kwargs(self.todo[key], self.budgets[key])
            line = {"custom_id": key, "method": "POST", "url": CHAT_URL, "body": body}
            out.append((key, (json.dumps(line, ensure_ascii=False) + "\n").encode("utf-8")))
        return out

    def _submit(self, keys: list[str]) -> list[_Open]:
        """Upload and create batches for `keys`, in chunks within the per-batch limits."""
        opts, opened, chunk, size = self.model.batch, [], [], 0
        lines = self._lines(keys)
        for i, (key, line) in enumerate(lines):
            chunk.append((key, line))
            size += len(line)
            nxt = len(lines[i + 1][1]) if i + 1 < len(lines) else None
            if nxt is None or len(chunk) >= opts.max_requests or size + nxt > opts.max_bytes:
                opened.append(self._submit_one(chunk))
                chunk, size = [], 0
        return opened

    def _submit_one(self, chunk: list[tuple[str, bytes]]) -> _Open:
        data = b"".join(line for _, line in chunk)
        upload = self._api("upload", lambda: self.client.files.create(
            file=("assay-batch.jsonl", data, "application/jsonl"), purpose="batch"))
        budgets = {key: self.budgets[key] for key, _ in chunk}
        self.state.uploaded(self.model.model_id, upload.id, budgets)  # before create: a crash here re-finds it
        self._count("submitted_requests", len(chunk))
        return _Open(Submitted(upload.id, self._create(upload.id), budgets))

    def _wait(self, opened: list[_Open]) -> None:
        """Poll every open batch with growing waits; collect each as soon as it ends."""
        opts, delay = self.model.batch, self.model.batch.poll_s
        total = sum(len(o.sub.budgets) for o in opened)
        with tqdm(total=total, desc=f"{self.desc} [batch]", unit="req", dynamic_ncols=True, mininterval=1.0) as bar:
            pending = list(opened)
            while pending:
                for o in list(pending):
                    o.batch = self._api("retrieve", lambda o=o: self.client.batches.retrieve(str(o.sub.batch_id)))
                    if o.batch.status in DONE:
                        self._collect(o)
                        pending.remove(o)
                counts = [getattr(o.batch, "request_counts", None) for o in opened]
                bar.n = sum((c.completed + c.failed) if c else 0 for c in counts)
                bar.set_postfix(open=len(pending), refresh=True)
                if pending:
                    self.model.sleep(delay)
                    delay = min(opts.poll_max_s, delay * 1.5)

    def _collect(self, o: _Open) -> None:
        """Answers into the cache; failures kept for the next round; the record closed."""
        batch, seen = o.batch, set()
        self._count(batch.status)
        for file_id in (batch.output_file_id, batch.error_file_id):
            if file_id:
                text = self._api("download", lambda f=file_id: self.client.files.content(f).text)
                fresh: list[tuple[str, dict[str, Any]]] = []
                for raw in text.splitlines():
                    if raw.strip():
                        seen.add(self._line(json.loads(raw), o.sub.budgets, fresh))
                self.model.cache.put_many(fresh)  # one commit per file; a crash before it re-collects the file
        why = _batch_problem(batch)
        for key in o.sub.budgets.keys() - seen:
            if key in self.todo:
                self.last[key] = ChatResult(text=None, error=why, model=self.model.model_id)
        self.state.collected(o.sub.input_file_id)

    def _line(self, line: dict[str, Any], budgets: dict[str, int], fresh: list) -> str | None:
        """Take one output/error file line (answers appended to `fresh` for the cache); returns its
        custom_id when this run asked for it."""
        key = line.get("custom_id")
        req = self.todo.get(key) if isinstance(key, str) else None
        if req is None:
            return None  # answered already, or not asked for by this run
        result = _result_of(self.model, line, req, budgets.get(key, req.max_tokens))
        self.last[key] = result
        if result.error is None:
            fresh.append((key, {k: v for k, v in vars(result).items() if k != "cached"}))
            self.answered[key] = result
            del self.todo[key]
        elif re.match(r"HTTP 4(?!29)", result.error):
            del self.todo[key]  # the provider refused this request: sending it again cannot help
        elif result.finish_reason == "length":
            self.budgets[key] = budgets.get(key, req.max_tokens) * 2  # as live calls do: twice the budget
        return key


def _batch_problem(batch: Any) -> str:
    """Why a batch left a request unanswered, for requests with no line in either file."""
    errors = getattr(getattr(batch, "errors", None), "data", None) or []
    detail = "; ".join(f"{e.code}: {e.message}" for e in errors[:3])
    return f"batch {batch.status}" + (f" ({detail})" if detail else "") + f" [{batch.id}]"


def _result_of(model: OpenAIChat, line: dict[str, Any], req: ChatRequest, max_tokens: int) -> ChatResult:
    """One output/error file line -> ChatResult (the same interpretation as a live reply)."""
    response, error = line.get("response") or {}, line.get("error")
    status, body = response.get("status_code"), response.get("body") or {}
    if error:
        return ChatResult(text=None, model=model.model_id,
                          error=f"batch error {error.get('code')}: {error.get('message')}"[:500])
    if status != 200:
        message = (body.get("error") or {}).get("message") if isinstance(body, dict) else body
        return ChatResult(text=None, model=model.model_id, error=f"HTTP {status}: {message}"[:500])
    try:
        return model.interpret(ChatCompletion.model_validate(body), req, max_tokens)
    except (ValueError, AttributeError, TypeError) as exc:
        return ChatResult(text=None, model=model.model_id,
                          error=f"malformed response: {type(exc).__name__}: {exc}"[:500])
