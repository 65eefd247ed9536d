"""Request batching: requests that share decoding options and arrive close together are decoded
in one call on one worker thread.

Every call into the model runs on the batcher's single worker thread, so the event loop stays free
to accept and answer requests while a batch decodes, and no two requests can race on the model
(``Model.set_alignment`` is state on the model: a request's layer and head are set on the worker,
right before its own batch).

When does a group of requests go?

- at once when it holds ``max_cost`` source tokens (``decode.batch_tokens``);
- at once when nothing suggests company is coming: no other request is inside the server on its
  way to the batcher, and the last batch held a single request (a client that sends one request at
  a time never waits for company; under concurrent load, the clients a batch has just answered
  come back within the window, and wait for each other instead of splitting into two halves that
  take turns);
- otherwise after ``window`` seconds, counted from the later of its first request's arrival and
  the moment the worker became free: no request waits longer than the window for company
  (requests that queued behind a batch waited for the worker, not for company). While the worker
  is busy, requests queue and the next batch takes every request of the oldest group (up to
  ``max_cost``), however long they have waited.

Groups are keyed by everything that must be equal within one call (decoding options, layer,
head, translate or align); a key that must not be shared (sampling, whose draws depend on the
batch) gets a group of its own.
"""

from __future__ import annotations

import asyncio
import itertools
import logging
import time
from collections.abc import Callable, Hashable, Sequence
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from typing import Any

from seq2attn.errors import Seq2AttnError

log = logging.getLogger("seq2attn.serve")


class ShuttingDown(Exception):
    """The server is stopping and takes no new work."""


@dataclass
class _Job:
    items: list[Any]
    cost: int
    future: asyncio.Future
    arrived: float


@dataclass
class _Group:
    key: Hashable  # what run() gets (a group of its own has another key in the table, this one here)
    jobs: list[_Job] = field(default_factory=list)
    cost: int = 0
    alone: bool = False  # never merged: dispatched without waiting

    @property
    def first(self) -> float:
        return self.jobs[0].arrived


@dataclass
class Stats:
    batches: int = 0
    requests: int = 0
    items: int = 0
    largest: int = 0  # most requests in one batch

    def as_dict(self) -> dict[str, float | int]:
        return {"batches": self.batches, "requests": self.requests, "sentences": self.items,
                "largest_batch_requests": self.largest,
                "mean_batch_requests": round(self.requests / self.batches, 3) if self.batches else 0.0}


Run = Callable[[Hashable, list[Any]], Sequence[Any]]


