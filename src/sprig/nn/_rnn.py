"""SparseRNN: an Elman RNN, GRU or LSTM born masked, with a density per gate.

It *is* a ``torch.nn.RNNBase`` holding torch's own flat weights (``weight_ih_l0``,
``weight_hh_l0``...), masked through sprig's one mask mechanism. The masks zero pruned weights
in place, so the cells torch has fused kernels for (tanh/relu Elman, GRU, LSTM) run those
kernels unchanged: a masked training step costs about what a dense one does. Only an Elman cell
with another activation runs a Python loop over time (one product per step).
"""

from __future__ import annotations

from collections.abc import Callable, Mapping, Sequence
from typing import Any

import torch
import torch.nn.functional as F
from torch import Tensor, nn
from torch.nn.utils.rnn import PackedSequence, pack_padded_sequence, pad_packed_sequence

from .._checks import check_density, reject_keywords, sub_seed
from .._words import plural
from ..kernels import CELL_GATES
from ..masks import apply_mask, make_mask, parse_pattern
from ..masks import density as measured_density
from ._activations import ACTIVATIONS, make_activation
from ._base import sprig_module

_TORCH_MODE = {"gru": "GRU", "lstm": "LSTM"}
_TORCH_FORWARD: dict[str, Callable[..., Any]] = {
    "RNN_TANH": nn.RNN.forward,
    "RNN_RELU": nn.RNN.forward,
    "GRU": nn.GRU.forward,
    "LSTM": nn.LSTM.forward,
}

Hidden = Tensor | tuple[Tensor, Tensor]


def gate_densities(
    cell: str, density: float | Mapping[str, float] | None
) -> dict[str, float | None]:
    """One density per gate of ``cell`` from a number (all gates) or a gate -> density mapping."""
    if cell not in CELL_GATES:
        raise ValueError(f"unknown cell {cell!r}; valid names are: {', '.join(CELL_GATES)}")
    gates = CELL_GATES[cell]
    if density is None or isinstance(density, (int, float)):
        d = None if density is None else check_density(density)
        return {g: d for g in gates}
    if not isinstance(density, Mapping):
        raise TypeError(f"density must be a number or a gate -> density mapping, got {density!r}")
    if set(density) != set(gates):
        raise ValueError(
            f"a {cell} cell needs one density per gate {list(gates)}, got keys {sorted(density)}"
        )
    return {g: check_density(density[g], f"density of gate {g!r}") for g in gates}


