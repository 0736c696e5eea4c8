"""The scipy sparse RNN of an article, rebuilt with sprig.

Source: "How can I build a sparse recurrent neural network in Python?" (2024).

The article stores W_ih and W_hh as scipy CSR matrices and runs ``h = tanh(W_ih x + W_hh h)``
one time step at a time in a Python loop. sprig runs the same network from the same CSR
matrices in one compiled loop over the whole sequence, gives the same hidden states, and can
also train such a network masked (``sprig.SparseRNN``) and then compress it.

python examples/scipy_sparse_rnn.py
"""

from __future__ import annotations

import time

import numpy as np
import torch
from scipy.sparse import csr_matrix

import sprig
from sprig.compress import CompressedRNN


def create_sparse_weight_matrix(
    rows: int, cols: int, sparsity_level: float, rng: np.random.Generator
) -> csr_matrix:
    """The article's random CSR matrix (with a seeded generator instead of global np.random)."""
    total = rows * cols
    nonzero = int(total * (1 - sparsity_level))
    flat = rng.choice(total, size=nonzero, replace=False)
    data = rng.random(nonzero)
    return csr_matrix((data, (flat // cols, flat % cols)), shape=(rows, cols))


def sparse_rnn(
    input_sequence: np.ndarray,
    initial_hidden: np.ndarray,
    weight_ih: csr_matrix,
    weight_hh: csr_matrix,
) -> np.ndarray:
    """The article's loop: one scipy CSR mat-vec pair per time step."""
    hidden_states = []
    current = initial_hidden
    for x in input_sequence:
        current = np.tanh(weight_ih.dot(x) + weight_hh.dot(current))
        hidden_states.append(current)
    return np.array(hidden_states)


def main(sequence_length: int = 10, input_size: int = 20, hidden_size: int = 50) -> float:
    rng = np.random.default_rng(0)
    weight_ih = create_sparse_weight_matrix(hidden_size, input_size, 0.8, rng)
    weight_hh = create_sparse_weight_matrix(hidden_size, hidden_size, 0.7, rng)
    inputs = rng.random((sequence_length, input_size))
    h0 = rng.random(hidden_size)

    start = time.perf_counter()
    expected = sparse_rnn(inputs, h0, weight_ih, weight_hh)
    t_scipy = time.perf_counter() - start

    # The same CSR matrices, float64 like scipy's, run by sprig's fused loop.
    rnn = CompressedRNN.from_csr(weight_ih, weight_hh)
    with torch.no_grad():
        rnn(torch.from_numpy(inputs), torch.from_numpy(h0)[None])  # first call compiles
        start = time.perf_counter()
        out, h_n = rnn(torch.from_numpy(inputs), torch.from_numpy(h0)[None])  # unbatched
        t_sprig = time.perf_counter() - start
    err = float(np.abs(out.numpy() - expected).max())
    print(f"hidden state sequence {tuple(out.shape)}, max |sprig - scipy| = {err:.2e}")
    print(f"scipy loop {t_scipy * 1e6:.0f} us, sprig fused loop {t_sprig * 1e6:.0f} us")

    # The sprig way from scratch: train a masked SparseRNN, then compress it for inference.
    model = sprig.SparseRNN(input_size, hidden_size, density=0.3, seed=0)
    x = torch.randn(sequence_length, 4, input_size)
    target = torch.randn(sequence_length, 4, hidden_size).tanh()
    opt = torch.optim.Adam(model.parameters(), lr=1e-2)
    for _ in range(20):
        opt.zero_grad()
        torch.nn.functional.mse_loss(model(x)[0], target).backward()
        opt.step()
    small = sprig.compress(model)
    with torch.no_grad():
        torch.testing.assert_close(small(x)[0], model(x)[0], rtol=1e-5, atol=1e-6)
    print(f"trained SparseRNN at density {sprig.density(model):.2f}, compressed: {small}")
    return err


if __name__ == "__main__":
    main()
