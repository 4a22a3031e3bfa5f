"""Adaptive concurrency (AIMD) for one endpoint: back off when the server says it is overloaded,
creep back up while it keeps answering.

The in-flight limit starts at the configured concurrency, halves on an overload signal (429,
503) and grows by one after `limit` successes in a row (about one round of requests), never
above the configured ceiling nor below one. Like TCP's congestion window, a burst of overload
replies from requests that were all sent under the same limit halves it once, not once per
reply: each slot carries the epoch it was taken in, and only a signal from the current epoch
cuts the limit.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager

log = logging.getLogger(__name__)


class AIMDLimiter:
    """An async concurrency limit that adapts between 1 and `ceiling` (additive increase,
    multiplicative decrease). Use `async with limiter.slot() as epoch` and report the outcome
    inside the block with `overloaded(epoch)` or `succeeded()`."""

    def __init__(self, ceiling: int, name: str = "endpoint"):
        if ceiling < 1:
            raise ValueError("ceiling must be at least 1")
        self.ceiling = self.limit = ceiling
        self.name = name
        self.in_flight = 0
        self.epoch = 0
        self.min_limit = ceiling  # lowest limit reached: reported in metrics
        self.decreases = 0
        self._streak = 0
        self._cond: asyncio.Condition | None = None
        self._loop: asyncio.AbstractEventLoop | None = None

    def _condition(self) -> asyncio.Condition:
        """The condition belongs to one event loop; the limit itself outlives loops."""
        loop = asyncio.get_running_loop()
        if self._cond is None or loop is not self._loop:
            self._cond, self._loop, self.in_flight = asyncio.Condition(), loop, 0
        return self._cond

    async def acquire(self) -> int:
        """Wait until fewer than `limit` requests are in flight, take a slot; return the epoch.
        Pair every acquire with one `release` (or use `slot`)."""
        cond = self._condition()
        async with cond:
            await cond.wait_for(lambda: self.in_flight < self.limit)
            self.in_flight += 1
            return self.epoch

    async def release(self) -> None:
        cond = self._condition()
        async with cond:
            self.in_flight -= 1
            cond.notify_all()

    @asynccontextmanager
    async def slot(self) -> AsyncIterator[int]:
        """Wait until fewer than `limit` requests are in flight; yield the current epoch."""
        epoch = await self.acquire()
        try:
            yield epoch
        finally:
            await self.release()

    def overloaded(self, epoch: int) -> None:
        """The server refused for load (429/503): halve the limit once per epoch."""
        self._streak = 0
        if epoch != self.epoch:
            return  # sent before the last cut: that cut already answered this overload
        before, self.limit = self.limit, max(1, self.limit // 2)
        self.epoch += 1
        self.decreases += 1
        self.min_limit = min(self.min_limit, self.limit)
        if self.limit != before:
            log.info("%s: overloaded, concurrency %d -> %d", self.name, before, self.limit)

    def succeeded(self) -> None:
        """A completed call: after `limit` successes in a row, allow one more in flight."""
        self._streak += 1
        if self._streak >= self.limit and self.limit < self.ceiling:
            self.limit += 1
            self._streak = 0  # waiters see the new limit when this call's slot is released
