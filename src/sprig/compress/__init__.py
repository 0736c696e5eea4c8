"""Compression: masked modules <-> modules that store only their nonzeros and run sparse kernels."""

from ._api import COMPRESSORS, CompressedModule, compress, decompress, register_compressor

__all__ = ["COMPRESSORS", "CompressedModule", "compress", "decompress", "register_compressor"]
