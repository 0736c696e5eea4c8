"""Compression: masked modules <-> modules that store only their nonzeros and run sparse kernels."""

from ._api import COMPRESSORS, CompressedModule, compress, decompress, register_compressor
from ._linear import CompressedLinear, compress_linear

__all__ = [
    "COMPRESSORS",
    "CompressedLinear",
    "CompressedModule",
    "compress",
    "compress_linear",
    "decompress",
    "register_compressor",
]
