"""Compressed recurrent networks: masked ``nn.RNN/GRU/LSTM`` or ``SparseRNN`` -> CSR + fused loop.

:class:`CompressedRNN` stores each weight as plain CSR buffers (row pointers, column indices,
values), so it saves and loads like any sprig model, and runs each layer over the whole sequence
in one compiled call (:func:`sprig.kernels.csr_recurrent`): no Python per time step.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import torch
from torch import Tensor, nn
from torch.nn.utils.rnn import PackedSequence, pack_padded_sequence, pad_packed_sequence

from ..kernels import (
    GATES,
    KERNEL_ACTIVATIONS,
    PreparedLayer,
    RecurrentLayer,
    check_csr_parts,
    csr_recurrent,
    csr_to_dense,
    prepare_layer,
    to_csr,
)
from ..masks import StoredWeight, apply_mask, get_mask, mask_pattern
from ..nn import MODULES, SparseRNN, check_rnn_input, make_activation, module_config, sprig_module
from ._api import CompressedModule, register_compressor

_CELLS = {"RNN_TANH": "rnn", "RNN_RELU": "rnn", "GRU": "gru", "LSTM": "lstm"}
_TORCH_CLASSES: dict[str, type[nn.RNNBase]] = {"rnn": nn.RNN, "gru": nn.GRU, "lstm": nn.LSTM}
_PARTS = ("crow", "col", "values")


class _Prepared(dict[int, tuple[Any, PreparedLayer]]):
    """Per-layer arrays for the compiled loop, rebuilt on change; copies and pickles start
    empty (they hold torch CSR tensors, which cannot be deep-copied)."""

    def __deepcopy__(self, memo: dict[int, Any]) -> _Prepared:
        return _Prepared()

    def __reduce__(self) -> tuple[type[_Prepared], tuple[()]]:
        return (_Prepared, ())


@sprig_module("CompressedRNN")
class CompressedRNN(CompressedModule):
    """A recurrent network that stores only its nonzero weights and runs a fused CSR loop.

    Made by ``sprig.compress`` from a masked ``nn.RNN``/``nn.GRU``/``nn.LSTM`` or a
    :class:`sprig.SparseRNN`; outputs equal the masked-dense model's. Inference only: the
    weights are buffers, and an input that requires grad is refused (``sprig.decompress``
    gives back the trainable masked model).

    Calling convention as ``SparseRNN``: ``forward(input, hx=None, lengths=None)`` with
    ``input`` ``(T, B, input_size)`` (batch-first if so built, unbatched, or a
    ``PackedSequence``); returns ``(output, h_n)`` (LSTM: ``(output, (h_n, c_n))``).

    Args:
        input_size, hidden_size, num_layers, cell, nonlinearity, bias, batch_first: as the
            source module's.
        nnz: stored entries per weight name (``{"weight_hh_l0": 1049, ...}``), so that
            ``sprig.load`` can allocate the buffers.
        dtype: name of the values' dtype (``"float32"``).
        source: ``{"class": ..., "config": ...}`` of the masked module, for ``decompress``.
        patterns: pattern label of each masked weight (restored by ``decompress``).

    Example:
        >>> import sprig
        >>> rnn = sprig.SparseRNN(8, 32, cell="gru", density=0.1, seed=0)
        >>> small = sprig.compress(rnn)
        >>> x = torch.randn(20, 1, 8)
        >>> with torch.no_grad():
        ...     torch.testing.assert_close(small(x)[0], rnn(x)[0], rtol=1e-5, atol=1e-6)
    """

    def __init__(
        self,
        input_size: int,
        hidden_size: int,
        num_layers: int,
        cell: str,
        nnz: dict[str, int],
        nonlinearity: str | None = None,
        bias: bool = True,
        batch_first: bool = False,
        dtype: str = "float32",
        source: dict[str, Any] | None = None,
        patterns: dict[str, str] | None = None,
    ) -> None:
        super().__init__()
        self.input_size, self.hidden_size, self.num_layers = input_size, hidden_size, num_layers
        self.cell, self.nonlinearity, self.bias = cell, nonlinearity, bias
        self.batch_first, self.bidirectional = batch_first, False
        self.mode = "LSTM" if cell == "lstm" else cell.upper()
        self.nnz = dict(nnz)
        self.source, self.patterns = source, dict(patterns or {})
        dt = getattr(torch, dtype)
        G = GATES[cell]
        act = nonlinearity or "tanh"
        self.activation: Any = act if act in KERNEL_ACTIVATIONS else make_activation(act)
        self._prepared: _Prepared = _Prepared()
        for layer in range(num_layers):
            for kind in ("ih", "hh"):
                name = f"weight_{kind}_l{layer}"
                self.register_buffer(
                    f"{name}_crow", torch.zeros(G * hidden_size + 1, dtype=torch.int32)
                )
                self.register_buffer(f"{name}_col", torch.zeros(nnz[name], dtype=torch.int32))
                self.register_buffer(f"{name}_values", torch.zeros(nnz[name], dtype=dt))
                if bias:
                    self.register_buffer(
                        f"bias_{kind}_l{layer}", torch.zeros(G * hidden_size, dtype=dt)
                    )

    @property
    def dtype_name(self) -> str:
        """Name of the values' dtype, read from the buffers, so ``.float()``/``.double()`` and
        ``.to(dtype)`` change what the model computes in, its outputs and its config."""
        return str(self.weight_hh_l0_values.dtype).removeprefix("torch.")

    def stored_weights(self) -> list[StoredWeight]:
        """``[(name, shape, nnz, pattern)]`` for ``sprig.summary`` and ``sprig.density``."""
        G, H = GATES[self.cell], self.hidden_size
        out = []
        for name in self.nnz:
            first = name.startswith("weight_ih") and name.endswith("_l0")
            shape = (G * H, self.input_size if first else H)
            nnz = getattr(self, f"{name}_values").numel()
            out.append(StoredWeight(name, shape, nnz, self.patterns.get(name, "custom")))
        return out

    @classmethod
    def from_csr(
        cls,
        weight_ih: Any,
        weight_hh: Any,
        bias_ih: Tensor | None = None,
        bias_hh: Tensor | None = None,
        cell: str = "rnn",
        nonlinearity: str | None = None,
    ) -> CompressedRNN:
        """A one-layer network from given CSR weights (torch CSR tensors or scipy sparse).

        ``h_t = tanh(W_ih x_t + b_ih + W_hh h_{t-1} + b_hh)`` for the default Elman cell, the
        sparse RNN built by hand with scipy in the source article, run by the fused loop.

        Args:
            weight_ih: ``(G*H, I)`` input weights; ``scipy.sparse`` matrices are converted.
            weight_hh: ``(G*H, H)`` recurrent weights.
            bias_ih, bias_hh: ``(G*H,)`` biases, or None for none.
            cell: ``"rnn"``, ``"gru"`` or ``"lstm"`` (G = 1, 3, 4).
            nonlinearity: the Elman cell's activation (default ``"tanh"``).
        """
        w_ih, w_hh = _as_csr(weight_ih, "weight_ih"), _as_csr(weight_hh, "weight_hh")
        G = GATES.get(cell)
        if G is None:
            raise ValueError(f"unknown cell {cell!r}; valid names are: {', '.join(GATES)}")
        H = w_hh.shape[1]
        if tuple(w_hh.shape) != (G * H, H) or w_ih.shape[0] != G * H:
            raise ValueError(
                f"a {cell} cell needs weight_hh of shape ({G}*H, H) and weight_ih of shape "
                f"({G}*H, I); got {tuple(w_hh.shape)} and {tuple(w_ih.shape)}"
            )
        if (bias_ih is None) != (bias_hh is None):
            raise ValueError("give both biases or neither (a missing one counts as zeros)")
        if w_ih.dtype != w_hh.dtype or w_hh.dtype not in (torch.float32, torch.float64):
            raise TypeError(
                f"weight_ih and weight_hh must both hold float32 or float64 values, got "
                f"{w_ih.dtype} and {w_hh.dtype}; convert them (scipy: m.astype('float32'))"
            )
        for what, b in (("bias_ih", bias_ih), ("bias_hh", bias_hh)):
            if b is not None and tuple(torch.as_tensor(b).shape) != (G * H,):
                raise ValueError(
                    f"{what} must have shape (G*H,) = ({G * H},) for a {cell} cell with "
                    f"H={H}, got {tuple(torch.as_tensor(b).shape)}"
                )
        rnn = (nonlinearity or "tanh") if cell == "rnn" else None
        out = cls(
            w_ih.shape[1],
            H,
            1,
            cell,
            {"weight_ih_l0": w_ih.values().numel(), "weight_hh_l0": w_hh.values().numel()},
            nonlinearity=rnn,
            bias=bias_ih is not None,
            dtype=str(w_hh.dtype).removeprefix("torch."),
        )
        out._fill(
            {"weight_ih_l0": w_ih, "weight_hh_l0": w_hh},
            {"bias_ih_l0": bias_ih, "bias_hh_l0": bias_hh},
        )
        return out

    def _fill(self, csr: dict[str, Tensor], biases: dict[str, Tensor | None]) -> None:
        with torch.no_grad():
            for name, c in csr.items():
                getattr(self, f"{name}_crow").copy_(c.crow_indices())
                getattr(self, f"{name}_col").copy_(c.col_indices())
                getattr(self, f"{name}_values").copy_(c.values())
            for name, b in biases.items():
                if b is not None:
                    getattr(self, name).copy_(torch.as_tensor(b))

    def weight_csr(self, name: str) -> Tensor:
        """Weight ``name`` (``"weight_hh_l0"``) as a sparse CSR tensor (no copy).

        The buffers are validated first (:func:`~sprig.kernels.check_csr_parts`): the compiled
        loop does not check bounds, so a corrupt file must fail here, not read stray memory.
        """
        layer = int(name.rsplit("_l", 1)[1])
        cols = self.input_size if name.startswith("weight_ih") and layer == 0 else self.hidden_size
        crow, col, val = (getattr(self, f"{name}_{p}") for p in _PARTS)
        shape = (crow.numel() - 1, cols)
        check_csr_parts(crow, col, val, shape, f"CompressedRNN.{name}")
        return torch.sparse_csr_tensor(crow, col, val, size=shape, check_invariants=False)

    def _layer(self, layer: int) -> RecurrentLayer | PreparedLayer:
        """Layer ``layer``'s weights, converted for the compiled loop once and cached."""
        # the key changes when a buffer is replaced or written in place (load_state_dict)
        key = tuple((b.data_ptr(), b._version) for b in self._buffers.values() if b is not None)
        hit = self._prepared.get(layer)
        if hit is not None and hit[0] == key:
            return hit[1]
        weights = RecurrentLayer(
            self.weight_csr(f"weight_ih_l{layer}"),
            self.weight_csr(f"weight_hh_l{layer}"),
            getattr(self, f"bias_ih_l{layer}", None),
            getattr(self, f"bias_hh_l{layer}", None),
        )
        if not isinstance(self.activation, str):
            return weights  # an activation the compiled loop does not know: torch loop
        prepared = prepare_layer(weights, getattr(torch, self.dtype_name), validate=False)
        hit = (key, prepared)  # validated by weight_csr
        self._prepared[layer] = hit
        return hit[1]

    def forward(
        self,
        input: Tensor | PackedSequence,
        hx: Tensor | tuple[Tensor, Tensor] | None = None,
        lengths: Tensor | Sequence[int] | None = None,
    ) -> tuple[Tensor | PackedSequence, Tensor | tuple[Tensor, Tensor]]:
        dtype = getattr(torch, self.dtype_name)
        check_rnn_input(self, input, hx, lengths, dtype)  # type: ignore[arg-type]
        data = input.data if isinstance(input, PackedSequence) else input
        if torch.is_grad_enabled() and data.requires_grad:
            raise RuntimeError(
                "CompressedRNN is inference-only (its CSR loop has no backward); run it under "
                "torch.no_grad(), or train the masked model (sprig.decompress(model))"
            )
        packed = isinstance(input, PackedSequence)
        lens: Tensor | None
        if isinstance(input, PackedSequence):
            x, lens = pad_packed_sequence(input)  # (T, B, I) in the caller's batch order
        else:
            x = input.transpose(0, 1) if self.batch_first and input.dim() == 3 else input
            lens = None if lengths is None else torch.as_tensor(lengths, dtype=torch.int64)
        unbatched = x.dim() == 2
        if unbatched:
            x = x.unsqueeze(1)
        states: tuple[Tensor, ...] = (
            (hx if isinstance(hx, tuple) else (hx,)) if hx is not None else ()
        )
        if unbatched:
            states = tuple(s.unsqueeze(1) for s in states)
        h_n, c_n = [], []
        for layer in range(self.num_layers):
            weights = self._layer(layer)
            h0 = states[0][layer] if states else None
            c0 = states[1][layer] if len(states) > 1 else None
            x, h, c = csr_recurrent(x, weights, self.cell, self.activation, h0, c0, lens)
            h_n.append(h)
            if c is not None:
                c_n.append(c)
        hs = torch.stack(h_n)
        cs = torch.stack(c_n) if c_n else None
        if unbatched:
            x, hs = x.squeeze(1), hs.squeeze(1)
            cs = None if cs is None else cs.squeeze(1)
        out: Tensor | PackedSequence = x
        if packed:
            assert lens is not None
            out = pack_padded_sequence(x, lens, enforce_sorted=False)
        elif self.batch_first and not unbatched:
            out = x.transpose(0, 1)
        return out, (hs if cs is None else (hs, cs))

    def decompress_module(self) -> nn.Module:
        src = self.source or {}
        if src.get("class"):
            module: nn.RNNBase = MODULES.get(src["class"])(**src["config"])  # type: ignore[assignment]
        else:
            cls: Any = _TORCH_CLASSES[self.cell]
            kwargs: dict[str, Any] = (
                {"nonlinearity": self.nonlinearity} if self.cell == "rnn" else {}
            )
            module = cls(
                self.input_size,
                self.hidden_size,
                self.num_layers,
                bias=self.bias,
                batch_first=self.batch_first,
                **kwargs,
            )
        module = module.to(getattr(torch, self.dtype_name))
        with torch.no_grad():
            for name, param in list(module.named_parameters(recurse=False)):
                if name.startswith("weight_"):
                    weight, mask = csr_to_dense(self.weight_csr(name))
                    param.copy_(weight)
                    if name in self.patterns:
                        apply_mask(module, name, mask, pattern=self.patterns[name])
                else:
                    param.copy_(getattr(self, name))
        return module

    def config(self) -> dict[str, Any]:
        return {
            "input_size": self.input_size,
            "hidden_size": self.hidden_size,
            "num_layers": self.num_layers,
            "cell": self.cell,
            "nnz": self.nnz,
            "nonlinearity": self.nonlinearity,
            "bias": self.bias,
            "batch_first": self.batch_first,
            "dtype": self.dtype_name,
            "source": self.source,
            "patterns": self.patterns,
        }

    def extra_repr(self) -> str:
        stored = sum(self.nnz.values())
        return (
            f"{self.input_size}, {self.hidden_size}, num_layers={self.num_layers}, "
            f"cell={self.cell}, stored weights={stored}"
        )


