"""The batched trainer against an unbatched torch.optim.AdamW reference, and run independence."""
import dataclasses

import numpy as np
import pytest
import torch

from benchmark.tasks.grokking_onset.trainer import (RunConfig, labels_for, log_grid, train_batch, train_mask_for,
                                                    train_reference)


def run(**over) -> RunConfig:
    base = dict(op="add", p=7, width=16, act="quad", lr=0.01, wd=1.0, train_frac=0.5, init_scale=1.0,
                dtype="float64", seed=3)
    return RunConfig(**{**base, **over})


def test_labels_and_masks():
    assert labels_for("add", 5)[2 * 5 + 4] == 1 and labels_for("sub", 5)[1 * 5 + 3] == 3
    assert labels_for("mul", 5)[3 * 5 + 4] == 2 and labels_for("sq", 5)[2 * 5 + 3] == 3
    with pytest.raises(ValueError, match="unknown operation"):
        labels_for("div", 5)
    mask = train_mask_for(run(p=10, train_frac=0.37))
    assert mask.sum() == 37 and np.array_equal(mask, train_mask_for(run(p=10, train_frac=0.37)))
    assert not np.array_equal(mask, train_mask_for(run(p=10, train_frac=0.37, seed=4)))


@pytest.mark.parametrize("dtype, act, atol", [("float64", "quad", 1e-9), ("float32", "relu", 2e-4)])
def test_batched_matches_the_unbatched_adamw_reference(dtype, act, atol):
    """Three runs trained as one batch give each run's curves of torch.optim.AdamW trained alone."""
    configs = [run(dtype=dtype, act=act, seed=s, lr=lr, wd=wd, op=op)
               for s, lr, wd, op in [(1, 0.01, 1.0, "add"), (2, 0.003, 0.0, "mul"), (3, 0.02, 2.0, "sq")]]
    budget, n_log = 80, 20
    batched = train_batch(configs, budget, n_log, ckpt_steps=[0, 50])
    for cfg, curves in zip(configs, batched):
        ref = train_reference(cfg, budget, n_log)
        assert np.array_equal(curves.steps, log_grid(budget, n_log))
        for key in ("train_loss", "test_loss", "norm_U"):
            np.testing.assert_allclose(curves.metrics[key], ref[key], rtol=atol * 10, atol=atol, err_msg=key)
        for key in ("train_acc", "test_acc"):   # an argmax may flip on a near-tie in float32: one pair at most
            assert np.max(np.abs(curves.metrics[key] - ref[key])) <= (0 if dtype == "float64" else 2 / 49), key
    assert batched[0].metrics["train_loss"][-1] < batched[0].metrics["train_loss"][0]


def test_a_run_does_not_depend_on_its_batch():
    cfg = run(seed=9)
    alone = train_batch([cfg], 40, 10, ckpt_steps=[10, 40])[0]
    batched = train_batch([run(seed=8, lr=0.02), cfg, run(seed=7, act="relu")], 40, 10, ckpt_steps=[10, 40])[1]
    for key, curve in alone.metrics.items():
        np.testing.assert_allclose(batched.metrics[key], curve, rtol=1e-12, atol=1e-12, err_msg=key)
    np.testing.assert_allclose(batched.ckpt_U, alone.ckpt_U, rtol=1e-12)
    assert alone.ckpt_U.shape == (2, 7, 16) and np.array_equal(alone.ckpt_steps, [10, 40])


def test_batches_need_one_shape():
    with pytest.raises(ValueError, match="one \\(p, width, dtype\\)"):
        train_batch([run(), dataclasses.replace(run(), width=8)], 10, 5, [])


@pytest.mark.skipif(not torch.cuda.is_available(), reason="no CUDA device")
def test_cuda_gives_the_cpu_curves():
    cfg = run(seed=5)
    cpu = train_batch([cfg], 100, 20, [])[0]
    gpu = train_batch([cfg], 100, 20, [], device="cuda")[0]
    for key in ("train_loss", "test_loss", "norm_U"):
        np.testing.assert_allclose(gpu.metrics[key], cpu.metrics[key], rtol=1e-6, err_msg=key)
