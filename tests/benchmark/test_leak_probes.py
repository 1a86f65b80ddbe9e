"""Leak probes: small attackers that try to read the hidden answers of a test split from what is public.

Each probe runs against a test split drawn with a fresh operator secret (it must gain nothing over
the no-skill floor: the most common label, or nothing recovered) and against the same split drawn the
old way (``leak_attacks.old_specs``: it must succeed there, so no probe passes vacuously).
"""
from __future__ import annotations

import math

import numpy as np
import pytest
from click.testing import CliRunner
from scipy.stats import binomtest
from sklearn.tree import DecisionTreeClassifier

from benchmark.dataset import HIDDEN_INDEX, read_arrays
from benchmark.split_secret import SECRET_ENV, SplitSecret, new_secret_text
from benchmark.task import all_tasks, get_task
from benchmark.tasks.planted_features.task import SIZES, TIER_COUNTS, draw_config
from benchmark.tasks.rare_behavior.task import DESIGNS as RARE_DESIGNS
from benchmark.tasks.rare_behavior.task import draw_configs as rare_draw_configs
from evaluator.cli import main
from tests.benchmark.leak_attacks import (
    OLD_SECRET,
    PublicView,
    brute_force_instance_seed,
    build_specs,
    guess_key,
    guessable_seeds,
    label_accuracy,
    lookup_labels,
    majority_share,
    new_specs,
    old_specs,
    regenerate_old,
    stream_correlations,
    tiny_test_designs,
)

TASK_NAMES = [t.name for t in all_tasks()]
#: The hidden label a lookup would give away, read from a configuration (the attacker's guess) and
#: from the spec (the truth). Grokking-onset is absent: every drawn value of its configuration is a
#: public field by design, so a lookup gains nothing; its secret is the run's seed (probes below).
LABELS = {
    "planted-features": lambda group, params: group,
    "scaling-exponents": lambda group, params: params["kind"],
    "rare-behavior": lambda group, params: math.floor(params["log10_p"]),
    "rare-behavior-whitebox": lambda group, params: math.floor(params["log10_p"]),
}
SIGNIFICANCE = 1e-4  # a probe 'beats the floor' when chance would give its hits this rarely


@pytest.fixture(scope="module")
def secret() -> SplitSecret:
    return SplitSecret.parse(new_secret_text(), "a fresh secret")


@pytest.fixture(scope="module")
def built(tmp_path_factory, secret):
    """Test splits of every task, built from the fresh secret and the old way, on demand, with the tiny
    designs (an attacker that regenerates data must run inside ``tiny_test_designs`` too: they are the
    published distribution of these splits)."""
    cache: dict[tuple[str, str], object] = {}

    def get(name: str, scheme: str):
        if (name, scheme) not in cache:
            task = get_task(name)
            root = tmp_path_factory.mktemp(f"{name}-{scheme}")
            with tiny_test_designs():
                if scheme == "new":
                    specs, group_public = new_specs(task, secret), task.metadata.group_public
                else:
                    specs, group_public = old_specs(task), True  # the old index showed every group
                split = build_specs(task, specs, root / "public", root / "private", group_public)
            cache[(name, scheme)] = (split, PublicView.of(task, split))
        return cache[(name, scheme)]
    return get


def _chance_p_value(predicted: list, truth: list) -> float:
    """One-sided binomial test of the hits against chance: the hit rate a guess independent of the
    truth gets is sum over labels of share(truth) x share(guess)."""
    labels = set(map(str, truth)) | set(map(str, predicted))
    share = {lab: (np.mean([str(t) == lab for t in truth]), np.mean([str(p) == lab for p in predicted])) for lab in labels}
    chance = float(sum(a * b for a, b in share.values()))
    hits = sum(str(p) == str(t) for p, t in zip(predicted, truth))
    return binomtest(hits, len(truth), min(max(chance, 1e-9), 1 - 1e-9), alternative="greater").pvalue


