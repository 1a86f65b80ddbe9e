"""The grokking-onset submissions ship fitted parameters, never the dev answers they were fitted on.

grok-config-gbr used to ship dev_table.csv (every dev run's configuration and true log10 step) and fit
scikit-learn on it at import: the answer key sat in the folder. It now ships the fitted trees' arrays,
walked with numpy; these tests check that walk against scikit-learn, that the shipped parameters are
the dev fit, and that no file under submissions/ holds the dev answers in any usual form."""
import json
import math
import re
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest

from tests.builders import REPO

SUBS = REPO / "submissions"
GBR = SUBS / "grok-config-gbr"
K_TOBS = SUBS / "grok-floor-k-tobs"
TRACKS = ("grokking-onset", "grokking-onset-with-test")
_NUMBER = re.compile(rb"[-+]?(?:\d+\.?\d*|\.\d+)(?:[eE][-+]?\d+)?")
#: four significant digits: a table written with any usual precision (%.4g and finer) is caught
_REL_TOL = 5e-4


@pytest.fixture(autouse=True)
def grokking_dev_data(dev_split_of, monkeypatch):
    """Both tracks' dev splits under one folder that the fit scripts (subprocesses) read."""
    roots = {dev_split_of(name).root.parent.parent for name in TRACKS}
    assert len(roots) == 1, f"the two tracks' dev splits are in different folders: {roots}"
    monkeypatch.setenv("PHASEBENCH_DATA", str(roots.pop()))


def _run(folder: Path, code: str, block_sklearn: bool = False):
    """JSON printed by ``code`` run in a fresh interpreter with ``folder`` first on the path (each
    folder has its own fit.py and method.py, which would clash in one process)."""
    guard = "sys.modules['sklearn'] = None; " if block_sklearn else ""   # any `import sklearn` then raises
    out = subprocess.run([sys.executable, "-c", f"import sys, json; {guard}sys.path.insert(0, {str(folder)!r}); {code}"],
                         cwd=REPO, capture_output=True, text=True, check=False)
    assert out.returncode == 0, out.stderr
    return json.loads(out.stdout)


def _dev_answers(dev_split_of, task: str):
    split = dev_split_of(task)
    truth = np.array([float(split.load_answer(r.id)["t_grok"].reshape(-1)[0]) for r in split.instances])
    budgets = np.array([float(r.public["budget"]) for r in split.instances])
    return split, truth, budgets


def _numbers(path: Path) -> np.ndarray:
    """Every number written in a file: the literals of a text file, the entries of a .npy/.npz."""
    if path.suffix in (".npy", ".npz"):
        loaded = np.load(path, allow_pickle=False)
        arrays = [loaded[k] for k in loaded.files] if path.suffix == ".npz" else [loaded]
        return np.concatenate([np.asarray(a, dtype=float).reshape(-1) for a in arrays] or [np.zeros(0)])
    return np.array([float(m) for m in _NUMBER.findall(path.read_bytes())])


def _answers_found(values: np.ndarray, truth: np.ndarray, budgets: np.ndarray) -> int:
    """How many of the distinct dev answers that are not the budget (runs that grokked) appear among
    ``values``, as steps, log10 steps or ln steps (the most found in one form). The censored answers
    are left out: T is also a configuration number any file may hold."""
    grokked = np.unique(truth[truth < budgets])
    if values.size == 0:
        return 0
    best = 0
    for form in (grokked, np.log10(grokked), np.log(grokked)):
        near = np.abs(values[None, :] - form[:, None]) <= _REL_TOL * np.abs(form)[:, None]
        best = max(best, int(near.any(axis=1).sum()))
    return best


def _leaks(folder: Path, truth: np.ndarray, budgets: np.ndarray) -> dict[str, int]:
    """Files under ``folder`` holding at least half the distinct dev answers of grokked runs."""
    enough = math.ceil(0.5 * np.unique(truth[truth < budgets]).size)
    found = {}
    for path in sorted(folder.rglob("*")):
        if path.is_file() and "__pycache__" not in path.parts:
            n = _answers_found(_numbers(path), truth, budgets)
            if n >= enough:
                found[str(path.relative_to(folder))] = n
    return found


@pytest.mark.parametrize("task", TRACKS)
def test_no_submission_folder_holds_the_dev_answers(dev_split_of, task):
    _, truth, budgets = _dev_answers(dev_split_of, task)
    assert _leaks(SUBS, truth, budgets) == {}


