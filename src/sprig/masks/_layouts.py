"""Weight layouts: which way round a layer stores its weight, so patterns run the right way.

sprig's patterns read a weight as ``(out, in, *kernel)``: rows are output neurons, N:M groups run
along the inputs. ``nn.Linear`` and the convolutions store exactly that. Hugging Face's
``Conv1D`` (GPT-2, GPT, ...) is a linear layer that stores the transpose, ``(in, out)``, and
computes ``x @ W + b``. Such *transposed linear* layers are known here by class path, so
sprig never imports ``transformers`` (a test dependency only); masks for them are made on the
``(out, in)`` view and transposed back.
"""

from __future__ import annotations

from collections.abc import Callable

from torch import Tensor, nn

# "module.QualName" of layer classes whose 2-D ``weight`` is stored (in, out); each must also
# carry ``nx`` (inputs) and ``nf`` (outputs) attributes, which the layout check reads.
TRANSPOSED_LINEAR: set[str] = {"transformers.pytorch_utils.Conv1D"}


def class_path(cls: type) -> str:
    """``"module.QualName"`` of a class (how optional-dependency classes are named here)."""
    return f"{cls.__module__}.{cls.__qualname__}"


def is_transposed_linear(module: nn.Module) -> bool:
    """True for a layer class that stores its weight ``(in, out)`` (Hugging Face ``Conv1D``).

    Example:
        >>> is_transposed_linear(nn.Linear(3, 2))
        False
    """
    return any(class_path(cls) in TRANSPOSED_LINEAR for cls in type(module).__mro__)


def check_transposed_layout(module: nn.Module) -> None:
    """Raise ValueError unless a transposed linear layer's weight is ``(nx, nf)``: with another
    layout sprig would mask the wrong axis, so it refuses rather than guess."""
    weight = module._parameters.get("weight")
    nx, nf = getattr(module, "nx", None), getattr(module, "nf", None)
    shape = None if weight is None else tuple(weight.shape)
    if shape is None or nx is None or nf is None or shape != (nx, nf):
        raise ValueError(
            f"{type(module).__name__}(nf={nf}, nx={nx}) has weight of shape {shape}, not the "
            f"(nx, nf) = (in, out) layout sprig expects of {class_path(type(module))}; "
            "exclude it (exclude=[its name]) or convert it to nn.Linear first"
        )


def linear_shape(module: nn.Module, name: str, shape: tuple[int, ...]) -> tuple[int, ...]:
    """``shape`` of ``module.<name>`` as patterns read it: ``(out, in, ...)``."""
    if name == "weight" and is_transposed_linear(module):
        check_transposed_layout(module)
        return (shape[1], shape[0])
    return shape


def layer_mask(
    module: nn.Module,
    name: str,
    make: Callable[[tuple[int, ...], Tensor | None], Tensor],
    shape: tuple[int, ...],
    scores: Tensor | None = None,
) -> Tensor:
    """A mask in the parameter's own layout, made by ``make(view_shape, view_scores)`` on the
    ``(out, in)`` view (so ``row``, ``column`` and N:M mean the same for every layer)."""
    if name == "weight" and is_transposed_linear(module):
        check_transposed_layout(module)
        view = (shape[1], shape[0])
        return make(view, None if scores is None else scores.t()).t().contiguous()
    return make(shape, scores)