def _spec_view(task, specs) -> PublicView:
    """The public index of a split as its specs will write it (sorted ids); no file is needed for a
    lookup, so the full-size test design is attacked."""
    ordered = sorted(specs, key=lambda s: s.id)
    return PublicView(task, [s.id for s in ordered], [{} for _ in ordered], {}), ordered


# --- 1. id or position -> configuration ---------------------------------------------------------------

@pytest.mark.parametrize("name", sorted(LABELS))
def test_lookup_by_id_or_position_gains_nothing(name, secret):
    task, label = get_task(name), LABELS[name]
    view, specs = _spec_view(task, task.instance_specs("test", secret))
    truth = [label(s.group, s.params) for s in specs]
    predicted = lookup_labels(view, label)
    assert _chance_p_value(predicted, truth) > SIGNIFICANCE, (
        f"{name}: the lookup recovers {label_accuracy(predicted, truth):.2f} of the hidden labels "
        f"(floor {majority_share(truth):.2f})")

    # the same attacker against the old scheme reads every label
    old_view, old = _spec_view(task, old_specs(task))
    old_truth = [label(s.group, s.params) for s in old]
    assert label_accuracy(lookup_labels(old_view, label), old_truth) == 1.0


# --- 2. brute force of the secret, and regeneration --------------------------------------------------

@pytest.mark.parametrize("name", TASK_NAMES)
def test_guessing_the_secret_finds_nothing(name, secret, built):
    task = get_task(name)
    view, _ = _spec_view(task, task.instance_specs("test", secret))
    guesses = guessable_seeds()
    assert len(guesses) > 13_000
    assert guess_key(view, guesses) is None, f"{name}: a guessable integer derives the test split's ids"

    # regeneration with the old derivation: nothing on the new split, the secret on the old one
    _, new_view = built(name, "new")
    _, old_view = built(name, "old")
    cheap = guesses if name.startswith("grokking-onset") else guesses[:10]
    with tiny_test_designs():
        assert regenerate_old(new_view, cheap) is None
        assert regenerate_old(old_view, cheap) == OLD_SECRET, f"{name}: the probe must find the old scheme's seed"


def test_the_key_guesser_finds_a_guessable_key():
    """The guesser itself works: a split drawn from a date turned into a key is found."""
    task = get_task("scaling-exponents")
    weak = SplitSecret(str(20250214).encode())
    view, _ = _spec_view(task, task.instance_specs("test", weak))
    assert guess_key(view, guessable_seeds()) == weak


# --- 3. brute force of one instance's seed -------------------------------------------------------------

BRUTE_FORCE_BITS = 10  # 1,024 regenerations in the suite; the old seeds had 32 bits (28 core-hours)


@pytest.mark.parametrize("name", TASK_NAMES)
def test_instance_seeds_are_not_narrowed(name, secret):
    """Every seed is a 256-bit derivation: a brute force of 2^24 (or 2^32) candidates covers a
    2^-232 share of the space. A derived seed below 2^200 has probability 2^-56."""
    seeds = [s.seed for s in get_task(name).instance_specs("test", secret)]
    assert min(seed.bit_length() for seed in seeds) > 200
    assert len(set(seeds)) == len(seeds)


@pytest.mark.parametrize("name", ["planted-features", "scaling-exponents"])
def test_seed_brute_force_finds_nothing(name, built, tmp_path):
    """Demonstrated where one generation takes milliseconds: against seeds narrowed to 10 bits it
    finds the seed (the old 32-bit seeds are the same attack, 2^22 times longer)."""
    _, new_view = built(name, "new")
    task = get_task(name)
    with tiny_test_designs():
        assert brute_force_instance_seed(new_view, BRUTE_FORCE_BITS) is None
        narrow = old_specs(task, seed_bits=BRUTE_FORCE_BITS)
        split = build_specs(task, narrow[:1], tmp_path / "public", tmp_path / "private", True)
        found = brute_force_instance_seed(PublicView.of(task, split), BRUTE_FORCE_BITS)
    assert found == narrow[0].seed


