"""The fused recurrent loop: a whole sequence of an RNN/GRU/LSTM layer over CSR weights.

Why numba: at small densities one step's products take a few microseconds, less than a
Python loop of torch CSR products spends per step, so the loop overhead, not the arithmetic, is
the bottleneck (``benchmarks/bench_rnn.py``: its "torch CSR loop" column against "sprig").
:func:`csr_recurrent` runs all T steps in one compiled call over the CSR arrays (row pointers,
column indices, values); Python is entered once per layer, not once per step.

Batch 1 (the case sparse recurrent inference is for) runs a CSR mat-vec per step, its rows
split over threads when the layer is big (for small layers waking a thread per step costs more
than it saves; ``MIN_NNZ_PER_THREAD`` in ``_threads``). Small batches keep the batch innermost
so each nonzero serves every sequence (see ``_recurrent_numba``); batches with big steps
(``nnz(W_hh) * B >= MKL_STEP_MIN``) run a Python loop of MKL CSR products and torch cell ops
instead, which is faster there. Timings of every path: ``benchmarks/bench_rnn.py``, table
``benchmarks/results/rnn.md``. Variable lengths: a sequence stops at its length (outputs after
it are zero, its state is the one after its last step, like torch's packed sequences).

:func:`recurrent_reference` beside it is the slow, obviously-correct twin (a Python loop of
dense products) that the tests compare against.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from enum import IntEnum
from typing import Any, NamedTuple

import numpy as np
import torch
import torch.nn.functional as F
from torch import Tensor

from ._csr import check_csr_parts, csr_from_parts
from ._threads import row_parts, run_parts
from ._warm import compiled_ready

# nonzeros of W_hh times batch from which batched steps run torch's CSR loop (_torch_csr_loop)
MKL_STEP_MIN = 200_000

# Gate names in torch's order inside the stacked weights (rows gate*H : (gate+1)*H): the one
# table of cells that nn (SparseRNN's per-gate masks) and compress import.
CELL_GATES: dict[str, tuple[str, ...]] = {
    "rnn": ("h",),
    "gru": ("r", "z", "n"),
    "lstm": ("i", "f", "g", "o"),
}
GATES = {cell: len(names) for cell, names in CELL_GATES.items()}  # gate blocks per cell


class Cell(IntEnum):
    """The compiled loops' cell codes (``_recurrent_numba`` branches on them)."""

    RNN = 0
    GRU = 1
    LSTM = 2


class Act(IntEnum):
    """Activations the compiled Elman loop knows, by sprig's activation-registry names
    (lower case); the values are the codes ``_recurrent_numba.activate`` branches on."""

    TANH = 0
    RELU = 1
    SIGMOID = 2
    IDENTITY = 3
    SILU = 4
    GELU = 5
    ELU = 6
    LEAKY_RELU = 7


KERNEL_ACTIVATIONS = {act.name.lower(): int(act) for act in Act}

Activation = str | Callable[[Tensor], Tensor]


@dataclass(frozen=True)
class RecurrentLayer:
    """One layer's weights, in torch's gate order (GRU: r, z, n; LSTM: i, f, g, o).

    Args:
        weight_ih: ``(G*H, I)`` input weights, a sparse CSR tensor (or dense for the reference).
        weight_hh: ``(G*H, H)`` recurrent weights, same kind.
        bias_ih: ``(G*H,)`` or None.
        bias_hh: ``(G*H,)`` or None.
    """

    weight_ih: Tensor
    weight_hh: Tensor
    bias_ih: Tensor | None = None
    bias_hh: Tensor | None = None


def _check(
    x: Tensor, layer: RecurrentLayer, cell: str, h0: Tensor | None, c0: Tensor | None
) -> tuple[int, int, int, int]:
    if cell not in GATES:
        raise ValueError(f"unknown cell {cell!r}; valid names are: {', '.join(GATES)}")
    ih, hh = layer.weight_ih.shape, layer.weight_hh.shape
    return _check_shapes(x, (ih[0], ih[1]), (hh[0], hh[1]), cell, h0, c0)


