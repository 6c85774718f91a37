"""``mevobs demo``: a simulated arbitrage bot instrumented end to end with mevobs."""

from mevobs.demo._conditions import Conditions, ConfiguresTelemetry, Scenario
from mevobs.demo._run import DemoOptions, DemoResult, run_demo
from mevobs.demo._scenarios import SCENARIOS, Named, scenario

__all__ = [
    "SCENARIOS",
    "Conditions",
    "ConfiguresTelemetry",
    "DemoOptions",
    "DemoResult",
    "Named",
    "Scenario",
    "run_demo",
    "scenario",
]
