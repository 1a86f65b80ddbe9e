"""The answer may have any norm: the scorer must read a finite non-zero atom's direction exactly, whatever
its scale, while rows with no direction (zero, NaN, inf) match nothing."""
import numpy as np
import pytest

from benchmark.dataset import InstanceRecord
from benchmark.task import AnswerError, get_task
from benchmark.tasks.planted_features.scorer import score_atoms

TASK = get_task("planted-features")


def _features(n=64, d=16, seed=0):
    f = np.random.default_rng(seed).standard_normal((n, d))
    return f / np.linalg.norm(f, axis=1, keepdims=True)


@pytest.mark.parametrize("scale", [1e-300, 1e-310, 1e200, 1e300])
def test_correct_atoms_at_any_scale_get_the_oracle_score(scale):
    """1e-300 and 1e200 are the cases the plain Euclidean norm lost (its square under- or overflows);
    1e-310 is subnormal and 1e300 leaves no headroom at all."""
    f = _features()
    scores = score_atoms(f, f * scale)
    for m in TASK.metadata.metrics:
        assert scores[m.name] == pytest.approx(m.best, abs=1e-12), (scale, m.name, scores)


def test_row_scales_spanning_the_float_range_leave_the_score_unchanged():
    f = _features()
    rng = np.random.default_rng(1)
    atoms = f + 0.05 * rng.standard_normal(f.shape)
    scales = 10.0 ** rng.uniform(-300, 300, size=(len(f), 1))
    assert score_atoms(f, atoms * scales) == pytest.approx(score_atoms(f, atoms), abs=1e-12)


def test_scaled_oracle_on_a_real_dev_instance(dev_split):
    for record in dev_split.instances:
        truth = dev_split.load_answer(record.id)
        for scale in (1e-300, 1e200):
            clean = TASK.validate_answer({"atoms": truth["features"] * scale}, record)
            assert TASK.score(clean, truth, record)["recall@0.99"] == 1.0, (record.id, scale)


def test_zero_rows_match_nothing():
    f = _features()
    atoms = f.copy()
    atoms[:8] = 0.0
    scores = score_atoms(f, atoms)
    assert scores["recall@0.9"] == pytest.approx(56 / 64) and scores["precision@0.9"] == pytest.approx(56 / 64)
    assert score_atoms(f, np.zeros((5, 16)))["matched_cos"] == 0.0


@pytest.mark.parametrize("bad", [np.nan, np.inf, -np.inf])
def test_non_finite_rows_match_nothing_in_the_scorer_and_are_refused_by_the_task(bad):
    f = _features()
    atoms = f.copy()
    atoms[3, 5] = bad
    scores = score_atoms(f, atoms)
    assert scores["recall@0.9"] == pytest.approx(63 / 64) and all(np.isfinite(list(scores.values())))
    record = InstanceRecord(id="x", group="T1", public={"n_features": 64, "dim": 16, "n_samples": 10})
    with pytest.raises(AnswerError, match="NaN or inf"):
        TASK.validate_answer({"atoms": atoms}, record)
