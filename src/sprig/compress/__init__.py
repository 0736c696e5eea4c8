"""Compression: masked modules <-> modules that store only their nonzeros and run sparse kernels."""

from ._api import COMPRESSORS, CompressedModule, compress, decompress, register_compressor
from ._rnn import CompressedRNN  # registers the recurrent compressor

__all__ = [
    "COMPRESSORS",
    "CompressedModule",
    "CompressedRNN",
    "compress",
    "decompress",
    "register_compressor",
]
