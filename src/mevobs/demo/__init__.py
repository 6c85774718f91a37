"""``mevobs demo``: a simulated arbitrage bot instrumented end to end with mevobs."""

from mevobs.demo._conditions import Conditions, Scenario
from mevobs.demo._run import DemoOptions, DemoResult, run_demo

__all__ = ["Conditions", "DemoOptions", "DemoResult", "Scenario", "run_demo"]
