"""The batched one-layer transformer against an unbatched full-model torch.optim.AdamW reference."""
import dataclasses

import numpy as np
import pytest
import torch

from benchmark.tasks.grokking_onset import trainer
from benchmark.tasks.grokking_onset.trainer import log_grid
from benchmark.tasks.grokking_onset.transformer import (TRANSFORMER_CURVE_KEYS, TransformerConfig,
                                                        init_transformer_params, train_transformer_batch,
                                                        train_transformer_reference)


@pytest.fixture(autouse=True)
def one_thread():
    """Tiny models: a second thread only adds pool overhead (and stalls on a loaded machine)."""
    threads = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(threads)


def tiny(**over) -> TransformerConfig:
    """A tiny model (d_model 8, 2 heads, d_mlp 16, p 7): the Nanda configuration's shape, small."""
    base = dict(op="add", p=7, lr=0.01, wd=1.0, train_frac=0.5, init_scale=1.0, dtype="float64", seed=3,
                d_model=8, n_heads=2, d_mlp=16)
    return TransformerConfig(**{**base, **over})


def test_defaults_are_the_nanda_configuration_and_init_follows_the_seed():
    cfg = TransformerConfig(op="add", p=5, lr=1e-3, wd=1.0, train_frac=0.3, init_scale=1.0, dtype="float32", seed=1)
    assert (cfg.d_model, cfg.n_heads, cfg.d_head, cfg.d_mlp) == (128, 4, 32, 512)
    params = init_transformer_params(tiny())
    assert params["W_E"].shape == (8, 8) and params["W_Q"].shape == (2, 8, 4) and params["W_U"].shape == (8, 7)
    assert float(params["b_in"].abs().sum()) == 0.0
    assert torch.equal(params["W_E"], init_transformer_params(tiny())["W_E"])
    assert not torch.equal(params["W_E"], init_transformer_params(tiny(seed=4))["W_E"])
    with pytest.raises(ValueError, match="not a multiple of n_heads"):
        tiny(d_model=9)


@pytest.mark.parametrize("dtype, atol", [("float64", 1e-9), ("float32", 2e-4)])
def test_batched_matches_the_unbatched_adamw_reference(dtype, atol):
    """Three runs trained as one batch give each run's curves of the full model trained alone."""
    configs = [tiny(dtype=dtype, seed=s, lr=lr, wd=wd, op=op, init_scale=alpha)
               for s, lr, wd, op, alpha in [(1, 0.03, 1.0, "add", 1.0), (2, 0.003, 0.0, "mul", 2.0),
                                            (3, 0.02, 2.0, "sq", 0.7)]]
    budget, n_log = 30, 10
    batched = train_transformer_batch(configs, budget, n_log, ckpt_steps=[0, 20])
    for cfg, curves in zip(configs, batched):
        ref = train_transformer_reference(cfg, budget, n_log)
        assert np.array_equal(curves.steps, log_grid(budget, n_log))
        assert set(curves.metrics) == set(TRANSFORMER_CURVE_KEYS)
        for key in ("train_loss", "test_loss", "norm_embed", "norm_attn"):
            np.testing.assert_allclose(curves.metrics[key], ref[key], rtol=atol * 10, atol=atol, err_msg=key)
        for key in ("train_acc", "test_acc"):   # an argmax may flip on a near-tie in float32: one pair at most
            assert np.max(np.abs(curves.metrics[key] - ref[key])) <= (0 if dtype == "float64" else 2 / 49), key
        assert curves.ckpt_U.shape == (2, 7, 8) and np.array_equal(curves.ckpt_steps, [0, 20])
    assert batched[0].metrics["train_loss"][-1] < batched[0].metrics["train_loss"][0]


def test_checkpoints_are_the_inputs_of_a_and_b_and_a_run_does_not_depend_on_its_batch():
    cfg = tiny(seed=9)
    alone = train_transformer_batch([cfg], 20, 8, ckpt_steps=[0, 20])[0]
    init = init_transformer_params(cfg)
    np.testing.assert_allclose(alone.ckpt_U[0], (init["W_E"][:7] + init["W_pos"][0]).numpy(), rtol=1e-15)
    np.testing.assert_allclose(alone.ckpt_V[0], (init["W_E"][:7] + init["W_pos"][1]).numpy(), rtol=1e-15)
    others = [tiny(seed=8, lr=0.02), cfg, tiny(seed=7, op="sub", wd=0.0)]
    batched = train_transformer_batch(others, 20, 8, ckpt_steps=[0, 20])[1]
    for key, curve in alone.metrics.items():
        np.testing.assert_allclose(batched.metrics[key], curve, rtol=1e-12, atol=1e-12, err_msg=key)
    np.testing.assert_allclose(batched.ckpt_V, alone.ckpt_V, rtol=1e-12)


