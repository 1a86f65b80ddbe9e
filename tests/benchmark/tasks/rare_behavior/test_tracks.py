"""The two tracks: what each method gets, the oracle and its budget, end to end through `phasebench evaluate`."""
import json

import numpy as np
import pytest
from click.testing import CliRunner

from benchmark.split_secret import SplitSecret, new_secret_text
from benchmark.task import get_task
from benchmark.tasks.rare_behavior.models import forward
from benchmark.tasks.rare_behavior.task import BUDGETS, model_arrays
from evaluator.cli import main
from evaluator.store import ResultsStore, make_engine
from evaluator.submission import load_submission
from tests.builders import REPO, requires_bwrap, write_submission

from .builders import build_rare_split, load_method

BLACK, WHITE = get_task("rare-behavior"), get_task("rare-behavior-whitebox")


@pytest.fixture(scope="module")
def black_split(tmp_path_factory):
    return build_rare_split(tmp_path_factory.mktemp("rare-black"), "rare-behavior")


@pytest.fixture(scope="module")
def white_split(tmp_path_factory):
    return build_rare_split(tmp_path_factory.mktemp("rare-white"), "rare-behavior-whitebox")


def test_the_tracks_never_share_a_model():
    """Each track is a task of its own, so its seeds, targets and budgets are its own draws, from the
    same secret too."""
    secret = SplitSecret.parse(new_secret_text(), "test")
    for split in ("dev", "test"):
        black, white = BLACK.instance_specs(split, secret), WHITE.instance_specs(split, secret)
        assert not {s.seed for s in black} & {s.seed for s in white}, split
        assert [s.params["log10_p"] for s in black] != [s.params["log10_p"] for s in white]
    assert {s.group for s in WHITE.instance_specs("dev")} == {"F1", "F2", "F3"}
    # the black-box track holds the sequences only: the MLPs give p away to probing (test_oracle_extraction)
    assert {s.group for s in BLACK.instance_specs("dev")} == {"F3"} == set(BLACK.metadata.groups)


def test_target_p_is_drawn_continuously_and_budgets_do_not_follow_it():
    secret = SplitSecret.parse(new_secret_text(), "test")
    specs = BLACK.instance_specs("test", secret)
    targets = [s.params["log10_p"] for s in specs]
    assert len(set(targets)) == len(targets) and all(-12 <= t <= -3 for t in targets)
    assert {s.params["budget"] for s in specs} <= set(BUDGETS)
    assert all("budget" not in s.params for s in WHITE.instance_specs("test", secret))


def test_blackbox_inputs_hold_no_weights_and_whitebox_inputs_do(black_split, white_split):
    for record in black_split.instances:
        inputs, truth = black_split.load_inputs(record.id), black_split.load_answer(record.id)
        assert set(inputs) <= {"token_probs"}, record.id
        assert model_arrays(truth), record.id  # the weights live with the answers only
        assert record.public["budget"] in BUDGETS
        assert not {"n_layers", "width", "n_heads"} & set(record.public)
    for record in white_split.instances:
        inputs, truth = white_split.load_inputs(record.id), white_split.load_answer(record.id)
        weights = model_arrays(inputs)
        assert weights.keys() == model_arrays(truth).keys()
        assert all(np.array_equal(weights[k], model_arrays(truth)[k]) for k in weights)
        assert "budget" not in record.public


def test_oracle_runs_the_instance_model(black_split, white_split):
    rng = np.random.default_rng(0)
    for record in black_split.instances:
        truth = black_split.load_answer(record.id)
        oracle = BLACK.oracle(record, truth)
        assert oracle.budget == record.public["budget"]
        if record.public["architecture"] == "transformer":
            x = rng.integers(0, record.public["vocab"], (5, record.public["seq_len"]))
            with pytest.raises(ValueError, match="tokens must lie in"):
                oracle.forward(x + record.public["vocab"])
        else:
            x = rng.standard_normal((5, record.public["dim"]))
        assert oracle.describe()["input_shape"] == list(x.shape[1:])
        y = oracle.forward(x.astype(oracle.input_dtype))
        assert np.array_equal(y, forward(record.public["architecture"], model_arrays(truth), x))
        assert y.shape == (5, record.public["output_dim"])
    assert WHITE.oracle(white_split.instances[0], white_split.load_answer(white_split.instances[0].id)) is None


# --- end to end, in the bubblewrap sandbox ----------------------------------------------------------

