"""The shared state of a Ray run, each held by one named actor on the driver's node:

- the response cache (assay.llm.cache's SQLite file, where local mode keeps it): every worker asks
  it before calling a model and stores each answer the moment it arrives, so a worker or a driver
  killed with -9 loses no finished call;
- the score cache of the filters (assay.filters.scores), the same way;
- one AIMD limiter per endpoint (assay.llm.limiter): every actor's client takes its in-flight slot
  here, so `concurrency` bounds the endpoint across the whole cluster and a 429/503 seen by any
  worker halves it for all. A slot whose holder died comes back after a lease (a worker killed
  mid-call never releases it).

Workers reach them through `RemoteCache`, `RemoteScores` and `ClusterLimiter`, which have the
interfaces the local classes have, so the same client and scorers run unchanged in the actors.
"""

from __future__ import annotations

import asyncio
import itertools
import time
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from pathlib import Path
from typing import Any

import ray
from ray.util.scheduling_strategies import NodeAffinitySchedulingStrategy

from assay.filters.scores import ScoreCache
from assay.llm.cache import ResponseCache
from assay.llm.limiter import AIMDLimiter


class LimiterActor:
    """One endpoint's AIMDLimiter, served to the cluster. `acquire` returns (token, epoch);
    a token not released within `lease_s` is taken back (its holder died)."""

    def __init__(self, ceiling: int, name: str, lease_s: float):
        self.limiter, self.lease_s = AIMDLimiter(ceiling, name), lease_s
        self.leases: dict[int, float] = {}
        self._tokens = itertools.count()

    async def _expire(self) -> None:
        now = time.monotonic()
        for token, deadline in list(self.leases.items()):
            if deadline < now:
                await self.release(token)

    async def acquire(self) -> tuple[int, int]:
        while True:
            await self._expire()
            try:
                epoch = await asyncio.wait_for(self.limiter.acquire(), timeout=1.0)
            except asyncio.TimeoutError:
                continue  # look for expired leases again
            token = next(self._tokens)
            self.leases[token] = time.monotonic() + self.lease_s
            return token, epoch

    async def release(self, token: int) -> None:
        if self.leases.pop(token, None) is not None:
            await self.limiter.release()

    def overloaded(self, epoch: int) -> None:
        self.limiter.overloaded(epoch)

    def succeeded(self) -> None:
        self.limiter.succeeded()

    def stats(self) -> dict[str, int]:
        return {"limit": self.limiter.limit, "min_limit": self.limiter.min_limit,
                "decreases": self.limiter.decreases, "in_flight": len(self.leases)}


class ClusterLimiter:
    """AIMDLimiter's interface (slot, overloaded, succeeded) over the endpoint's LimiterActor."""

    def __init__(self, actor: Any):
        self.actor = actor
        self.decreases = 0  # overload signals this worker reported; the actor's stats say the rest

    @asynccontextmanager
    async def slot(self) -> AsyncIterator[int]:
        token, epoch = await self.actor.acquire.remote()
        try:
            yield epoch
        finally:
            await self.actor.release.remote(token)

    def overloaded(self, epoch: int) -> None:
        self.decreases += 1
        self.actor.overloaded.remote(epoch)

    @property
    def min_limit(self) -> int:
        return ray.get(self.actor.stats.remote())["min_limit"]

    def succeeded(self) -> None:
        self.actor.succeeded.remote()  # ordered after this worker's earlier calls; no need to wait


class RemoteCache:
    """ResponseCache's get/put through the cache actor. `used` collects what this shard used."""

    def __init__(self, actor: Any):
        self.actor = actor
        self.used: dict[str, dict[str, Any]] = {}

    def get(self, key: str) -> dict[str, Any] | None:
        value = ray.get(self.actor.get.remote(key))
        if value is not None:
            self.used[key] = value
        return value

    def put(self, key: str, value: dict[str, Any]) -> None:
        ray.get(self.actor.put.remote(key, value))  # committed before the caller goes on
        self.used[key] = value


class RemoteScores(ScoreCache):
    """ScoreCache.scores (same keys, same counting) with lookup/store on the score cache actor."""

    def __init__(self, actor: Any):  # no local database: the actor holds it
        self.actor = actor
        self.hits = self.misses = 0

    def lookup(self, scorer: str, keys: list[str]) -> dict[str, Any]:
        return ray.get(self.actor.lookup.remote(scorer, keys))

    def store(self, scorer: str, items: list[tuple[str, Any]]) -> None:
        ray.get(self.actor.store.remote(scorer, items))

    def close(self) -> None:
        pass


class _Forget(dict):
    def __setitem__(self, key: str, value: Any) -> None:
        pass


class _Responses(ResponseCache):
    """The cache actor's class: a ResponseCache that does not keep what it served (each shard
    reports what it used; a restarted actor would have lost it anyway)."""

    def __init__(self, directory: str):
        super().__init__(directory)
        self.used = _Forget()


def _here() -> dict[str, Any]:
    """Actor options: on the driver's node (where the cache files are), no CPU, restarted if killed."""
    node = ray.get_runtime_context().get_node_id()
    return {"num_cpus": 0, "max_restarts": -1, "max_task_retries": -1,
            "scheduling_strategy": NodeAffinitySchedulingStrategy(node_id=node, soft=False)}


def start_state(cache_dir: str | Path, endpoints: dict[str, tuple[int, float]], run: str) -> dict[str, Any]:
    """Start the run's actors; returns their handles (keep them: an actor without a handle is
    collected): {"cache", "scores", "limiters": {endpoint: handle}}. `endpoints`: {name:
    (concurrency, lease seconds)}. Names carry the run id (`ray list actors` shows them)."""
    directory = str(Path(cache_dir).resolve())
    state = {"cache": ray.remote(_Responses).options(name=f"assay-cache-{run}", **_here()).remote(directory),
             "scores": ray.remote(ScoreCache).options(name=f"assay-scores-{run}", **_here()).remote(directory),
             "limiters": {e: ray.remote(LimiterActor).options(name=f"assay-limit-{run}-{e}", **_here())
                          .remote(concurrency, e, lease_s) for e, (concurrency, lease_s) in endpoints.items()}}
    ray.get([h.__ray_ready__.remote() for h in [state["cache"], state["scores"], *state["limiters"].values()]])
    return state


def limiter_stats(state: dict[str, Any]) -> dict[str, dict[str, int]]:
    """{endpoint: the limiter actor's stats} at the end of a stage."""
    return {e: ray.get(h.stats.remote()) for e, h in state["limiters"].items()}


def stop_state(state: dict[str, Any]) -> None:
    for handle in [state["cache"], state["scores"], *state["limiters"].values()]:
        ray.kill(handle, no_restart=True)
