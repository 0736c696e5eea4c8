"""The dynamic sparse training methods, each a small subclass of :class:`MaskUpdater`.

* :class:`RigL` (Evci et al. 2020, "Rigging the Lottery"): drop the smallest weights, grow the
  connections with the largest dense-gradient magnitude (dense gradients on update steps only).
* :class:`SET` (Mocanu et al. 2018): drop the smallest weights, grow at random.
* :class:`SNFS` (Dettmers & Zettlemoyer 2019, "Sparse Networks from Scratch"): drop the smallest
  weights, grow by the magnitude of a momentum of dense gradients, and redistribute the regrowth
  across layers in proportion to each layer's mean momentum magnitude.
* :class:`DeepR` (Bellec et al. 2018, "Deep Rewiring"): each connection has a fixed sign; after
  every optimizer step the active weights get an L1 shrink and Gaussian noise; connections whose
  weight crosses zero become dormant and as many dormant ones are woken at random.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from typing import Any

import numpy as np
import torch
from torch import Tensor, nn

from .._registry import Registry
from ..masks import largest_remainder, sample_positions
from ._args import check_call
from ._base import CompressedLayer, Layer, MaskUpdater, _world, top_k_blocked

METHODS: Registry[type[MaskUpdater]] = Registry("DST method")


def _need_dense(layer: Layer, method: str) -> Tensor:
    grad = layer.dense_grad
    if grad is None:
        raise RuntimeError(
            f"{method} needs the dense gradient of {layer.qualname}, but none was recorded; run "
            "the backward inside `with updater.backward_context(step):` (or "
            "sprig.masks.dense_gradients(model)) on the steps where updater.needs_dense_grad(step)"
        )
    return grad


@METHODS.register("rigl")
class RigL(MaskUpdater):
    """RigL: grow where the dense gradient is largest (Evci et al. 2020).

    Example:
        >>> import sprig
        >>> mlp = sprig.SparseMLP([4, 16, 2], densities=0.25, seed=0)
        >>> opt = torch.optim.SGD(mlp.parameters(), lr=0.1, momentum=0.9)
        >>> rigl = RigL(mlp, t_end=100, every=10, fraction=0.3)
        >>> with rigl.backward_context(10):
        ...     mlp(torch.randn(8, 4)).square().sum().backward()
        >>> opt.step()
        >>> stats = rigl.update(opt, step=10)
        >>> stats.dropped == stats.grown, int(mlp.layers[0].weight_mask.sum())
        (True, 16)
    """

    name = "rigl"
    needs_dense = True
    average_scores = True
    compressed_refusal = ""

    def grow_scores(self, layer: Layer) -> Tensor:
        return _need_dense(layer, "RigL").abs()

    def grow_positions(self, layer: CompressedLayer, active: Tensor, k: int) -> Tensor:
        # the dense gradient dy^T x, a block of rows at a time, with a running top-k: the
        # same choice as on the masked twin without an out x in tensor
        module = layer.module

        def rows(start: int, stop: int) -> Tensor:
            g = module.dense_grad_rows(start, stop)
            if g is None:
                raise RuntimeError(
                    f"RigL needs the dense gradient of {layer.qualname}, but none was recorded; "
                    "run the backward inside `with updater.backward_context(step):` on the "
                    "steps where updater.needs_dense_grad(step)"
                )
            return self._reduce(g).abs()

        return top_k_blocked(rows, module.weight_shape(), active, k)


@METHODS.register("set")
class SET(MaskUpdater):
    """SET: grow at random (Mocanu et al. 2018, "Sparse Evolutionary Training").

    Example:
        >>> import sprig
        >>> mlp = sprig.SparseMLP([4, 16, 2], densities=0.25, seed=0)
        >>> opt = torch.optim.Adam(mlp.parameters())
        >>> s = SET(mlp, t_end=100, every=10, seed=0)
        >>> s.update(opt, step=10).grown
        {'layers.0.weight': 4, 'layers.1.weight': 2}
    """

    name = "set"
    compressed_refusal = ""

    def grow_scores(self, layer: Layer) -> Tensor:
        return torch.rand(layer.mask.shape, generator=self.generator).to(layer.mask.device)

    def grow_positions(self, layer: CompressedLayer, active: Tensor, k: int) -> Tensor:
        # uniform among the inactive positions, as above, but drawn without a dense tensor of
        # scores (so not the same draws as a masked layer's)
        return sample_positions(layer.numel, k, self.generator, exclude=active)


@METHODS.register("snfs")
class SNFS(MaskUpdater):
    """Sparse momentum: grow by momentum of dense gradients, redistribute across layers.

    Dense gradients are recorded on every step before ``t_end`` (the momentum needs them), so
    with sprig's training loop (or :meth:`backward_context`) nothing more is needed.

    Args:
        momentum: decay of the gradient momentum ``m = momentum * m + g``, in [0, 1).
        redistribute: share the regrowth among layers by mean ``|m|`` of their active weights
            (Dettmers & Zettlemoyer 2019). Then layers' counts move but the total stays exact.
        **kwargs: :class:`MaskUpdater`'s arguments.

    Example:
        >>> import sprig
        >>> mlp = sprig.SparseMLP([4, 16, 2], densities=0.25, seed=0)
        >>> opt = torch.optim.SGD(mlp.parameters(), lr=0.1, momentum=0.9)
        >>> snfs = SNFS(mlp, t_end=100, every=10)
        >>> with snfs.backward_context(0):
        ...     mlp(torch.randn(8, 4)).square().sum().backward()
        >>> snfs.after_backward(0, mlp, opt)
        >>> stats = snfs.update(opt, step=10)
        >>> sum(stats.dropped.values()) == sum(stats.grown.values()) > 0
        True
    """

    name = "snfs"
    needs_dense = True
    average_scores = True
    compressed_refusal = (
        "SNFS keeps a momentum of the dense gradient of every layer (an out x in tensor each, "
        "updated every step), which is the memory and time compressed storage avoids; use "
        "RigL (dense gradients only on update steps, in row blocks) or train the masked model "
        "(sprig.decompress) with SNFS"
    )
    keeps_fanin = False  # redistributes growth across layers

    def __init__(
        self, model: nn.Module, *, momentum: float = 0.9, redistribute: bool = True, **kwargs: Any
    ) -> None:
        if not 0.0 <= momentum < 1.0:
            raise ValueError(f"momentum must be in [0, 1), got {momentum!r}")
        super().__init__(model, **kwargs)
        self.momentum = momentum
        self.redistribute = redistribute
        self.buffers = {la.qualname: torch.zeros_like(la.param.detach()) for la in self.layers}

    def needs_dense_grad(self, step: int) -> bool:
        return step < self.config.t_end

    def after_backward(self, step: int, model: nn.Module, optimizer: torch.optim.Optimizer) -> None:
        check_call(self, "after_backward", step, optimizer, model)
        if step >= self.config.t_end:
            return
        grads = [_need_dense(layer, "SNFS") for layer in self.layers]
        for layer, grad in zip(self.layers, grads):
            self.buffers[layer.qualname].mul_(self.momentum).add_(grad)

    def grow_scores(self, layer: Layer) -> Tensor:
        return self.buffers[layer.qualname].abs()

    def grow_counts(self, drops: Sequence[int]) -> list[int]:
        if not self.redistribute:
            return list(drops)
        free = [int((~la.mask).sum()) for la in self.layers]
        means = torch.tensor(
            [
                float(self.buffers[la.qualname].abs()[la.mask].mean()) if free[i] else 0.0
                for i, la in enumerate(self.layers)
            ],
            dtype=torch.float64,
        )
        means = torch.nan_to_num(self._reduce(means))
        total = sum(drops)
        if total == 0:
            return [0] * len(drops)
        if float(means.sum()) <= 0:
            return list(drops)
        share = (means / means.sum() * total).tolist()
        counts = largest_remainder(share, total, free)
        assert sum(counts) == total, "drops are capped by free slots, so room exists"
        return counts

    def extra_state(self) -> dict[str, Tensor]:
        return dict(self.buffers)

    def load_extra_state(self, tensors: dict[str, Tensor]) -> None:
        if set(tensors) != set(self.buffers):
            raise ValueError(
                f"SNFS state has buffers {sorted(tensors)}, expected {sorted(self.buffers)}"
            )
        for k, v in tensors.items():
            self.buffers[k] = v.to(self.buffers[k].device).clone()


@METHODS.register("deepr")
class DeepR(MaskUpdater):
    """Deep Rewiring: signed connections, noisy updates, zero-crossers replaced at random.

    Each connection k has a fixed sign s_k and a weight w_k = s_k theta_k with theta_k >= 0 while
    active (Bellec et al. 2018). After every optimizer step (before ``t_end``), active
    parameters move by ``theta -= lr * l1`` plus ``sqrt(2 lr T) * N(0, 1)`` (lr of the
    parameter's optimizer group); connections with theta < 0 become dormant and the same number
    of dormant connections, chosen uniformly, become active at theta = 0. The update fraction and
    decay are not used; ``every`` defaults to 1.

    Compressed layers keep no sign tensor: a connection's sign is a hash of its position and
    a per-layer seed (fixed, the same on every rank, checkpointed), and at the start their
    stored weights take those signs (``w = s |w|``: the same distribution, since the layers'
    initialisations are symmetric).

    Args:
        temperature: T of the noise (0: no noise).
        l1: the L1 shrink alpha applied to theta.
        **kwargs: :class:`MaskUpdater`'s arguments.

    Example:
        >>> import sprig
        >>> mlp = sprig.SparseMLP([4, 16, 2], densities=0.25, seed=0)
        >>> opt = torch.optim.SGD(mlp.parameters(), lr=0.1)
        >>> deepr = DeepR(mlp, t_end=100, temperature=1e-3)
        >>> mlp(torch.randn(8, 4)).square().sum().backward()
        >>> opt.step()
        >>> deepr.after_step(1, mlp, opt)
        >>> int(mlp.layers[0].weight_mask.sum())
        16
    """

    name = "deepr"
    compressed_refusal = ""
    keeps_fanin = False  # drops the connections whose sign flipped, however many per row

    def __init__(
        self,
        model: nn.Module,
        *,
        temperature: float = 1e-6,
        l1: float = 1e-5,
        every: int = 1,
        **kwargs: Any,
    ) -> None:
        if not temperature >= 0 or not l1 >= 0:
            raise ValueError(f"temperature and l1 must be >= 0, got {temperature!r}, {l1!r}")
        super().__init__(model, every=every, **kwargs)
        self.temperature, self.l1 = float(temperature), float(l1)
        self.signs: dict[str, Tensor] = {}
        for la in self.layers:
            w = la.param.detach()
            rand = torch.randint(0, 2, w.shape, generator=self.generator).to(w.device) * 2 - 1
            own = torch.sign(w).to(torch.int8)
            signs = torch.where(own != 0, own, rand.to(torch.int8))
            if _world()[1] > 1:  # dormant connections must wake with the same sign everywhere
                torch.distributed.broadcast(signs, src=0)
            self.signs[la.qualname] = signs
        self.sign_seeds: dict[str, Tensor] = {}
        for c in self.compressed:
            seed = torch.randint(0, 2**62, (1,), generator=self.generator)
            if _world()[1] > 1:
                torch.distributed.broadcast(seed, src=0)
            self.sign_seeds[c.qualname] = seed
            with torch.no_grad():
                c.param.copy_(c.param.abs() * self._signs_at(c, c.module.active_flat()))

    def _signs_at(self, layer: CompressedLayer, flat: Tensor) -> Tensor:
        """The fixed sign (+-1) of a compressed layer's connections at flat positions."""
        return hashed_signs(flat, int(self.sign_seeds[layer.qualname])).to(layer.param)

    def _theta_compressed(self, layer: CompressedLayer) -> Tensor:
        return layer.param.detach() * self._signs_at(layer, layer.module.active_flat())

    def _theta(self, layer: Layer) -> Tensor:
        return layer.param.detach() * self.signs[layer.qualname]

    @torch.no_grad()
    def after_step(self, step: int, model: nn.Module, optimizer: torch.optim.Optimizer) -> None:
        check_call(self, "after_step", step, optimizer, model)
        self._check_model(model)
        if step < self.config.t_end:
            self._check_optimizer(optimizer)
            lrs = {id(p): float(g["lr"]) for g in optimizer.param_groups for p in g["params"]}
            _, world = _world()
            for layer in self.layers:
                lr, param = lrs[id(layer.param)], layer.param
                noise = torch.randn(param.shape, generator=self.generator).to(param)
                if world > 1:  # every rank must add the same noise, or weights drift apart
                    torch.distributed.broadcast(noise, src=0)
                step_ = -lr * self.l1 + math.sqrt(2 * lr * self.temperature) * noise
                param.add_(step_ * self.signs[layer.qualname] * layer.mask)
            for c in self.compressed:
                lr, values = lrs[id(c.param)], c.param
                noise = torch.randn(values.shape, generator=self.generator).to(values)
                if world > 1:
                    torch.distributed.broadcast(noise, src=0)
                step_ = -lr * self.l1 + math.sqrt(2 * lr * self.temperature) * noise
                values.add_(step_ * self._signs_at(c, c.module.active_flat()))
        super().after_step(step, model, optimizer)
        # connections that crossed zero but had no free slot to swap with stay at theta = 0
        with torch.no_grad():
            for layer in self.layers:
                crossed = (self._theta(layer) < 0) & layer.mask
                layer.param.masked_fill_(crossed, 0.0)
            for c in self.compressed:
                c.param.masked_fill_(self._theta_compressed(c) < 0, 0.0)

    def drop_counts(self, fraction: float) -> list[int]:
        out = []
        for layer in self.layers:
            nnz = int(layer.mask.sum())
            crossed = int(((self._theta(layer) < 0) & layer.mask).sum())
            out.append(max(0, min(crossed, layer.mask.numel() - nnz, nnz - 1)))
        for c in self.compressed:
            crossed = int((self._theta_compressed(c) < 0).sum())
            out.append(max(0, min(crossed, c.numel - c.nnz, c.nnz - 1)))
        return out

    def drop_scores_compressed(self, layer: CompressedLayer) -> Tensor:
        return self._theta_compressed(layer)

    def grow_positions(self, layer: CompressedLayer, active: Tensor, k: int) -> Tensor:
        return sample_positions(layer.numel, k, self.generator, exclude=active)

    def drop_scores(self, layer: Layer) -> Tensor:
        return self._theta(layer)

    def grow_scores(self, layer: Layer) -> Tensor:
        return torch.rand(layer.mask.shape, generator=self.generator).to(layer.mask.device)

    def extra_state(self) -> dict[str, Tensor]:
        return {**self.signs, **{f"sign_seed.{k}": v for k, v in self.sign_seeds.items()}}

    def load_extra_state(self, tensors: dict[str, Tensor]) -> None:
        want = set(self.extra_state())
        if set(tensors) != want:
            raise ValueError(f"DeepR state has {sorted(tensors)}, expected {sorted(want)}")
        for k, v in tensors.items():
            if k.startswith("sign_seed."):
                self.sign_seeds[k.removeprefix("sign_seed.")] = v.clone()
            else:
                self.signs[k] = v.to(self.signs[k].device).clone()


def hashed_signs(flat: Tensor, seed: int) -> Tensor:
    """+-1 (int8) per flat position: the low bit of splitmix64(seed + position).

    A fixed random sign for each of a layer's possible connections without storing one: the
    same on every rank and after every resume. (numpy's uint64 arithmetic wraps, as the
    hash needs; torch's int64 overflow is not defined.)
    """
    z = flat.cpu().numpy().astype(np.uint64) + np.uint64(seed % 2**64)
    with np.errstate(over="ignore"):
        z = z + np.uint64(0x9E3779B97F4A7C15)
        z = (z ^ (z >> np.uint64(30))) * np.uint64(0xBF58476D1CE4E5B9)
        z = (z ^ (z >> np.uint64(27))) * np.uint64(0x94D049BB133111EB)
        z = z ^ (z >> np.uint64(31))
    bit = (z & np.uint64(1)).astype(np.int8)
    return torch.from_numpy(bit * 2 - 1).to(flat.device)


def make_updater(method: str, model: nn.Module, **kwargs: Any) -> MaskUpdater:
    """The updater registered as ``method`` (``"rigl"``, ``"set"``, ``"snfs"``, ``"deepr"``;
    any capitalisation, so ``"RigL"`` works).

    Example:
        >>> import sprig
        >>> mlp = sprig.SparseMLP([4, 8, 2], densities=0.5)
        >>> type(make_updater("set", mlp, t_end=10, every=2)).__name__
        'SET'
    """
    # names are lower case; the class's own spelling ("RigL", "SNFS") is accepted too
    return METHODS.get(method.lower() if isinstance(method, str) else method)(model, **kwargs)
