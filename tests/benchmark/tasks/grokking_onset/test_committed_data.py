"""The committed grokking-onset dev files stay tied to the code that built them.

Rebuilding the dev split takes many minutes of training, so its files are committed rather than
rebuilt in every CI run (`phasebench data build` finds them verified). These tests retrain the
split's first batch of each architecture and precision for a short prefix and check that every
curve, accuracy and checkpoint the committed files hold for those steps is what the code logs now
(to float tolerance: the bytes themselves are pinned by the manifests): a change to the
trainer, the initialisation, the split's draws or the instance fields shows up here, and then the
split must be rebuilt and re-pinned (dataset card, grokking-onset).

The bytes were built on an Intel processor, where MKL_CBWR=AVX2 (benchmark/build_env.py) fixes the
matmul kernels. On other vendors MKL ignores that branch and uses its AUTO one (Intel's CNR
documentation), so float32 training differs by rounding from the first steps, and the difference
grows as training is chaotic: measured on an AMD EPYC, above 1e-5 from step 12 for the transformer
and step 126 for the MLP (float64 stays within 1e-5 over the whole prefix). There the float32 checks
cover only the steps before that drift (``OTHER_VENDOR_PREFIX``).
"""
import platform
from pathlib import Path

import numpy as np
import pytest
import torch

from benchmark.tasks.grokking_onset.design import DESIGNS
from benchmark.tasks.grokking_onset.generator import (CPU_BATCH, TEST_KEYS, TRAIN_KEYS, architecture_of, batches,
                                                      layer_norms, run_configs)
from benchmark.tasks.grokking_onset.task import GrokkingOnset
from benchmark.tasks.grokking_onset.trainer import log_grid, train_batch
from benchmark.tasks.grokking_onset.transformer import train_transformer_batch

# Steps retrained per architecture: a few hundred MLP steps (about 10 s for a batch of 16 on one
# core), fewer for the transformer (10-15 times the CPU time per step).
PREFIX = {"mlp": 300, "transformer": 40}
OTHER_VENDOR_PREFIX = {("mlp", "float32"): 100, ("transformer", "float32"): 10}


def _intel_cpu() -> bool:
    cpuinfo = Path("/proc/cpuinfo")
    return platform.machine() == "x86_64" and cpuinfo.exists() and "GenuineIntel" in cpuinfo.read_text()


def _prefix(architecture: str, dtype: str) -> int:
    """Steps whose committed curves this processor must reproduce (module docstring: why fewer off Intel)."""
    if _intel_cpu():
        return PREFIX[architecture]
    return OTHER_VENDOR_PREFIX.get((architecture, dtype), PREFIX[architecture])


def _every_step(prefix: int) -> int:
    """The smallest n_log whose grid holds every step 0..prefix: retraining then logs each committed step."""
    n = prefix
    while log_grid(prefix, n).size < prefix + 1:
        n *= 2
    return n


@pytest.mark.parametrize("architecture, dtype", [("mlp", "float32"), ("mlp", "float64"), ("transformer", "float32")])
def test_first_batch_retrained_for_a_prefix_logs_the_committed_curves(dev_split_of, architecture, dtype):
    train_only, with_test = dev_split_of("grokking-onset"), dev_split_of("grokking-onset-with-test")
    design = DESIGNS["dev"]
    configs = run_configs("dev", GrokkingOnset().run_seeds("dev"), design)
    first = next(c for c in batches(configs, CPU_BATCH)
                 if architecture_of(configs[c[0]]) == architecture and configs[c[0]].dtype == dtype)
    prefix = _prefix(architecture, dtype)
    schedule = design.schedule if architecture == "mlp" else design.transformers.schedule
    ckpts = [int(s) for s in log_grid(schedule.budget, schedule.n_ckpt) if s <= prefix]
    trainer = train_batch if architecture == "mlp" else train_transformer_batch
    threads = torch.get_num_threads()
    torch.set_num_threads(1)   # as the build trains each batch
    try:
        curves = trainer([configs[i] for i in first], prefix, _every_step(prefix), ckpts)
    finally:
        torch.set_num_threads(threads)
    ids = {r.id for r in train_only.instances}
    compared = 0
    for i, cu in zip(first, curves):
        instance_id = GrokkingOnset().instance_id("dev", i, configs[i].op)
        if instance_id not in ids:
            continue                      # grokked inside its observed prefix: not an instance
        assert np.array_equal(cu.steps, np.arange(prefix + 1))
        fresh = {**cu.metrics, **layer_norms(configs[i], cu.metrics)}
        committed = {**train_only.load_inputs(instance_id), **with_test.load_inputs(instance_id)}
        steps = committed["steps"]
        seen = steps <= prefix
        assert seen.sum() >= 5, instance_id
        for key in (*TRAIN_KEYS, *TEST_KEYS):
            np.testing.assert_allclose(committed[key][seen], fresh[key][steps[seen]].astype(np.float32), rtol=1e-5,
                                       atol=1e-6, err_msg=f"{instance_id} {key}")
        info = train_only.load_answer_info(instance_id)
        full_steps = np.asarray(info["steps"])
        within = full_steps <= prefix
        for key in ("train_acc", "test_acc"):          # the answer's full curves, kept to 6 digits
            np.testing.assert_allclose(np.asarray(info[key])[within], fresh[key][full_steps[within]], rtol=1e-5,
                                       atol=1e-6, err_msg=f"{instance_id} answer {key}")
        shipped = np.isin(committed["ckpt_steps"], cu.ckpt_steps)
        for key in ("ckpt_U", "ckpt_V"):
            fresh_ck = getattr(cu, key)[np.searchsorted(cu.ckpt_steps, committed["ckpt_steps"][shipped])]
            np.testing.assert_allclose(committed[key][shipped].astype(np.float32), fresh_ck.astype(np.float16)
                                       .astype(np.float32), rtol=2e-3, atol=1e-3, err_msg=f"{instance_id} {key}")
        compared += 1
    assert compared >= 1, f"no instance of the first {architecture} {dtype} batch {first} to compare"