SNOOP_AND_SPEND = """
import os
import numpy as np

def run(problem):
    # nothing model-like reaches the worker: no weight names, no arrays but the token table
    arrays = {k: v for k, v in problem.items() if isinstance(v, np.ndarray)}
    assert set(arrays) <= {"token_probs"}, sorted(arrays)
    assert not any(k.startswith("model.") for k in problem), sorted(problem)
    oracle = problem["oracle"]
    assert oracle.budget == problem["budget"] and oracle.used == 0
    dtype = np.dtype(oracle.input_dtype)
    x = np.zeros((problem["budget"] + EXTRA, *oracle.input_shape), dtype=dtype)
    for start in range(0, len(x), 65536):
        oracle(x[start:start + 65536])
    return {"p_hat": 0.0, "upper": 1.0}
"""


def _invoke(*args):
    return CliRunner().invoke(main, [str(a) for a in args], catch_exceptions=False)


@requires_bwrap
def test_budget_is_exact_and_one_pass_more_fails_with_its_reason(tmp_path, black_split):
    db = f"sqlite:///{tmp_path}/r.sqlite"
    for name, extra in (("spend-all", 0), ("spend-one-more", 1)):
        sub = write_submission(tmp_path, name=name, code=SNOOP_AND_SPEND.replace("EXTRA", str(extra)),
                               tasks={"rare-behavior": "method:run"})
        out = _invoke("evaluate", sub, "--task", "rare-behavior", "--db", db, "--sandbox", "bwrap",
                      "--data-dir", black_split.root.parent.parent)
        assert out.exit_code == 0, out.output
    store = ResultsStore(make_engine(db))
    rows = {r.submission.name: store.evaluation(r.evaluation.id, with_instances=True)
            for r in store.latest_finished("rare-behavior", "dev")}
    for inst in rows["spend-all"].instances:
        assert inst.status == "ok", inst.error
        assert inst.details["oracle_forward_passes"] == inst.details["oracle_budget"]
    budgets = {r.id: r.public["budget"] for r in black_split.instances}
    for inst in rows["spend-one-more"].instances:
        assert inst.status == "budget"
        assert inst.error.startswith(f"oracle budget of {budgets[inst.instance_id]} forward passes exceeded")
        assert inst.metrics == BLACK.failure_metrics(None)
        assert json.dumps(inst.details)


@pytest.mark.slow
@requires_bwrap
@pytest.mark.parametrize("split_fixture", ["black_split", "white_split"])
def test_baselines_end_to_end_on_both_tracks(tmp_path, split_fixture, request):
    """Every rare-* baseline through `phasebench evaluate`. Plain Monte Carlo's bound covers (it is
    exact); multilevel splitting estimates the continuous families (F1, F2) within half a decade,
    and on the black-box F1 instance (p = 1e-5, 4096 passes) where Monte Carlo sees no hit and answers
    the prior's median below its zero-hit bound, not 0."""
    split = request.getfixturevalue(split_fixture)
    # the white-box-only baselines (rare-itgis, rare-ibp-bound) answer only their track
    subs = sorted(p for p in (REPO / "submissions").glob("rare-*") if (p / "submission.yaml").exists()
                  and split.task in load_submission(p).spec.tasks)
    assert len(subs) >= (3 if split.task == "rare-behavior" else 5)
    db = f"sqlite:///{tmp_path}/r.sqlite"
    out = _invoke("evaluate", *subs, "--task", split.task, "--db", db, "--sandbox", "bwrap",
                  "--data-dir", split.root.parent.parent)
    assert out.exit_code == 0, out.output
    store = ResultsStore(make_engine(db))
    rows = {r.submission.name: r.evaluation for r in store.latest_finished(split.task, "dev")}
    assert set(rows) == {p.name for p in subs}
    assert all(ev.status == "complete" and ev.n_instances == len(split.instances) for ev in rows.values())
    results = {name: {i.instance_id: i for i in store.evaluation(ev.id, with_instances=True).instances}
               for name, ev in rows.items()}
    assert all(i.metrics["coverage"] == 1.0 for i in results["rare-mc"].values())
    assert {"p_true", "p_hat", "upper", "family"} <= set(results["rare-mc"]["tiny-0-F1"].details)
    for iid in ("tiny-0-F1", "tiny-1-F2"):
        assert results["rare-ams"][iid].metrics["estimate_error"] < 0.5, iid
    if split.task == "rare-behavior":
        no_hit = load_method("rare-mc").mc_answer(0, BUDGETS[0])
        assert results["rare-mc"]["tiny-0-F1"].details["p_hat"] == pytest.approx(float(no_hit["p_hat"]))
    else:  # the sound IBP bound covers the F2 instance and brackets it tightly
        ibp = results["rare-ibp-bound"]["tiny-1-F2"].metrics
        assert ibp["coverage"] == 1.0 and ibp["pinball"] < 0.01 and ibp["estimate_error"] < 0.05, ibp
