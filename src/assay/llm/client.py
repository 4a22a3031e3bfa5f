"""The one seam to language models: an async OpenAI-compatible chat client with bounded
concurrency, timeouts, retries with jittered backoff (honouring Retry-After), structured JSON
output, adaptive concurrency (AIMD, see limiter.py), requests/tokens-per-minute limits (params and
the provider's rate-limit headers, see ratelimit.py), a response cache and a token/cost ledger.
Failures come back as results with `error`; nothing here raises for a single bad call. The one
exception: an endpoint that cannot be reached at all on first use raises AssayError at once."""

from __future__ import annotations

import asyncio
import random
import time
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any, Protocol
from urllib.parse import urlsplit
from urllib.request import getproxies, proxy_bypass

import openai

from assay.errors import AssayError
from assay.llm.cache import ResponseCache, cache_key
from assay.llm.ledger import Ledger, error_kind  # noqa: F401  (error_kind: imported from here)
from assay.llm.limiter import AIMDLimiter
from assay.llm.parse import parse_json_object
from assay.llm.ratelimit import RateLimiter, estimate_tokens

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
    logprobs: int = 0  # > 0: return this many alternatives (with log-probabilities) per output token
    short_ok: bool = False  # a reply cut by max_tokens is the point (a one-token verdict), not an error


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
    top_logprobs: list[list[Any]] | None = None  # [[token, logprob], ...] for the first output token
    prompt_evaluated: int | None = None  # prompt tokens the server computed (llama.cpp `timings`); the rest came from its KV cache


class ChatModel(Protocol):
    name: str
    model_id: str
    concurrency: int

    async def complete(self, request: ChatRequest) -> ChatResult: ...


def enforces_schema(model: ChatModel) -> bool:
    """Whether the endpoint is sent JSON schemas to enforce (`json_schema: true`, the default):
    only then can a schema `enum` restrict what the model writes."""
    return bool(getattr(model, "json_schema", True))


MAX_RETRY_AFTER_S = 120.0  # a proxy asking for an hour would stall the stage with no word


def _first_token_logprobs(choice: Any) -> list[list[Any]] | None:
    """[[token, logprob], ...] of the first output token's alternatives, when the server sent them."""
    content = getattr(getattr(choice, "logprobs", None), "content", None)
    if not content:
        return None
    return [[alt.token, float(alt.logprob)] for alt in (content[0].top_logprobs or [])] or None


def _retry_after(exc: Exception) -> float | None:
    """Seconds the server asked us to wait (capped at MAX_RETRY_AFTER_S), or None."""
    response = getattr(exc, "response", None)
    value = response.headers.get("retry-after") if response is not None else None
    try:
        return min(max(0.0, float(value)), MAX_RETRY_AFTER_S) if value is not None else None
    except ValueError:
        return None


