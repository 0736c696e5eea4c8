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


def test_structure_gathers_match_index_select(monkeypatch):
    from sprig.kernels import CSRStructure, _csr

    monkeypatch.setattr(_csr, "GATHER_MIN", 1)  # the compiled gather even on small tensors
    monkeypatch.setattr(torch, "get_num_threads", lambda: 2)
    for shape, density in (((37, 53), 0.3), ((1, 5), 1.0), ((8, 8), 0.02)):
        mask = make_mask(shape, density, generator=0)
        s = CSRStructure(mask)
        for dtype in (torch.float32, torch.float64):
            w = torch.randn(shape, dtype=dtype) * mask
            values = s.values_of(w)
            assert torch.equal(values, w.reshape(-1).index_select(0, s.flat))
            t = s.transpose(values).to_dense()
            assert torch.equal(t, w.t())
            assert torch.equal(s.scatter(values), w)
