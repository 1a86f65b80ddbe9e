"""The GPU-sized set: its design covers the issue's ranges, its batches fit a GPU, and
`phasebench data build --scale gpu` writes both tracks plus the whole runs (the hub layout) where told,
run here on CPU with a tiny stand-in design (the real one is 1e8 model-steps)."""
import numpy as np
import pytest
import torch
from click.testing import CliRunner

from benchmark.dataset import open_split, read_arrays, verify_split
from benchmark.tasks.grokking_onset import generator
from benchmark.tasks.grokking_onset.design import DESIGNS, GPU_DESIGNS, SCALES, design_for
from benchmark.tasks.grokking_onset.generator import (
    GPU_MAX_ELEMENTS,
    activation_elements,
    batches,
    run_configs,
    trained_split,
)
from evaluator.cli import main
from tests.benchmark.tasks.grokking_onset.builders import tiny_design

TRACKS = ("grokking-onset", "grokking-onset-with-test")


@pytest.fixture
def tiny_gpu_scale(monkeypatch):
    monkeypatch.setitem(SCALES, "gpu", {"dev": tiny_design(), "test": tiny_design()})
    trained_split.cache_clear()
    yield
    trained_split.cache_clear()


def invoke(*args):
    return CliRunner().invoke(main, [str(a) for a in args], catch_exceptions=False)


def test_gpu_design_draws_the_issues_ranges():
    configs = {split: run_configs(split, 1, GPU_DESIGNS[split]) for split in ("dev", "test")}
    mlp = [c for cs in configs.values() for c in cs if generator.architecture_of(c) == "mlp"]
    tf = [c for cs in configs.values() for c in cs if generator.architecture_of(c) == "transformer"]
    assert len(mlp) == 256 + 1024 and len(tf) == 32 + 128
    for c in mlp + tf:
        assert 3e-4 <= c.lr <= 5e-3 and (c.wd == 0 or 0.01 <= c.wd <= 3.0)
        assert 0.2 <= c.train_frac <= 0.8 and 0.5 <= c.init_scale <= 8.0
    assert {c.width for c in mlp} == {64, 128, 256, 512} and {c.act for c in mlp} == {"quad", "relu"}
    assert {c.op for c in mlp} == {"add", "sub", "mul", "sq"}
    assert 0.06 < np.mean([c.wd == 0 for c in mlp]) < 0.14
    assert 0.06 < np.mean([c.dtype == "float64" for c in mlp]) < 0.14
    assert {(c.d_model, c.n_heads, c.d_mlp) for c in tf} == {(128, 4, 512)}
    assert {c.p for c in configs["dev"]} == {97} and {c.p for c in configs["test"]} == {97, 113}
    assert GPU_DESIGNS["test"].held_out_moduli == (113,)
    assert GPU_DESIGNS["dev"].budget == 100_000 and GPU_DESIGNS["dev"].transformers.schedule.budget == 30_000


def test_design_for_names_the_choices():
    assert design_for("dev") is DESIGNS["dev"] and design_for("test", "gpu") is GPU_DESIGNS["test"]
    with pytest.raises(ValueError, match=r"unknown scale 'huge'; expected one of \['embedded', 'gpu'\]"):
        design_for("dev", "huge")
    with pytest.raises(ValueError, match="unknown split 'train'"):
        design_for("train", "gpu")


def test_gpu_batches_fit_the_activation_cap_and_cpu_batches_are_unchanged():
    configs = run_configs("test", 1, GPU_DESIGNS["test"])
    capped = batches(configs, 1024, GPU_MAX_ELEMENTS)
    assert sorted(i for b in capped for i in b) == list(range(len(configs)))
    for b in capped:
        assert len({configs[i].shape_key for i in b}) == 1
        assert len(b) == 1 or len(b) * activation_elements(configs[b[0]]) <= GPU_MAX_ELEMENTS
    widest = next(c for c in configs if c.shape_key[:2] == (113, 512))
    cap = GPU_MAX_ELEMENTS // (113 * 113 * 512)
    assert cap < 1024 and [len(b) for b in batches([widest] * 1000, 1024, GPU_MAX_ELEMENTS)] == [cap] * 3 + [1000 - 3 * cap]
    assert batches(configs, 16) == batches(configs, 16, None)


