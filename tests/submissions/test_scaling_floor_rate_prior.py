"""scaling-floor-rate-prior ships the train fit of fit.py, exactly, and its k are the best constants there.

The train split is public (answers included) but not in the repository: it is built here when the
embedded copy does not verify (about a minute), and must match the committed manifest's pins."""
import importlib.util
import json

import numpy as np
import pytest

from benchmark.dataset import PACKAGE_DATA, verify_split
from benchmark.task import get_task
from phasebench_baselines.scaling import constant_answer, parse_problem, rate_prior_key
from tests.benchmark.tasks.scaling_exponents.helpers import load_method
from tests.benchmark.tasks.scaling_exponents.test_attacks import COARSE_K, coarse_key
from tests.builders import REPO

TASK = "scaling-exponents"
FOLDER = REPO / "submissions" / "scaling-floor-rate-prior"
EMBEDDED = PACKAGE_DATA / "phasebench"

_spec = importlib.util.spec_from_file_location("scaling_floor_rate_prior_fit", FOLDER / "fit.py")
assert _spec is not None and _spec.loader is not None
fit = importlib.util.module_from_spec(_spec)
_spec.loader.exec_module(fit)


@pytest.fixture(scope="module")
def train_dir(tmp_path_factory):
    if not verify_split(TASK, "train", EMBEDDED):
        return EMBEDDED
    out = tmp_path_factory.mktemp("train-data")
    get_task(TASK).build("train", None, out, out)
    committed = json.loads((EMBEDDED / TASK / "train" / "manifest.json").read_text())
    built = json.loads((out / TASK / "train" / "manifest.json").read_text())
    assert built == committed, "the train split built here differs from its committed pins"
    return out


@pytest.fixture(scope="module")
def shipped():
    return json.loads((FOLDER / "params.json").read_text())


@pytest.mark.slow
def test_params_json_is_the_train_fit_and_no_constant_does_better_there(train_dir, shipped):
    assert fit.fit(data_dir=train_dir) == shipped
    items = fit.train_items(train_dir)
    for key, k in shipped["k"].items():
        mine = [it for it in items if rate_prior_key(it[0]) == key]
        assert len(mine) == shipped["n_train"][key] > 0
        grid = np.concatenate([np.linspace(0.0, 1.5, 751), k * np.linspace(0.95, 1.05, 101)])
        assert min(fit.error(float(g), mine) for g in grid) >= fit.error(k, mine) - 1e-12, key


@pytest.mark.slow
def test_the_coarse_shortcut_of_the_attack_test_is_the_train_fit(train_dir):
    assert fit.fit(key=coarse_key, data_dir=train_dir)["k"] == COARSE_K


def test_a_flat_minimum_gives_its_middle_and_a_kink_its_bend():
    """Two instances whose single queries sit one unit of ln L apart at d = 1 (min L = 1): any k between
    their bends (1 and 3) scores the same, and the middle is kept; one instance gives its own bend."""
    def item(truth):
        problem = {"family": "A", "variables": "N", "loss_is_rate": False, "obs_N": np.array([1.0, np.e ** -1]),
                   "obs_loss": np.array([1.0, 2.0]), "query_N": np.array([np.e])}
        return problem, np.array([truth])
    assert fit.fit_one([item(np.exp(-1.0)), item(np.exp(-3.0))])[0] == pytest.approx(2.0)
    assert fit.fit_one([item(np.exp(-1.0))]) == (pytest.approx(1.0), pytest.approx(0.0, abs=1e-15))


def test_a_key_the_train_split_lacks_is_the_min_loss_floor(dev_split_of, shipped):
    """Family C (not in train) gets k = 0: the smallest observed loss, as scaling-floor-min-loss."""
    split = dev_split_of(TASK)
    predict = load_method("scaling-floor-rate-prior")
    seen = set()
    for rec in split.instances:
        problem = {**rec.public, **split.load_inputs(rec.id)}
        answer = predict(dict(problem))
        key = rate_prior_key(problem)
        seen.add(key in shipped["k"])
        _, _, y, _, _ = parse_problem(problem)
        constant = constant_answer(y, int(problem["n_query"]), False)
        if key not in shipped["k"]:
            for name in ("loss", "loss_low", "loss_high"):
                np.testing.assert_array_equal(answer[name], constant[name])
        else:
            assert not np.allclose(answer["loss"], constant["loss"])
    assert seen == {True, False}
