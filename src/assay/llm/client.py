"""The one seam to language models: an async OpenAI-compatible chat client with bounded
concurrency, timeouts, retries with jittered backoff (honouring Retry-After), structured JSON
output, a response cache and a token/cost ledger. Failures come back as results with `error`;
nothing here raises for a single bad call."""

from __future__ import annotations

import asyncio
import random
import time
from collections import defaultdict
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any, Protocol

import openai

from assay.llm.cache import ResponseCache, cache_key
from assay.llm.parse import parse_json_object

RETRYABLE = (openai.APITimeoutError, openai.APIConnectionError, openai.RateLimitError,
             openai.InternalServerError)


@dataclass(frozen=True)
class ChatRequest:
    messages: list[dict[str, str]]
    temperature: float = 0.0
    max_tokens: int = 512
    schema: dict[str, Any] | None = None  # JSON schema: the reply must be one such object
    schema_name: str = "output"
    seed: int | None = None
    tag: str = "default"  # ledger bucket (task kind, judge role...)


@dataclass
class ChatResult:
    text: str | None
    data: dict[str, Any] | None = None
    error: str | None = None
    finish_reason: str | None = None
    prompt_tokens: int = 0
    completion_tokens: int = 0
    cached: bool = False
    model: str = ""


class ChatModel(Protocol):
    name: str
    model_id: str
    concurrency: int

    async def complete(self, request: ChatRequest) -> ChatResult: ...


@dataclass
class Ledger:
    """Token, call and cost counters per (endpoint, tag); flattened into stage metrics."""

    rows: dict[tuple[str, str], dict[str, float]] = field(
        default_factory=lambda: defaultdict(lambda: defaultdict(float)))

    def add(self, endpoint: str, tag: str, result: ChatResult, cost: float, seconds: float) -> None:
        row = self.rows[(endpoint, tag)]
        row["calls"] += 1
        row["cache_hits"] += result.cached
        row["errors"] += result.error is not None
        row["prompt_tokens"] += result.prompt_tokens
        row["completion_tokens"] += result.completion_tokens
        row["cost_usd"] += cost
        row["seconds"] += seconds

    def totals(self) -> dict[str, float]:
        out: dict[str, float] = defaultdict(float)
        for row in self.rows.values():
            for key, value in row.items():
                out[key] += value
        return dict(out)

    def flat(self, prefix: str = "llm") -> dict[str, float]:
        out = {f"{prefix}.{k}": round(v, 6) for k, v in self.totals().items()}
        for (endpoint, tag), row in sorted(self.rows.items()):
            for key in ("calls", "cache_hits", "errors", "completion_tokens", "cost_usd"):
                out[f"{prefix}.{endpoint}.{tag}.{key}"] = round(row[key], 6)
        return out


def _retry_after(exc: Exception) -> float | None:
    response = getattr(exc, "response", None)
    value = response.headers.get("retry-after") if response is not None else None
    try:
        return float(value) if value is not None else None
    except ValueError:
        return None


