"""Datasets generated locally (nothing is downloaded)."""

from ._mnist1d import mnist1d
from ._tabular import Split, course_task, moons

__all__ = ["Split", "course_task", "mnist1d", "moons"]
