"""Compression: masked modules <-> modules that store only their nonzeros and run sparse kernels."""

from ._api import COMPRESSORS, CompressedModule, compress, decompress, register_compressor
from ._strip import StripResult, strip

__all__ = [
    "COMPRESSORS",
    "CompressedModule",
    "StripResult",
    "compress",
    "decompress",
    "register_compressor",
    "strip",
]
