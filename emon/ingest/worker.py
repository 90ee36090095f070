"""The ingest process: MQTT → decode → PostgreSQL → acknowledge → Redis, in a process of its own.

One Python process runs one event loop on one core. Ingest (parsing MQTT, decoding, storing, caching:
about half of emon's CPU per fix) runs here, so that evaluation and alerting in the main process do
not queue behind it and both use a core (``EMON_INGEST_PROCESS``, issue #14). What it does is exactly
what :class:`~emon.ingest.pipeline.Pipeline` does in one process; only the hand-over differs: each
stored batch goes to the main process over a socket (:mod:`emon.ingest.frames`), in storing order,
and the main process hands it to evaluation and alerting. The acknowledgement rule is unchanged: a
message is PUBACKed once its batch is committed to PostgreSQL, here, before it is forwarded.

Started by :class:`~emon.ingest.process.IngestProcess` as ``python -m emon.ingest.worker FD``, with
one end of a socket pair as ``FD``. It lives as long as the main process: it exits when that socket
closes, and the kernel kills it when the main process dies (``PR_SET_PDEATHSIG``), so a killed emon
never leaves an ingest process storing and acknowledging for nobody.
"""

from __future__ import annotations

import asyncio
import collections
import contextlib
import ctypes
import logging
import signal
import socket
import sys
import time

from prometheus_client import generate_latest

from emon import collector
from emon.device import DeviceRegistry
from emon.ingest import frames
from emon.ingest.mqtt import MqttIngest
from emon.ingest.pipeline import Pipeline, Stored
from emon.settings import Settings
from emon.storage.postgres import Database
from emon.storage.recall import RecallingLive
from emon.storage.records import Records

log = logging.getLogger(__name__)

REPORT_S = 0.5  # how often progress, the MQTT state and the metrics go to the main process
_PR_SET_PDEATHSIG = 1


async def read_frame(reader: asyncio.StreamReader) -> frames.Frame:
    """The next frame (IncompleteReadError at the end of the stream)."""
    header = await reader.readexactly(frames.HEADER)
    return frames.decode(await reader.readexactly(frames.length(header)))


class Worker:
    """The ingest side of the socket: a pipeline whose stored batches are written to ``writer``."""

    def __init__(self, settings: Settings, writer: asyncio.StreamWriter) -> None:
        self.settings = settings
        self.writer = writer
        self.db = Database(
            settings.database_url,
            settings.db_schema,
            application=f"emon-ingest:{settings.instance_id}",
            statement_timeout_s=settings.pg_statement_timeout_s or None,
        )
        self.records = Records(self.db)
        self.registry = DeviceRegistry()
        self.live = RecallingLive.connect(
            settings.redis_url, settings.redis_prefix, self.records, lambda: self.registry.by_id.keys()
        )
        self.pipeline = Pipeline.from_settings(settings, self.records, self.live, self.registry)
        self.pipeline.handler = self.forward
        self._taken: collections.deque[asyncio.Future[None]] = collections.deque()
        self.mqtt = MqttIngest.from_settings(settings, self.pipeline.submit)

    async def forward(self, stored: Stored) -> None:
        """Hand a stored batch to the main process; waits while its socket buffer is full, so a slow
        evaluation holds ingest back here as it does in one process (messages wait unacknowledged)."""
        if not (stored.fixes or stored.events or stored.acks):
            return  # only duplicates or dead letters: nothing for the main process (as in one process)
        batch = frames.Batch(
            frames.fix_rows(stored.fixes),
            frames.event_rows(stored.events),
            stored.acks,
            stored.now,
            stored.received_mono,
            stored.stored_at,
        )
        taken = asyncio.get_running_loop().create_future()
        self._taken.append(taken)
        self.writer.write(frames.encode(batch))
        await self.writer.drain()
        # Returns once the main process's consumers have taken it, as the consumers return in one process:
        # the next batch collects meanwhile (group commit, emon.ingest.pipeline).
        await taken

    async def report(self) -> None:
        while True:
            health = self.pipeline.health(time.monotonic())
            report = frames.Report(
                health.waiting,
                health.oldest_wait_s,
                health.since_commit_s,
                health.stalled,
                self.mqtt.connected.is_set(),
                generate_latest(),
            )
            self.writer.write(frames.encode(report))
            await self.writer.drain()
            await asyncio.sleep(REPORT_S)

    async def listen(self, reader: asyncio.StreamReader) -> None:
        """Devices registered in the main process; returns when the main process closes the socket."""
        while True:
            try:
                frame = await read_frame(reader)
            except asyncio.IncompleteReadError:
                return
            if isinstance(frame, frames.Consumed):
                for _ in range(min(frame.batches, len(self._taken))):
                    taken = self._taken.popleft()
                    if not taken.done():
                        taken.set_result(None)
            elif isinstance(frame, frames.Devices):
                devices = frames.devices_of(frame.devices)
                if frame.replace:
                    self.registry.replace_all(devices)
                else:
                    for device in devices:
                        self.registry.add(device)

    async def run(self, reader: asyncio.StreamReader) -> None:
        """Until the main process goes away (or a loop dies, which ends this process with an error)."""
        await self.db.open()
        try:
            self.registry.replace_all(await self.records.devices())
            collector.observe_pauses()
            if self.settings.gc_freeze:
                collector.freeze_start_up()  # the registry and modules: out of the full collections' walks
            loops = [
                asyncio.create_task(self.pipeline.run(), name="ingest-pipeline"),
                asyncio.create_task(self.pipeline.maintain_dead_letters(), name="dead-letter-maintenance"),
                asyncio.create_task(self.mqtt.run(), name="mqtt-ingest"),
                asyncio.create_task(self.report(), name="ingest-report"),
            ]
            listening = asyncio.create_task(self.listen(reader), name="ingest-listen")
            done, _ = await asyncio.wait([*loops, listening], return_when=asyncio.FIRST_COMPLETED)
            for task in [*loops, listening]:
                task.cancel()
            await asyncio.wait([*loops, listening], timeout=5.0)
            for task in done:
                if task is not listening and not task.cancelled() and task.exception() is not None:
                    raise RuntimeError(f"ingest loop {task.get_name()} died") from task.exception()
        finally:
            with contextlib.suppress(Exception):
                await self.live.close()
            await self.db.close()


async def serve(fd: int) -> None:
    sock = socket.socket(fileno=fd)
    reader, writer = await asyncio.open_unix_connection(sock=sock)
    start = await read_frame(reader)
    if not isinstance(start, frames.Start):
        raise RuntimeError(f"the main process sent {type(start).__name__} before the settings")
    settings = Settings.model_validate_json(start.settings)
    logging.getLogger().setLevel(settings.log_level)
    try:
        await Worker(settings, writer).run(reader)
    finally:
        writer.close()


def _die_with_parent() -> None:
    """Have the kernel kill this process when the process that started it dies (Linux)."""
    with contextlib.suppress(OSError, AttributeError):
        libc = ctypes.CDLL(None, use_errno=True)
        libc.prctl(_PR_SET_PDEATHSIG, signal.SIGKILL)


def main(argv: list[str]) -> int:
    _die_with_parent()
    logging.basicConfig(level="INFO", format="%(asctime)s %(levelname)s %(name)s [ingest]: %(message)s")
    signal.signal(signal.SIGINT, signal.SIG_IGN)  # a terminal's Ctrl-C is the main process's to handle
    try:
        asyncio.run(serve(int(argv[0])))
    except Exception:
        log.exception("the ingest process failed")
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