def _lengths(lengths: Tensor | None, T: int, B: int) -> Tensor:
    if lengths is None:
        return torch.full((B,), T, dtype=torch.int64)
    lengths = torch.as_tensor(lengths, dtype=torch.int64).cpu()
    if tuple(lengths.shape) != (B,) or bool((lengths < 0).any()) or bool((lengths > T).any()):
        raise ValueError(f"lengths must be B={B} integers in [0, T={T}], got {lengths.tolist()}")
    return lengths


def recurrent_reference(
    x: Tensor,
    layer: RecurrentLayer,
    cell: str = "rnn",
    activation: Activation = "tanh",
    h0: Tensor | None = None,
    c0: Tensor | None = None,
    lengths: Tensor | None = None,
) -> tuple[Tensor, Tensor, Tensor | None]:
    """The slow twin of :func:`csr_recurrent`: a Python loop of dense masked products.

    Same arguments and results as :func:`csr_recurrent`; CSR weights are densified first.
    """
    T, B, _, H = _check(x, layer, cell, h0, c0)
    lens = _lengths(lengths, T, B)

    def dense(w: Tensor) -> Tensor:
        return w.to_dense() if w.layout == torch.sparse_csr else w

    w_ih, w_hh = dense(layer.weight_ih), dense(layer.weight_hh)
    act = _torch_activation(activation)
    h = torch.zeros(B, H, dtype=x.dtype) if h0 is None else h0.clone()
    c = torch.zeros(B, H, dtype=x.dtype) if c0 is None else c0.clone()
    out = torch.zeros(T, B, H, dtype=x.dtype)
    for t in range(T):
        gi = F.linear(x[t], w_ih, layer.bias_ih)  # (B, G*H)
        gh = F.linear(h, w_hh, layer.bias_hh)
        h_new, c_new = torch_cell(cell, act, gi, gh, h, c)
        live = (t < lens).unsqueeze(1)  # (B, 1)
        h = torch.where(live, h_new, h)
        c = torch.where(live, c_new, c)
        out[t] = torch.where(live, h_new, torch.zeros_like(h_new))
    return out, h, (c if cell == "lstm" else None)


def torch_cell(
    cell: str, act: Callable[[Tensor], Tensor], gi: Tensor, gh: Tensor, h: Tensor, c: Tensor
) -> tuple[Tensor, Tensor]:
    """One step of the cell in torch ops: ``(h_t, c_t)`` from the input and recurrent parts
    ``gi``, ``gh`` ``(B, G*H)`` (biases included) and ``h``, ``c`` ``(B, H)``; follows
    ``torch.nn.RNN/GRU/LSTM``."""
    H = h.shape[1]
    if cell == "rnn":
        return act(gi + gh), c
    if cell == "gru":
        r = torch.sigmoid(gi[:, :H] + gh[:, :H])
        z = torch.sigmoid(gi[:, H : 2 * H] + gh[:, H : 2 * H])
        n = torch.tanh(gi[:, 2 * H :] + r * gh[:, 2 * H :])
        return (1 - z) * n + z * h, c
    g = gi + gh
    i, f = torch.sigmoid(g[:, :H]), torch.sigmoid(g[:, H : 2 * H])
    gg, o = torch.tanh(g[:, 2 * H : 3 * H]), torch.sigmoid(g[:, 3 * H :])
    c_new = f * c + i * gg
    return o * torch.tanh(c_new), c_new


