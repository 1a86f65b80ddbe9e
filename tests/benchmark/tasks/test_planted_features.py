import numpy as np
import pytest

from benchmark.dataset import InstanceRecord
from benchmark.split_secret import SplitSecret, new_secret_text
from benchmark.task import AnswerError, get_task
from benchmark.tasks.planted_features.generator import firing_probabilities, plant
from benchmark.tasks.planted_features.scorer import score_atoms
from benchmark.tasks.planted_features.task import expected_l0

TASK = get_task("planted-features")


def _features(n=64, d=16, seed=0):
    f = np.random.default_rng(seed).standard_normal((n, d))
    return f / np.linalg.norm(f, axis=1, keepdims=True)


def _record(n=64, d=16):
    return InstanceRecord(id="x", group="T1", public={"n_features": n, "dim": d, "n_samples": 10})


def test_oracle_reaches_the_best_score_on_every_metric():
    f = _features()
    scores = score_atoms(f, f)
    for m in TASK.metadata.metrics:
        assert scores[m.name] == pytest.approx(m.best), m.name


def test_oracle_on_a_real_dev_instance(dev_split):
    for record in dev_split.instances:
        truth = dev_split.load_answer(record.id)
        clean = TASK.validate_answer({"atoms": truth["features"]}, record)
        assert TASK.score(clean, truth, record)["recall@0.9"] == 1.0


def test_random_atoms_land_at_the_floor():
    f = _features(n=256, d=64)
    atoms = np.random.default_rng(1).standard_normal((256, 64))
    scores = score_atoms(f, atoms)
    assert scores["recall@0.9"] == 0.0 and scores["precision@0.9"] == 0.0
    assert scores["matched_cos"] < 0.45  # Hungarian on 256x256 random |cos| in d=64


def test_invariant_to_order_sign_and_scale():
    f = _features()
    rng = np.random.default_rng(2)
    atoms = f + 0.05 * rng.standard_normal(f.shape)
    base = score_atoms(f, atoms)
    moved = atoms[rng.permutation(len(atoms))] * rng.choice([-1.0, 1.0], size=(len(atoms), 1)) * 7.5
    assert score_atoms(f, moved) == pytest.approx(base)


def test_signed_instances_penalise_flipped_atoms():
    f = _features()
    assert score_atoms(f, -f, signed=True)["recall@0.9"] == 0.0
    assert score_atoms(f, -f, signed=False)["recall@0.9"] == 1.0


def test_half_the_features_gives_half_recall_and_full_precision():
    f = _features()
    scores = score_atoms(f, f[:32])
    assert scores["recall@0.9"] == 0.5 and scores["precision@0.9"] == 1.0


def test_zero_atoms_and_empty_answers_score_zero_without_nan():
    f = _features()
    assert score_atoms(f, np.zeros((5, 16)))["matched_cos"] == 0.0
    assert score_atoms(f, np.zeros((0, 16)))["recall@0.9"] == 0.0


@pytest.mark.parametrize("atoms, message", [
    (np.ones((65, 16)), r"expected shape \(m, 16\) with m <= n_features = 64, got \(65, 16\)"),
    (np.ones((3, 15)), r"expected shape \(m, 16\)"),
    (np.ones(16), r"expected shape \(m, 16\)"),
    (np.full((2, 16), np.nan), "NaN or inf"),
    (np.full((2, 16), np.inf), "NaN or inf"),
    (np.array([[True] * 16]), None),
])
def test_answer_validation(atoms, message):
    if message is None:  # booleans are numbers; accepted and cast
        TASK.validate_answer({"atoms": atoms}, _record())
        return
    with pytest.raises(AnswerError, match=message):
        TASK.validate_answer({"atoms": atoms}, _record())


def test_unexpected_answer_fields_rejected():
    with pytest.raises(AnswerError, match="exactly the field 'atoms'"):
        TASK.validate_answer({"atoms": np.ones((1, 16)), "extra": np.ones(1)}, _record())


def test_firing_probabilities_keep_the_mean_l0():
    for law, exponent in (("uniform", 1), ("decay", 1), ("zipf", 0.5), ("zipf", 1.5)):
        p = firing_probabilities(256, 4.0, law, exponent)
        assert p.sum() == pytest.approx(4.0) and p.max() <= 1.0
    p = firing_probabilities(512, 5.0, "decay")
    assert p[0] / p[100] == pytest.approx(0.99 ** -100)