def test_the_answer_check_finds_an_answer_table_in_any_usual_form(dev_split_of, tmp_path):
    """The check above is not vacuous: the table grok-config-gbr used to ship (features and log10
    step at %.6g), a JSON of id -> step, and ln steps at four digits, each in a shuffled order, are
    all found; the shipped parameters of the regressor, fitted on those answers, are not."""
    split, truth, budgets = _dev_answers(dev_split_of, "grokking-onset")
    order = np.random.default_rng(0).permutation(truth.size)
    rows = [",".join(f"{v:.6g}" for v in [r.public["p"], r.public["lr"], np.log10(y)])
            for r, y in zip(split.instances, truth)]
    (tmp_path / "dev_table.csv").write_text("p,lr,log10_step\n" + "\n".join(rows[i] for i in order) + "\n")
    (tmp_path / "answers.json").write_text(json.dumps({split.instances[i].id: truth[i] for i in order}))
    (tmp_path / "ln.txt").write_text(" ".join(f"{math.log(truth[i]):.4g}" for i in order))
    (tmp_path / "params.json").write_bytes((GBR / "params.json").read_bytes())
    assert set(_leaks(tmp_path, truth, budgets)) == {"dev_table.csv", "answers.json", "ln.txt"}


# The dev problems as fit.py reads them (ps), in the subprocess's code.
DEV_PROBLEMS = ("from benchmark.dataset import open_split; from phasebench_baselines.grok import problems_of; "
                "ps, _ = problems_of(open_split('grokking-onset', 'dev')); ")


def test_gbr_trees_walked_with_numpy_equal_sklearn_on_the_dev_problems():
    """method.py (sklearn blocked from importing) predicts what the scikit-learn regressor fitted by
    fit.py predicts, on every dev problem, and the shipped params.json is that fit."""
    ours = _run(GBR, "import method; " + DEV_PROBLEMS +
                     "print(json.dumps([[method.log10_step(p), method.predict(p)['t_grok']] for p in ps]))",
                block_sklearn=True)
    theirs = _run(GBR, "import numpy as np, fit; " + DEV_PROBLEMS +
                       "x = np.asarray([fit.features(p) for p in ps]); "
                       "print(json.dumps({'log10': fit.model().predict(x).tolist(), "
                       "'t_obs': [p['t_obs'] for p in ps], 'fit': fit.fit()}))")
    ours = np.array(ours)
    assert len(ours) == len(theirs["log10"]) > 0
    np.testing.assert_allclose(ours[:, 0], theirs["log10"], rtol=0, atol=1e-9)
    expected_steps = np.maximum(10 ** np.array(theirs["log10"]), np.array(theirs["t_obs"]) + 1.0)
    np.testing.assert_allclose(ours[:, 1], expected_steps, rtol=1e-9, atol=0)
    _assert_same_trees(theirs["fit"], json.loads((GBR / "params.json").read_text()))


def _assert_same_trees(fitted: dict, shipped: dict):
    """The same trees; leaf values to 1e-12, since a refit's medians can differ in the last bit
    with the process's threading and vector paths."""
    assert {k: v for k, v in fitted.items() if k != "trees"} == {k: v for k, v in shipped.items() if k != "trees"}
    assert len(fitted["trees"]) == len(shipped["trees"]) > 0
    for a, b in zip(fitted["trees"], shipped["trees"]):
        assert set(a) == set(b)
        for key in ("feature", "children_left", "children_right", "threshold"):
            assert a[key] == b[key], key
        np.testing.assert_allclose(a["value"], b["value"], rtol=0, atol=1e-12)


def test_gbr_ships_no_answer_key_and_reads_no_pickle():
    """What a method may read at predict time: code and params.json, nothing tabular or pickled."""
    shipped = {p.name for p in GBR.iterdir() if p.is_file()}
    assert shipped == {"submission.yaml", "method.py", "fit.py", "config_features.py", "params.json"}


def test_k_tobs_floor_ships_the_dev_fit_and_its_k_minimises_the_dev_error(dev_split_of):
    """params.json is fit.py's output, and no other k (a fine grid over 1..10^3 around it) does
    better on dev for either architecture: the floor is the best such constant, not a weak one."""
    fitted = _run(K_TOBS, "import fit; print(json.dumps(fit.fit()))")
    assert fitted == json.loads((K_TOBS / "params.json").read_text())
    split, truth, budgets = _dev_answers(dev_split_of, "grokking-onset")
    arch = np.array([r.public["architecture"] for r in split.instances])
    t_obs = np.array([float(r.public["t_obs"]) for r in split.instances])

    def error(k, mask):
        pred = np.clip(np.maximum(k * t_obs[mask], t_obs[mask] + 1.0), 1.0, budgets[mask])
        return float(np.mean(np.abs(np.log10(pred) - np.log10(np.clip(truth[mask], 1.0, budgets[mask])))))

    for a, k in fitted["k"].items():
        mask = arch == a
        assert mask.sum() == fitted["n_dev"][a] > 0
        assert error(k, mask) == pytest.approx(fitted["dev_error"][a], abs=1e-6)
        grid = np.concatenate([np.logspace(0, 3, 3001), k * np.linspace(0.98, 1.02, 401)])
        assert min(error(g, mask) for g in grid) >= error(k, mask) - 1e-12, a