class Batcher:
    """``await submit(key, items, cost)`` gives ``run(key, items)``'s results for ``items``, where
    ``run`` got them together with other requests' items of the same key. ``run`` returns one
    result per item, in order, and is called on the worker thread only."""

    def __init__(self, run: Run, *, window: float, max_cost: int) -> None:
        self._run = run
        self.window = window
        self.max_cost = max_cost
        self.stats = Stats()
        self.incoming = 0  # requests inside the server that have not reached submit() yet
        self.busy = False
        self._groups: dict[Hashable, _Group] = {}
        self._unique = itertools.count()
        self._last_batch_requests = 1
        self._executor: ThreadPoolExecutor | None = None
        self._wake: asyncio.Event | None = None
        self._task: asyncio.Task | None = None
        self._closing = False

    # --- lifecycle --------------------------------------------------------------------------
    async def start(self) -> None:
        self._executor = ThreadPoolExecutor(max_workers=1, thread_name_prefix="seq2attn-decode")
        self._wake = asyncio.Event()
        self._closing = False
        self._task = asyncio.get_running_loop().create_task(self._dispatch())

    async def close(self) -> None:
        """Take no new requests, finish every queued one, stop the worker."""
        self._closing = True
        if self._wake is not None:
            self._wake.set()
        if self._task is not None:
            await self._task
            self._task = None
        if self._executor is not None:
            self._executor.shutdown(wait=True)
            self._executor = None

    def call(self, fn: Callable[[], Any]) -> asyncio.Future:
        """Run ``fn`` on the worker thread (between batches), e.g. a model query."""
        return asyncio.get_running_loop().run_in_executor(self._executor, fn)

    # --- requests ---------------------------------------------------------------------------
    def announce(self) -> None:
        """A request that will reach submit() soon entered the server."""
        self.incoming += 1

    def withdraw(self) -> None:
        """An announced request reached submit(), or left without it."""
        self.incoming -= 1
        if self._wake is not None:
            self._wake.set()

    @property
    def queued(self) -> int:
        return sum(len(g.jobs) for g in self._groups.values())

    async def submit(self, key: Hashable, items: list[Any], cost: int, *, alone: bool = False) -> list[Any]:
        if self._closing or self._wake is None:
            raise ShuttingDown("the server is shutting down")
        slot = (key, "alone", next(self._unique)) if alone else key
        loop = asyncio.get_running_loop()
        job = _Job(list(items), cost, loop.create_future(), time.monotonic())
        group = self._groups.setdefault(slot, _Group(key, alone=alone))
        group.jobs.append(job)
        group.cost += cost
        self._wake.set()
        return await job.future

    # --- the dispatcher ---------------------------------------------------------------------
    def _company_expected(self) -> bool:
        """Requests inside the server on their way to submit(), or a last batch of several requests
        (clients send concurrently)."""
        return self.incoming > 0 or self._last_batch_requests > 1

    async def _dispatch(self) -> None:
        assert self._wake is not None
        loop = asyncio.get_running_loop()
        free_since = time.monotonic()  # when the worker last became free
        while True:
            self._wake.clear()
            if not self._groups:
                if self._closing:
                    return
                await self._wake.wait()
                continue
            slot, group = min(self._groups.items(), key=lambda kv: kv[1].first)
            # the window runs from the later of the first request's arrival and the worker's freeing:
            # requests that queued behind a batch waited for the worker, not for company
            wait = max(group.first, free_since) + self.window - time.monotonic()
            full = group.cost >= self.max_cost
            if (wait > 0 and not full and not group.alone and not self._closing
                    and self._company_expected()):
                try:
                    await asyncio.wait_for(self._wake.wait(), wait)
                except asyncio.TimeoutError:
                    pass
                continue
            jobs = self._take(slot, group)
            if not jobs:
                continue
            self._last_batch_requests = len(jobs)
            self.busy = True
            try:
                await self._execute(loop, group.key, jobs)
            finally:
                self.busy = False
            free_since = time.monotonic()
            # the decoding thread held the GIL for most of the batch: let the loop read the requests
            # that arrived meanwhile (read, parse, validate: a few turns) before the next batch is cut
            for _ in range(3):
                await asyncio.sleep(0)

    def _take(self, slot: Hashable, group: _Group) -> list[_Job]:
        """The oldest jobs of ``group`` up to ``max_cost`` (at least one), cancelled ones dropped."""
        taken, cost = [], 0
        while group.jobs and (not taken or cost + group.jobs[0].cost <= self.max_cost):
            job = group.jobs.pop(0)
            group.cost -= job.cost
            if job.future.done():  # its client gave up (timeout or disconnect)
                continue
            taken.append(job)
            cost += job.cost
        if not group.jobs:
            del self._groups[slot]
        return taken

    async def _execute(self, loop: asyncio.AbstractEventLoop, key: Hashable, jobs: list[_Job]) -> None:
        items = [x for job in jobs for x in job.items]
        try:
            results = await loop.run_in_executor(self._executor, self._run, key, items)
        except Seq2AttnError as e:
            if len(jobs) > 1:  # one request's input may be at fault: answer each on its own
                for job in jobs:
                    await self._execute(loop, key, [job])
                return
            _resolve(jobs[0], error=e)
            return
        except Exception as e:  # noqa: BLE001 - a bug: every request of the batch gets a 500
            log.error("decoding failed: %s: %s", type(e).__name__, e)
            for job in jobs:
                _resolve(job, error=e)
            return
        self.stats.batches += 1
        self.stats.requests += len(jobs)
        self.stats.items += len(items)
        self.stats.largest = max(self.stats.largest, len(jobs))
        start = 0
        for job in jobs:
            _resolve(job, result=list(results[start:start + len(job.items)]))
            start += len(job.items)


def _resolve(job: _Job, *, result: Any = None, error: BaseException | None = None) -> None:
    if job.future.done():
        return
    if error is not None:
        job.future.set_exception(error)
    else:
        job.future.set_result(result)