def _torch_activation(activation: Activation) -> Callable[[Tensor], Tensor]:
    if callable(activation):
        return activation
    torch_fns: dict[Act, Callable[[Tensor], Tensor]] = {
        Act.TANH: torch.tanh,
        Act.RELU: torch.relu,
        Act.SIGMOID: torch.sigmoid,
        Act.IDENTITY: lambda v: v,
        Act.SILU: F.silu,
        Act.GELU: F.gelu,
        Act.ELU: F.elu,
        Act.LEAKY_RELU: F.leaky_relu,
    }
    table = {act.name.lower(): fn for act, fn in torch_fns.items()}
    if activation not in table:
        raise ValueError(
            f"unknown activation {activation!r}; valid names are: {', '.join(sorted(table))} "
            "(or pass a function)"
        )
    return table[activation]


class LoopArrays(NamedTuple):
    """The compiled loop's arrays of one layer, in the order its entry points take them."""

    ih_crow: Any  # (G*H + 1,) uint32
    ih_col: Any  # (nnz_ih,) uint16 or uint32
    ih_values: Any  # (nnz_ih,) float32/64
    hh_crow: Any
    hh_col: Any
    hh_values: Any
    b_ih: Any  # (G*H,), zeros where the layer has no bias
    b_hh: Any


@dataclass(frozen=True)
class PreparedLayer:
    """A layer's CSR arrays as the compiled loop takes them (uint32 indices, numpy, one dtype).

    Build once with :func:`prepare_layer` and pass to :func:`csr_recurrent` in place of a
    :class:`RecurrentLayer` to skip the conversion on every call.
    """

    shape_ih: tuple[int, int]
    shape_hh: tuple[int, int]
    arrays: LoopArrays
    dtype: torch.dtype
    csr: tuple[Tensor, Tensor]  # W_ih, W_hh as torch CSR with int32 indices (batched path)
    parts: dict[int, Any] = field(default_factory=dict)  # W_hh row cuts per thread count

    def hh_parts(self, threads: int) -> Any:
        """Row cuts of ``W_hh`` for ``threads`` threads (cached)."""
        if threads not in self.parts:
            self.parts[threads] = row_parts(self.arrays.hh_crow, threads)
        return self.parts[threads]


def prepare_layer(
    layer: RecurrentLayer, dtype: torch.dtype = torch.float32, validate: bool = True
) -> PreparedLayer:
    """``layer``'s CSR weights as the compiled loop's arrays (see :class:`PreparedLayer`).

    The compiled loop checks no bounds, so the CSR arrays are validated
    (:func:`check_csr_parts`) unless ``validate`` is False (arrays validated already), and the
    biases must have one entry per gate row.
    """
    if dtype not in (torch.float32, torch.float64):
        raise ValueError(f"csr_recurrent supports float32 and float64, got {dtype}")
    for name in ("weight_ih", "weight_hh"):
        w = getattr(layer, name)
        if w.layout != torch.sparse_csr:
            raise ValueError(
                f"csr_recurrent needs CSR weights (sprig.kernels.to_csr), got {w.layout}"
            )
        if w.device.type != "cpu":
            raise ValueError(f"csr_recurrent runs on the CPU; a weight is on {w.device}")
        if validate:
            shape = (int(w.shape[0]), int(w.shape[1]))
            check_csr_parts(w.crow_indices(), w.col_indices(), w.values(), shape, name)
    GH = layer.weight_hh.shape[0]
    if layer.weight_ih.shape[0] != GH:
        raise ValueError(
            f"weight_ih has {layer.weight_ih.shape[0]} rows but weight_hh {GH}: both need G*H"
        )
    for name in ("bias_ih", "bias_hh"):
        b = getattr(layer, name)
        if b is not None and tuple(b.shape) != (GH,):
            raise ValueError(f"{name} of shape {tuple(b.shape)} does not fit: pass ({GH},) or None")

    def arrays(w: Tensor) -> tuple[Any, Any, Any]:
        # unsigned indices: see _recurrent_numba (no wrap-around checks, vectorized gathers);
        # 16-bit columns where they fit: 6 bytes per nonzero instead of 8
        col = np.uint16 if w.shape[1] <= 2**16 else np.uint32
        return (
            w.crow_indices().to(torch.int64).numpy().astype(np.uint32),
            w.col_indices().to(torch.int64).numpy().astype(col),
            w.values().detach().to(dtype).contiguous().numpy(),
        )

    def bias(b: Tensor | None) -> Any:
        z = torch.zeros(GH, dtype=dtype) if b is None else b.detach().to(dtype)
        return z.contiguous().numpy()

    def csr32(w: Tensor) -> Tensor:  # no copy when the weight already is one (CompressedRNN)
        crow, col = w.crow_indices(), w.col_indices()
        if crow.dtype == torch.int32 and w.dtype == dtype:
            return w
        shape = (int(w.shape[0]), int(w.shape[1]))
        return csr_from_parts(crow.int(), col.int(), w.values().detach().to(dtype), shape)

    biases = (bias(layer.bias_ih), bias(layer.bias_hh))
    return PreparedLayer(
        (GH, layer.weight_ih.shape[1]),
        (GH, layer.weight_hh.shape[1]),
        LoopArrays(*arrays(layer.weight_ih), *arrays(layer.weight_hh), *biases),
        dtype,
        (csr32(layer.weight_ih), csr32(layer.weight_hh)),
    )


