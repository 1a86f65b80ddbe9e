"""The two grokking-onset tracks on the embedded dev split: what the worker gets, and the scorer."""
import math

import numpy as np
import pytest

from benchmark.dataset import InstanceRecord, read_arrays
from benchmark.task import AnswerError, get_task
from benchmark.tasks.grokking_onset.design import DESIGNS
from benchmark.tasks.grokking_onset.generator import ARCHITECTURES, TEST_KEYS, TRAIN_KEYS
from benchmark.tasks.grokking_onset.scorer import log_step_error, never_score

TRACKS = ["grokking-onset", "grokking-onset-with-test"]
T = DESIGNS["dev"].budget
PUBLIC_FIELDS = {"architecture", "op", "p", "width", "act", "n_heads", "d_mlp", "lr", "wd", "train_frac", "init_scale",
                 "dtype", "budget", "t_obs", "n_train", "n_logged", "n_ckpt"}


@pytest.fixture(scope="module", params=TRACKS)
def split(request, dev_split_of):
    return dev_split_of(request.param)


def _truth(split, rec):
    return split.load_answer(rec.id)


def test_worker_inputs_stop_at_t_obs(split):
    """Every array a method receives ends at t_obs; the train-only track has no test curve."""
    with_test = split.task.endswith("with-test")
    for rec in split.instances:
        inputs = read_arrays(split.inputs_path(rec.id))
        t_obs, n = rec.public["t_obs"], rec.public["n_logged"]
        expected = {"steps", *TRAIN_KEYS, "ckpt_steps", "ckpt_U", "ckpt_V"} | (set(TEST_KEYS) if with_test else set())
        assert set(inputs) == expected, rec.id
        assert set(rec.public) == PUBLIC_FIELDS, rec.id
        assert not any(k.startswith("test") for k in rec.public)
        assert inputs["steps"].max() == t_obs and inputs["steps"].size == n, rec.id
        assert all(inputs[k].shape == (n,) for k in (*TRAIN_KEYS, *(TEST_KEYS if with_test else ()))), rec.id
        assert inputs["ckpt_steps"].size == rec.public["n_ckpt"] and np.all(inputs["ckpt_steps"] <= t_obs), rec.id
        assert inputs["ckpt_U"].shape == (rec.public["n_ckpt"], rec.public["p"], rec.public["width"])
        # the prefix is the run's own curve, cut: equal to the full curve kept with the answer
        info = split.load_answer_info(rec.id)
        full_steps = np.asarray(info["steps"])
        assert np.array_equal(inputs["steps"], full_steps[full_steps <= t_obs])
        np.testing.assert_allclose(inputs["train_acc"], np.asarray(info["train_acc"])[:n], atol=1e-5)
        if with_test:
            np.testing.assert_allclose(inputs["test_acc"], np.asarray(info["test_acc"])[:n], atol=1e-5)


def test_tracks_share_runs_and_differ_only_by_the_test_curves(dev_split_of):
    a, b = dev_split_of(TRACKS[0]), dev_split_of(TRACKS[1])
    assert [r.id for r in a.instances] == [r.id for r in b.instances]
    rec = a.instances[0]
    xa, xb = a.load_inputs(rec.id), b.load_inputs(rec.id)
    assert set(xb) - set(xa) == set(TEST_KEYS)
    assert all(np.array_equal(xa[k], xb[k]) for k in xa)


def test_split_has_grokking_and_censored_runs_and_no_grok_in_the_prefix(split):
    truth = [_truth(split, r) for r in split.instances]
    censored = np.array([int(t["censored"].reshape(-1)[0]) for t in truth])
    steps = np.array([float(t["t_grok"].reshape(-1)[0]) for t in truth])
    t_obs = np.array([r.public["t_obs"] for r in split.instances])
    budget = np.array([r.public["budget"] for r in split.instances])
    assert 0.15 < censored.mean() < 0.45, censored.mean()
    assert np.all(steps[censored == 1] == budget[censored == 1]) and np.all(steps[censored == 0] < budget[censored == 0])
    assert np.all(steps > t_obs)
    grokked = steps[censored == 0]
    assert np.log10(grokked.max() / grokked.min()) > 1.8, "grok steps spread over about two decades"


def test_split_holds_both_architectures_each_on_its_own_budget(split):
    """A transformer subset beside the MLP runs; the fields are uniform and say which is which."""
    design = DESIGNS["dev"]
    by_arch = {a: [r for r in split.instances if r.public["architecture"] == a] for a in ARCHITECTURES}
    assert len(by_arch["mlp"]) > 30 and 3 <= len(by_arch["transformer"]) <= design.transformers.n_runs
    assert {r.public["budget"] for r in by_arch["mlp"]} == {design.budget}
    assert {r.public["budget"] for r in by_arch["transformer"]} == {design.transformers.schedule.budget}
    for r in by_arch["transformer"]:
        assert (r.public["width"], r.public["n_heads"], r.public["d_mlp"], r.public["act"]) == (128, 4, 512, "relu")
        inputs = split.load_inputs(r.id)
        assert inputs["ckpt_U"].shape[1:] == (r.public["p"], 128) and np.all(inputs["norm_hidden"] > 0)
    for r in by_arch["mlp"]:
        assert r.public["n_heads"] == 0 and r.public["d_mlp"] == 0
        assert np.all(split.load_inputs(r.id)["norm_hidden"] == 0)


