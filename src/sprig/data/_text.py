"""Character-level text that ships with Python: the standard library's own source files."""

from __future__ import annotations

import sysconfig
from pathlib import Path

import torch
from torch import Tensor

VOCAB = 128  # ASCII; any byte at or above 128 reads as '?'


def stdlib_text(limit: int, *, validation_every: int = 10) -> tuple[Tensor, Tensor]:
    """``(train, validation)`` character codes from the standard library's top-level ``.py`` files.

    Nothing is downloaded: the text is the source of the running Python's standard library,
    read file by file in sorted order (so the split is the same on every run); every
    ``validation_every``-th file goes to validation, the rest to training, until the training
    text passes ``limit`` characters.

    Args:
        limit: the training text stops at the first file that takes it past this many
            characters (>= 1).
        validation_every: one file in this many is held out (>= 2).

    Returns:
        Two int64 tensors ``(N,)`` of ASCII codes in ``[0, VOCAB)``.

    Example:
        >>> train, val = stdlib_text(100_000)
        >>> train.dtype, int(train.max()) < VOCAB
        (torch.int64, True)
    """
    if not isinstance(limit, int) or limit < 1:
        raise ValueError(f"limit must be an int >= 1 (characters), got {limit!r}")
    if not isinstance(validation_every, int) or validation_every < 2:
        raise ValueError(f"validation_every must be an int >= 2, got {validation_every!r}")
    root = Path(sysconfig.get_paths()["stdlib"])
    files = sorted(root.glob("*.py"))  # top level only: no tests, no site-packages
    if not files:
        raise FileNotFoundError(f"no .py files in the standard library folder {root}")
    train, val = bytearray(), bytearray()
    for i, path in enumerate(files):
        (val if i % validation_every == 0 else train).extend(path.read_bytes())
        if len(train) > limit:
            break

    def encode(b: bytearray) -> Tensor:
        t = torch.frombuffer(b, dtype=torch.uint8).long() if b else torch.zeros(0, dtype=torch.long)
        return t.masked_fill(t >= VOCAB, ord("?"))

    return encode(train), encode(val)
