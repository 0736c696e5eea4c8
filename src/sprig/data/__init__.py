"""Datasets generated locally (nothing is downloaded) or read from Python itself."""

from ._mnist1d import mnist1d
from ._tabular import Split, course_task, moons
from ._text import VOCAB, stdlib_text

__all__ = ["VOCAB", "Split", "course_task", "mnist1d", "moons", "stdlib_text"]