@sprig_module("SparseRNN")
class SparseRNN(nn.RNNBase):
    """A multi-layer Elman RNN, GRU or LSTM whose weights keep only a ``density`` fraction.

    Same maths, parameters and calling convention as ``torch.nn.RNN``/``GRU``/``LSTM`` (at
    density 1 with copied weights the outputs are equal), plus per-gate densities, any sprig
    activation for the Elman cell, and ``lengths=`` for padded batches.

    Args:
        input_size: features per step of the input.
        hidden_size: features of the hidden state H.
        num_layers: stacked recurrent layers.
        cell: ``"rnn"`` (Elman), ``"gru"`` or ``"lstm"``.
        density: fraction of weights kept, in (0, 1], for every gate; or a mapping with one
            density per gate (GRU ``r, z, n``; LSTM ``i, f, g, o``), so a gate can be denser
            than another. None only with an N:M pattern.
        pattern: sparsity pattern of each gate's block (``"unstructured"``, ``"block:4x4"``...).
        nonlinearity: the Elman cell's activation, any name of ``sprig.nn.ACTIVATIONS``
            (``"tanh"`` and ``"relu"`` use torch's fused kernel, others a loop over time).
            Must be None for GRU and LSTM.
        bias: whether the cell has biases ``b_ih``, ``b_hh``.
        batch_first: input and output are ``(B, T, *)`` instead of ``(T, B, *)``.
        seed: seed for the masks (each weight and gate derives a stable sub-seed).

    Shapes:
        ``forward(input, hx=None, lengths=None)``: input ``(T, B, input_size)`` (or batch-first,
        or unbatched ``(T, input_size)``, or a ``PackedSequence``); ``hx`` ``(num_layers, B, H)``
        (LSTM: a pair ``(h0, c0)``); ``lengths`` ``(B,)`` valid steps per sequence, any order.
        Returns ``(output, h_n)`` like torch: output ``(T, B, H)`` (zeros after each sequence's
        length), ``h_n`` ``(num_layers, B, H)`` (LSTM: ``(h_n, c_n)``).

    Example:
        >>> rnn = SparseRNN(16, 32, cell="lstm", density={"i": 0.2, "f": 0.1, "g": 0.5, "o": 0.1})
        >>> out, (h, c) = rnn(torch.randn(7, 3, 16), lengths=[7, 2, 5])
        >>> out.shape, h.shape
        (torch.Size([7, 3, 32]), torch.Size([1, 3, 32]))
        >>> float(out[2:, 1].detach().abs().sum())  # sequence 1 stops after 2 steps
        0.0
    """

    def __init__(
        self,
        input_size: int,
        hidden_size: int,
        num_layers: int = 1,
        cell: str = "rnn",
        density: float | Mapping[str, float] | None = 1.0,
        pattern: str = "unstructured",
        nonlinearity: str | None = None,
        bias: bool = True,
        batch_first: bool = False,
        seed: int | None = None,
        **unknown: Any,
    ) -> None:
        reject_keywords("SparseRNN", unknown)
        densities = gate_densities(cell, density)
        spec = parse_pattern(pattern)
        if cell == "rnn":
            nonlinearity = "tanh" if nonlinearity is None else nonlinearity
            ACTIVATIONS.get(nonlinearity)  # unknown -> ValueError listing the valid names
            mode = {"tanh": "RNN_TANH", "relu": "RNN_RELU"}.get(nonlinearity, "RNN_TANH")
        elif nonlinearity is not None:
            raise ValueError(
                f"nonlinearity={nonlinearity!r} applies to cell='rnn' only; a {cell} cell's gates "
                "have fixed activations: leave nonlinearity=None"
            )
        else:
            mode = _TORCH_MODE[cell]
        super().__init__(mode, input_size, hidden_size, num_layers, bias, batch_first)
        self.cell = cell
        self.nonlinearity = nonlinearity
        self.pattern = str(spec)
        self.seed = seed
        # the density asked for (one per gate, or None for N:M); ``density`` is the current one
        self.density_config: float | dict[str, float] | None = (
            dict(density) if isinstance(density, Mapping) else density
        )
        # Elman cells torch has no fused kernel for run sprig's loop over time.
        self._fused = cell != "rnn" or nonlinearity in ("tanh", "relu")
        self.activation = None if self._fused else make_activation(str(nonlinearity))
        base = seed if seed is not None else int(torch.randint(0, 2**31 - 1, ()).item())
        gates = CELL_GATES[cell]
        masks: list[tuple[str, Tensor]] = []
        for name, param in self.named_parameters(recurse=False):
            if not name.startswith("weight_"):
                continue
            rows = param.shape[0] // len(gates)
            blocks = [
                make_mask(
                    (rows, param.shape[1]), densities[g], spec, generator=sub_seed(base, name, g)
                )
                for g in gates
            ]
            masks.append((name, torch.cat(blocks, dim=0)))
        for name, mask in masks:
            apply_mask(self, name, mask, pattern=self.pattern)

    # torch's LSTM forward calls these; route them to the cell's own versions
    def check_forward_args(self, input: Tensor, hidden: Any, batch_sizes: Tensor | None) -> None:
        if self.mode == "LSTM":
            nn.LSTM.check_forward_args(self, input, hidden, batch_sizes)  # type: ignore[arg-type]
        else:
            super().check_forward_args(input, hidden, batch_sizes)

    def permute_hidden(self, hx: Any, permutation: Tensor | None) -> Any:
        if self.mode == "LSTM":
            return nn.LSTM.permute_hidden(self, hx, permutation)  # type: ignore[arg-type]
        return super().permute_hidden(hx, permutation)

    def get_expected_cell_size(
        self, input: Tensor, batch_sizes: Tensor | None
    ) -> tuple[int, int, int]:
        return nn.LSTM.get_expected_cell_size(self, input, batch_sizes)  # type: ignore[arg-type]

    def forward(
        self,
        input: Tensor | PackedSequence,
        hx: Hidden | None = None,
        lengths: Tensor | Sequence[int] | None = None,
    ) -> tuple[Tensor | PackedSequence, Hidden]:
        weight: Tensor = self.weight_hh_l0  # type: ignore[assignment]
        check_rnn_input(self, input, hx, lengths, weight.dtype)
        padded_len = None
        if lengths is not None:
            assert isinstance(input, Tensor)
            padded_len = input.shape[1 if self.batch_first else 0]
            lens = torch.as_tensor(lengths, dtype=torch.int64).cpu()
            input = pack_padded_sequence(input, lens, self.batch_first, enforce_sorted=False)
        if self._fused:
            out, h = _TORCH_FORWARD[self.mode](self, input, hx)
        else:
            out, h = self._loop(input, hx)
        if padded_len is not None:
            out, _ = pad_packed_sequence(out, self.batch_first, total_length=padded_len)
        return out, h

    def _loop(
        self, input: Tensor | PackedSequence, hx: Hidden | None
    ) -> tuple[Tensor | PackedSequence, Tensor]:
        """Elman layers with any activation: one input product per layer, one product per step."""
        assert self.activation is not None and (hx is None or isinstance(hx, Tensor))
        packed = isinstance(input, PackedSequence)
        if isinstance(input, PackedSequence):
            x, lens = pad_packed_sequence(input)  # (T, B, I), original batch order
        else:
            x = input.transpose(0, 1) if self.batch_first else input
            lens = None
        unbatched = x.dim() == 2
        if unbatched:
            x = x.unsqueeze(1)
            hx = None if hx is None else hx.unsqueeze(1)
        T, B, _ = x.shape
        H = self.hidden_size
        live = None if lens is None else (torch.arange(T).unsqueeze(1) < lens).unsqueeze(2)
        finals = []
        for layer in range(self.num_layers):
            w_ih, w_hh = getattr(self, f"weight_ih_l{layer}"), getattr(self, f"weight_hh_l{layer}")
            b_ih, b_hh = (
                getattr(self, f"bias_ih_l{layer}", None),
                getattr(self, f"bias_hh_l{layer}", None),
            )
            gi = F.linear(x, w_ih, b_ih)  # (T, B, H): every step's input product at once
            h = x.new_zeros(B, H) if hx is None else hx[layer]
            outs = []
            for t in range(T):
                h_new = self.activation(gi[t] + F.linear(h, w_hh, b_hh))
                if live is not None:
                    h_new = torch.where(live[t], h_new, h)
                    outs.append(h_new * live[t])
                else:
                    outs.append(h_new)
                h = h_new
            x = torch.stack(outs)  # (T, B, H)
            finals.append(h)
        h_n = torch.stack(finals)
        if unbatched:
            return x.squeeze(1), h_n.squeeze(1)
        if packed:
            assert lens is not None
            return pack_padded_sequence(x, lens, enforce_sorted=False), h_n
        return (x.transpose(0, 1) if self.batch_first else x), h_n

    def gate_masks(self, name: str) -> dict[str, Tensor]:
        """The mask of each gate of weight ``name`` (e.g. ``"weight_hh_l0"``), by gate name."""
        mask = getattr(self, name + "_mask")
        return dict(zip(CELL_GATES[self.cell], mask.chunk(len(CELL_GATES[self.cell]), dim=0)))

    @property
    def density(self) -> float:
        """The fraction of weights kept now over all weight matrices, read from the masks.

        The density (or per-gate densities) the layer was built with is :attr:`density_config`.
        """
        return measured_density(self)

    def config(self) -> dict[str, Any]:
        return {
            "input_size": self.input_size,
            "hidden_size": self.hidden_size,
            "num_layers": self.num_layers,
            "cell": self.cell,
            "density": self.density_config,
            "pattern": self.pattern,
            "nonlinearity": self.nonlinearity,
            "bias": self.bias,
            "batch_first": self.batch_first,
            "seed": self.seed,
        }

    def extra_repr(self) -> str:
        act = f", nonlinearity={self.nonlinearity}" if self.cell == "rnn" else ""
        return (
            f"{self.input_size}, {self.hidden_size}, num_layers={self.num_layers}, "
            f"cell={self.cell}{act}, density={self.density_config}, pattern={self.pattern}, "
            f"batch_first={self.batch_first}"
        )


