"""CompressedConv1D: Hugging Face's ``Conv1D`` (GPT-2's transposed linear) reduced to its nonzeros.

``Conv1D`` computes ``x @ W + b`` with ``W`` stored ``(in, out)``; that is ``nn.Linear`` with
weight ``W^T``. So the compressed form is a :class:`CompressedLinear` holding the CSR of ``W^T``
(rows are outputs, as the kernels want); only the way back (``decompress``) differs: it
rebuilds the ``Conv1D`` class it came from, weight and mask transposed again. ``transformers``
is imported only then, and only if the model came from it.
"""

from __future__ import annotations

import importlib
from typing import Any

import torch
from torch import nn

from ..kernels import csr_to_dense
from ..masks import (
    TRANSPOSED_LINEAR,
    apply_mask,
    check_transposed_layout,
    get_mask,
    is_transposed_linear,
    mask_pattern,
)
from ..masks._layouts import class_path
from ..nn import sprig_module
from ._api import register_compressor
from ._linear import CompressedLinear, compress_linear


@sprig_module("CompressedConv1D")
class CompressedConv1D(CompressedLinear):
    """A Hugging Face ``Conv1D`` that stores only its nonzeros (CSR of the ``(out, in)`` view).

    Made by ``sprig.compress(model)``; ``sprig.decompress`` gives back the masked ``Conv1D``.
    Arguments and kernels as :class:`CompressedLinear`; ``source["path"]`` names the class.

    Shapes:
        input ``(*, nx)`` -> ``(*, nf)``.

    Example:
        >>> import sprig, torch
        >>> from transformers.pytorch_utils import Conv1D  # doctest: +SKIP
        >>> layer = sprig.compress(sprig.sparsify(Conv1D(32, 64), 0.1))  # doctest: +SKIP
        >>> type(layer).__name__, layer(torch.randn(2, 5, 64)).shape  # doctest: +SKIP
        ('CompressedConv1D', torch.Size([2, 5, 32]))
    """

    def decompress_module(self) -> nn.Module:
        """The masked ``Conv1D`` this came from: weight and mask back in ``(in, out)`` layout."""
        path = self.source.get("path", "transformers.pytorch_utils.Conv1D")
        module_name, _, cls_name = path.rpartition(".")
        try:
            cls = getattr(importlib.import_module(module_name), cls_name)
        except (ImportError, AttributeError) as err:
            raise ValueError(
                f"decompressing a CompressedConv1D rebuilds {path}, which cannot be imported "
                f"({err}); install the package that defines it (pip install transformers)"
            ) from None
        weight, mask = csr_to_dense(self.weight_csr())  # (out, in)
        layer = cls(self.out_features, self.in_features).to(weight.device, weight.dtype)
        has_bias = self.bias is not None
        with torch.no_grad():
            layer.weight.copy_(weight.t())
            if has_bias:
                layer.bias.copy_(self.bias)
            else:  # Conv1D always adds a bias: zero is the same layer
                layer.bias.zero_()
        apply_mask(layer, "weight", mask.t(), pattern=self.source.get("pattern", "custom"))
        return layer


def compress_conv1d(module: nn.Module, backend: str = "auto", **others: Any) -> CompressedConv1D:
    """A :class:`CompressedConv1D` holding the nonzeros a masked Hugging Face ``Conv1D`` keeps."""
    if not is_transposed_linear(module):
        raise TypeError(f"expected a Hugging Face Conv1D, got {type(module).__name__}")
    check_transposed_layout(module)
    mask = get_mask(module, "weight")
    if mask is None:
        raise ValueError(f"{type(module).__name__} has no sprig mask on its weight")
    weight = module._parameters["weight"]
    bias = module._parameters.get("bias")
    assert weight is not None
    # the (out, in) twin goes through the one Linear converter (CSR layout, index dtype, checks)
    twin = nn.Linear(weight.shape[0], weight.shape[1], bias=bias is not None)
    twin = twin.to(weight.device, weight.dtype)
    with torch.no_grad():
        twin.weight.copy_(weight.detach().t())
        if bias is not None and twin.bias is not None:
            twin.bias.copy_(bias.detach())
    pattern = mask_pattern(module, "weight") or "custom"
    apply_mask(twin, "weight", mask.t(), pattern=pattern)
    lin = compress_linear(twin, backend, **others)
    config = lin.config()
    config["source"] = {"class": "Conv1D", "path": class_path(type(module)), "pattern": pattern}
    out = CompressedConv1D(**config).to(weight.device)
    out.load_state_dict(lin.state_dict())
    return out


for _path in sorted(TRANSPOSED_LINEAR):
    register_compressor(_path)(compress_conv1d)
