"""`executor: ray`: the stages' per-row work in Ray Data actors, with the same params and outputs.

The driver (the stage script) reads its input as today, hands it to Ray Data as shards of
`ray.shard_rows` rows, and a fixed pool of `ray.actors` actors (ActorPoolStrategy; Ray restarts a
killed actor and retries its shard) runs the local code on each shard with the same `assay.llm`
client. Shared state lives in named actors (see cluster.py): the response and score caches, and
one limiter per endpoint. Results come back in input order (Ray Data's preserve_order) and the
stage writes the same Parquet, metrics and responses file as in local mode.

`connect` joins the cluster at RAY_ADDRESS, or starts a local one.
"""

from __future__ import annotations

import os
import uuid
from collections.abc import Callable, Iterator
from contextlib import ExitStack, contextmanager
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import pandas as pd

from assay.config import Params
from assay.llm import Ledger
from assay.llm.cache import ResponseCache

Work = Callable[[pd.DataFrame, dict[str, Any], Any, Any], tuple[Any, Any]]


def connect() -> None:
    """Join RAY_ADDRESS (a running cluster), else start a local one; usage stats stay off.
    Workers run the driver's `assay` code (shipped as a runtime_env module)."""
    os.environ.setdefault("RAY_USAGE_STATS_ENABLED", "0")
    import ray

    import assay

    if ray.is_initialized():
        return
    ray.init(address=os.environ.get("RAY_ADDRESS") or None, include_dashboard=False,
             log_to_driver=False, runtime_env={"py_modules": [str(Path(assay.__file__).parent)]})


@dataclass
class Session:
    """The driver's side of one Ray stage: the actors' handles, endpoints and what the shards reported."""

    params: Params
    endpoints: list[str]
    urls: dict[str, tuple[str, str]]  # embedded endpoint -> (base_url, model_id), served by the driver
    state: dict[str, Any]
    ledger: Ledger
    used: dict[str, dict] = field(default_factory=dict)  # responses the shards used
    score_counts: list[int] = field(default_factory=lambda: [0, 0])  # score cache hits, misses

    def map(self, frame: pd.DataFrame, work: Work, context: Any) -> list[tuple[Any, Any]]:
        """`work(shard, models, score_cache, context)` on every shard of `frame` in the actor pool;
        its (rows, extra) per shard, in input order. Ledgers, used responses and score-cache
        counts of the shards are merged into this session."""
        from assay.scale.shards import run_shards

        out = []
        for result in run_shards(self, frame, work, context):
            merge_ledger(self.ledger, result["ledger"])
            self.used.update(result["used"])
            self.score_counts = [a + b for a, b in zip(self.score_counts, result["score_counts"], strict=True)]
            out.append((result["rows"], result["extra"]))
        return out


def ledger_state(ledger: Ledger) -> dict[str, Any]:
    """A Ledger as plain data (its defaultdicts do not pickle)."""
    return {"rows": {k: dict(v) for k, v in ledger.rows.items()}, "errors": dict(ledger.error_kinds),
            "throttled": dict(ledger.throttled), "batch": dict(ledger.batch), "rate_wait_s": dict(ledger.rate_wait_s)}


def merge_ledger(into: Ledger, state: dict[str, Any]) -> None:
    for key, row in state["rows"].items():
        for name, value in row.items():
            into.rows[key][name] += value
    into.error_kinds.update(state["errors"])
    for endpoint, limit in state["throttled"].items():
        into.throttled[endpoint] = min(limit, into.throttled.get(endpoint, limit))
    into.batch.update(state.get("batch", {}))
    for endpoint, seconds in state.get("rate_wait_s", {}).items():
        into.rate_wait_s[endpoint] = into.rate_wait_s.get(endpoint, 0.0) + seconds


def _serve_embedded(params: Params, names: list[str], stack: ExitStack) -> dict[str, tuple[str, str]]:
    """Embedded endpoints are started by the driver (on its loopback: actors on its node reach
    them; a multi-node cluster needs base_url endpoints)."""
    from assay.llm.server import embedded_server
    from assay.llm.weights import resolve_weights

    urls = {}
    for name in names:
        ep = params.llm.endpoints[name]
        if ep.embedded:
            _, model_id = resolve_weights(ep.embedded)
            info = stack.enter_context(embedded_server(ep.embedded, n_parallel=ep.n_parallel, n_ctx=ep.n_ctx,
                                                       threads=ep.threads))
            urls[name] = (info.base_url, model_id)
    return urls


@contextmanager
def ray_session(params: Params, names: list[str], ledger: Ledger,
                responses: str | Path | None = None) -> Iterator[Session]:
    """open_models' counterpart for `executor: ray`: seeds the cache from `responses`, starts the
    run's actors, yields a Session; on success rewrites `responses` with what the shards used."""
    from assay.scale.cluster import limiter_stats, start_state, stop_state

    connect()
    names = list(dict.fromkeys(names))
    cache = ResponseCache(params.llm.cache_dir)
    if responses is not None:
        ledger.responses["seeded"] = cache.seed(responses)
    eps = params.llm.endpoints
    leases = {n: (eps[n].concurrency, 2 * eps[n].timeout_s + 5) for n in names}  # a slot spans one attempt
    with ExitStack() as stack:
        stack.callback(cache.close)
        urls = _serve_embedded(params, names, stack)
        state = start_state(params.llm.cache_dir, leases, uuid.uuid4().hex[:12])
        stack.callback(stop_state, state)
        session = Session(params, names, urls, state, ledger)
        yield session
        for endpoint, stats in limiter_stats(state).items():
            if stats["decreases"]:
                ledger.throttled[endpoint] = stats["min_limit"]
        if responses is not None:
            cache.used = session.used
            ledger.responses["recorded"] = cache.write_used(responses)
