"""The batched trainer against an unbatched torch.optim.AdamW reference, and run independence."""
import dataclasses

import numpy as np
import pytest
import torch

from benchmark.tasks.grokking_onset import trainer
from benchmark.tasks.grokking_onset.trainer import (RunConfig, labels_for, log_grid, train_batch, train_mask_for,
                                                    train_reference)


@pytest.fixture(autouse=True)
def one_thread():
    """Tiny models: a second thread only adds pool overhead (and stalls on a loaded machine)."""
    threads = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(threads)


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


def assert_same_curves(got, want, rtol, atol):
    for g, w in zip(got, want, strict=True):
        assert np.array_equal(g.steps, w.steps) and np.array_equal(g.ckpt_steps, w.ckpt_steps)
        for key, curve in w.metrics.items():
            np.testing.assert_allclose(g.metrics[key], curve, rtol=rtol, atol=atol, err_msg=key)
        np.testing.assert_allclose(g.ckpt_U, w.ckpt_U, rtol=rtol, atol=atol)
        np.testing.assert_allclose(g.ckpt_V, w.ckpt_V, rtol=rtol, atol=atol)


def mixed_runs(dtype: str = "float64") -> list[RunConfig]:
    return [run(dtype=dtype, seed=s, lr=lr, wd=wd, op=op, act=act)
            for s, lr, wd, op, act in [(1, 0.01, 1.0, "add", "quad"), (2, 0.003, 0.0, "mul", "relu"),
                                       (3, 0.02, 2.0, "sq", "relu")]]


def test_the_compiled_step_uncompiled_gives_the_eager_curves(monkeypatch):
    """The step torch.compile compiles (broadcast forward, torch.func.grad, metrics and AdamW in one
    function, checkpoints taken before it), run as plain PyTorch: the eager curves. Fast; the test
    below compiles it."""
    monkeypatch.delenv("ATEN_CPU_CAPABILITY", raising=False)  # the compile path refuses it (_compiled_stepper)
    monkeypatch.setattr(trainer, "_compiled_train_step", lambda mode: trainer._train_step)
    eager = train_batch(mixed_runs(), 40, 12, ckpt_steps=[0, 25, 40])
    assert_same_curves(train_batch(mixed_runs(), 40, 12, ckpt_steps=[0, 25, 40], compile=True), eager,
                       rtol=1e-10, atol=1e-12)


@pytest.mark.slow
def test_the_compiled_step_gives_the_eager_curves_with_one_graph(monkeypatch):
    """torch.compile (inductor) of the whole step gives the eager curves to float tolerance, and
    compiles once: logging and checkpoint steps reuse the graph (no recompiles, no graph breaks).
    Slow: inductor builds its C++ kernels in 10-30 s on 2 cores (later runs hit its cache)."""
    monkeypatch.delenv("ATEN_CPU_CAPABILITY", raising=False)  # see _compiled_stepper: inductor is wrong under it
    from torch._dynamo.utils import counters
    torch._dynamo.reset()
    counters.clear()
    eager = train_batch(mixed_runs(), 40, 12, ckpt_steps=[0, 25, 40])
    compiled = train_batch(mixed_runs(), 40, 12, ckpt_steps=[0, 25, 40], compile=True)
    assert counters["stats"]["unique_graphs"] == 1 and not counters["graph_break"], dict(counters)
    assert_same_curves(compiled, eager, rtol=1e-9, atol=1e-12)


def test_compile_on_cpu_refuses_a_forced_aten_capability(monkeypatch):
    """torch 2.13's inductor returned NaN curves for this step under ATEN_CPU_CAPABILITY=avx2 (the
    reference build environment): the trainer refuses rather than return them."""
    monkeypatch.setenv("ATEN_CPU_CAPABILITY", "avx2")
    with pytest.raises(RuntimeError, match="ATEN_CPU_CAPABILITY"):
        train_batch(mixed_runs(), 5, 4, ckpt_steps=[0], compile=True)


@pytest.mark.skipif(not torch.cuda.is_available(), reason="no CUDA device")
def test_compiled_on_cuda_gives_the_cpu_curves():
    """The GPU path (CUDA graphs), float32: the eager CPU curves to float tolerance."""
    configs = mixed_runs("float32")
    cpu = train_batch(configs, 60, 15, ckpt_steps=[0, 60])
    gpu = train_batch(configs, 60, 15, ckpt_steps=[0, 60], device="cuda", compile=True)
    for g, c in zip(gpu, cpu):
        for key in ("train_loss", "test_loss", "norm_U", "norm_W", "grad_norm"):
            np.testing.assert_allclose(g.metrics[key], c.metrics[key], rtol=1e-4, atol=1e-5, err_msg=key)
        np.testing.assert_allclose(g.ckpt_U, c.ckpt_U, rtol=1e-4, atol=1e-5)