class OpenAIChat:
    """ChatModel over any OpenAI-compatible endpoint (embedded llama.cpp, vLLM, OpenAI)."""

    def __init__(self, name: str, *, base_url: str | Callable[[], str], model: str, api_key: str, model_id: str,
                 cache: ResponseCache, ledger: Ledger, concurrency: int = 4, timeout_s: float = 300,
                 max_retries: int = 4, json_schema: bool = True, price_in: float = 0.0,
                 price_out: float = 0.0):
        self.name, self.model, self.model_id = name, model, model_id
        self.concurrency, self.max_retries, self.json_schema = concurrency, max_retries, json_schema
        self.cache, self.ledger = cache, ledger
        self.prices = (price_in, price_out)
        # a callable base_url starts its server on the first cache miss (see _http)
        self._base_url, self._api_key, self._timeout = base_url, api_key, timeout_s
        self._loop: asyncio.AbstractEventLoop | None = None
        self._client: openai.AsyncOpenAI | None = None

    def _bind_loop(self) -> None:
        """The HTTP pool, semaphore and lock belong to one event loop: rebuild them for a new one."""
        loop = asyncio.get_running_loop()
        if loop is not self._loop:
            self._sem = asyncio.Semaphore(self.concurrency)
            self._start_lock = asyncio.Lock()
            self._client = None
            self._loop = loop

    async def _http(self) -> openai.AsyncOpenAI:
        """The client, starting a lazy endpoint first: a fully cached rerun starts no server."""
        if self._client is None:
            async with self._start_lock:
                if callable(self._base_url):
                    self._base_url = await asyncio.to_thread(self._base_url)
                if self._client is None:
                    # retries are ours (Retry-After, jitter, error rows); the SDK's would hide failures
                    self._client = openai.AsyncOpenAI(base_url=self._base_url, api_key=self._api_key,
                                                      timeout=self._timeout, max_retries=0)
        return self._client

    def _key(self, req: ChatRequest) -> str:
        return cache_key({"model": self.model_id, "messages": req.messages, "temperature": req.temperature,
                          "max_tokens": req.max_tokens, "seed": req.seed, "schema": req.schema})

    def _kwargs(self, req: ChatRequest, max_tokens: int) -> dict[str, Any]:
        kwargs: dict[str, Any] = {"model": self.model, "messages": req.messages,
                                  "temperature": req.temperature, "max_tokens": max_tokens}
        if req.seed is not None:
            kwargs["seed"] = req.seed
        if req.schema is not None:
            kwargs["response_format"] = (
                {"type": "json_schema", "json_schema": {"name": req.schema_name, "schema": req.schema}}
                if self.json_schema else {"type": "json_object"})
        return kwargs

    async def _call_once(self, req: ChatRequest, max_tokens: int) -> ChatResult:
        client = await self._http()
        resp = await client.chat.completions.create(**self._kwargs(req, max_tokens))
        usage = resp.usage
        result = ChatResult(text=None, model=self.model_id,
                            prompt_tokens=usage.prompt_tokens if usage else 0,
                            completion_tokens=usage.completion_tokens if usage else 0)
        if not resp.choices:
            result.error = "empty choices"
            return result
        choice = resp.choices[0]
        result.text, result.finish_reason = choice.message.content, choice.finish_reason
        if choice.finish_reason == "length":  # a cut reply is never training data, even if it parses
            result.error = f"cut by the token limit ({max_tokens} tokens; finish_reason=length)"
        elif req.schema is not None:
            result.data, reason = parse_json_object(result.text)
            if result.data is None:
                result.error = f"unparsable output ({reason}; finish_reason={choice.finish_reason})"
        elif not result.text:
            result.error = "empty output"
        return result

    async def _attempts(self, req: ChatRequest) -> ChatResult:
        """Transport failures retry up to max_retries with jittered backoff (Retry-After wins);
        a bad reply (empty, unparsable, cut by the length limit) is retried once, with twice the
        token budget when it was cut."""
        max_tokens, content_retries = req.max_tokens, 1
        result = ChatResult(text=None, error="not attempted")
        for attempt in range(self.max_retries + 1):
            delay = min(30.0, 0.5 * 2**attempt) * (0.5 + random.random())
            try:
                result = await self._call_once(req, max_tokens)
            except RETRYABLE as exc:
                result = ChatResult(text=None, error=f"{type(exc).__name__}: {exc}"[:500], model=self.model_id)
                delay = max(delay, _retry_after(exc) or 0.0)
            except (ValueError, AttributeError, TypeError) as exc:  # a 200 that is not a completion
                result = ChatResult(text=None, error=f"malformed response: {type(exc).__name__}: {exc}"[:500],
                                    model=self.model_id)
            except openai.APIStatusError as exc:  # 4xx other than 429: retrying cannot help
                return ChatResult(text=None, error=f"HTTP {exc.status_code}: {exc.message}"[:500], model=self.model_id)
            else:
                if result.error is None or content_retries == 0:
                    return result
                content_retries -= 1
                if result.finish_reason == "length":
                    max_tokens *= 2
                continue  # the server answered: no backoff needed
            if attempt < self.max_retries:
                await asyncio.sleep(delay)
        return result

    async def aclose(self) -> None:
        """Close the HTTP pool before its event loop ends (run_batch calls this)."""
        if self._client is not None:
            await self._client.close()
            self._client = None

    async def complete(self, request: ChatRequest) -> ChatResult:
        key = self._key(request)
        hit = self.cache.get(key)
        if hit is not None:
            result = ChatResult(**hit, cached=True)
            self.ledger.add(self.name, request.tag, result, 0.0, 0.0)
            return result
        self._bind_loop()
        async with self._sem:
            start = time.monotonic()
            result = await self._attempts(request)
            seconds = time.monotonic() - start
        cost = (result.prompt_tokens * self.prices[0] + result.completion_tokens * self.prices[1]) / 1e6
        self.ledger.add(self.name, request.tag, result, cost, seconds)
        if result.error is None:
            self.cache.put(key, {k: v for k, v in vars(result).items() if k != "cached"})
        return result
