"""Compression: masked modules <-> modules that store only their nonzeros and run sparse kernels."""

from ._api import COMPRESSORS, CompressedModule, compress, decompress, register_compressor
from ._conv1d import CompressedConv1D, compress_conv1d  # registers Hugging Face Conv1D
from ._linear import CompressedLinear, compress_linear
from ._rnn import CompressedRNN  # registers the recurrent compressor
from ._strip import StripResult, strip

__all__ = [
    "COMPRESSORS",
    "CompressedConv1D",
    "CompressedLinear",
    "CompressedModule",
    "CompressedRNN",
    "StripResult",
    "compress",
    "compress_conv1d",
    "compress_linear",
    "decompress",
    "register_compressor",
    "strip",
]
