import pytest
import torch
from hypothesis import given
from hypothesis import strategies as st

from sprig.masks import count_for, make_mask, parse_pattern

shapes = st.lists(st.integers(1, 12), min_size=1, max_size=4).map(tuple)
densities = st.floats(0.01, 1.0)


@given(shape=shapes, density=densities, seed=st.integers(0, 2**31))
def test_unstructured_exact_count(shape, density, seed):
    mask = make_mask(shape, density, generator=seed)
    numel = mask.numel()
    assert mask.dtype == torch.bool and tuple(mask.shape) == shape
    assert int(mask.sum()) == count_for(density, numel)


@given(shape=shapes, density=densities)
def test_scores_keep_the_highest(shape, density):
    scores = torch.randn(shape)
    mask = make_mask(shape, density, scores=scores)
    if 0 < int(mask.sum()) < mask.numel():
        assert float(scores[mask].min()) >= float(scores[~mask].max())


@given(rows=st.integers(1, 10), cols=st.integers(1, 10), density=densities)
def test_row_and_column_keep_whole_units(rows, cols, density):
    scores = torch.rand(rows, cols)
    mask = make_mask((rows, cols), density, "row", scores=scores)
    kept = mask.all(dim=1)
    assert bool((mask.any(dim=1) == kept).all())
    assert int(kept.sum()) == count_for(density, rows)
    if 0 < int(kept.sum()) < rows:
        sums = scores.sum(1)
        assert float(sums[kept].min()) >= float(sums[~kept].max())
    mask = make_mask((rows, cols), density, "column", scores=scores)
    assert int(mask.all(dim=0).sum()) == count_for(density, cols)
    assert bool((mask.any(dim=0) == mask.all(dim=0)).all())


@given(rows=st.integers(1, 13), cols=st.integers(1, 13), bh=st.integers(1, 4), bw=st.integers(1, 4))
def test_block_masks_are_unions_of_blocks(rows, cols, bh, bw):
    mask = make_mask((rows, cols), 0.5, f"block:{bh}x{bw}", generator=0)
    for i in range(0, rows, bh):
        for j in range(0, cols, bw):
            blk = mask[i : i + bh, j : j + bw]
            assert bool(blk.all()) or not bool(blk.any())


@given(
    out=st.integers(1, 8),
    groups=st.integers(1, 5),
    nm=st.sampled_from([(1, 2), (2, 4), (1, 4), (3, 8)]),
)
def test_n_of_m_along_inputs(out, groups, nm):
    n, m = nm
    scores = torch.randn(out, groups * m)
    mask = make_mask((out, groups * m), None, f"{n}:{m}", scores=scores)
    per_group = mask.reshape(out, groups, m).sum(-1)
    assert bool((per_group == n).all())
    s = scores.reshape(out, groups, m)
    k = mask.reshape(out, groups, m)
    kept_min = torch.where(k, s, torch.inf).amin(-1)
    dropped_max = torch.where(~k, s, -torch.inf).amax(-1)
    assert bool((kept_min >= dropped_max).all())


def test_n_of_m_conv_groups_along_input_channels():
    mask = make_mask((4, 8, 3, 3), None, "2:4", generator=0)
    assert bool((mask.movedim(1, -1).reshape(-1, 4).sum(-1) == 2).all())


@pytest.mark.parametrize(
    ("args", "match"),
    [
        (((4, 6), None, "2:4"), r"multiple of 4.*\(4, 6\)"),
        (((4, 8), 0.3, "2:4"), "fixes density at 0.5"),
        (((4, 8), 0.0, "unstructured"), r"\(0, 1\]"),
        (((4, 8), 1.5, "unstructured"), r"\(0, 1\]"),
        (((4, 8), float("nan"), "unstructured"), r"\(0, 1\]"),
        (((4, 8), 0.5, "diagonal"), "valid patterns are"),
        (((4, 8), 0.5, "5:4"), "0 < N <= M"),
        (((4, 8), None, "unstructured"), "needs a density"),
        (((4, 0), 0.5, "unstructured"), "empty dimension"),
    ],
)
def test_bad_input(args, match):
    with pytest.raises(ValueError, match=match):
        make_mask(*args)


def test_parse_round_trip():
    for text in ["unstructured", "row", "column", "block:2x3", "2:4"]:
        assert str(parse_pattern(text)) == text
    assert str(parse_pattern("block")) == "block:4x4"


def test_fanin_gives_every_output_the_same_number_of_inputs():
    mask = make_mask((7, 10), 0.3, "fanin", generator=0)
    assert mask.sum(1).tolist() == [3] * 7
    conv = make_mask((4, 3, 2, 2), 0.25, "fanin", generator=0)  # (out, in*kh*kw = 12)
    assert conv.reshape(4, -1).sum(1).tolist() == [3] * 4
    scores = torch.arange(20.0).reshape(2, 10)
    assert make_mask((2, 10), 0.2, "fanin", scores=scores)[0].nonzero().flatten().tolist() == [8, 9]


def test_keep_top_is_the_stable_sort_mask():
    """The selection (kthvalue) gives the mask a stable descending sort gives: ties to the
    lower index, -0.0 equal to 0.0, NaN as the largest (masks must not change with versions)."""
    from sprig.masks._patterns import _keep_top

    def by_sort(scores, k):
        keep = torch.zeros(scores.numel(), dtype=torch.bool)
        keep[torch.sort(scores, descending=True, stable=True).indices[: max(k, 0)]] = True
        return keep

    g = torch.Generator().manual_seed(0)
    for trial in range(300):
        n = int(torch.randint(1, 40, (1,), generator=g))
        if trial % 3 == 0:
            s = torch.randint(0, 3, (n,), generator=g).float()  # many ties
        else:
            s = torch.randn(n, generator=g)
            s[torch.rand(n, generator=g) < 0.2] = -0.0
        if trial % 25 == 0:
            s[n // 2] = float("nan")
        for k in range(n + 2):
            assert torch.equal(_keep_top(s, k), by_sort(s, k)), (s, k)
