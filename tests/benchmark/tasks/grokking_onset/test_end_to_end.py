"""The grokking-onset baselines through `phasebench evaluate` on the embedded dev split."""
import json
import subprocess
import sys

import numpy as np
import pytest
import yaml
from click.testing import CliRunner

from benchmark.dataset import open_split
from evaluator.cli import main
from evaluator.store import ResultsStore, make_engine
from tests.builders import REPO, requires_bwrap

SUBS = REPO / "submissions"
BASELINES = sorted(p.name for p in SUBS.glob("grok-*") if (p / "submission.yaml").exists())


@pytest.fixture(autouse=True)
def grokking_dev_data(dev_split_of, monkeypatch):
    """Both tracks' dev splits, under one folder that the CLI and the fit scripts read."""
    roots = {dev_split_of(name).root.parent.parent for name in ("grokking-onset", "grokking-onset-with-test")}
    assert len(roots) == 1, f"the two tracks' dev splits are in different folders: {roots}"
    monkeypatch.setenv("PHASEBENCH_DATA", str(roots.pop()))


def _evaluate(db, *args):
    out = CliRunner().invoke(main, ["evaluate", *map(str, args), "--db", db], catch_exceptions=False)
    assert out.exit_code == 0, out.output
    return {r.submission.name: r.evaluation for r in ResultsStore(make_engine(db)).latest_finished(args[-1], "dev")}


def test_eight_submissions_are_in_and_only_the_test_curve_one_is_for_one_track():
    assert BASELINES == ["grok-config-gbr", "grok-constant-median", "grok-floor-k-tobs", "grok-floor-resimulate",
                         "grok-progress-extrapolation", "grok-spectral-signature", "grok-test-curve-extrapolation",
                         "grok-weight-norm-clock"]
    for name in BASELINES:
        tasks = set(yaml.safe_load((SUBS / name / "submission.yaml").read_text())["tasks"])
        both = {"grokking-onset", "grokking-onset-with-test"}
        assert tasks == ({"grokking-onset-with-test"} if name == "grok-test-curve-extrapolation" else both), name


@pytest.mark.parametrize("name", ["grok-constant-median", "grok-weight-norm-clock", "grok-spectral-signature",
                                  "grok-progress-extrapolation", "grok-test-curve-extrapolation"])
def test_committed_parameters_are_the_dev_fit(name):
    """fit.py run again on the embedded dev split gives the committed params.json."""
    code = (f"import sys, json; sys.path.insert(0, {str(SUBS / name)!r}); import fit; "
            "print(json.dumps(fit.fit(), sort_keys=True))")
    out = subprocess.run([sys.executable, "-c", code], cwd=REPO, capture_output=True, text=True, check=True)
    assert json.loads(out.stdout) == json.loads((SUBS / name / "params.json").read_text())


@pytest.mark.slow
def test_baselines_end_to_end_through_the_evaluator(tmp_path):
    """The constant floor and the weight-norm clock on the train-only track (no sandbox: the
    bwrap run is below), and the floor's headline equals the mean error of its constant."""
    db = f"sqlite:///{tmp_path}/r.sqlite"
    rows = _evaluate(db, SUBS / "grok-constant-median", SUBS / "grok-weight-norm-clock", "--sandbox", "none",
                     "--task", "grokking-onset")
    split = open_split("grokking-onset", "dev")
    assert all(ev.status == "complete" and ev.n_instances == len(split.instances) for ev in rows.values())
    const = json.loads((SUBS / "grok-constant-median" / "params.json").read_text())["t_grok"]
    truth = np.array([float(split.load_answer(r.id)["t_grok"].reshape(-1)[0]) for r in split.instances])
    predicted = np.array([min(const[r.public["architecture"]], r.public["budget"]) for r in split.instances])
    expected = np.mean(np.abs(np.log10(predicted) - np.log10(truth)))
    assert rows["grok-constant-median"].headline == pytest.approx(expected)
    summary = rows["grok-constant-median"].metrics
    # one constant per architecture: within an architecture it cannot rank (all ties)
    assert {a: s["auroc_never"] for a, s in summary["breakdowns"]["architecture"].items()} == {
        "mlp": 0.5, "transformer": 0.5}
    assert rows["grok-weight-norm-clock"].metrics["metrics"]["auroc_never"]["n"] == len(split.instances)
    inst = ResultsStore(make_engine(db)).evaluation(rows["grok-weight-norm-clock"].id, with_instances=True).instances
    budgets = {r.id: r.public["budget"] for r in split.instances}
    assert {i.details["T"] for i in inst} == set(budgets.values())
    assert all(i.details["predicted_step"] <= i.details["T"] for i in inst)
    assert set(rows["grok-weight-norm-clock"].metrics["breakdowns"]["architecture"]) == {"mlp", "transformer"}


@pytest.mark.slow
@requires_bwrap
def test_the_test_curve_baseline_in_the_bubblewrap_sandbox_beats_the_progress_measure(tmp_path):
    """On the with-test track the baseline that reads the test curves does better than the
    train-side Fourier progress extrapolation (the dataset card's table)."""
    db = f"sqlite:///{tmp_path}/r.sqlite"
    rows = _evaluate(db, SUBS / "grok-test-curve-extrapolation", SUBS / "grok-progress-extrapolation",
                     "--sandbox", "bwrap", "--task", "grokking-onset-with-test")
    test_curves, progress = rows["grok-test-curve-extrapolation"], rows["grok-progress-extrapolation"]
    assert test_curves.status == "complete" and test_curves.n_failed == 0 and test_curves.headline < 0.5
    assert test_curves.headline < progress.headline
