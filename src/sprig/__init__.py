"""sprig: sparse neural networks on PyTorch that are sparse for real.

Density (the fraction of weights kept, in (0, 1]) is the one word sprig uses for how sparse
something is: density 0.1 is "90% sparse".

    >>> import torch, sprig
    >>> net = torch.nn.Sequential(torch.nn.Linear(20, 64), torch.nn.ReLU(), torch.nn.Linear(64, 2))
    >>> _ = sprig.sparsify(net, density=0.1)
    >>> round(sprig.density(net), 3)
    0.1
"""

from ._version import __version__
from .bonsai import grow_bonsai, load_graph
from .compress import CompressedLinear, StripResult, compress, decompress, strip
from .dst import SET, SNFS, DeepR, MaskUpdater, RigL, make_updater
from .io import SprigFileError, load, load_state, load_state_dict, save
from .lottery import LotteryConfig, find_tickets
from .masks import (
    apply_mask,
    bake,
    density,
    get_mask,
    make_mask,
    masked_parameters,
    remove_mask,
    sparsify,
    summary,
)
from .nn import BonsaiRNN, SparseLinear, SparseMLP, SparseRNN
from .prune import GradualPruning, Polynomial

__all__ = [
    "BonsaiRNN",
    "CompressedLinear",
    "DeepR",
    "GradualPruning",
    "LotteryConfig",
    "MaskUpdater",
    "Polynomial",
    "RigL",
    "SET",
    "SNFS",
    "SparseLinear",
    "SparseMLP",
    "SparseRNN",
    "SprigFileError",
    "StripResult",
    "__version__",
    "apply_mask",
    "bake",
    "compress",
    "decompress",
    "density",
    "find_tickets",
    "get_mask",
    "grow_bonsai",
    "load",
    "load_graph",
    "load_state",
    "load_state_dict",
    "make_mask",
    "make_updater",
    "masked_parameters",
    "remove_mask",
    "save",
    "sparsify",
    "strip",
    "summary",
]
