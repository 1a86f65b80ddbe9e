"""Shortcuts against the scaling-exponents scores (issue 15). Each must not pay: the wide-or-empty
interval answer must lose to an honest baseline's interval and to the floor's, and looking the
published family C up must change neither the headline nor the ranking (family C is a sanity row).

Both attacks beat the old scoring (version 2: interval_coverage_error, family C ranked): run this
file against it to see them succeed.

The rate-prior shortcut (issue 19, red team) must not beat the best floor on dev: it beat the two
floors there were before scaling-floor-rate-prior (0.069 against 0.249), near the best baseline."""
from __future__ import annotations

import csv

import numpy as np
import pytest
import yaml

from benchmark.tasks.scaling_exponents.generator import CHINCHILLA_CSV
from phasebench_baselines.scaling import is_rate, rate_prior_answer, rate_prior_key

from .helpers import SUBMISSIONS, TASK, dev_items, load_method, overall, score

INTERVAL_METRIC = "interval_score"


@pytest.fixture(scope="module")
def items(dev_split_of):
    return dev_items(dev_split_of("scaling-exponents"))


def wide_or_empty(answer: dict, seed: int) -> dict:
    """The attack: [-1e300, 1e300] on about 90% of the queries, a zero-width interval at the
    prediction on the rest, so that the share of queries covered is about the nominal 0.9."""
    loss = np.asarray(answer["loss"], dtype=float)
    empty = np.random.default_rng(seed).random(loss.size) < 0.1
    return {**answer, "loss_low": np.where(empty, loss, -1e300), "loss_high": np.where(empty, loss, 1e300)}


def _interval_board(items, method) -> tuple[float, float]:
    """The overall interval metric of a method's answers and of the attack built on them."""
    honest_rows, attack_rows = [], []
    for rec, problem, truth in items:
        answer = method(dict(problem))
        honest_rows.append({"group": rec.group, "metrics": score(answer, rec, truth)})
        attack_rows.append({"group": rec.group, "metrics": score(wide_or_empty(answer, problem["seed"]), rec, truth)})
    return (overall(honest_rows)["metrics"][INTERVAL_METRIC]["value"],
            overall(attack_rows)["metrics"][INTERVAL_METRIC]["value"])


def test_wide_or_empty_intervals_lose_to_an_honest_calibrated_baseline(items):
    honest, attack = _interval_board(items, load_method("scaling-approach3"))
    metric = TASK.metadata.metric(INTERVAL_METRIC)
    assert metric.better(honest, attack), (honest, attack)


def test_wide_or_empty_intervals_lose_to_the_floor(items):
    floor, attack = _interval_board(items, load_method("scaling-floor-min-loss"))
    assert TASK.metadata.metric(INTERVAL_METRIC).better(floor, attack), (floor, attack)


def _published_losses() -> dict[tuple[float, float], float]:
    with open(CHINCHILLA_CSV, newline="") as f:
        rows = list(csv.DictReader(f))
    return {(float(r["Model Size"]), float(r["Training FLOP"])): float(r["loss"]) for r in rows}


def looked_up(answer: dict, problem: dict, table: dict) -> dict:
    """The attack: on family C, the published loss of each query (the CSV ships with the task and
    is public anyway); elsewhere the answer unchanged."""
    if problem["family"] != "C":
        return answer
    keys = zip(problem["query_N"], problem["query_C"])
    loss = np.array([table[min(table, key=lambda k: abs(k[0] / n - 1) + abs(k[1] / c - 1))] for n, c in keys])
    return {**answer, "loss": loss}


