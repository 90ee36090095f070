"""Plays an action stream to a real MQTT broker: one aiomqtt client per device, QoS 1.

Victim devices subscribe to their notify topic, record every warning and acknowledge it after the
scenario's ``ack.delay_s`` (scenario seconds, so divided by the compression) or never. Every device
obeys emon's commands (``emon/v1/cmd/{id}``, or OwnTracks ``…/cmd``): it reports where it is at once,
and in pursuit mode every ``every_s`` real seconds until told otherwise. This is the I/O edge; all
decisions about *what* to send are made in :mod:`simulators.stream`.
"""

from __future__ import annotations

import asyncio
import json
import secrets
from collections.abc import Callable, Coroutine, Sequence
from contextlib import AsyncExitStack
from dataclasses import dataclass, field
from datetime import UTC, datetime
from types import TracebackType
from typing import Any, Self

import aiomqtt

from emon.device import DeviceKind
from simulators import topics
from simulators.errors import BrokerError
from simulators.scenario import DeviceSpec, Scenario
from simulators.stream import Action, ack_payload, command_reply, obey, will_payload


def utc_now() -> datetime:
    return datetime.now(UTC)


@dataclass(frozen=True, slots=True)
class Notification:
    """A warning received by a victim device at real UTC time ``received_at``; ``payload`` is the
    decoded JSON object (empty if it was not a JSON object)."""

    device_id: str
    received_at: datetime
    payload: dict[str, Any]


@dataclass(slots=True)
class PlayStats:
    """What the driver did: messages published, acks sent, malformed notify messages, and how late
    (real seconds) the most delayed publish was."""

    published: int = 0
    acks: int = 0
    malformed_notify: int = 0
    max_lag_s: float = 0.0
    notifications: list[Notification] = field(default_factory=list)
    commands: list[Notification] = field(default_factory=list)  # commands received (payload decoded)
    replies: int = 0  # fixes published in answer to commands
    malformed_cmd: int = 0


