"""A 1-sparse noise-free sample is a planted feature times a scalar, so directions that two samples share
give features away without any learning. The floor submission planted-floor-duplicates is that attack
(at |cos| > LEAK_COS); no tier may let it score. The floor itself joins samples at the looser COS fitted on
train, which reads off the features of dominated noisy samples: that is a floor for skill, not a leak."""
import numpy as np
import pytest

from benchmark.tasks.planted_features.generator import plant
from benchmark.tasks.planted_features.scorer import score_atoms

from .builders import load_method, planted, tier_configs

DUP = load_method("planted-floor-duplicates")
VARIANTS = sorted(tier_configs())


def test_the_attack_is_competent_where_the_data_leak():
    """On noise-free codes at the task's density, nearly every feature has two lone samples: the attack
    must then find nearly all of them (else a pass below would say nothing)."""
    truth = plant({"d": 32, "n": 96, "l0": 4.0, "n_samples": 6000}, 0)
    atoms = DUP.duplicate_directions(truth.samples, seed=0, cos=DUP.LEAK_COS, limit=96)
    assert score_atoms(truth.features, atoms)["recall@0.99"] >= 0.9


def test_hashing_finds_the_pairs_that_the_gram_matrix_finds():
    """The hashed search against the exhaustive one on near-duplicates, antipodal ones included."""
    rng = np.random.default_rng(3)
    base = rng.standard_normal((300, 16))
    u = np.concatenate([base, base[:80] + 1e-4 * rng.standard_normal((80, 16)), -base[80:120]])
    u /= np.linalg.norm(u, axis=1, keepdims=True)
    gram = np.abs(u @ u.T)
    np.fill_diagonal(gram, 0)
    exhaustive = {(int(i), int(j)) for i, j in zip(*np.nonzero(gram > DUP.LEAK_COS)) if i < j}
    a, b = DUP.duplicate_pairs(u, np.random.default_rng(0), DUP.LEAK_COS)
    hashed = {(int(min(i, j)), int(max(i, j))) for i, j in zip(a, b)}
    assert len(exhaustive) == 120 and hashed == exhaustive


@pytest.mark.parametrize("tier, kind", VARIANTS, ids=[f"{t}-{k}" for t, k in VARIANTS])
def test_duplicate_directions_stay_at_the_floor_on_every_tier(tier, kind):
    truth = planted(tier, kind)
    atoms = DUP.duplicate_directions(truth.samples, seed=0, cos=DUP.LEAK_COS, limit=truth.features.shape[0])
    scores = score_atoms(truth.features, atoms, truth.signed)
    assert scores["recall@0.9"] <= 0.1, (tier, kind, len(atoms), scores)


def test_duplicate_directions_stay_at_the_floor_on_the_dev_split(dev_split):
    for record in dev_split.instances:
        truth = dev_split.load_answer(record.id)
        atoms = DUP.duplicate_directions(dev_split.load_inputs(record.id)["samples"], seed=0, cos=DUP.LEAK_COS,
                                         limit=int(record.public["n_features"]))
        scores = score_atoms(truth["features"], atoms, bool(truth["signed"]))
        assert scores["recall@0.9"] <= 0.1, (record.group, record.id, scores)
