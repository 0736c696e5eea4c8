"""The bonsai cell and stacked RNN of "Growing Bonsai Networks with RNNs" (Primozic 2023).

Each cell sees c_t = concat(x_t, s_{t-1}) and computes two things from it with two kernels:
its output y_t = A(c_t W_out + b_out) and its next state s_t = A(c_t W_rec + b_rec). The first
state s_0 is a trainable parameter (one vector per cell, tiled over the batch): learning it
lets the network start in the state it needs instead of spending neurons to get there, which
markedly shrinks the final graph. Cells stack per time step (cell i's y_t is cell i+1's x_t);
a final linear layer maps the last cell's outputs to the target width.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import torch
from torch import Tensor, nn

from .._checks import check_int, make_generator, sub_seed
from ._ameo import AMEO_CLASSES
from ._base import sprig_module


def _check_width(value: Any, what: str, minimum: int = 1) -> int:
    return check_int(value, what, minimum)


@sprig_module("BonsaiCell")
class BonsaiCell(nn.Module):
    """One bonsai RNN cell: two kernels on concat(input, previous state), a trainable s_0.

    Args:
        in_features: width of x_t.
        out_features: width of y_t (the cell's output neurons).
        state_features: width of s_t (the cell's recurrent neurons).
        activation: a name of the Ameo family (``"interpolated_ameo"``, ``"ameo"``,
            ``"leaky_ameo"``, ``"soft_leaky_ameo"``).
        activation_params: keyword arguments of the activation (``factor``, ``leak``).
        seed: seed of the initial weights (Glorot normal; biases and s_0 start at 0).

    Shapes:
        ``step(x (B, in), s (B, state)) -> (y (B, out), s' (B, state))``;
        ``forward(x (B, T, in)) -> (y (B, T, out), states (B, T, state))``.

    Example:
        >>> cell = BonsaiCell(1, 2, 3, seed=0)
        >>> y, s = cell(torch.ones(4, 5, 1))
        >>> tuple(y.shape), tuple(s.shape)
        ((4, 5, 2), (4, 5, 3))
    """

    def __init__(
        self,
        in_features: int,
        out_features: int,
        state_features: int,
        activation: str = "interpolated_ameo",
        activation_params: dict[str, float] | None = None,
        seed: int = 0,
    ) -> None:
        super().__init__()
        self.in_features = _check_width(in_features, "in_features")
        self.out_features = _check_width(out_features, "out_features")
        self.state_features = _check_width(state_features, "state_features", minimum=0)
        if activation not in AMEO_CLASSES:
            raise ValueError(
                f"the bonsai cell needs an Ameo-family activation, got {activation!r}; valid "
                f"names are: {', '.join(sorted(AMEO_CLASSES))}"
            )
        self.activation = activation
        self.activation_params = dict(activation_params or {})
        self.act = AMEO_CLASSES[activation](**self.activation_params)
        self.seed = seed
        fan_in = in_features + state_features
        gen = make_generator(seed)

        def glorot(width: int) -> nn.Parameter:
            std = (2.0 / (fan_in + width)) ** 0.5
            return nn.Parameter(torch.randn(fan_in, width, generator=gen) * std)

        self.kernel_out = glorot(out_features)  # (in + state, out)
        self.bias_out = nn.Parameter(torch.zeros(out_features))
        self.kernel_rec = glorot(state_features)  # (in + state, state)
        self.bias_rec = nn.Parameter(torch.zeros(state_features))
        self.initial_state = nn.Parameter(torch.zeros(state_features))

    def step(self, x: Tensor, s: Tensor) -> tuple[Tensor, Tensor]:
        """One time step: ``(x_t (B, in), s_{t-1} (B, state)) -> (y_t, s_t)``."""
        c = torch.cat([x, s], dim=-1)  # (B, in + state)
        return self.act(c @ self.kernel_out + self.bias_out), self.act(
            c @ self.kernel_rec + self.bias_rec
        )

    def forward(self, x: Tensor) -> tuple[Tensor, Tensor]:
        if x.dim() != 3 or x.shape[-1] != self.in_features:
            raise ValueError(
                f"BonsaiCell expects input (batch, time, {self.in_features}), got {tuple(x.shape)}"
            )
        n_in = self.in_features
        # one matmul for both kernels; the input part for all time steps at once
        kernel = torch.cat([self.kernel_out, self.kernel_rec], dim=1)  # (in + state, out + state)
        bias = torch.cat([self.bias_out, self.bias_rec])
        from_x = x @ kernel[:n_in] + bias  # (B, T, out + state)
        from_s = kernel[n_in:]  # (state, out + state)
        s = self.initial_state.expand(x.shape[0], -1)
        ys, ss = [], []
        # unbind/split rather than indexing: their backward is one stack/cat, where indexing's
        # backward writes a zero tensor of the whole input per time step
        for z_x in from_x.unbind(1):
            z = z_x + s @ from_s if self.state_features else z_x
            y, s = self.act(z).split([self.out_features, self.state_features], dim=-1)
            ys.append(y)
            ss.append(s)
        return torch.stack(ys, dim=1), torch.stack(ss, dim=1)

    def config(self) -> dict[str, Any]:
        return {
            "in_features": self.in_features,
            "out_features": self.out_features,
            "state_features": self.state_features,
            "activation": self.activation,
            "activation_params": self.activation_params,
            "seed": self.seed,
        }


@sprig_module("BonsaiRNN")
class BonsaiRNN(nn.Module):
    """A stack of :class:`BonsaiCell` s plus a final linear layer: the network a bonsai grows from.

    Args:
        in_features: input bits per time step.
        out_features: output bits per time step.
        cells: ``(output width, state width)`` of each cell, first to last.
        activation: Ameo-family activation of every cell.
        activation_params: its keyword arguments (``factor``, ``leak``).
        final_layer: whether a final linear layer maps the last cell's outputs to
            ``out_features`` (None: only when the widths differ).
        seed: seed of the initial weights (each cell derives its own).

    Shapes:
        input ``(B, T, in_features)`` -> output ``(B, T, out_features)``.

    Example:
        >>> net = BonsaiRNN(1, 1, cells=[(4, 4), (4, 2)], seed=0)
        >>> net(torch.ones(8, 20, 1)).shape
        torch.Size([8, 20, 1])
        >>> net.final is not None
        True
    """

    def __init__(
        self,
        in_features: int,
        out_features: int,
        cells: Sequence[Sequence[int]] = ((8, 8),),
        activation: str = "interpolated_ameo",
        activation_params: dict[str, float] | None = None,
        final_layer: bool | None = None,
        seed: int = 0,
    ) -> None:
        super().__init__()
        self.in_features = _check_width(in_features, "in_features")
        self.out_features = _check_width(out_features, "out_features")
        cells = [tuple(int(v) for v in c) for c in cells]
        if not cells or any(len(c) != 2 for c in cells):
            raise ValueError(
                f"cells must list (output width, state width) pairs, at least one, got {cells}"
            )
        self.cell_sizes = [list(c) for c in cells]
        self.activation = activation
        self.activation_params = dict(activation_params or {})
        self.seed = seed
        widths = [in_features] + [c[0] for c in cells]
        self.cells = nn.ModuleList(
            BonsaiCell(
                widths[i], c[0], c[1], activation, self.activation_params, sub_seed(seed, "cell", i)
            )
            for i, c in enumerate(cells)
        )
        if final_layer is None:
            final_layer = widths[-1] != out_features
        if not final_layer and widths[-1] != out_features:
            raise ValueError(
                f"without a final layer the last cell's output width ({widths[-1]}) must equal "
                f"out_features ({out_features}); set final_layer=True or change the cells"
            )
        self.final: nn.Linear | None = None
        if final_layer:
            gen = make_generator(sub_seed(seed, "final"))
            self.final = nn.Linear(widths[-1], out_features)
            std = (2.0 / (widths[-1] + out_features)) ** 0.5
            with torch.no_grad():
                self.final.weight.copy_(torch.randn(out_features, widths[-1], generator=gen) * std)
                self.final.bias.zero_()

    def forward(self, x: Tensor) -> Tensor:
        if x.dim() != 3 or x.shape[-1] != self.in_features:
            raise ValueError(
                f"BonsaiRNN expects input (batch, time, {self.in_features}), got {tuple(x.shape)}"
            )
        h = x
        for cell in self.cells:
            h, _ = cell(h)
        return self.final(h) if self.final is not None else h

    def regularized_weights(self) -> list[Tensor]:
        """The tensors the sparsity regularizer acts on: every kernel and the final weight."""
        out: list[Tensor] = []
        for cell in self.cells:
            assert isinstance(cell, BonsaiCell)
            out += [cell.kernel_out, cell.kernel_rec]
        if self.final is not None:
            out.append(self.final.weight)
        return out

    def outgoing_weights(self) -> list[Tensor]:
        """The same weights grouped by what they read: each row holds every weight that reads
        one input or one neuron's value (a cell's ``(in + state, out + state)`` kernels side by
        side, the final weight transposed), for a penalty on whole rows
        (:class:`sprig.prune.GroupLasso`): a row at zero is a neuron nothing reads."""
        out: list[Tensor] = []
        for cell in self.cells:
            assert isinstance(cell, BonsaiCell)
            out.append(torch.cat([cell.kernel_out, cell.kernel_rec], dim=1))
        if self.final is not None:
            out.append(self.final.weight.t())  # (last width, out)
        return out

    def config(self) -> dict[str, Any]:
        return {
            "in_features": self.in_features,
            "out_features": self.out_features,
            "cells": self.cell_sizes,
            "activation": self.activation,
            "activation_params": self.activation_params,
            "final_layer": self.final is not None,
            "seed": self.seed,
        }