def check_rnn_input(
    module: nn.RNNBase,
    input: Tensor | PackedSequence,
    hx: Hidden | None,
    lengths: Tensor | Sequence[int] | None,
    dtype: torch.dtype,
) -> None:
    """Validate a recurrent module's inputs (``dtype``: its weights'), with messages that name
    the expected shapes and the fix."""
    name = type(module).__name__
    H, L = module.hidden_size, module.num_layers * (2 if module.bidirectional else 1)
    layout = "(B, T, input_size)" if module.batch_first else "(T, B, input_size)"
    if isinstance(input, PackedSequence):
        if lengths is not None:
            raise ValueError(f"{name}: a PackedSequence carries its lengths; pass lengths=None")
        feat, rank, B = input.data.shape[-1], 3, int(input.batch_sizes[0])
        T = len(input.batch_sizes)
    else:
        if not isinstance(input, Tensor):
            kind = f"{type(input).__module__}.{type(input).__name__}"
            raise TypeError(
                f"{name}: input must be a torch.Tensor or a PackedSequence, got {kind}; "
                "convert it first, e.g. torch.from_numpy(x).float()"
            )
        if input.dim() not in (2, 3):
            got = tuple(input.shape)
            raise ValueError(
                f"{name}: input must be {layout} or unbatched (T, input_size) with "
                f"input_size={module.input_size}, got shape {got}"
            )
        rank, feat = input.dim(), input.shape[-1]
        B = 1 if rank == 2 else input.shape[0 if module.batch_first else 1]
        T = input.shape[1 if module.batch_first and rank == 3 else 0]
    if feat != module.input_size:
        raise ValueError(
            f"{name}: input has {feat} features per step but the module expects "
            f"input_size={module.input_size}; input shape must be {layout}"
        )
    states = () if hx is None else hx if isinstance(hx, tuple) else (hx,)
    data = input.data if isinstance(input, PackedSequence) else input
    for what, t in (("input", data), *zip(("h0", "c0"), states)):
        if isinstance(t, Tensor) and t.dtype != dtype:
            raise ValueError(
                f"{name}: {what} dtype {t.dtype} does not match the weights' {dtype}; convert "
                f"the input ({what}.to({dtype})) or the model (model.to({t.dtype}))"
            )
    if lengths is not None:
        lens = torch.as_tensor(lengths).cpu()
        if rank != 3 or lens.dim() != 1 or lens.numel() != B:
            raise ValueError(
                f"{name}: lengths must hold one length per sequence (B={B}) of a batched input, "
                f"got {lens.tolist()}"
            )
        if bool((lens < 1).any()) or bool((lens > T).any()):
            raise ValueError(
                f"{name}: lengths must be in [1, T={T}] (the padded sequence length), "
                f"got {lens.tolist()}"
            )
    if hx is None:
        return
    states = hx if isinstance(hx, tuple) else (hx,)
    want = 2 if getattr(module, "mode", "") == "LSTM" else 1
    if len(states) != want:
        kind = "a pair (h0, c0)" if want == 2 else "one tensor h0"
        raise ValueError(f"{name}: hx must be {kind}, got {plural(len(states), 'tensor')}")
    shape = (L, B, H) if rank == 3 else (L, H)
    for which, s in zip(("h0", "c0"), states):
        if tuple(s.shape) != shape:
            raise ValueError(
                f"{name}: {which} must have shape (num_layers, B, hidden_size) = {shape}, "
                f"got {tuple(s.shape)}"
            )
