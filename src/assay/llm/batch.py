"""Run many requests through a ChatModel with bounded concurrency and a progress bar.

Workers pull from the request iterator, so only `concurrency` requests are in flight and no
task per request is created up front: memory stays flat for any dataset size."""

from __future__ import annotations

import asyncio
from collections.abc import Iterable, Sized

from tqdm import tqdm

from assay.llm.client import ChatModel, ChatRequest, ChatResult


async def _run(model: ChatModel, requests: Iterable[ChatRequest], desc: str) -> list[ChatResult]:
    results: list[ChatResult | None] = []
    queue = enumerate(requests)  # lazy: a generator of requests is never materialised
    cached = 0
    bar = tqdm(total=len(requests) if isinstance(requests, Sized) else None, desc=desc, unit="call",
               dynamic_ncols=True, mininterval=1.0)

    async def worker() -> None:
        nonlocal cached
        for index, request in queue:  # shared iterator: each item is taken by exactly one worker
            if index >= len(results):
                results.extend([None] * (index + 1 - len(results)))
            result = results[index] = await model.complete(request)
            cached += result.cached
            bar.update(1)
            bar.set_postfix(cached=cached, refresh=False)

    try:
        await asyncio.gather(*(worker() for _ in range(max(1, model.concurrency))))
    finally:
        bar.close()
        close = getattr(model, "aclose", None)
        if close is not None:
            await close()
    return [r for r in results if r is not None]


def run_batch(model: ChatModel, requests: Iterable[ChatRequest], desc: str = "llm") -> list[ChatResult]:
    """Complete every request; results in request order, failures as results with `error`.
    `requests` may be a generator: it is consumed as workers free up, never all at once.
    A model with `complete_all` (an endpoint with `batch: true`, see batchapi.py) takes them all
    at once and answers through the provider's Batch API."""
    complete_all = getattr(model, "complete_all", None)
    if complete_all is not None:
        return complete_all(list(requests), desc)
    return asyncio.run(_run(model, requests, desc))


def run_batches(jobs: list[tuple[ChatModel, list[ChatRequest], str]]) -> list[list[ChatResult]]:
    """Several `run_batch` jobs at once, e.g. one per endpoint (a judge panel): results per job,
    in request order. Jobs on different servers overlap instead of waiting for each other."""

    if len({id(m) for m, _, _ in jobs}) < len(jobs):  # one client cannot be shared by two runs (each closes it)
        return [run_batch(m, reqs, desc) for m, reqs, desc in jobs]

    async def together() -> list[list[ChatResult]]:
        return list(await asyncio.gather(*(_run(m, reqs, desc) for m, reqs, desc in jobs)))

    return asyncio.run(together())
