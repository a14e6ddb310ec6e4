"""The command line: parse, call a workflow, print; exit code 2 on bad input."""

from .app import app, main

__all__ = ["app", "main"]
