"""The Ray Data side: a fixed pool of actors maps shards of a frame through a stage's work function.

Each actor builds the endpoints' clients (assay.llm, unchanged) on the cluster's shared cache and
limiters for every shard, and returns one row per shard: the shard's rows and what it used
(ledger, responses, score-cache counts), pickled, so that no column type is re-inferred on the
way back. Ray restarts a killed actor (max_restarts) and retries its shard (max_task_retries);
the retried shard finds its finished calls in the cache actor.
"""

from __future__ import annotations

import pickle
from collections.abc import Iterator
from typing import TYPE_CHECKING, Any

import numpy as np
import pandas as pd
import ray

from assay.config import Params
from assay.llm import Ledger
from assay.llm.endpoints import chat_model
from assay.llm.ratelimit import RateLimiter
from assay.scale.cluster import ClusterLimiter, RemoteCache, RemoteScores

if TYPE_CHECKING:
    from assay.scale import Session, Work


class ShardWorker:
    """Ray Data callable class: one instance per actor, called once per shard."""

    def __init__(self, work: Work, params: Params, endpoints: list[str], urls: dict[str, tuple[str, str]],
                 state: dict[str, Any], context: Any):
        self.work, self.params, self.endpoints, self.urls = work, params, endpoints, urls
        self.context = ray.get(context) if isinstance(context, ray.ObjectRef) else context
        self.cache_actor = state["cache"]
        self.scores_actor = state["scores"]
        self.limiters = state["limiters"]

    def _models(self, cache: RemoteCache, ledger: Ledger) -> dict[str, Any]:
        models = {}
        for name in self.endpoints:
            base_url, model_id = self.urls.get(name, (None, None))
            ep = self.params.llm.endpoints[name]
            model = chat_model(name, ep, cache, ledger, base_url, model_id)
            model.limiter = ClusterLimiter(self.limiters[name])  # one budget for the whole cluster
            if ep.rpm or ep.tpm:  # requests/tokens per minute: each actor gets its share
                share = self.params.ray.actors
                model.rate = RateLimiter(ep.rpm and max(1, ep.rpm // share), ep.tpm and max(1, ep.tpm // share), name)
            models[name] = model
        return models

    def __call__(self, shard: pd.DataFrame) -> dict[str, np.ndarray]:
        from assay.scale import ledger_state

        cache, scores, ledger = RemoteCache(self.cache_actor), RemoteScores(self.scores_actor), Ledger()
        rows, extra = self.work(shard.reset_index(drop=True), self._models(cache, ledger), scores, self.context)
        result = {"rows": rows, "extra": extra, "ledger": ledger_state(ledger), "used": cache.used,
                  "score_counts": [scores.hits, scores.misses]}
        return {"result": np.array([pickle.dumps(result)], dtype=object)}


def run_shards(session: Session, frame: pd.DataFrame, work: Work, context: Any) -> Iterator[dict[str, Any]]:
    """The shard results of `work` over `frame`, in input order."""
    if frame.empty:
        return
    ray.data.DataContext.get_current().execution_options.preserve_order = True
    cfg = session.params.ray
    shards = [frame.iloc[i : i + cfg.shard_rows] for i in range(0, len(frame), cfg.shard_rows)]
    context_ref = ray.put(context)  # held here while the actors (and any restarted one) need it
    # one block per shard, one task per block, one task at a time per actor (else shards queue on
    # the first actor up while the others start); Ray Data's actor pools restart a killed actor
    # and retry its task (max_restarts=-1, max_task_retries=-1 are its defaults)
    mapped = ray.data.from_pandas(shards).map_batches(
        ShardWorker, batch_size=None, batch_format="pandas",
        compute=ray.data.ActorPoolStrategy(size=min(cfg.actors, len(shards)), max_tasks_in_flight_per_actor=1),
        num_cpus=1,
        fn_constructor_kwargs={"work": work, "params": session.params, "endpoints": session.endpoints,
                               "urls": session.urls, "state": session.state, "context": context_ref})
    for row in mapped.iter_rows():
        yield pickle.loads(row["result"])
