"""Masks: the one mask mechanism, sparsity patterns, layer-wise densities, sparsify/summary."""

from ._distributions import DISTRIBUTIONS, layer_counts
from ._mechanism import (
    MASK_SUFFIX,
    MaskedParameter,
    apply_mask,
    dense_gradients,
    get_dense_grad,
    get_mask,
    mask_pattern,
    masked_parameters,
    remove_mask,
    wants_dense_grad,
)
from ._patterns import PATTERNS, PatternSpec, count_for, make_mask, parse_pattern
from ._sparsify import (
    Summary,
    SummaryRow,
    bake,
    density,
    is_sparse,
    selected,
    sparsifiable_names,
    sparsifiable_parameters,
    sparsify,
    summary,
)
from ._storage import CompressedWeight, compressed_weights, sample_positions

__all__ = [
    "DISTRIBUTIONS",
    "CompressedWeight",
    "compressed_weights",
    "sample_positions",
    "MASK_SUFFIX",
    "PATTERNS",
    "MaskedParameter",
    "PatternSpec",
    "Summary",
    "SummaryRow",
    "apply_mask",
    "bake",
    "count_for",
    "dense_gradients",
    "density",
    "get_dense_grad",
    "get_mask",
    "is_sparse",
    "layer_counts",
    "make_mask",
    "mask_pattern",
    "masked_parameters",
    "parse_pattern",
    "remove_mask",
    "sparsifiable_names",
    "selected",
    "sparsifiable_parameters",
    "sparsify",
    "summary",
    "wants_dense_grad",
]
