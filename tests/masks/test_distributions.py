import math

import pytest
from hypothesis import given
from hypothesis import strategies as st

from sprig.masks import layer_counts
from sprig.masks._distributions import erdos_renyi, erdos_renyi_kernel

layers = st.dictionaries(
    st.text("abcdef", min_size=1, max_size=3),
    st.lists(st.integers(1, 40), min_size=2, max_size=4).map(tuple),
    min_size=1,
    max_size=5,
)


@given(shapes=layers, density=st.floats(0.01, 1.0), dist=st.sampled_from(["uniform", "er", "erk"]))
def test_global_density_hit_exactly(shapes, density, dist):
    counts = layer_counts(shapes, density, dist)
    sizes = {n: math.prod(s) for n, s in shapes.items()}
    assert all(1 <= counts[n] <= sizes[n] for n in shapes)
    target = round(density * sum(sizes.values()))
    if target >= len(shapes):  # at least one weight per layer can push a tiny target up
        assert sum(counts.values()) == target


def test_erk_proportional_and_capped():
    shapes = {"first": (64, 2), "mid": (64, 64), "last": (1, 64)}
    dens = erdos_renyi_kernel(shapes, 0.2)
    assert dens["first"] == 1.0 and dens["last"] == 1.0  # tiny layers are made dense
    assert 0 < dens["mid"] < 0.2
    total = sum(dens[n] * math.prod(s) for n, s in shapes.items())
    assert total == pytest.approx(0.2 * sum(math.prod(s) for s in shapes.values()))
    d2 = erdos_renyi_kernel({"a": (100, 100), "b": (100, 400)}, 0.1)
    assert d2["a"] / d2["b"] == pytest.approx((200 / 10000) / (500 / 40000))


def test_er_ignores_kernel_dims_erk_does_not():
    shapes = {"conv": (16, 16, 3, 3), "fc": (10, 256)}
    er, erk = erdos_renyi(shapes, 0.3), erdos_renyi_kernel(shapes, 0.3)
    assert er["conv"] != pytest.approx(erk["conv"])


def test_unknown_distribution():
    with pytest.raises(ValueError, match="valid names are: er, erk, uniform"):
        layer_counts({"a": (2, 2)}, 0.5, "gaussian")


def test_largest_remainder_is_the_one_rounding_of_layer_counts_and_snfs():
    from sprig.masks import largest_remainder

    # fractional parts first: 0.8 and 0.7 beat 0.5
    assert largest_remainder([1.5, 2.7, 0.8], 5, [10, 10, 10]) == [1, 3, 1]
    # what capped counts cannot take goes to the count with the most room
    assert largest_remainder([4.5, 1.5, 1.0], 7, [2, 2, 10]) == [2, 2, 3]
    # never past the caps: the sum then stays short
    assert largest_remainder([5.0, 5.0], 10, [2, 3]) == [2, 3]
    # a minimum lifts empty counts (layer_counts keeps one weight per layer)
    assert largest_remainder([0.2, 3.8], 5, [5, 5], minimum=1) == [1, 4]
