"""Runs over files and frames that return result objects; the command line and the service call these."""

from .demo import DemoResult, run_demo

__all__ = ["DemoResult", "run_demo"]