def test_looking_up_family_c_changes_neither_headline_nor_ranking(items):
    """Two honest answers: the approach-3 reference fit (stored with each instance) and the floor
    (the smallest observed loss); each with and without the family-C lookup."""
    table = _published_losses()
    boards = {}
    for name in ("reference", "floor"):
        rows, rows_lookup, lookup_errors = [], [], []
        for rec, problem, truth in items:
            if name == "reference":
                answer = {"loss": np.asarray(truth["ref_loss"], dtype=float)}
            else:
                answer = {"loss": np.full(int(problem["n_query"]), float(np.min(problem["obs_loss"])))}
            cheat = looked_up(answer, problem, table)
            rows.append({"group": rec.group, "metrics": score(answer, rec, truth)})
            rows_lookup.append({"group": rec.group, "metrics": score(cheat, rec, truth)})
            if rec.group == "C":
                lookup_errors.append(rows_lookup[-1]["metrics"][TASK.metadata.headline])
        assert lookup_errors == [0.0]   # the lookup works: family C answered exactly
        boards[name], boards[name + "+lookup"] = overall(rows), overall(rows_lookup)
        # the sanity row still shows the lookup
        assert boards[name + "+lookup"]["groups"]["C"][TASK.metadata.headline] == 0.0
    for name in ("reference", "floor"):
        honest, cheat = boards[name]["metrics"], boards[name + "+lookup"]["metrics"]
        for metric in TASK.metadata.metrics:
            assert cheat[metric.name]["value"] == honest[metric.name]["value"], (name, metric.name)
    headline = TASK.metadata.headline_metric

    def better(a: str, b: str) -> bool:
        return headline.better(boards[a]["metrics"][headline.name]["value"], boards[b]["metrics"][headline.name]["value"])
    assert better("reference", "floor") == better("reference", "floor+lookup") == better("reference+lookup", "floor")


#: The rate-prior shortcut: the smallest observed loss times (query / largest observed scale)^-k, no
#: curve fitted, with k a constant per public key fitted on the train split's answers. "fine" keys by
#: (family, variables, loss_is_rate), its k as the red team fitted them (a grid in steps of 0.005);
#: "coarse" by (family, loss_is_rate), its k from the floor's fit.py with that key
#: (tests/submissions/test_scaling_floor_rate_prior.py refits them on the train split).
FINE_K = {"A|C|loss": 0.04, "A|C|rate": 0.095, "A|D|loss": 0.055, "A|D|rate": 0.1, "A|N|loss": 0.07,
          "A|N|rate": 0.1, "A|N,D|loss": 0.04, "B|D|loss": 0.005, "B|N|loss": 0.515, "B|step|loss": 0.63}
COARSE_K = {"A|loss": 0.0537378632042881, "A|rate": 0.09841498244920342, "B|loss": 0.3228080282454784}


def coarse_key(problem) -> str:
    return f"{problem['family']}|{'rate' if is_rate(problem) else 'loss'}"


RATE_PRIOR = {"fine": (FINE_K, rate_prior_key), "coarse": (COARSE_K, coarse_key)}


def scaling_floors() -> list[str]:
    """Every submission declared a no-skill floor of this task."""
    specs = [yaml.safe_load(path.read_text()) for path in sorted(SUBMISSIONS.glob("*/submission.yaml"))]
    return [spec["name"] for spec in specs if spec.get("floor") and TASK.name in spec.get("tasks", {})]


def headline(items, method) -> float:
    rows = [{"group": rec.group, "metrics": score(method(dict(problem)), rec, truth)} for rec, problem, truth in items]
    return overall(rows)["metrics"][TASK.metadata.headline]["value"]


def assert_floor_not_beaten(items, floors: list[str], attack: str) -> None:
    """The attack's dev headline is no better than the best of ``floors``'."""
    table, key = RATE_PRIOR[attack]
    cheat = headline(items, lambda p: rate_prior_answer(p, table.get(key(p), 0.0)))
    metric = TASK.metadata.headline_metric
    scored = {name: headline(items, load_method(name)) for name in floors}
    best = next(iter(scored))
    for name, value in scored.items():
        best = name if metric.better(value, scored[best]) else best
    assert not metric.better(cheat, scored[best]), (attack, cheat, scored)


def test_the_shipped_floors_include_the_rate_prior():
    assert "scaling-floor-rate-prior" in scaling_floors()


@pytest.mark.parametrize("attack", sorted(RATE_PRIOR))
def test_the_rate_prior_shortcut_does_not_beat_the_best_floor(items, attack):
    """Against every floor shipped. Before scaling-floor-rate-prior it beat both floors there were
    (scaling-floor-min-loss and scaling-floor-prior-exponents, 0.249): fine 0.069, coarse 0.192."""
    assert_floor_not_beaten(items, scaling_floors(), attack)
