"""Request limits and response headers: a hostile client cannot make emon buffer an unbounded body or
recurse on a deeply nested one, and no response with personal data may be cached."""

from __future__ import annotations

import json
import math
import re
from typing import Any

import numpy as np
from starlette.types import ASGIApp, Message, Receive, Scope, Send

MAX_BODY_BYTES = 2 * 1024 * 1024  # enforced by Starlette's RequestBodyLimitMiddleware (emon.api.app)


MAX_JSON_DEPTH = 64  # an order document with a MultiPolygon is about 8 deep
_STRING = re.compile(rb'"(?:[^"\\]|\\.)*"', re.S)
_NOT_BRACKETS = bytes(b for b in range(256) if b not in b"[]{}")
# Outside strings: literals Python's json accepts but JSON does not, and exponents that may overflow.
_NON_FINITE = re.compile(rb"[eE][+-]?\d{3,}|NaN|Infinity")
# Text PostgreSQL cannot hold may be inside: a \u0000 or surrogate escape, or raw UTF-8 of a surrogate.
_ESCAPE = re.compile(rb"\\u(?:0000|[dD][89a-fA-F])")
_RAW_SURROGATE = re.compile(rb"\xed[\xa0-\xbf]")
_BODY_METHODS = frozenset({"POST", "PUT", "PATCH"})
_STEP = np.zeros(256, np.int32)
_STEP[[ord("["), ord("{")]] = 1
_STEP[[ord("]"), ord("}")]] = -1


def json_problem(body: bytes, max_depth: int = MAX_JSON_DEPTH) -> tuple[int, str, str] | None:
    """Why a JSON request body must be refused (status, error code, message), or None if it may pass.

    Checked on the raw bytes before any parser runs (a 20,000-deep body never reaches a recursive
    parser): nesting depth, non-finite numbers, and text PostgreSQL cannot store (NUL, unpaired
    surrogates); the body is parsed here only when the bytes hint at one of the last two. Syntax
    errors are left to the route, which answers them with a 400 or 422 itself."""
    bare = _STRING.sub(b'""', body)
    brackets = bare.translate(None, _NOT_BRACKETS)
    if len(brackets) > max_depth:
        depth = np.cumsum(_STEP[np.frombuffer(brackets, np.uint8)])
        if int(depth.max()) > max_depth:
            return 400, "json_too_deep", f"JSON nested deeper than {max_depth} levels"
    non_finite = _NON_FINITE.search(bare) is not None
    suspect_text = (b"\\u" in body and _ESCAPE.search(body) is not None) or _RAW_SURROGATE.search(
        body
    ) is not None
    if not (non_finite or suspect_text):
        return None
    try:
        value = json.loads(body, parse_constant=_refuse_constant, parse_float=_finite)
    except _NotFinite as exc:
        return 400, "invalid_json", f"not a finite JSON number: {str(exc)[:40]}"
    except (ValueError, RecursionError):
        return None  # a syntax error: the route answers it
    if not _storable(value):
        return 422, "invalid_text", "text may not contain NUL characters or unpaired surrogates"
    return None


class _NotFinite(Exception):
    pass


def _refuse_constant(token: str) -> float:
    raise _NotFinite(token)


def _finite(token: str) -> float:
    value = float(token)
    if not math.isfinite(value):
        raise _NotFinite(token)
    return value


def _storable(value: Any) -> bool:
    stack = [value]
    while stack:
        v = stack.pop()
        if isinstance(v, str):
            if "\x00" in v:
                return False
            try:
                v.encode("utf-8")
            except UnicodeEncodeError:
                return False
        elif isinstance(v, dict):
            stack.extend(v.keys())
            stack.extend(v.values())
        elif isinstance(v, list):
            stack.extend(v)
    return True


class JsonLimits:
    """Pure ASGI middleware: a request body that is (or may be) JSON is checked by :func:`json_problem`
    before any route sees it; a refusal is a 4xx with ``{"error", "message"}``, never a 500.

    Put it inside Starlette's ``RequestBodyLimitMiddleware``, which bounds what is buffered here."""

    def __init__(self, app: ASGIApp) -> None:
        self.app = app

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http" or scope.get("method") not in _BODY_METHODS:
            await self.app(scope, receive, send)
            return
        ctype = dict(scope.get("headers", [])).get(b"content-type", b"").lower()
        if ctype and b"json" not in ctype:
            await self.app(scope, receive, send)
            return
        chunks: list[bytes] = []
        while True:
            message = await receive()
            if message["type"] != "http.request":
                await self.app(scope, _replay([], message, receive), send)
                return
            chunks.append(message.get("body", b""))
            if not message.get("more_body", False):
                break
        body = b"".join(chunks)
        problem = json_problem(body) if body.strip() else None
        if problem is not None:
            await _refuse(send, *problem)
            return
        await self.app(scope, _replay([body], None, receive), send)


def _replay(bodies: list[bytes], first: Message | None, receive: Receive) -> Receive:
    pending: list[Message] = (
        [first]
        if first is not None
        else [{"type": "http.request", "body": b, "more_body": False} for b in bodies]
    )

    async def replay() -> Message:
        if pending:
            return pending.pop(0)
        return await receive()

    return replay


async def _refuse(send: Send, code: int, error: str, message: str) -> None:
    body = json.dumps({"error": error, "message": message}).encode()
    await send(
        {
            "type": "http.response.start",
            "status": code,
            "headers": [(b"content-type", b"application/json"), (b"content-length", str(len(body)).encode())],
        }
    )
    await send({"type": "http.response.body", "body": body})


class NoStore:
    """Pure ASGI middleware: every response under ``prefix`` (the API: positions, cases, alerts, audit)
    carries ``Cache-Control: no-store``, so no browser or proxy keeps personal data."""

    def __init__(self, app: ASGIApp, prefix: str = "/api/") -> None:
        self.app = app
        self.prefix = prefix

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http" or not str(scope.get("path", "")).startswith(self.prefix):
            await self.app(scope, receive, send)
            return

        async def send_no_store(message: Message) -> None:
            if message["type"] == "http.response.start":
                headers = [(k, v) for k, v in message.get("headers", []) if k.lower() != b"cache-control"]
                headers.append((b"cache-control", b"no-store"))
                message = {**message, "headers": headers}
            await send(message)

        await self.app(scope, receive, send_no_store)
