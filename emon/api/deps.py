"""What a request handler needs from the running service."""

from __future__ import annotations

from fastapi import Request

from emon.runtime import Runtime


def runtime(request: Request) -> Runtime:
    """The :class:`Runtime` the application was created with."""
    rt: Runtime = request.app.state.rt
    return rt
