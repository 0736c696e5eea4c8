"""Compression: masked modules <-> modules that store only their nonzeros and run sparse kernels."""

from ._api import (
    COMPRESSORS,
    CompressedModule,
    Uncompressible,
    compress,
    decompress,
    register_compressor,
)
from ._conv import CompressedConv, CompressedConv1x1, compress_conv  # registers Conv1d/Conv2d
from ._conv1d import CompressedConv1D, compress_conv1d  # registers Hugging Face Conv1D
from ._linear import CompressedLinear, compress_linear
from ._rnn import CompressedRNN  # registers the recurrent compressor
from ._strip import StripResult, strip

__all__ = [
    "COMPRESSORS",
    "CompressedConv",
    "CompressedConv1D",
    "CompressedConv1x1",
    "CompressedLinear",
    "CompressedModule",
    "CompressedRNN",
    "StripResult",
    "Uncompressible",
    "compress",
    "compress_conv",
    "compress_conv1d",
    "compress_linear",
    "decompress",
    "register_compressor",
    "strip",
]
