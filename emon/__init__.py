"""emon: electronic monitoring and proximity alerts for court-ordered bans."""

from emon.waiting import fix_wait_for

__version__ = "0.1.0"

# Before any event loop runs: on Python 3.11 asyncio.wait_for can swallow a cancellation, and the
# Redis and PostgreSQL clients call it (see emon.waiting).
fix_wait_for()
