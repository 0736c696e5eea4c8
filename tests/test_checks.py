"""check_int: the one check for "an int >= N" (it was written out 19 times)."""

import pytest

from sprig._checks import check_int


@pytest.mark.parametrize("bad", [True, 1.5, "2", None, 0])
def test_check_int_names_the_value_and_the_range(bad):
    with pytest.raises(ValueError, match=rf"steps must be a positive int, got {bad!r}"):
        check_int(bad, "steps", 1)


def test_check_int_bounds_hints_and_error_type():
    assert check_int(0, "step", 0) == 0
    with pytest.raises(ValueError, match="step must be an int >= 0 .completed steps., got -1"):
        check_int(-1, "step", 0, " (completed steps)")
    with pytest.raises(TypeError, match="seed must be an int or None, got 1.5"):
        check_int(1.5, "seed", hint=" or None", error=TypeError)
