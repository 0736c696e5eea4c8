"""The key of a cache derived from tensors: which tensor objects, at which version counters.

torch bumps a tensor's ``_version`` on every in-place write (``copy_``, an optimizer step,
``load_state_dict``, ``mask[...] = ...``), so a value computed from some tensors stays valid
while the same objects keep the same versions. Writes through ``.data`` do not bump it; the
caches that use this key say so to their users. The key holds weak references: a cache never
keeps a replaced tensor alive, and a new tensor that happens to reuse a freed one's memory never
matches (comparing ``data_ptr()`` would accept it).
"""

from __future__ import annotations

import weakref

from torch import Tensor


class TensorKey:
    """Which tensors a cached value was computed from, and their version counters then.

    Example:
        >>> import torch
        >>> w = torch.ones(3)
        >>> key = TensorKey(w)
        >>> key.matches(w)
        True
        >>> _ = w.mul_(2)  # an in-place write bumps the version
        >>> key.matches(w), key.matches(torch.ones(3))
        (False, False)
    """

    __slots__ = ("_refs", "_versions")

    def __init__(self, *tensors: Tensor) -> None:
        self._refs = tuple(weakref.ref(t) for t in tensors)
        self._versions = tuple(t._version for t in tensors)

    def matches(self, *tensors: Tensor) -> bool:
        """True when ``tensors`` are the same objects, in order, unwritten since the key."""
        refs, versions = self._refs, self._versions
        if len(tensors) != len(refs):
            return False
        if len(refs) == 1:  # the common case, on every forward of a layer: no loop
            return refs[0]() is tensors[0] and tensors[0]._version == versions[0]
        for ref, version, t in zip(refs, versions, tensors):
            if ref() is not t or t._version != version:
                return False
        return True

    def __reduce__(self) -> tuple[type[TensorKey], tuple[()]]:
        # weak references do not pickle; a key of no tensors never matches, so an unpickled
        # cache recomputes its value
        return (TensorKey, ())


__all__ = ["TensorKey"]
