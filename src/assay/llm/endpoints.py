"""Build ChatModels for the endpoints named in params, starting embedded servers as needed."""

from __future__ import annotations

import os
from collections.abc import Callable, Iterator
from contextlib import ExitStack, contextmanager
from pathlib import Path
from typing import Any

from assay.config import Endpoint, Params
from assay.errors import AssayError
from assay.llm.batchapi import BatchChat, BatchOptions
from assay.llm.cache import ResponseCache
from assay.llm.client import ChatModel, Ledger, OpenAIChat
from assay.llm.server import Decoding, embedded_server, process_cpu
from assay.llm.weights import resolve_weights


def describe(name: str, ep: Endpoint) -> dict[str, str]:
    """What may be recorded about an endpoint (metrics, card, MLflow): never a key."""
    if ep.embedded:
        return {"endpoint": name, "model": ep.embedded, "server": "embedded llama.cpp (127.0.0.1)"}
    mode = {"mode": "batch API"} if ep.batch else {}
    return {"endpoint": name, "model": str(ep.model), "server": str(ep.base_url), **mode}


def _api_key(name: str, ep: Endpoint) -> str:
    if not ep.api_key_env:
        return "not-needed"  # local servers (vLLM, llama.cpp) accept any key
    key = os.environ.get(ep.api_key_env)
    if not key:
        raise AssayError(f"llm.endpoints.{name}: environment variable {ep.api_key_env} is not set; "
                         f"export {ep.api_key_env}=<your key> (keys are read from the environment only)")
    return key


def batch_options(ep: Endpoint) -> BatchOptions:
    return BatchOptions(max_requests=ep.batch_max_requests, max_bytes=int(ep.batch_max_mb * 1024 * 1024),
                        discount=ep.batch_discount, poll_s=ep.batch_poll_s, poll_max_s=ep.batch_poll_max_s,
                        resubmits=ep.batch_resubmits, window=ep.batch_window)


def chat_model(name: str, ep: Endpoint, cache: Any, ledger: Ledger,
               base_url: str | Callable[[], str] | None = None, model_id: str | None = None) -> OpenAIChat:
    """The client of one endpoint (a BatchChat for `batch: true`). `cache`: a ResponseCache or
    anything with its get/put. An embedded endpoint needs `base_url` (its server's, or a callable
    that starts it) and the `model_id` of its weights; a remote one uses its own base_url and model."""
    common = {"cache": cache, "ledger": ledger, "concurrency": ep.concurrency, "timeout_s": ep.timeout_s,
              "max_retries": ep.max_retries, "price_in": ep.price_in_per_1m, "price_out": ep.price_out_per_1m,
              "rpm": ep.rpm, "tpm": ep.tpm, "json_schema": ep.json_schema}
    if ep.embedded:
        if base_url is None or model_id is None:
            raise ValueError(f"endpoint '{name}' is embedded: pass its base_url and model_id")
        return OpenAIChat(name, base_url=base_url, model=ep.embedded, api_key="not-needed", model_id=model_id,
                          **common)
    hosted = {"base_url": str(base_url or ep.base_url), "model": str(ep.model), "api_key": _api_key(name, ep),
              "model_id": f"{ep.base_url}|{ep.model}", **common}
    return BatchChat(name, batch=batch_options(ep), **hosted) if ep.batch else OpenAIChat(name, **hosted)


@contextmanager
def open_models(params: Params, names: list[str], ledger: Ledger,
                responses: str | Path | None = None) -> Iterator[dict[str, ChatModel]]:
    """Yield {endpoint name: ChatModel}. An embedded server starts on its model's first cache
    miss (so a fully cached rerun starts none) and stops when the block ends.

    `responses`: the stage's responses file (a DVC output). Its previous content seeds the cache
    first; when the block ends without error it is rewritten with exactly the responses used."""
    cache = ResponseCache(params.llm.cache_dir)
    if responses is not None:
        ledger.responses["seeded"] = cache.seed(responses)
    models: dict[str, ChatModel] = {}
    servers: dict[str, tuple[int, float]] = {}  # endpoint -> (server pid, its CPU-seconds when first used)
    with ExitStack() as stack:
        for name in dict.fromkeys(names):
            ep = params.llm.endpoints[name]
            if ep.embedded:
                _, model_id = resolve_weights(ep.embedded)  # fails fast with the install hint

                def start(ep: Endpoint = ep, name: str = name) -> str:
                    info = stack.enter_context(embedded_server(
                        ep.embedded, n_parallel=ep.n_parallel, n_ctx=ep.n_ctx, threads=ep.threads,
                        decoding=Decoding(ep.speculative, ep.draft, ep.draft_max, ep.poll)))
                    servers[name] = (info.pid, 0.0 if info.owned else process_cpu(info.pid))
                    return info.base_url

                models[name] = chat_model(name, ep, cache, ledger, start, model_id)
            else:
                models[name] = chat_model(name, ep, cache, ledger)
        try:
            yield models
            _server_cpu(servers, ledger)
            if responses is not None:
                ledger.responses["recorded"] = cache.write_used(responses)
        finally:
            cache.close()


def _server_cpu(servers: dict[str, tuple[int, float]], ledger: Ledger) -> None:
    """CPU-seconds each started or reused local server spent for this block (a server shared by
    two endpoints is counted once, under the first)."""
    seen: set[int] = set()
    for name, (pid, base) in servers.items():
        if pid not in seen:
            seen.add(pid)
            ledger.server_cpu[name] = max(0.0, process_cpu(pid) - base)
