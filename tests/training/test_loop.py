import pytest
import torch

import sprig
from sprig.data import course_task
from sprig.training import Callback, TrainConfig, train_classifier


def test_trains_sparse_mlp_and_calls_callbacks():
    seen = []

    class Spy(Callback):
        def needs_dense_grad(self, step):
            return step == 2

        def after_backward(self, step, model, optimizer):
            if step == 2:
                d = sprig.masks.get_dense_grad(model.layers[0], "weight")
                seen.append(bool((d[~model.layers[0].weight_mask] != 0).any()))

    mlp = sprig.SparseMLP([20, 64, 2], densities=0.3)
    hist = train_classifier(mlp, course_task(), TrainConfig(steps=150, lr=1e-2), callbacks=[Spy()])
    assert hist.final_accuracy > 0.9
    assert seen == [True]
    assert all(bool((mp.param[~mp.mask] == 0).all()) for mp in sprig.masked_parameters(mlp))


def test_bad_config():
    with pytest.raises(ValueError, match="valid names are"):
        TrainConfig(optimizer="lion")
    with pytest.raises(ValueError, match="batch_size"):
        TrainConfig(batch_size=0)
    torch.manual_seed(0)
