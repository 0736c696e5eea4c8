"""Datasets generated locally (nothing is downloaded)."""

from ._tabular import Split, course_task, moons

__all__ = ["Split", "course_task", "moons"]
