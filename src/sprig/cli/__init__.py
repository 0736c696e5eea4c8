"""The ``sprig`` command line (typer). The outer ring: the library never imports it."""

from ._app import app, main

__all__ = ["app", "main"]