def test_batches_need_one_shape():
    with pytest.raises(ValueError, match="one shape"):
        train_transformer_batch([tiny(), dataclasses.replace(tiny(), d_mlp=8)], 5, 3, [])


@pytest.mark.skipif(not torch.cuda.is_available(), reason="no CUDA device")
def test_cuda_gives_the_cpu_curves():
    cfg = tiny(seed=5)
    cpu = train_transformer_batch([cfg], 30, 10, [])[0]
    gpu = train_transformer_batch([cfg], 30, 10, [], device="cuda")[0]
    for key in ("train_loss", "test_loss", "norm_embed"):
        np.testing.assert_allclose(gpu.metrics[key], cpu.metrics[key], rtol=1e-6, err_msg=key)


def assert_same_curves(got, want, rtol, atol):
    for g, w in zip(got, want, strict=True):
        for key, curve in w.metrics.items():
            np.testing.assert_allclose(g.metrics[key], curve, rtol=rtol, atol=atol, err_msg=key)
        np.testing.assert_allclose(g.ckpt_U, w.ckpt_U, rtol=rtol, atol=atol)
        np.testing.assert_allclose(g.ckpt_V, w.ckpt_V, rtol=rtol, atol=atol)


def mixed_runs(dtype: str = "float64") -> list[TransformerConfig]:
    return [tiny(dtype=dtype, seed=s, lr=lr, wd=wd, op=op)
            for s, lr, wd, op in [(1, 0.03, 1.0, "add"), (2, 0.003, 0.0, "mul"), (3, 0.02, 2.0, "sq")]]


def test_the_compiled_step_uncompiled_gives_the_eager_curves(monkeypatch):
    """The transformer through the compiled step's code, run as plain PyTorch: the eager curves."""
    monkeypatch.delenv("ATEN_CPU_CAPABILITY", raising=False)  # the compile path refuses it (_compiled_stepper)
    monkeypatch.setattr(trainer, "_compiled_train_step", lambda mode: trainer._train_step)
    eager = train_transformer_batch(mixed_runs(), 30, 10, ckpt_steps=[0, 20])
    assert_same_curves(train_transformer_batch(mixed_runs(), 30, 10, ckpt_steps=[0, 20], compile=True), eager,
                       rtol=1e-10, atol=1e-12)


@pytest.mark.slow
def test_the_compiled_step_gives_the_eager_curves_with_one_graph(monkeypatch):
    """torch.compile (inductor) of the transformer's step: the eager curves to float tolerance, one
    graph for every step. Slow: inductor builds its C++ kernels in 30-80 s on 2 cores."""
    monkeypatch.delenv("ATEN_CPU_CAPABILITY", raising=False)  # see _compiled_stepper: inductor is wrong under it
    from torch._dynamo.utils import counters
    torch._dynamo.reset()
    counters.clear()
    eager = train_transformer_batch(mixed_runs(), 30, 10, ckpt_steps=[0, 20])
    compiled = train_transformer_batch(mixed_runs(), 30, 10, ckpt_steps=[0, 20], compile=True)
    assert counters["stats"]["unique_graphs"] == 1 and not counters["graph_break"], dict(counters)
    assert_same_curves(compiled, eager, rtol=1e-9, atol=1e-12)


@pytest.mark.skipif(not torch.cuda.is_available(), reason="no CUDA device")
def test_compiled_on_cuda_gives_the_cpu_curves():
    configs = mixed_runs("float32")
    cpu = train_transformer_batch(configs, 30, 10, [0, 30])
    gpu = train_transformer_batch(configs, 30, 10, [0, 30], device="cuda", compile=True)
    for g, c in zip(gpu, cpu):
        for key in ("train_loss", "test_loss", "norm_embed", "norm_attn", "grad_norm"):
            np.testing.assert_allclose(g.metrics[key], c.metrics[key], rtol=1e-4, atol=1e-5, err_msg=key)
