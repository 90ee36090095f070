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


def stored_of(batch: frames.Batch) -> Stored:
    """The stored batch a frame carries, as the consumers take it."""
    return Stored(
        frames.fixes_of(batch.fixes),
        frames.events_of(batch.events),
        batch.acks,
        batch.now,
        batch.received_mono,
        batch.stored_at,
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
        """Read frames; hand each batch on in a task of its own, so that reports are read while the
        consumers work. The ingest process sends the next batch only once told this one is taken
        (:class:`~emon.ingest.frames.Consumed`), so there is one at a time."""
        handing: asyncio.Task[None] | None = None
        try:
            while True:
                if handing is not None and handing.done():
                    handing.result()  # a hand-on that failed (a bug: the consumers' own errors are isolated)
                try:
                    frame = await read_frame(reader)
                except (asyncio.IncompleteReadError, ConnectionError) as exc:
                    raise IngestProcessEnded(f"the ingest process ended (pid {self._pid()})") from exc
                if isinstance(frame, frames.Batch):
                    if handing is not None:
                        await handing  # in storing order, whatever the other side does
                    handing = asyncio.create_task(self._hand_on(frame), name="ingest-hand-on")
                elif isinstance(frame, frames.Report):
                    self._report, self._reported_at = frame, time.monotonic()
                    self.metrics = frame.metrics
                    if frame.connected:
                        self.connected.set()
                    else:
                        self.connected.clear()
        finally:
            if handing is not None:
                handing.cancel()

    async def _hand_on(self, batch: frames.Batch) -> None:
        await hand_on(stored_of(batch), self.ack_handler, self.consumers)
        if self._writer is not None and not self._writer.is_closing():
            self._writer.write(frames.encode(frames.Consumed(1)))

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
