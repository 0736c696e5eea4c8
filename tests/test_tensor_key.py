"""The one cache key on tensors' identity and version counters (sprig._tensor_key)."""

import copy
import pickle

import torch

from sprig._tensor_key import TensorKey


def test_a_key_follows_identity_version_and_order():
    a, b = torch.ones(3), torch.zeros(2)
    key = TensorKey(a, b)
    assert key.matches(a, b)
    assert not key.matches(b, a) and not key.matches(a) and not key.matches(a, b.clone())
    b[0] = 1.0  # an in-place write bumps the version
    assert not key.matches(a, b)


def test_a_key_keeps_no_tensor_alive_and_copies_never_match():
    t = torch.ones(4)
    key = TensorKey(t)
    for other in (copy.deepcopy(key), pickle.loads(pickle.dumps(key))):
        assert not other.matches(t)
    del t
    assert key._refs[0]() is None