def csr_recurrent(
    x: Tensor,
    layer: RecurrentLayer | PreparedLayer,
    cell: str = "rnn",
    activation: Activation = "tanh",
    h0: Tensor | None = None,
    c0: Tensor | None = None,
    lengths: Tensor | None = None,
) -> tuple[Tensor, Tensor, Tensor | None]:
    """Run one recurrent layer over a whole sequence with CSR weights, in one compiled loop.

    Elman cell: ``h_t = act(W_ih x_t + b_ih + W_hh h_{t-1} + b_hh)``; GRU and LSTM follow
    ``torch.nn.GRU``/``torch.nn.LSTM`` exactly. Inference only: no gradients flow. Batch 1 runs
    a CSR mat-vec per step; larger batches keep the batch innermost (one pass over the
    nonzeros per step) or, with big steps, run MKL's batched CSR product per step.

    Args:
        x: ``(T, B, I)`` input sequence (float32 or float64, CPU).
        layer: CSR weights (``sprig.kernels.to_csr``) and biases of one layer, or the same
            already converted by :func:`prepare_layer`.
        cell: ``"rnn"``, ``"gru"`` or ``"lstm"``.
        activation: the Elman cell's activation: a name the compiled loop knows
            (``KERNEL_ACTIVATIONS``), or any function ``Tensor -> Tensor``, which runs a
            (slower) Python loop of torch CSR products instead.
        h0: ``(B, H)`` initial hidden state (zeros if None).
        c0: ``(B, H)`` initial LSTM cell state (zeros if None).
        lengths: ``(B,)`` valid steps of each sequence (all T if None); any order.

    Returns:
        ``(out, h_n, c_n)``: ``out`` ``(T, B, H)`` with zeros after each sequence's length,
        ``h_n`` ``(B, H)``, ``c_n`` ``(B, H)`` for LSTM else None.

    Example:
        >>> from sprig.kernels import to_csr
        >>> w_ih, w_hh = torch.randn(8, 3), torch.randn(8, 8) * (torch.rand(8, 8) < 0.2)
        >>> layer = RecurrentLayer(to_csr(w_ih), to_csr(w_hh))
        >>> out, h_n, _ = csr_recurrent(torch.randn(5, 1, 3), layer)
        >>> out.shape, h_n.shape
        (torch.Size([5, 1, 8]), torch.Size([1, 8]))
    """
    if cell not in GATES:
        raise ValueError(f"unknown cell {cell!r}; valid names are: {', '.join(GATES)}")
    if isinstance(layer, RecurrentLayer) and cell == "rnn" and not _compiled(activation):
        T, B, _, _ = _check(x, layer, cell, h0, c0)
        act_fn = _torch_activation(activation)
        return _torch_csr_loop(x, layer, cell, act_fn, h0, c0, _lengths(lengths, T, B))
    if x.device.type != "cpu":
        raise ValueError(f"csr_recurrent runs on CPU tensors; x is on {x.device}")
    prep = layer if isinstance(layer, PreparedLayer) else prepare_layer(layer, x.dtype)
    if cell == "rnn" and not _compiled(activation):
        raise ValueError(
            f"activation {activation!r} has no compiled version (KERNEL_ACTIVATIONS: "
            f"{', '.join(KERNEL_ACTIVATIONS)}); pass a RecurrentLayer to run the torch loop"
        )
    T, B, _, H = _check_shapes(x, prep.shape_ih, prep.shape_hh, cell, h0, c0)
    lens = _lengths(lengths, T, B)
    dtype = prep.dtype
    act = KERNEL_ACTIVATIONS[activation] if isinstance(activation, str) else 0

    # numpy allocations: torch.zeros fans out to every intra-op thread, which on a busy
    # machine costs milliseconds per call (row torch-zeros-busy of
    # benchmarks/results/design_measurements.md); these arrays are filled by one thread.
    np_dtype = np.float32 if dtype == torch.float32 else np.float64
    xn = x.detach().to(dtype).numpy()  # (T, B, I)

    def state(s: Tensor | None, batch_inner: bool) -> Any:
        if s is None:
            return np.zeros((H, B) if batch_inner else (B, H), dtype=np_dtype)
        arr = s.detach().to(dtype).numpy()
        return np.array(arr.T if batch_inner else arr, dtype=np_dtype, order="C", copy=True)

    inner = B > 1  # batch innermost: one pass over the nonzeros per step serves every sequence
    if (inner and prep.arrays.hh_values.shape[0] * B >= MKL_STEP_MIN) or not compiled_ready():
        # big steps: MKL's batched CSR product per step; or numba still warming up (_warm)
        csr_ih, csr_hh = prep.csr
        b_ih, b_hh = (torch.from_numpy(b) for b in (prep.arrays.b_ih, prep.arrays.b_hh))
        layer32 = RecurrentLayer(csr_ih, csr_hh, b_ih, b_hh)
        act_fn = _torch_activation(activation)
        return _torch_csr_loop(x.detach().to(dtype), layer32, cell, act_fn, h0, c0, lens)
    from . import _recurrent_numba as nb

    h, c = state(h0, inner), state(c0, inner)
    # every step of every sequence is written unless a length stops one early
    full = lengths is None or bool((lens == T).all())
    out = (np.empty if full else np.zeros)((T, H, B) if inner else (B, T, H), dtype=np_dtype)
    # loop_mat: (T, I, B), batch innermost; loop_vec: (B, I, T), time innermost
    xs = np.ascontiguousarray(xn.transpose(0, 2, 1) if inner else xn.transpose(1, 2, 0))
    args = (xs, lens.numpy(), h, c, *prep.arrays, int(Cell[cell.upper()]), act, out)
    if inner:
        nb.loop_mat(*args)
    else:  # big layers split each step's recurrent product over OpenMP threads
        run_parts(
            lambda bounds: nb.loop_vec_parallel(*args, bounds),
            lambda: nb.loop_vec(*args),
            prep.hh_parts(torch.get_num_threads()),
        )
    return _results(out, h, c, inner, cell)


