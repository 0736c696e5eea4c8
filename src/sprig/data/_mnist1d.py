"""MNIST-1D (Greydanus 2020), generated locally by the ``mnist1d`` package: 40-long 1-D signals
of the ten digits, 4000 train and 1000 test. Nothing is downloaded (``get_dataset`` would try).
"""

from __future__ import annotations

import contextlib
import io

from ._tabular import Split, _as_split


def mnist1d(seed: int = 42, num_samples: int = 5000) -> Split:
    """The MNIST-1D split generated with ``mnist1d``'s default arguments and this ``seed``.

    Example:
        >>> data = mnist1d()
        >>> tuple(data.x_train.shape), data.n_classes
        ((4000, 40), 10)
    """
    from mnist1d.data import get_dataset_args, make_dataset

    args = get_dataset_args()
    args.seed = seed
    args.num_samples = num_samples
    with contextlib.redirect_stdout(io.StringIO()):  # the package prints progress
        ds = make_dataset(args)
    return _as_split(ds["x"], ds["y"], ds["x_test"], ds["y_test"])
