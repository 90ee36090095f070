"""Two ordered stages that take what waits for them together: a batch's alerting, then its persisting.

Items are put in order; the first stage takes every item waiting (up to ``group``) and handles them
as one group, then passes the group to the second stage, which does the same. So item N+1's first
stage runs while item N's second stage does, each stage keeps the items' order, and when a stage is
slower than the items come, the items that waited meanwhile go through it in one go instead of one
after the other (one alerting transaction, one commit, for several evaluated batches): the stages
keep up with any rate at which their per-group cost is what limits them (issue #14).

A stage function that raises has failed its group: the error is logged and counted, and a group that
failed the first stage is not passed to the second. A stage may also return the items of the group
that went through (the others failed): only those go on. :meth:`Lanes.room` lets the producer wait while more
than ``limit`` items are unfinished (back-pressure).
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Awaitable, Callable
from typing import Generic, TypeVar

from emon import metrics

log = logging.getLogger(__name__)

T = TypeVar("T")

Stage = Callable[[list[T]], Awaitable[list[T] | None]]  # None: the whole group went through


class Lanes(Generic[T]):
    def __init__(
        self, first: Stage[T], second: Stage[T], *, limit: int, group: int = 64, name: str = "lanes"
    ) -> None:
        if limit < 1 or group < 1:
            raise ValueError("limit and group must be at least 1")
        self.stages = (first, second)
        self.limit = limit
        self.group = group
        self.name = name
        self.unfinished = 0  # put and not yet through both stages (or failed)
        self._waiting: tuple[list[T], list[T]] = ([], [])
        self._wake = (asyncio.Event(), asyncio.Event())
        self._progress = asyncio.Event()  # set whenever items finish
        self._loops: list[asyncio.Task[None]] = []
        self._closing = False
        # Set when a stage's loop ended by itself (it never should): whoever waits is told, not left waiting.
        self.dead: RuntimeError | None = None

    def put(self, item: T) -> None:
        """Queue ``item`` for the first stage (after every item put before it)."""
        if self.dead is not None:
            raise self.dead
        if not self._loops:
            self._loops = [
                asyncio.create_task(self._run(i), name=f"{self.name}-{i + 1}")
                for i in range(len(self.stages))
            ]
            for task in self._loops:
                task.add_done_callback(self._ended)
        self.unfinished += 1
        self._waiting[0].append(item)
        self._wake[0].set()

    async def room(self) -> None:
        """Return once at most ``limit`` items are unfinished (RuntimeError if a stage's loop died)."""
        while self.unfinished > self.limit and self.dead is None:
            self._progress.clear()
            await self._progress.wait()
        if self.dead is not None:
            raise self.dead

    async def settle(self) -> None:
        """Return once every item put is through both stages or has failed (RuntimeError if a stage's loop
        died: what it held will never finish)."""
        while self.unfinished and self.dead is None:
            self._progress.clear()
            await self._progress.wait()
        if self.dead is not None:
            raise self.dead

    async def close(self, within_s: float = 5.0) -> None:
        """Let the items finish (at most ``within_s``), then stop; what did not finish is dropped."""
        try:
            async with asyncio.timeout(within_s):
                await self.settle()
        except TimeoutError:
            log.warning("%s: %d items did not finish within %ss", self.name, self.unfinished, within_s)
        except RuntimeError:
            pass  # a dead loop: logged when it died
        self._closing = True
        for task in self._loops:
            task.cancel()
        if self._loops:
            await asyncio.wait(self._loops)
        self._loops, self._closing = [], False
        for waiting in self._waiting:
            waiting.clear()
        self.unfinished = 0
        self._progress.set()

    async def _run(self, stage: int) -> None:
        waiting, wake, handle = self._waiting[stage], self._wake[stage], self.stages[stage]
        last = stage == len(self.stages) - 1
        while True:
            if not waiting:
                wake.clear()
                await wake.wait()
                continue
            group = waiting[: self.group]
            del waiting[: self.group]
            try:
                passed = await handle(group)
            except asyncio.CancelledError:
                task = asyncio.current_task()
                if task is not None and task.cancelling():
                    raise  # this loop is being stopped (close)
                # Raised inside the stage by something of its own (a timeout, an inner task): the group's
                # failure, not the end of the lane.
                metrics.STORAGE_ERRORS.labels(self.name).inc()
                log.error(
                    "%s: stage %d cancelled from within for a group of %d", self.name, stage + 1, len(group)
                )
                self._finish(len(group))
                continue
            except Exception:
                metrics.STORAGE_ERRORS.labels(self.name).inc()
                log.exception("%s: stage %d failed a group of %d", self.name, stage + 1, len(group))
                self._finish(len(group))
                continue
            passed = group if passed is None else passed
            if last:
                self._finish(len(group))
            else:
                self._finish(len(group) - len(passed))
                self._waiting[stage + 1].extend(passed)
                self._wake[stage + 1].set()

    def _ended(self, task: asyncio.Task[None]) -> None:
        if self._closing:
            return
        error = None if task.cancelled() else task.exception()
        log.critical("%s: %s ended; nothing more goes through it", self.name, task.get_name(), exc_info=error)
        self.dead = RuntimeError(f"{self.name}: {task.get_name()} ended")
        self._progress.set()

    def _finish(self, n: int) -> None:
        self.unfinished -= n
        self._progress.set()