def _results(
    out: Any, h: Any, c: Any, inner: bool, cell: str
) -> tuple[Tensor, Tensor, Tensor | None]:
    out_t = torch.from_numpy(out).permute(*((0, 2, 1) if inner else (1, 0, 2)))
    h_t, c_t = torch.from_numpy(h), torch.from_numpy(c)
    if inner:
        h_t, c_t = h_t.t(), c_t.t()
    return out_t, h_t, (c_t if cell == "lstm" else None)


def _compiled(activation: Activation) -> bool:
    return isinstance(activation, str) and activation in KERNEL_ACTIVATIONS


def _check_shapes(
    x: Tensor,
    shape_ih: tuple[int, int],
    shape_hh: tuple[int, int],
    cell: str,
    h0: Tensor | None,
    c0: Tensor | None,
) -> tuple[int, int, int, int]:
    if x.dim() != 3:
        raise ValueError(f"x must be (T, B, input_size), got shape {tuple(x.shape)}")
    T, B, I = x.shape
    G = GATES[cell]
    GH, I_w = shape_ih
    H = GH // G
    if GH != G * H or tuple(shape_hh) != (G * H, H):
        raise ValueError(
            f"{cell} weights must be ({G}*H, I) and ({G}*H, H); got "
            f"{tuple(shape_ih)} and {tuple(shape_hh)}"
        )
    if I_w != I:
        raise ValueError(f"x has {I} features but weight_ih expects {I_w}")
    for name, s in (("h0", h0), ("c0", c0)):
        if s is not None and tuple(s.shape) != (B, H):
            raise ValueError(f"{name} must have shape (B, H) = {(B, H)}, got {tuple(s.shape)}")
    return T, B, I, H


