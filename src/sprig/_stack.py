"""Where a warning should point: the user's line, not a line inside sprig.

A fixed ``stacklevel`` is right for one call path only: ``prune()`` reaches the pruner's warning
through more sprig frames than a pruner called directly, so its warning pointed inside sprig.
Python 3.12 has ``warnings.warn(skip_file_prefixes=...)``; sprig also runs on 3.10 and 3.11.
"""

from __future__ import annotations

import os
import sys

_HERE = os.path.dirname(__file__)
#: the package folder as imported and as resolved (an editable install may go through a link)
_ROOTS = tuple({os.path.join(_HERE, ""), os.path.join(os.path.realpath(_HERE), "")})


def user_stacklevel() -> int:
    """The ``stacklevel`` that makes a ``warnings.warn`` in the calling function point at the
    first frame outside the sprig package (the user's code).

    Example:
        >>> user_stacklevel() >= 1
        True
    """
    frame = sys._getframe(1)  # the function that will call warnings.warn: stacklevel 1
    level = 1
    while frame.f_back is not None and frame.f_code.co_filename.startswith(_ROOTS):
        frame = frame.f_back
        level += 1
    return level
