"""AIMDLimiter: halve on overload (once per epoch), +1 after a run of successes, bounds hold."""

import asyncio

import pytest

from assay.llm.limiter import AIMDLimiter


def test_starts_at_the_ceiling_and_halves_down_to_one():
    limiter = AIMDLimiter(16)
    assert limiter.limit == 16
    for expected in (8, 4, 2, 1, 1):
        limiter.overloaded(limiter.epoch)
        assert limiter.limit == expected
    assert limiter.min_limit == 1 and limiter.decreases == 5


def test_a_burst_from_one_epoch_halves_once():
    limiter = AIMDLimiter(16)
    epoch = limiter.epoch  # 16 requests sent under the same limit all get 429
    for _ in range(16):
        limiter.overloaded(epoch)
    assert limiter.limit == 8 and limiter.decreases == 1


def test_recovers_by_one_after_a_run_of_successes_up_to_the_ceiling():
    limiter = AIMDLimiter(4)
    limiter.overloaded(limiter.epoch)
    limiter.overloaded(limiter.epoch)
    assert limiter.limit == 1
    limiter.succeeded()
    assert limiter.limit == 2  # a run as long as the limit: 1 success
    limiter.succeeded()
    assert limiter.limit == 2
    limiter.succeeded()
    assert limiter.limit == 3
    for _ in range(100):
        limiter.succeeded()
    assert limiter.limit == 4  # never above the configured concurrency


def test_an_overload_resets_the_success_run():
    limiter = AIMDLimiter(8)
    limiter.overloaded(limiter.epoch)  # 4
    for _ in range(3):
        limiter.succeeded()
    limiter.overloaded(limiter.epoch)  # 2, and the run of 3 is forgotten
    limiter.succeeded()
    assert limiter.limit == 2
    limiter.succeeded()
    assert limiter.limit == 3


def test_rejects_a_zero_ceiling():
    with pytest.raises(ValueError):
        AIMDLimiter(0)


def test_slots_bound_in_flight_and_follow_the_limit():
    limiter = AIMDLimiter(4)
    peak: list[int] = []

    async def call(overload: bool) -> None:
        async with limiter.slot() as epoch:
            peak.append(limiter.in_flight)
            await asyncio.sleep(0.01)
            if overload:
                limiter.overloaded(epoch)

    async def main() -> None:
        await asyncio.gather(*(call(False) for _ in range(12)))
        assert max(peak) == 4
        await asyncio.gather(*(call(i == 0) for i in range(4)))  # one 429: limit 4 -> 2
        peak.clear()
        await asyncio.gather(*(call(False) for _ in range(8)))
        assert max(peak) == 2

    asyncio.run(main())
    assert limiter.in_flight == 0


def test_the_limit_survives_a_new_event_loop():
    limiter = AIMDLimiter(8)

    async def overload() -> None:
        async with limiter.slot() as epoch:
            limiter.overloaded(epoch)

    asyncio.run(overload())
    asyncio.run(overload())  # run_batch uses one loop per batch: the state carries over
    assert limiter.limit == 2