def _torch_csr_loop(
    x: Tensor,
    layer: RecurrentLayer,
    cell: str,
    act: Callable[[Tensor], Tensor],
    h0: Tensor | None,
    c0: Tensor | None,
    lens: Tensor,
) -> tuple[Tensor, Tensor, Tensor | None]:
    """A Python loop of torch CSR products (MKL, multi-threaded) and torch cell ops.

    Runs activations the compiled loop does not know, and batches with big steps: MKL's CSR
    product over a batch beats the compiled batch-inner loop there (``MKL_STEP_MIN``;
    ``benchmarks/bench_rnn.py``), and torch's element-wise ops run on every thread.
    """
    T, B, _ = x.shape
    H = layer.weight_hh.shape[1]
    with torch.no_grad():
        # (G*H, B) layouts throughout: MKL's CSR product wants a row-major dense operand, and
        # element-wise ops on operands of one layout run faster than on mixed ones (row layout-ops
        # of benchmarks/results/design_measurements.md)
        x_t = x.permute(0, 2, 1).contiguous()  # (T, I, B)
        b_ih = None if layer.bias_ih is None else layer.bias_ih.unsqueeze(1)
        b_hh = None if layer.bias_hh is None else layer.bias_hh.unsqueeze(1)
        h_t = torch.zeros(H, B, dtype=x.dtype) if h0 is None else h0.to(x.dtype).t().contiguous()
        c_t = torch.zeros(H, B, dtype=x.dtype) if c0 is None else c0.to(x.dtype).t().contiguous()
        out = torch.empty(T, H, B, dtype=x.dtype)
        live_all = bool((lens == T).all())
        for t in range(T):
            gi = torch.sparse.mm(layer.weight_ih, x_t[t])  # (G*H, B)
            gh = torch.sparse.mm(layer.weight_hh, h_t)
            if b_ih is not None:
                gi = gi.add_(b_ih)
            if b_hh is not None:
                gh = gh.add_(b_hh)
            h_new, c_new = torch_cell(cell, act, gi.t(), gh.t(), h_t.t(), c_t.t())
            h_new, c_new = h_new.t(), c_new.t()  # (H, B), no copies: ops keep the layout
            if not live_all:
                live = t < lens  # (B,)
                h_new = torch.where(live, h_new, h_t)
                c_new = torch.where(live, c_new, c_t)
                out[t] = torch.where(live, h_new, 0.0)
            else:
                out[t] = h_new
            h_t, c_t = h_new, c_new
        out = out.permute(0, 2, 1)  # (T, B, H) view
        h, c = h_t.t(), c_t.t()
    return out, h, (c if cell == "lstm" else None)
