import pytest
import torch

from sprig.data import VOCAB, stdlib_text


def test_stdlib_text_splits_by_file_and_stays_ascii():
    train, val = stdlib_text(200_000)
    assert train.numel() > 200_000 and val.numel() > 0
    assert train.dtype == val.dtype == torch.int64
    assert int(train.min()) >= 0 and int(train.max()) < VOCAB
    again, _ = stdlib_text(200_000)
    assert torch.equal(train, again)  # sorted files: the same text every run


@pytest.mark.parametrize(
    ("kwargs", "match"),
    [
        ({"limit": 0}, "limit"),
        ({"limit": 1.5}, "limit"),
        ({"limit": 10, "validation_every": 1}, "validation_every"),
    ],
)
def test_stdlib_text_rejects_bad_arguments(kwargs, match):
    with pytest.raises(ValueError, match=match):
        stdlib_text(**kwargs)