class OpenAIChat:
    """ChatModel over any OpenAI-compatible endpoint (embedded llama.cpp, vLLM, OpenAI)."""

    def __init__(self, name: str, *, base_url: str | Callable[[], str], model: str, api_key: str, model_id: str,
                 cache: ResponseCache, ledger: Ledger, concurrency: int = 4, timeout_s: float = 300,
                 max_retries: int = 4, json_schema: bool = True, price_in: float = 0.0,
                 price_out: float = 0.0, rpm: int = 0, tpm: int = 0):
        self.name, self.model, self.model_id = name, model, model_id
        self.concurrency, self.max_retries, self.json_schema = concurrency, max_retries, json_schema
        self.cache, self.ledger = cache, ledger
        self.prices = (price_in, price_out)
        # a callable base_url starts its server on the first cache miss (see _http)
        self._base_url, self._api_key, self._timeout = base_url, api_key, timeout_s
        self._loop: asyncio.AbstractEventLoop | None = None
        self._client: openai.AsyncOpenAI | None = None
        self._checked = False  # the endpoint answered a TCP connect
        self.limiter = AIMDLimiter(concurrency, name)  # in-flight limit: halves on 429/503, recovers
        # requests/tokens per minute: params and the provider's x-ratelimit-* headers. Anything with
        # `acquire(tokens)` (async), `update_from_headers(headers)` and `pause(seconds)` can replace it
        self.rate = RateLimiter(rpm, tpm, name)

    def _bind_loop(self) -> None:
        """The HTTP pool and the start lock belong to one event loop: rebuild them for a new one."""
        loop = asyncio.get_running_loop()
        if loop is not self._loop:
            self._start_lock = asyncio.Lock()
            self._client = None
            self._loop = loop

    async def _http(self) -> openai.AsyncOpenAI:
        """The client, starting a lazy endpoint first: a fully cached rerun starts no server.
        A remote endpoint is checked for reachability once, before its first call."""
        if self._client is None:
            async with self._start_lock:
                if self._client is None:
                    if callable(self._base_url):
                        self._base_url = await asyncio.to_thread(self._base_url)
                        self._checked = True  # it answered /health
                    if not self._checked:
                        await self._reachable(self._base_url)
                        self._checked = True
                    # retries are ours (Retry-After, jitter, error rows); the SDK's would hide failures
                    self._client = openai.AsyncOpenAI(base_url=self._base_url, api_key=self._api_key,
                                                      timeout=self._timeout, max_retries=0)
        return self._client

    async def _reachable(self, base_url: str) -> None:
        """Fail fast when nothing listens at the endpoint: retrying a closed port or an unknown
        host for minutes, call after call, helps nobody. Raises AssayError (exit 2)."""
        parts = urlsplit(base_url)
        if getproxies().get(parts.scheme) and not proxy_bypass(parts.hostname or ""):
            return  # through a proxy (httpx honours *_PROXY): a direct connect proves nothing
        port = parts.port or (443 if parts.scheme == "https" else 80)
        problem: Exception | None = None
        for attempt in range(3):  # a server that is just coming up gets ~1.5 s
            try:
                _, writer = await asyncio.wait_for(asyncio.open_connection(parts.hostname, port),
                                                   timeout=min(10.0, self._timeout))
                writer.close()
                return
            except (OSError, asyncio.TimeoutError) as exc:
                problem = exc
                await asyncio.sleep(0.5 * attempt)
        raise AssayError(f"llm.endpoints.{self.name}: cannot connect to {base_url} "
                         f"({type(problem).__name__}: {problem or 'timed out'}); start that server or fix "
                         f"base_url in params.yaml")

    def _key(self, req: ChatRequest) -> str:
        extra = {"logprobs": req.logprobs} if req.logprobs else {}
        return cache_key({"model": self.model_id, "messages": req.messages, "temperature": req.temperature,
                          "max_tokens": req.max_tokens, "seed": req.seed, "schema": req.schema, **extra})

    def _kwargs(self, req: ChatRequest, max_tokens: int) -> dict[str, Any]:
        kwargs: dict[str, Any] = {"model": self.model, "messages": req.messages,
                                  "temperature": req.temperature, "max_tokens": max_tokens}
        if req.seed is not None:
            kwargs["seed"] = req.seed
        if req.logprobs:
            kwargs |= {"logprobs": True, "top_logprobs": req.logprobs}
        if req.schema is not None:
            kwargs["response_format"] = (
                {"type": "json_schema", "json_schema": {"name": req.schema_name, "schema": req.schema}}
                if self.json_schema else {"type": "json_object"})
        return kwargs

    async def _call_once(self, req: ChatRequest, max_tokens: int) -> ChatResult:
        client = await self._http()
        raw = await client.chat.completions.with_raw_response.create(**self._kwargs(req, max_tokens))
        self.rate.update_from_headers(raw.headers)
        return self.interpret(raw.parse(), req, max_tokens)

    def interpret(self, resp: Any, req: ChatRequest, max_tokens: int) -> ChatResult:
        """A chat completion (live or from a batch output file) -> ChatResult; a cut, empty or
        unparsable reply becomes `error`. Raises ValueError/AttributeError/TypeError on a body
        that is not a completion."""
        usage = resp.usage
        result = ChatResult(text=None, model=self.model_id,
                            prompt_tokens=usage.prompt_tokens if usage else 0,
                            completion_tokens=usage.completion_tokens if usage else 0)
        if not resp.choices:
            result.error = "empty choices"
            return result
        choice = resp.choices[0]
        result.text, result.finish_reason = choice.message.content, choice.finish_reason
        result.top_logprobs = _first_token_logprobs(choice)
        timings = getattr(resp, "timings", None)  # llama.cpp: prompt_n = evaluated, cache_n = reused
        if isinstance(timings, dict) and isinstance(timings.get("prompt_n"), int):
            result.prompt_evaluated = timings["prompt_n"]
        if choice.finish_reason == "length" and not req.short_ok:  # a cut reply is never training data, even if it parses
            result.error = f"cut by the token limit ({max_tokens} tokens; finish_reason=length)"
        elif req.schema is not None:
            result.data, reason = parse_json_object(result.text)
            if result.data is None:
                result.error = f"unparsable output ({reason}; finish_reason={choice.finish_reason})"
        elif not result.text:
            result.error = "empty output"
        return result

    async def _try(self, req: ChatRequest, max_tokens: int) -> tuple[ChatResult, float | None]:
        """One HTTP attempt in a limiter slot: (result, None) when the server answered, or an
        error result and the Retry-After delay (0 when absent) when a retry may help. The rate
        budget is taken before the slot, so waiting for it holds no slot."""
        self._note_wait(await self.rate.acquire(estimate_tokens(req.messages, max_tokens)))
        async with self.limiter.slot() as epoch:
            try:
                result = await self._call_once(req, max_tokens)
            except RETRYABLE as exc:
                response = getattr(exc, "response", None)
                if response is not None:
                    self.rate.update_from_headers(response.headers)
                if isinstance(exc, openai.RateLimitError) or getattr(exc, "status_code", None) == 503:
                    self.limiter.overloaded(epoch)
                if isinstance(exc, openai.RateLimitError):  # over the account's rate: nobody sends for a while
                    self.rate.pause(_retry_after(exc) or 0.0)
                error = f"{type(exc).__name__}: {exc}"[:500]
                return ChatResult(text=None, error=error, model=self.model_id), _retry_after(exc) or 0.0
            except (ValueError, AttributeError, TypeError) as exc:  # a 200 that is not a completion
                error = f"malformed response: {type(exc).__name__}: {exc}"[:500]
                return ChatResult(text=None, error=error, model=self.model_id), 0.0
            except openai.APIStatusError as exc:  # 4xx other than 429: retrying cannot help
                error = f"HTTP {exc.status_code}: {exc.message}"[:500]
                return ChatResult(text=None, error=error, model=self.model_id), None
            self.limiter.succeeded()
            return result, None

    async def _attempts(self, req: ChatRequest) -> ChatResult:
        """Transport failures retry up to max_retries with jittered backoff (Retry-After wins);
        a bad reply (empty, unparsable, cut by the length limit) is retried once, with twice the
        token budget when it was cut. Backoff sleeps hold no concurrency slot."""
        max_tokens, content_retries = req.max_tokens, 1
        result = ChatResult(text=None, error="not attempted")
        for attempt in range(self.max_retries + 1):
            result, retry_after = await self._try(req, max_tokens)
            if retry_after is None:  # the server answered (or refused for good)
                final = result.error is None or result.error.startswith("HTTP ")  # ok, or a 4xx
                if final or content_retries == 0:
                    return result
                content_retries -= 1
                if result.finish_reason == "length":
                    max_tokens *= 2
                continue  # no backoff needed
            if attempt < self.max_retries:
                await asyncio.sleep(max(min(30.0, 0.5 * 2**attempt) * (0.5 + random.random()), retry_after))
        return result

    def _note_wait(self, seconds: float) -> None:
        if seconds > 0:
            self.ledger.rate_wait_s[self.name] = self.ledger.rate_wait_s.get(self.name, 0.0) + seconds

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
        start = time.monotonic()
        result = await self._attempts(request)
        seconds = time.monotonic() - start
        cost = (result.prompt_tokens * self.prices[0] + result.completion_tokens * self.prices[1]) / 1e6
        self.ledger.add(self.name, request.tag, result, cost, seconds)
        if self.limiter.decreases:  # the endpoint pushed back: say how far concurrency fell
            self.ledger.throttled[self.name] = self.limiter.min_limit
        if result.error is None:
            self.cache.put(key, {k: v for k, v in vars(result).items() if k != "cached"})
        return result
