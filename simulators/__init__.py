"""Simulated ankle tags and victim devices, the scenario library, and the load generator.

Pure core: :mod:`simulators.scenario` (file model), :mod:`simulators.movement`,
:mod:`simulators.noise`, :mod:`simulators.stream` (scenario -> publish actions),
:mod:`simulators.compare` (expected vs observed). I/O edges: :mod:`simulators.driver` (MQTT),
:mod:`simulators.runner` (emon API + CLI), :mod:`simulators.load` (benchmark load).
"""

from simulators.compare import ScenarioResult, compare
from simulators.runner import main, run_scenario
from simulators.scenario import Scenario, library, load_scenario
from simulators.stream import Action, build_actions

__all__ = [
    "Action",
    "Scenario",
    "ScenarioResult",
    "build_actions",
    "compare",
    "library",
    "load_scenario",
    "main",
    "run_scenario",
]
