"""Zone and proximity evaluation: a pure core, no I/O, time passed in.

Public surface: :class:`Engine` (many cases), :class:`EvalConfig`, and the per-case pure
functions :func:`evaluate_fix` and :func:`tick` over :class:`CaseState` and :class:`CompiledCase`.
"""

from emon.geofence.config import EvalConfig
from emon.geofence.engine import Engine
from emon.geofence.evaluate import evaluate_fix
from emon.geofence.rules import CompiledCase, compile_case
from emon.geofence.schedule import active_since, is_active
from emon.geofence.state import CaseState
from emon.geofence.tick import tick

__all__ = [
    "CaseState",
    "CompiledCase",
    "Engine",
    "EvalConfig",
    "active_since",
    "compile_case",
    "evaluate_fix",
    "is_active",
    "tick",
]
