"""Small tabular datasets generated on the spot."""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import torch
from torch import Tensor


@dataclass(frozen=True)
class Split:
    """Train and test tensors: ``x`` float32 of shape (N, D), ``y`` int64 class labels (N,)."""

    x_train: Tensor
    y_train: Tensor
    x_test: Tensor
    y_test: Tensor

    @property
    def n_features(self) -> int:
        return int(self.x_train.shape[1])

    @property
    def n_classes(self) -> int:
        return int(torch.cat([self.y_train, self.y_test]).max()) + 1


def _as_split(x: np.ndarray, y: np.ndarray, x_test: np.ndarray, y_test: np.ndarray) -> Split:
    def f(a: np.ndarray) -> Tensor:
        return torch.as_tensor(np.asarray(a), dtype=torch.float32)

    def i(a: np.ndarray) -> Tensor:
        return torch.as_tensor(np.asarray(a), dtype=torch.int64)

    return Split(f(x), i(y), f(x_test), i(y_test))


def _split(x: np.ndarray, y: np.ndarray, n_test: int) -> Split:
    xt = torch.as_tensor(x, dtype=torch.float32)
    yt = torch.as_tensor(y, dtype=torch.int64)
    return Split(xt[n_test:], yt[n_test:], xt[:n_test], yt[:n_test])


def moons(n_samples: int = 100, noise: float = 0.1, n_test: int = 0, seed: int = 0) -> Split:
    """scikit-learn's two moons, labels 0/1; the first ``n_test`` samples are held out.

    With ``n_test=0`` the test split is empty (the RigL-on-micrograd article trains and
    reports on the same 100 points).
    """
    from sklearn.datasets import make_moons

    x, y = make_moons(n_samples=n_samples + n_test, noise=noise, random_state=seed)
    return _split(x, y, n_test)


def course_task(n_train: int = 2000, n_test: int = 1000, dim: int = 20, seed: int = 0) -> Split:
    """The sparse-networks course's task: x ~ N(0, I_dim), label 1 iff x0 + x1 > 0."""
    rng = np.random.default_rng(seed)
    x = rng.standard_normal((n_train + n_test, dim)).astype(np.float32)
    y = (x[:, 0] + x[:, 1] > 0).astype(np.int64)
    return _split(x, y, n_test)
