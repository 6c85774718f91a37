"""The installed version of mevobs."""

__version__ = "0.1.0"