class DevicePlayer:
    """``async with DevicePlayer(...) as p: await p.play(actions, t0)``; acks keep flowing until exit."""

    def __init__(
        self,
        scenario: Scenario,
        *,
        host: str,
        port: int,
        prefix: str = "",
        compression: float | None = None,
        clock: Callable[[], datetime] = utc_now,
    ) -> None:
        self.scenario = scenario
        self.compression = compression or scenario.time_compression
        self.stats = PlayStats()
        self._host, self._port, self._prefix, self._clock = host, port, prefix, clock
        self._clients: dict[str, aiomqtt.Client] = {}
        self._stack = AsyncExitStack()
        self._tasks: set[asyncio.Task[None]] = set()
        self._run_id = secrets.token_hex(3)
        self._t0: float | None = None  # loop time of scenario second 0, once playing
        self._pursuits: dict[str, asyncio.Task[None]] = {}
        self._reply_seq = 0

    async def __aenter__(self) -> Self:
        try:
            for spec in self.scenario.devices:
                will_topic, will_body = will_payload(spec, self._prefix)
                client = aiomqtt.Client(
                    self._host,
                    self._port,
                    identifier=f"sim-{self._run_id}-{spec.device_id}",
                    will=aiomqtt.Will(will_topic, will_body, qos=1),
                )
                await self._stack.enter_async_context(client)
                self._clients[spec.device_id] = client
                if spec.kind is DeviceKind.VICTIM_DEVICE:
                    await client.subscribe(topics.notify_topic(spec.device_id, self._prefix), qos=1)
                await client.subscribe(
                    topics.cmd_topic(spec.device_id, spec.owntracks_topic, self._prefix), qos=1
                )
                self._spawn(self._listen(spec, client))
        except aiomqtt.MqttError as exc:
            await self._close()
            raise BrokerError(f"MQTT broker {self._host}:{self._port}: {exc}") from exc
        return self

    async def __aexit__(
        self, exc_type: type[BaseException] | None, exc: BaseException | None, tb: TracebackType | None
    ) -> None:
        await self._close()

    async def _close(self) -> None:
        for task in self._tasks:
            task.cancel()
        await asyncio.gather(*self._tasks, return_exceptions=True)
        await self._stack.aclose()

    def _spawn(self, coro: Coroutine[Any, Any, None]) -> None:
        task: asyncio.Task[None] = asyncio.get_running_loop().create_task(coro)
        self._tasks.add(task)
        task.add_done_callback(self._tasks.discard)

    async def play(self, actions: Sequence[Action], t0: float) -> PlayStats:
        """Publish each action at loop time ``t0 + at_s / compression`` (seconds), QoS 1, in order."""
        loop = asyncio.get_running_loop()
        self._t0 = t0
        for action in actions:
            due = t0 + action.at_s / self.compression
            delay = due - loop.time()
            if delay > 0:
                await asyncio.sleep(delay)
            else:
                self.stats.max_lag_s = max(self.stats.max_lag_s, -delay)
            try:
                await self._clients[action.device_id].publish(action.topic, action.payload, qos=1)
            except aiomqtt.MqttError as exc:
                raise BrokerError(f"publish to {action.topic} failed: {exc}") from exc
            self.stats.published += 1
        return self.stats

    async def _listen(self, spec: DeviceSpec, client: aiomqtt.Client) -> None:
        cmd = topics.cmd_topic(spec.device_id, spec.owntracks_topic, self._prefix)
        async for message in client.messages:
            raw = message.payload if isinstance(message.payload, bytes) else str(message.payload).encode()
            if message.topic.value == cmd:
                await self._on_command(spec, client, raw)
                continue
            now = self._clock()
            try:
                decoded = json.loads(raw)
            except ValueError:
                decoded = None
            ack = ack_payload(raw, now)
            self.stats.notifications.append(
                Notification(spec.device_id, now, decoded if isinstance(decoded, dict) else {})
            )
            if ack is None:
                self.stats.malformed_notify += 1  # recorded, never silently dropped
                continue
            delay = spec.behaviour.ack.delay_s
            if delay is not None:
                self._spawn(self._ack_later(spec, client, raw, delay / self.compression))

    async def _ack_later(self, spec: DeviceSpec, client: aiomqtt.Client, raw: bytes, delay_s: float) -> None:
        await asyncio.sleep(delay_s)
        body = ack_payload(raw, self._clock())
        if body is not None:
            await client.publish(topics.ack_topic(spec.device_id, self._prefix), body, qos=1)
            self.stats.acks += 1

    async def _on_command(self, spec: DeviceSpec, client: aiomqtt.Client, raw: bytes) -> None:
        try:
            decoded = json.loads(raw)
        except ValueError:
            decoded = None
        self.stats.commands.append(
            Notification(spec.device_id, self._clock(), decoded if isinstance(decoded, dict) else {})
        )
        order = obey(raw, spec.owntracks_topic is not None)
        if order is None:
            self.stats.malformed_cmd += 1  # recorded, never silently dropped
            return
        if order.stop or order.every_s:
            running = self._pursuits.pop(spec.device_id, None)
            if running is not None:
                running.cancel()
        if order.report_now:
            await self._report(spec, client)
        if order.every_s:
            task = asyncio.get_running_loop().create_task(
                self._pursue(spec, client, order.every_s, order.until)
            )
            self._tasks.add(task)
            task.add_done_callback(self._tasks.discard)
            self._pursuits[spec.device_id] = task

    async def _report(self, spec: DeviceSpec, client: aiomqtt.Client) -> None:
        """Publish where the device is now (scenario time from the loop clock), QoS 1."""
        loop = asyncio.get_running_loop()
        at_s = 0.0 if self._t0 is None else max(0.0, (loop.time() - self._t0) * self.compression)
        self._reply_seq += 1
        action = command_reply(
            spec,
            self.scenario,
            at_s=min(at_s, float(self.scenario.duration_s)),
            ts=self._clock(),
            seq=self._reply_seq,
            prefix=self._prefix,
        )
        await client.publish(action.topic, action.payload, qos=1)
        self.stats.replies += 1

    async def _pursue(
        self, spec: DeviceSpec, client: aiomqtt.Client, every_s: float, until: datetime | None
    ) -> None:
        while until is None or self._clock() < until:
            await asyncio.sleep(every_s)
            if until is not None and self._clock() >= until:
                return
            await self._report(spec, client)