def test_grokking_torch_seeds_have_64_bits(secret):
    from benchmark.tasks.grokking_onset.trainer import torch_seed
    spec = get_task("grokking-onset").instance_specs("test", secret)[0]
    assert torch_seed(spec.seed, 2) >= 2 ** 32 or torch_seed(spec.seed, 3) >= 2 ** 32


# --- 4. cross-task and cross-track correlation ---------------------------------------------------------

def test_no_two_tasks_or_tracks_share_a_stream(secret):
    """Built from one secret, no task's or track's instance stream tracks another's (the old scheme
    seeded instance i of every task with SeedSequence([secret, i]): grokking's public lr, wd and
    train_frac were draws of scaling-exponents' hidden law)."""
    with_real_sizes = {t.name: t.instance_specs("test", secret) for t in all_tasks()}
    seeds = [s.seed for specs in with_real_sizes.values() for s in specs]
    shared = len(seeds) - len(set(seeds))
    tracks = {"grokking-onset", "grokking-onset-with-test"}
    assert shared == len(with_real_sizes["grokking-onset"]), \
        "the only shared seeds are the two grokking tracks' runs (one run, two views of it)"
    correlations = {pair: r for pair, r in stream_correlations(with_real_sizes).items() if set(pair) != tracks}
    assert max(correlations.values()) < 0.3, correlations

    old = {t.name: old_specs(t) for t in all_tasks()}
    old_correlations = stream_correlations(old)
    assert old_correlations[("grokking-onset", "scaling-exponents")] > 0.99
    assert old_correlations[("planted-features", "rare-behavior")] > 0.99


# --- 5. public fields -> hidden parameters -----------------------------------------------------------

def _fit_and_score(x_train, y_train, x_test, y_test) -> float:
    model = DecisionTreeClassifier(max_depth=6, random_state=0).fit(x_train, y_train)
    return float(np.mean(model.predict(x_test) == np.asarray(y_test)))


def _planted_public(params) -> list[float]:
    """The public fields of a planted configuration (the toy model shows n_model's kept share; n_model
    stands in for it here)."""
    n = params.get("n", params.get("n_model"))
    return [n, params["d"], params["n_samples"], n / params["d"]]


def test_planted_public_fields_do_not_tell_the_tier():
    rng = np.random.default_rng(0)  # the attacker's own draws of the published distribution
    tiers = list(TIER_COUNTS["test"])

    def sample(count):
        t = [tiers[i % len(tiers)] for i in range(count)]
        return [_planted_public(draw_config(tier, SIZES["test"], rng)) for tier in t], t
    x_train, y_train = sample(4200)
    x_test, y_test = sample(2100)
    assert _fit_and_score(x_train, y_train, x_test, y_test) < majority_share(y_test) + 0.05

    # the old published list: n = 200 was the hierarchy, d = 16 the toy model, d = 256 T0, N sized T3
    x_old, y_old = [r[1:] + (r[1] / r[2],) for r in OLD_PLANTED_TEST], [r[0] for r in OLD_PLANTED_TEST]
    assert _fit_and_score(x_old, y_old, x_old, y_old) > 0.5


def test_rare_public_fields_do_not_tell_the_decade():
    rng = np.random.default_rng(0)
    design = RARE_DESIGNS["test"]

    def sample(rounds):
        configs = [c for _ in range(rounds) for c in rare_draw_configs(design, rng, with_budget=True)]
        x = [[{"F1": 1, "F2": 2, "F3": 3}[fam], p.get("dim", 0), p.get("classes", 0), p.get("hidden_layers", 0),
              p.get("input_dist") == "box", p["budget"], p.get("vocab", 0), p.get("length", 0)] for fam, p in configs]
        return x, [math.floor(p["log10_p"]) for _, p in configs]
    x_train, y_train = sample(60)
    x_test, y_test = sample(30)
    assert _fit_and_score(x_train, y_train, x_test, y_test) < majority_share(y_test) + 0.05