@register_compressor(nn.RNNBase)
def compress_rnn(module: nn.RNNBase, **options: Any) -> CompressedRNN:
    """A :class:`CompressedRNN` holding ``module``'s weights (masked ones by their masks) as CSR."""
    if module.bidirectional or module.proj_size > 0:
        raise NotImplementedError(
            f"compressing {type(module).__name__} with bidirectional={module.bidirectional}, "
            f"proj_size={module.proj_size} is not supported yet; only unidirectional networks "
            "without projections (keep this one masked-dense)"
        )
    cell = _CELLS[module.mode]
    if isinstance(module, SparseRNN):
        nonlinearity = module.nonlinearity
    else:
        nonlinearity = getattr(module, "nonlinearity", None) if cell == "rnn" else None
    csr: dict[str, Tensor] = {}
    patterns: dict[str, str] = {}
    for name, param in module.named_parameters(recurse=False):
        if name.startswith("weight_"):
            csr[name] = to_csr(param.detach(), get_mask(module, name))
            label = mask_pattern(module, name)
            if label is not None:
                patterns[name] = label
    spec = module_config(module)
    dtype = str(csr["weight_hh_l0"].dtype).removeprefix("torch.")
    out = CompressedRNN(
        module.input_size,
        module.hidden_size,
        module.num_layers,
        cell,
        {n: int(c.values().numel()) for n, c in csr.items()},
        nonlinearity=nonlinearity,
        bias=module.bias,
        batch_first=module.batch_first,
        dtype=dtype,
        source=spec,
        patterns=patterns,
    )
    out._fill(
        csr, {n: p for n, p in module.named_parameters(recurse=False) if n.startswith("bias_")}
    )
    return out.to(device=csr["weight_hh_l0"].device)


def _as_csr(weight: Any, what: str) -> Tensor:
    if isinstance(weight, Tensor):
        if weight.layout != torch.sparse_csr:
            raise ValueError(
                f"{what} must be a CSR tensor (sprig.kernels.to_csr), got {weight.layout}"
            )
        return weight
    tocsr = getattr(weight, "tocsr", None)
    if tocsr is None:
        raise TypeError(
            f"{what} must be a torch CSR tensor or a scipy sparse matrix, got {type(weight)}"
        )
    m = tocsr()
    m.sum_duplicates()  # also sorts the column indices of each row
    return torch.sparse_csr_tensor(
        torch.from_numpy(m.indptr.astype("int32")),
        torch.from_numpy(m.indices.astype("int32")),
        torch.from_numpy(m.data.copy()),
        size=m.shape,
        check_invariants=False,  # scipy's sum_duplicates left it canonical
    )