def test_build_gpu_scale_writes_both_tracks_and_the_whole_runs(tmp_path, tiny_gpu_scale):
    out = invoke("data", "build", *[a for t in TRACKS for a in ("--task", t)], "--scale", "gpu",
                 "--data-dir", tmp_path)
    assert out.exit_code == 0, out.output
    assert "scale 'gpu' has no pin" in out.output
    design = tiny_design()
    train_only = open_split("grokking-onset", "dev", tmp_path)
    assert train_only.instances and not verify_split("grokking-onset", "dev", tmp_path)
    for rec in train_only.instances:
        seen = train_only.load_inputs(rec.id)
        whole = read_arrays(tmp_path / "grokking-onset" / "dev" / "runs" / f"{rec.id}.safetensors")
        budget = rec.public["budget"]
        assert budget in (design.budget, design.transformers.schedule.budget)
        assert seen["steps"][-1] == rec.public["t_obs"] < whole["steps"][-1] == budget
        np.testing.assert_array_equal(whole["train_acc"][: len(seen["steps"])], seen["train_acc"])
        assert {"test_acc", "test_loss", "norm_embed", "norm_hidden", "norm_unembed"} <= set(whole)
        assert len(whole["ckpt_steps"]) > rec.public["n_ckpt"] and whole["ckpt_U"].dtype == np.float16
    with_test = open_split("grokking-onset-with-test", "dev", tmp_path)
    assert [r.id for r in with_test.instances] == [r.id for r in train_only.instances]
    assert not (tmp_path / "grokking-onset-with-test" / "dev" / "runs").exists()
    # a runs file is pinned by the manifest like any other: a changed byte is reported
    victim = next((tmp_path / "grokking-onset" / "dev" / "runs").iterdir())
    victim.write_bytes(victim.read_bytes()[:-1] + b"\0")
    assert any(victim.name in problem for problem in verify_split("grokking-onset", "dev", tmp_path))


@pytest.mark.parametrize("args, message", [
    (["--task", "grokking-onset", "--scale", "gpu"], "--scale gpu needs --data-dir"),
    (["--task", "grokking-onset", "--scale", "gpu", "--split", "test", "--data-dir", "{tmp}"], "--private-dir"),
    (["--task", "grokking-onset", "--scale", "huge", "--data-dir", "{tmp}"],
     "grokking-onset: no scale 'huge' to build; it has ['embedded', 'gpu']"),
    (["--task", "planted-features", "--scale", "gpu", "--data-dir", "{tmp}"], "planted-features: no scale 'gpu'"),
    (["--task", "scaling-exponents", "--device", "cuda"], "scaling-exponents: cannot build on 'cuda'"),
])
def test_build_options_are_checked_before_any_work(tmp_path, args, message):
    out = CliRunner().invoke(main, ["data", "build", *[a.format(tmp=tmp_path) for a in args]])
    assert out.exit_code == 2 and message in out.output
    assert not any(tmp_path.iterdir())


@pytest.mark.skipif(not torch.cuda.is_available(), reason="needs a CUDA device")
def test_cuda_build_gives_the_cpu_onsets(tiny_gpu_scale):
    """The GPU path (compiled step, capped batches) against CPU eager, on the tiny design."""
    cpu = trained_split("dev", 5, "cpu", "gpu")
    cuda = trained_split("dev", 5, "cuda", "gpu")
    for a, b in zip(cpu, cuda):
        np.testing.assert_allclose(b.curves.metrics["train_loss"], a.curves.metrics["train_loss"], rtol=1e-3, atol=1e-4)
        if a.config.dtype == "float64":   # float32 accuracies may flip on a near-tie; float64 ones may not
            assert a.onset == b.onset