# --- 6. nothing secret in a public file ------------------------------------------------------------

@pytest.mark.parametrize("name", TASK_NAMES)
def test_no_byte_of_the_secret_or_the_answers_is_public(name, secret, built):
    split, _ = built(name, "new")
    task = get_task(name)
    public_blob = b"".join(p.read_bytes() for p in sorted(split.root.rglob("*")) if p.is_file())
    assert not (split.root / HIDDEN_INDEX).exists() and not (split.root / "answers").exists()
    assert secret.key not in public_blob and secret.key.hex().encode() not in public_blob
    public_inputs = {k.rstrip("*") for k in task.metadata.input_schema}
    checked = 0
    for record in split.instances:
        for key, array in read_arrays(split.answers_root / "answers" / f"{record.id}.safetensors").items():
            if any(key.startswith(p) for p in public_inputs if p.endswith(".")):
                continue  # the white-box weights are inputs by design
            raw = np.ascontiguousarray(array).tobytes()
            if len(raw) >= 16:
                checked += 1
                assert raw not in public_blob, f"{name}/{record.id}: answer {key} appears in a public file"
    # grokking's answers are scalars; the white-box track's only non-public answer is the scalar p
    assert checked or name.startswith("grokking-onset") or name == "rare-behavior-whitebox", \
        "some answer array was large enough to look for"
    if not task.metadata.group_public:
        assert all(not r.group_public for r in split.instances)
        assert b'"group"' not in (split.root / "instances.jsonl").read_bytes()


def test_every_task_builds_its_test_split_from_a_fresh_secret_and_never_shows_it(tmp_path):
    """`phasebench data build --split test` for every task (tiny designs): the public folder gets the
    index and inputs, the private one the answers and the private index; the key is in no output and
    no file."""
    text = new_secret_text()
    with tiny_test_designs():
        out = CliRunner().invoke(main, ["data", "build", "--split", "test", "--data-dir", str(tmp_path / "d"),
                                        "--private-dir", str(tmp_path / "p")],
                                 env={SECRET_ENV: text}, catch_exceptions=False)
    assert out.exit_code == 0, out.output
    assert text not in out.output
    stored = b"".join(p.read_bytes() for p in tmp_path.rglob("*") if p.is_file())
    assert text.encode() not in stored and bytes.fromhex(text) not in stored
    for name in TASK_NAMES:
        public, private = tmp_path / "d" / name / "test", tmp_path / "p" / name / "test"
        assert (public / "instances.jsonl").read_text() and not (public / "answers").exists(), name
        assert any((private / "answers").iterdir()), name
        assert (private / HIDDEN_INDEX).exists() == (not get_task(name).metadata.group_public
                                                     or name == "scaling-exponents"), name


#: (tier, n_features, dim, n_samples) of the old planted-features test list, which the code held.
OLD_PLANTED_TEST = (
    [("T0", 512, 256, 200000), ("T1", 256, 64, 50000), ("T1", 512, 64, 50000), ("T1", 1024, 64, 51200),
     ("T1", 2048, 64, 102400)] + [("T2", 256, 64, 50000)] * 5 + [("T4", 256, 64, 50000), ("T4", 200, 64, 50000)]
    + [("T5", 256, 64, 50000)] * 4 + [("T6", 256, 64, 50000), ("T6", 64, 16, 50000)]) * 2 + [
    ("T3", 256, 64, 5000), ("T3", 256, 64, 12229), ("T3", 256, 64, 122284), ("T3", 256, 64, 5000),
    ("T3", 256, 64, 39196), ("T3", 256, 64, 391959), ("T3", 256, 64, 20310), ("T3", 256, 64, 203093),
    ("T3", 256, 64, 1000000)]
