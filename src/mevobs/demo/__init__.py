"""``mevobs demo``: a simulated arbitrage bot instrumented end to end with mevobs."""

from mevobs.demo._run import DemoOptions, run_demo

__all__ = ["DemoOptions", "run_demo"]
