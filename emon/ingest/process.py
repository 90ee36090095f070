"""The main process's side of the ingest process (:mod:`emon.ingest.worker`).

:meth:`IngestProcess.run` starts the ingest process, sends it the settings, then hands every batch it
stored to the ack handler and the consumers (evaluation, alerting) exactly as an in-process
:class:`~emon.ingest.pipeline.Pipeline` would, one batch after the other in storing order. Its
progress reports stand in for the pipeline's health (readiness, ``/metrics``) and the MQTT state; its
metrics are merged into this process's (:func:`emon.metrics.merged`). Devices registered here are
sent on. If the ingest process ends, :meth:`run` raises: the runtime then stops emon with an error, as
it does for any loop that dies, and a supervisor restarts both.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import os
import socket
import sys
import time

from emon.device import Device
from emon.ingest import frames
from emon.ingest.pipeline import AckHandler, BatchConsumer, Health, Stored, hand_on
from emon.ingest.worker import read_frame
from emon.settings import Settings

log = logging.getLogger(__name__)

STOP_WAIT_S = 5.0
QUEUED_BATCHES = 4  # batches read from the socket and not yet handed on, at most
MERGE_FIXES = 2_000  # batches waiting together are handed on as one while they hold fewer fixes


def stored_of(batches: list[frames.Batch]) -> Stored:
    """Consecutive stored batches as one: their rows in storing order, the first one's receipt (the
    oldest message) and the last one's clock and ``stored_at`` (every row of them was stamped at or
    before it, and every row of a later batch after it). Only batches with new rows count for those:
    a batch of duplicates (or of acknowledgements only) has no row to stamp its ``stored_at`` from, so
    it is this process's clock, which must not become the evaluation watermark."""
    carrying = [b for b in batches if b.fixes or b.events] or batches
    first, last = carrying[0], carrying[-1]
    return Stored(
        [f for b in batches for f in frames.fixes_of(b.fixes)],
        [e for b in batches for e in frames.events_of(b.events)],
        [a for b in batches for a in b.acks],
        last.now,
        first.received_mono,
        last.stored_at,
    )


class IngestProcessEnded(RuntimeError):
    """The ingest process exited (or closed its socket): nothing is being received any more."""


class IngestProcess:
    def __init__(self, settings: Settings) -> None:
        self.settings = settings
        self.stall_s = settings.stall_s
        self.consumers: list[BatchConsumer] = []
        self.ack_handler: AckHandler | None = None
        self.connected = asyncio.Event()  # the ingest process is subscribed and receiving
        self.metrics = b""  # the ingest process's latest metrics (Prometheus text)
        self.process: asyncio.subprocess.Process | None = None
        self._report: frames.Report | None = None
        self._reported_at = time.monotonic()
        self._writer: asyncio.StreamWriter | None = None

    def health(self, now: float) -> Health:
        """The pipeline's progress as last reported, aged to monotonic time ``now`` (a silent ingest
        process whose messages wait becomes stalled, as a stuck pipeline does)."""
        r = self._report
        if r is None:
            return Health(0, 0.0, max(0.0, now - self._reported_at), False)
        age = max(0.0, now - self._reported_at)
        oldest = r.oldest_wait_s + age if r.waiting else 0.0
        since_commit = r.since_commit_s + age
        return Health(r.waiting, oldest, since_commit, oldest > self.stall_s and since_commit > self.stall_s)

    def devices_changed(self, devices: list[Device], replace: bool) -> None:
        """Send devices registered here (or, with ``replace``, the whole registry) to the ingest process."""
        if self._writer is not None and not self._writer.is_closing():
            self._writer.write(frames.encode(frames.Devices(frames.device_rows(devices), replace)))

    async def run(self) -> None:
        """Run the ingest process and hand on what it stores, until cancelled; raises
        :class:`IngestProcessEnded` if it ends."""
        ours, theirs = socket.socketpair()
        try:
            self.process = await asyncio.create_subprocess_exec(
                sys.executable,
                "-m",
                "emon.ingest.worker",
                str(theirs.fileno()),
                pass_fds=(theirs.fileno(),),
                stdin=asyncio.subprocess.DEVNULL,
            )
        finally:
            theirs.close()
        try:
            reader, self._writer = await asyncio.open_unix_connection(sock=ours)
            self._writer.write(frames.encode(frames.Start(self.settings.model_dump_json())))
            await self._receive(reader)
        finally:
            self.connected.clear()
            if self._writer is not None:
                self._writer.close()
            await self._stop()

    async def _receive(self, reader: asyncio.StreamReader) -> None:
        """Read frames; hand the batches on in another task, so that reports are read while the
        consumers work, and batches that arrived meanwhile are handed on together."""
        queue: asyncio.Queue[frames.Batch] = asyncio.Queue(maxsize=QUEUED_BATCHES)
        handing = asyncio.create_task(self._hand_on(queue), name="ingest-hand-on")
        try:
            while True:
                try:
                    frame = await read_frame(reader)
                except (asyncio.IncompleteReadError, ConnectionError) as exc:
                    raise IngestProcessEnded(f"the ingest process ended (pid {self._pid()})") from exc
                if isinstance(frame, frames.Batch):
                    await queue.put(frame)  # full: the socket fills, the ingest process waits
                    if handing.done():
                        handing.result()
                elif isinstance(frame, frames.Report):
                    self._report, self._reported_at = frame, time.monotonic()
                    self.metrics = frame.metrics
                    if frame.connected:
                        self.connected.set()
                    else:
                        self.connected.clear()
        finally:
            handing.cancel()

    async def _hand_on(self, queue: asyncio.Queue[frames.Batch]) -> None:
        while True:
            batches = [await queue.get()]
            while not queue.empty() and sum(len(b.fixes) for b in batches) < MERGE_FIXES:
                batches.append(queue.get_nowait())
            await hand_on(stored_of(batches), self.ack_handler, self.consumers)
            if self._writer is not None and not self._writer.is_closing():
                self._writer.write(frames.encode(frames.Consumed(len(batches))))

    def _pid(self) -> int | None:
        return None if self.process is None else self.process.pid

    async def _stop(self) -> None:
        """End the ingest process: the closed socket tells it to stop; killed if it has not within
        ``STOP_WAIT_S`` (what it did not commit, the broker redelivers)."""
        process = self.process
        if process is None or process.returncode is not None:
            return
        try:
            async with asyncio.timeout(STOP_WAIT_S):
                await process.wait()
        except TimeoutError:
            log.warning(
                "the ingest process (pid %s) did not stop within %ss; killing it", process.pid, STOP_WAIT_S
            )
            with contextlib.suppress(ProcessLookupError):
                os.kill(process.pid, 9)
            await process.wait()
        except asyncio.CancelledError:
            with contextlib.suppress(ProcessLookupError):
                os.kill(process.pid, 9)
            raise
