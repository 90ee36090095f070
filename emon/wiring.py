"""What the pipeline feeds: evaluation and alerting are attached here, at the edge."""

from __future__ import annotations

from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from emon.runtime import Runtime


async def attach(runtime: Runtime) -> None:
    """Attach the consumers of stored fixes and events to the runtime's pipeline."""
    return None