def test_oracle_scores_zero_and_auroc_one(split):
    task = get_task(split.task)
    from benchmark.stats import aggregate

    rows = []
    for rec in split.instances:
        truth = _truth(split, rec)
        clean = task.validate_answer({"t_grok": truth["t_grok"]}, rec)
        metrics = task.score(clean, truth, rec)
        assert metrics["log_step_error"] == 0.0
        rows.append({"group": rec.group, "metrics": metrics, "details": task.instance_details(clean, truth, rec)})
    summary = aggregate(task.metadata, rows)
    assert summary["metrics"]["log_step_error"]["value"] == 0.0
    assert summary["metrics"]["auroc_never"]["value"] == 1.0


@pytest.mark.parametrize("architecture", ARCHITECTURES)
def test_constant_median_is_the_best_constant(split, architecture):
    """The floor: within an architecture (one budget), the median of the true steps beats every
    other constant on the mean log error."""
    task = get_task(split.task)
    records = [r for r in split.instances if r.public["architecture"] == architecture]
    truth = np.array([float(_truth(split, r)["t_grok"].reshape(-1)[0]) for r in records])
    budget = records[0].public["budget"]

    def headline(c):
        return np.mean([task.score({"t_grok": np.array(c)}, _truth(split, r), r)["log_step_error"] for r in records])
    median = float(10 ** np.median(np.log10(truth)))
    floor = headline(median)
    assert floor > 0.1
    for c in np.logspace(1, math.log10(budget) + 0.5, 15):
        assert headline(c) >= floor - 1e-12


def _record(budget=T):
    return InstanceRecord(id="x", group="add", public={"budget": budget, "t_obs": 50})


def test_score_clips_at_the_budget_and_censored_runs_cost_only_early_predictions():
    task = get_task("grokking-onset")
    censored = {"t_grok": np.array(float(T)), "censored": np.array(1), "t_mem": np.array(10)}
    grokked = {"t_grok": np.array(400.0), "censored": np.array(0), "t_mem": np.array(10)}
    rec = _record()
    for never in (T, 10 * T, math.inf):
        assert task.score(task.validate_answer({"t_grok": np.array(never)}, rec), censored, rec)["log_step_error"] == 0
    s = task.score({"t_grok": np.array(200.0)}, censored, rec)
    assert s["log_step_error"] == pytest.approx(math.log10(T / 200))
    assert task.score({"t_grok": np.array(math.inf)}, grokked, rec)["log_step_error"] == pytest.approx(math.log10(T / 400))
    assert log_step_error(0.5, 400, T) == pytest.approx(math.log10(400))   # clipped below at step 1
    assert task.failure_metrics(rec) == {"log_step_error": math.log10(T), "auroc_never": 0.0}
    details = task.instance_details(None, grokked, rec)
    assert details == {"true_step": 400.0, "predicted_step": None, "censored": 0, "T": T, "architecture": "mlp"}
    assert task.instance_details({"t_grok": np.array(math.inf)}, censored, rec)["predicted_step"] == T


@pytest.mark.parametrize("answer, message", [
    ({}, "exactly the field 't_grok'"),
    ({"t_grok": np.array(1.0), "extra": np.array(1.0)}, "exactly the field 't_grok'"),
    ({"t_grok": np.array([1.0, 2.0])}, "t_grok: expected a scalar"),
    ({"t_grok": np.array(np.nan)}, "t_grok: is NaN"),
    ({"t_grok": np.array(0.0)}, "t_grok: expected a value > 0, got 0.0"),
    ({"t_grok": np.array(-5)}, "t_grok: expected a value > 0, got -5.0"),
    ({"t_grok": np.array("never")}, "t_grok: expected a real number"),
])
def test_answer_validation_names_the_field(answer, message):
    with pytest.raises(AnswerError, match=message):
        get_task("grokking-onset").validate_answer(answer, _record())


def test_never_score_is_on_the_budget_scale():
    """'Never' ranks the same for every budget, so runs of both architectures share one AUROC."""
    assert never_score(math.inf, 20000) == never_score(5000, 5000) == 1.0
    assert never_score(0.5, 20000) == 0.0 and never_score(100, 10000) == pytest.approx(0.5)
    assert never_score(1000, 5000) < never_score(2000, 5000)


def test_metadata_declares_the_plot_on_detail_keys():
    for name in TRACKS:
        meta = get_task(name).metadata
        [plot] = meta.plots
        assert (plot.x, plot.y, plot.x_log, plot.y_log, plot.diagonal) == ("true_step", "predicted_step", True, True, True)
        assert meta.metric("auroc_never").aggregation == "auroc" and meta.metric("auroc_never").label == "censored"
        [breakdown] = meta.breakdowns
        assert breakdown.key == "architecture"
        assert {"architecture", "width", "n_heads", "d_mlp", "norm_embed", "norm_hidden", "norm_unembed"} <= set(
            meta.input_schema)


def test_each_architecture_has_its_own_limit_at_most_a_tenth_of_its_cheapest_run():
    """Issue 16: the wall-time limit is a share of what training one run costs (measured by
    perf/grokking_run_cost.py), per architecture, for both tracks; every architecture has one."""
    from benchmark.tasks.grokking_onset.task import LIMITS, RESIMULATION_SHARE, TRAINING_COST_S

    by = LIMITS.wall_time_by
    assert by is not None and by.field == "architecture" and set(by.seconds) == set(ARCHITECTURES)
    assert set(TRAINING_COST_S) == set(ARCHITECTURES)
    for arch, (cheapest, dearest) in TRAINING_COST_S.items():
        assert 0 < cheapest <= dearest
        assert by.seconds[arch] <= RESIMULATION_SHARE * cheapest, arch
    assert LIMITS.wall_time_s <= min(by.seconds.values())      # an unlisted value gets the smallest
    for name in ("grokking-onset", "grokking-onset-with-test"):
        assert get_task(name).metadata.limits == LIMITS