def _codes(samples, features):
    # Non-negative least squares is exact here: noise-free samples of planted features.
    return np.linalg.lstsq(features.T, samples.T, rcond=None)[0].T


def test_generator_is_deterministic_and_seed_dependent():
    params = {"d": 8, "n": 16, "l0": 2.0, "n_samples": 500}
    a, b, c = plant(params, 1), plant(params, 1), plant(params, 2)
    assert np.array_equal(a.samples, b.samples) and np.array_equal(a.features, b.features)
    assert not np.array_equal(a.samples, c.samples)


def test_generator_mean_l0_and_snr():
    params = {"d": 64, "n": 256, "l0": 4.0, "n_samples": 20_000}
    clean = plant(params, 3)
    noisy = plant({**params, "snr_db": 10.0}, 3)
    noise = noisy.samples.astype(float) - clean.samples
    snr = 10 * np.log10(np.mean(clean.samples.astype(float) ** 2) / np.mean(noise ** 2))
    assert snr == pytest.approx(10.0, abs=0.2)
    # d < n, so codes are not identifiable by least squares; count firing through the sparse draw instead
    nonzero_rows = np.mean(np.any(clean.samples != 0, axis=1))
    assert nonzero_rows > 0.95  # P(no feature fires) = (1 - 4/256)^256 ~ 1.8%


def test_hierarchy_children_fire_only_with_their_parent():
    params = {"d": 64, "n": 10, "structure": "hierarchy", "n_parents": 2, "n_children": 4, "p_parent": 0.3,
              "p_child": 0.9, "n_samples": 3000}
    planted = plant(params, 0)
    codes = _codes(planted.samples.astype(float), planted.features)  # d >= n: exact
    active = codes > 1e-4
    for j in range(2):
        kids = active[:, 2 + 4 * j: 2 + 4 * (j + 1)]
        assert not np.any(kids.any(axis=1) & ~active[:, j]), "a child fired without its parent"
        assert kids.sum(axis=1).max() <= 1, "children are mutually exclusive"


def test_clustered_geometry_is_coherent():
    params = {"d": 64, "n": 64, "l0": 4.0, "geometry": "clusters", "cluster_size": 8, "cluster_cos": [0.5, 0.7],
              "n_samples": 100}
    f = plant(params, 0).features
    cos = f @ f.T
    np.fill_diagonal(cos, 0)
    top = np.sort(cos, axis=1)[:, -7:]  # each feature's 7 cluster mates
    assert 0.4 < top.mean() < 0.8


# --- per-instance details for the leaderboard's plots ------------------------------------------

def test_details_read_the_density_from_the_private_index_not_the_id():
    """n/d from the public fields, L0 from the hidden fields the build stores beside the answers; an id
    says nothing (a record without hidden fields has no density)."""
    record = InstanceRecord(id="dev-001-T2", group="T2", public={"n_features": 256, "dim": 64})
    assert TASK.instance_details(None, {}, record) == {"n_over_d": 4.0, "l0": None}
    hidden = InstanceRecord(id="0123456789abcdef", group="T2", public={"n_features": 150, "dim": 50},
                            hidden={"l0": 12.5, "structure": "independent"}, group_public=False)
    assert TASK.instance_details(None, {}, hidden) == {"n_over_d": 3.0, "l0": 12.5}


def test_every_drawn_configuration_states_its_density():
    """The drawn L0 is what the firing rule gives (T2 dense, the others 3-6), whatever the structure."""
    for spec in TASK.instance_specs("test", SplitSecret.parse(new_secret_text(), "test")):
        l0 = expected_l0(spec.params)
        assert (8.0 <= l0 <= 24.0) if spec.group == "T2" else (3.0 <= l0 <= 6.0 + 1e-9), (spec.group, spec.params)
        if spec.params.get("structure", "independent") in ("independent", "copula"):
            assert l0 == pytest.approx(spec.params["l0"], rel=1e-6)
    hier = {"n": 103, "n_parents": 20, "n_children": 4, "p_parent": 0.05, "p_child": 0.8, "structure": "hierarchy"}
    assert expected_l0(hier) == pytest.approx(0.05 * (20 * 1.8 + 3))


def test_the_built_dev_split_keeps_the_tier_private(dev_split):
    index = (dev_split.root / "instances.jsonl").read_text()
    assert '"group"' not in index and all(not r.group_public for r in dev_split.instances)
    assert {r.group for r in dev_split.instances} <= set(TASK.metadata.groups)
    assert all(isinstance(r.hidden.get("l0"), float) for r in dev_split.instances)
