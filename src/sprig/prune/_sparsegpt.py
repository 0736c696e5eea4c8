"""SparseGPT's layer solver (Frantar & Alistarh 2023, Algorithm 1), on one ``(out, in)`` weight.

The reference is IST-DASLab/sparsegpt's ``SparseGPT.fasterprune``; ``tests/prune/test_oneshot.py``
holds a line-by-line port of it and checks this function against it to 1e-9 in float64. The one
deliberate difference: unstructured blocks keep exact counts (the reference's ``<=`` threshold
prunes one weight more per block).
"""

from __future__ import annotations

import math

import torch
from torch import Tensor

from ..masks import PatternSpec


def sparsegpt(
    weight: Tensor,
    hessian: Tensor,
    alive: Tensor,
    density: float,
    spec: PatternSpec,
    damp: float = 0.01,
    block_size: int = 128,
) -> tuple[Tensor, Tensor]:
    """One layer of SparseGPT: ``(updated weight, keep mask)``, both ``(out, in)``.

    Args:
        weight: ``(out, in)`` float.
        hessian: ``(in, in)``, ``2/N X^T X`` over the N calibration inputs (rows of X).
        alive: ``(out, in)`` bool, the current mask (pruned weights stay pruned).
        density: fraction kept (unstructured: exactly ``round(density * numel)`` when enough
            weights are alive); ignored for N:M.
        spec: ``unstructured`` or N:M (``block_size`` a multiple of M).
        damp: added to the diagonal of ``H``, as a fraction of its mean.
        block_size: columns per adaptive-mask block and per lazy update.

    Returns:
        ``(weight, keep)``: the updated weight, zero where ``keep`` is False.

    Example:
        >>> from sprig.masks import parse_pattern
        >>> x = torch.randn(64, 8)
        >>> w, keep = sparsegpt(torch.randn(4, 8), 2 / 64 * x.t() @ x,
        ...                     torch.ones(4, 8, dtype=torch.bool), 0.5, parse_pattern("2:4"))
        >>> keep.reshape(4, 2, 4).sum(-1).unique().tolist()
        [2]
    """
    # float64 weights stay float64 (the reference comparison in the tests); others work in float32
    W = weight.clone().to(torch.float64 if weight.dtype == torch.float64 else torch.float32)
    H = hessian.clone().double()
    rows, cols = W.shape
    dead = torch.diagonal(H) == 0  # inputs that were always zero: their weights do nothing
    H[dead, dead] = 1
    W[:, dead] = 0
    H.diagonal().add_(damp * torch.diagonal(H).mean())
    try:
        chol = torch.linalg.cholesky(H)
    except RuntimeError:  # torch.linalg.LinAlgError
        raise ValueError(
            f"the dampened Hessian is not positive definite (damp={damp:g}); raise damp "
            "(e.g. 0.1) or use more calibration data"
        ) from None
    # upper Cholesky factor of H^-1: row j holds the update that removing weight j spreads
    Hinv = torch.linalg.cholesky(torch.cholesky_inverse(chol), upper=True).to(W.dtype)
    pruned = ~alive.clone()
    nm = spec.name == "nm"
    n, m = (spec.params["n"], spec.params["m"]) if nm else (0, 0)
    target = round(density * rows * cols)
    kept_so_far = 0
    for i1 in range(0, cols, block_size):
        i2 = min(i1 + block_size, cols)
        W1 = W[:, i1:i2].clone()  # (out, block)
        Q1 = torch.zeros_like(W1)
        Err1 = torch.zeros_like(W1)
        Hinv1 = Hinv[i1:i2, i1:i2]
        d = torch.diagonal(Hinv1)
        dead1 = ~alive[:, i1:i2]
        if nm:
            mask1 = dead1.clone()  # True: prune
        else:
            # adaptive mask selection: this block's weights by the OBS error w^2 / [H^-1]_jj^2
            score = (W1.square() / d.square()[None, :]).masked_fill(dead1, -math.inf)
            k = min(round(density * rows * i2) - kept_so_far, int((~dead1).sum()))
            k = max(k, 0)
            order = torch.sort(score.flatten(), descending=True, stable=True).indices[:k]
            keep1 = torch.zeros(score.numel(), dtype=torch.bool, device=W.device)
            keep1[order] = True
            mask1 = ~keep1.reshape(score.shape)
            kept_so_far += k
        for i in range(i2 - i1):
            if nm and i % m == 0:
                score = W1[:, i : i + m].square() / d[i : i + m].square()[None, :]
                score = score.masked_fill(dead1[:, i : i + m], -math.inf)
                drop = torch.topk(score, m - n, dim=1, largest=False).indices
                mask1.scatter_(1, i + drop, True)
            w = W1[:, i]
            q = w.masked_fill(mask1[:, i], 0.0)
            Q1[:, i] = q
            err = (w - q) / d[i]
            W1[:, i:] -= err[:, None] * Hinv1[i, i:][None, :]
            Err1[:, i] = err
        W[:, i1:i2] = Q1
        W[:, i2:] -= Err1 @ Hinv[i1:i2, i2:]  # the lazy update of the later blocks
        pruned[:, i1:i2] = mask1
    assert nm or kept_so_far <= target
    keep = ~pruned
    return W * keep, keep
