"""assay.scale's pieces without a cluster: the shared limiter's leases, ledger merging, the
`executor` param. (tests/test_ray.py runs them on a real cluster.)"""

import asyncio
import time
from pathlib import Path

import pytest
import yaml

from assay.config import load_params
from assay.errors import AssayError
from assay.llm import ChatResult, Ledger

pytest.importorskip("ray")

from assay.scale import ledger_state, merge_ledger  # noqa: E402
from assay.scale.cluster import LimiterActor  # noqa: E402


def test_a_slot_whose_holder_died_comes_back_after_its_lease():
    async def run():
        limiter = LimiterActor(2, "stub", lease_s=0.3)
        held = [await limiter.acquire(), await limiter.acquire()]  # a killed worker never releases these
        start = time.monotonic()
        token, epoch = await limiter.acquire()
        waited = time.monotonic() - start
        assert waited >= 0.3 and epoch == 0 and token not in [t for t, _ in held]
        await limiter.release(token)
        await limiter.release(held[0][0])  # the expired lease's late release changes nothing
        return limiter.stats()

    stats = asyncio.run(run())
    assert stats["in_flight"] == 0 and stats["limit"] == 2


def test_an_overload_halves_the_shared_limit_once_per_epoch():
    async def run():
        limiter = LimiterActor(4, "stub", lease_s=60)
        slots = [await limiter.acquire() for _ in range(3)]
        for _, epoch in slots:  # three replies sent under the same limit: one cut
            limiter.overloaded(epoch)
        return limiter.stats()

    stats = asyncio.run(run())
    assert stats["limit"] == 2 and stats["min_limit"] == 2 and stats["decreases"] == 1


def test_shard_ledgers_merge_into_the_stage_ledger():
    shard = Ledger()
    shard.add("stub", "qa", ChatResult(text="a", prompt_tokens=10, completion_tokens=5), 0.5, 1.0)
    shard.add("stub", "qa", ChatResult(text=None, error="RateLimitError: slow"), 0.0, 0.1)
    shard.throttled["stub"] = 2
    total = Ledger()
    total.add("stub", "qa", ChatResult(text="b", completion_tokens=7, cached=True), 0.0, 0.0)
    merge_ledger(total, ledger_state(shard))
    merge_ledger(total, {"rows": {}, "errors": {}, "throttled": {"stub": 1}})
    flat = total.flat()
    assert flat["llm.stub.qa.calls"] == 3 and flat["llm.stub.qa.errors"] == 1 and flat["llm.cost_usd"] == 0.5
    assert flat["llm.stub.error.RateLimitError"] == 1 and flat["llm.stub.concurrency_min"] == 1
    assert flat["llm.completion_tokens"] == 5 and flat["llm.cached_completion_tokens"] == 7


def test_an_unknown_executor_names_the_key_and_the_choices(tmp_path):
    raw = yaml.safe_load(Path("params.yaml").read_text(encoding="utf-8"))
    raw["executor"] = "spark"
    path = tmp_path / "params.yaml"
    path.write_text(yaml.safe_dump(raw))
    with pytest.raises(AssayError, match=r"executor: .*'local' or 'ray'"):
        load_params(path)
    raw["executor"], raw["ray"] = "ray", {"shard_rows": 0}
    path.write_text(yaml.safe_dump(raw))
    with pytest.raises(AssayError, match=r"ray.shard_rows"):
        load_params(path)
    assert load_params("params.yaml").executor == "local"  # the default stays local
