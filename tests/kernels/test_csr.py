import pytest
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


def test_structure_refuses_wrong_shapes_before_the_compiled_gather(monkeypatch):
    # the compiled gather/scatter check no bounds: a wrong-sized input must raise, not read
    # stray memory (it did: NaNs in the output)
    from sprig.kernels import CSRStructure, _csr

    monkeypatch.setattr(_csr, "GATHER_MIN", 1)
    monkeypatch.setattr(torch, "get_num_threads", lambda: 2)
    s = CSRStructure(make_mask((40, 30), 0.5, generator=0))
    with pytest.raises(
        ValueError, match=r"weight of shape \(39, 30\) does not fit this \(40, 30\)"
    ):
        s.values_of(torch.randn(39, 30))
    short = torch.randn(s.nnz - 7)
    for call in (s.transpose, s.scatter, s.csr):
        with pytest.raises(ValueError, match=f"do not fit this structure's {s.nnz} nonzeros"):
            call(short)
