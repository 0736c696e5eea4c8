"""Short float vectors for the compiled loops (numba): load, store, broadcast, multiply-add.

A loop that adds ``w * x[q : q + 64]`` for every nonzero ``w`` of an output channel should keep
its 64 sums in registers from the first nonzero to the last. numba cannot say so: its arrays
may alias, so LLVM loads and stores an accumulator array on every pass, and numba leaves LLVM's
SLP vectorizer off, so 64 scalar sums stay scalar. A value of type :class:`Lanes` is one LLVM
vector of ``LANES`` floats (one AVX-512 register of float32; LLVM splits it where the CPU's
registers are narrower), so a loop over nonzeros that carries a few of them carries registers.

Only the loops in ``_compiled`` use these; indices are in elements and nothing is checked.
numba's on-disk cache checks the timestamp of ``_compiled.py`` only: after editing this file,
touch ``_compiled.py`` too, or the cached kernels keep the old code.
"""

from __future__ import annotations

from typing import Any

from llvmlite import ir
from numba.core import types
from numba.extending import intrinsic, models, register_model

LANES = 16  # floats per vector: one AVX-512 register of float32


class Lanes(types.Type):
    """numba type of ``LANES`` consecutive values of a float dtype."""

    def __init__(self, dtype: Any) -> None:
        self.dtype = dtype
        super().__init__(name=f"Lanes{LANES}({dtype})")


@register_model(Lanes)
class _LanesModel(models.PrimitiveModel):
    def __init__(self, dmm: Any, fe_type: Lanes) -> None:
        scalar = dmm.lookup(fe_type.dtype).get_value_type()
        super().__init__(dmm, fe_type, ir.VectorType(scalar, LANES))


def _address(context: Any, builder: Any, aryty: Any, ary: Any, idxty: Any, idx: Any) -> Any:
    # the address of element idx of a 1-D contiguous array
    data = context.make_array(aryty)(context, builder, ary).data
    return builder.gep(data, [context.cast(builder, idx, idxty, types.intp)])


def _splat(builder: Any, vec: Any, value: Any) -> Any:
    one = builder.insert_element(ir.Constant(vec, None), value, ir.Constant(ir.IntType(32), 0))
    zeros = ir.Constant(ir.VectorType(ir.IntType(32), LANES), [0] * LANES)
    return builder.shuffle_vector(one, ir.Constant(vec, None), zeros)


def _vload(typingctx: Any, arr: Any, idx: Any) -> Any:
    """``arr[idx : idx + LANES]`` (no alignment needed)."""
    sig = Lanes(arr.dtype)(arr, idx)

    def codegen(context: Any, builder: Any, sig: Any, args: Any) -> Any:
        vec = context.get_value_type(sig.return_type)
        at = _address(context, builder, sig.args[0], args[0], sig.args[1], args[1])
        return builder.load(builder.bitcast(at, vec.as_pointer()), align=1, typ=vec)

    return sig, codegen


def _vstore(typingctx: Any, arr: Any, idx: Any, v: Any) -> Any:
    """``arr[idx : idx + LANES] = v``."""
    sig = types.none(arr, idx, v)

    def codegen(context: Any, builder: Any, sig: Any, args: Any) -> Any:
        vec = context.get_value_type(sig.args[2])
        at = _address(context, builder, sig.args[0], args[0], sig.args[1], args[1])
        builder.store(args[2], builder.bitcast(at, vec.as_pointer()), align=1)
        return context.get_dummy_value()

    return sig, codegen


def _vsplat(typingctx: Any, value: Any) -> Any:
    """``value`` in every lane."""
    sig = Lanes(value)(value)

    def codegen(context: Any, builder: Any, sig: Any, args: Any) -> Any:
        return _splat(builder, context.get_value_type(sig.return_type), args[0])

    return sig, codegen


def _vzeros(typingctx: Any, like: Any) -> Any:
    """Zeros of ``like``'s type (not ``like * 0``, which is NaN where ``like`` is inf)."""
    sig = like(like)

    def codegen(context: Any, builder: Any, sig: Any, args: Any) -> Any:
        return ir.Constant(context.get_value_type(sig.return_type), None)

    return sig, codegen


def _vfma(typingctx: Any, acc: Any, w: Any, x: Any) -> Any:
    """``acc + w * x``, the scalar ``w`` broadcast (one fused multiply-add where the CPU has
    one: ``contract`` lets LLVM fuse, and never asks for a slow software fma where not)."""
    sig = acc(acc, w, x)

    def codegen(context: Any, builder: Any, sig: Any, args: Any) -> Any:
        ws = _splat(builder, context.get_value_type(sig.return_type), args[1])
        prod = builder.fmul(ws, args[2], flags=("contract",))
        return builder.fadd(args[0], prod, flags=("contract",))

    return sig, codegen


def _vadd(typingctx: Any, a: Any, b: Any) -> Any:
    """``a + b``."""
    sig = a(a, b)

    def codegen(context: Any, builder: Any, sig: Any, args: Any) -> Any:
        return builder.fadd(args[0], args[1])

    return sig, codegen


# typed Any: mypy would see numba's _Intrinsic wrapper, which takes a typing context first
vload: Any = intrinsic(_vload)
vstore: Any = intrinsic(_vstore)
vsplat: Any = intrinsic(_vsplat)
vzeros: Any = intrinsic(_vzeros)
vfma: Any = intrinsic(_vfma)
vadd: Any = intrinsic(_vadd)
