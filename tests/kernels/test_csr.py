import torch
from hypothesis import given
from hypothesis import strategies as st

from sprig.kernels import csr_to_dense, to_csr
from sprig.masks import make_mask


@given(rows=st.integers(1, 20), cols=st.integers(1, 20), density=st.floats(0.01, 1.0))
def test_round_trip_and_product(rows, cols, density):
    mask = make_mask((rows, cols), density, generator=0)
    w = torch.randn(rows, cols) * mask
    w[0, 0] = 0.0  # a kept zero stays in the structure
    csr = to_csr(w, mask)
    assert csr.crow_indices().dtype == torch.int32
    back, back_mask = csr_to_dense(csr)
    assert torch.equal(back, w) and torch.equal(back_mask, mask)
    x = torch.randn(cols, 3)
    torch.testing.assert_close(csr @ x, w @ x)
