"""A hidden split's summary is published (board, API, results dataset), so no aggregate in it, nor any
combination of them, may rest on fewer than MIN_HIDDEN_SLICE instances: one instance's score gives its
answer away (rare-behavior: a constant answer's log10 error is |log10 c − log10 p|).

The attack these tests run is linear algebra on what a summary publishes: every mean is a known
weighted sum of per-instance scores, so a set S of instances is exposed when some combination of
them alone lies in the span of the published sums (rank([A; E_S]) < rank(A) + |S|). It succeeds on
the same rows summarised as a public split (``hidden=False``) and must fail on the hidden summary.
"""
from __future__ import annotations

import itertools

import numpy as np
import pytest

from benchmark.stats import MIN_HIDDEN_SLICE, aggregate, hidden_split_slices, withheld_slices
from benchmark.task import all_tasks, get_task

TASKS = [t for t in all_tasks()]


def _rows(meta, n: int, rng: np.random.Generator, *, group_weights=None, n_slices: int = 10) -> list[dict]:
    """Rows with a skewed group mix and a breakdown value per declared breakdown, so that small slices
    and group-by-slice bridges occur; one metric value per instance (its 'score')."""
    groups = list(meta.groups)
    weights = np.asarray(group_weights or [2.0 ** -i for i in range(len(groups))], dtype=float)
    out = []
    for i in range(n):
        details = {b.key: float(rng.integers(-n_slices, 0)) for b in meta.breakdowns}
        details.update({m.label: int(rng.integers(0, 2)) for m in meta.metrics if m.label})
        # a coverage is a 0/1 per instance; every other metric any number
        metrics = {m.name: float(rng.integers(0, 2)) if m.nominal_rate is not None else float(rng.normal())
                   for m in meta.metrics}
        out.append({"group": groups[rng.choice(len(groups), p=weights / weights.sum())],
                    "metrics": metrics, "details": details, "id": i})
    return out


def _published_sets(meta, rows, summary) -> list[set[int]]:
    """The instance sets whose aggregate the summary publishes (the overall over the ranked groups,
    each group shown, each breakdown slice shown), recomputed from the rows by the summary's own keys."""
    ranked = {r["id"] for r in rows if meta.ranked(r["group"])}
    sets = [ranked] if ranked else []
    sets += [{r["id"] for r in rows if r["group"] == g} for g in summary["groups"]]
    for b in meta.breakdowns:
        for name in summary.get("breakdowns", {}).get(b.name, {}):
            sets.append({r["id"] for r in rows if r["id"] in ranked and str(int(r["details"][b.key])) == name})
    return sets


def _exposed(sets: list[set[int]], n: int, subset: tuple[int, ...]) -> bool:
    a = np.array([[1.0 if i in s else 0.0 for i in range(n)] for s in sets])
    e = np.zeros((len(subset), n))
    e[np.arange(len(subset)), subset] = 1.0
    return np.linalg.matrix_rank(np.vstack([a, e])) < np.linalg.matrix_rank(a) + len(subset)


def _exposed_sets(meta, rows, summary, rng) -> list[tuple[int, ...]]:
    n = len(rows)
    sets = _published_sets(meta, rows, summary)
    candidates = [(i,) for i in range(n)] + list(itertools.combinations(range(n), 2))
    candidates += [tuple(rng.choice(n, size=k, replace=False)) for k in range(3, MIN_HIDDEN_SLICE) for _ in range(200)]
    return [s for s in candidates if _exposed(sets, n, s)]


@pytest.mark.parametrize("task", TASKS, ids=lambda t: t.name)
@pytest.mark.parametrize("seed", range(6))
def test_no_set_under_the_minimum_can_be_solved_for_from_a_hidden_summary(task, seed):
    meta = task.metadata
    rng = np.random.default_rng(seed)
    rows = _rows(meta, int(rng.integers(20, 60)), rng)
    attack_rng = np.random.default_rng(100 + seed)
    hidden = aggregate(meta, rows, hidden=True)
    assert _exposed_sets(meta, rows, hidden, attack_rng) == []
    for slices in [hidden["groups"], *hidden.get("breakdowns", {}).values()]:
        assert all(s["n"] >= MIN_HIDDEN_SLICE for s in slices.values())


@pytest.mark.parametrize("task", [t for t in TASKS if len(t.metadata.groups) > 1 or t.metadata.breakdowns],
                         ids=lambda t: t.name)
def test_the_attack_succeeds_on_the_same_rows_summarised_in_full(task):
    """The attack is real: with every slice published, some instance's score is solved for exactly."""
    meta = task.metadata
    rng = np.random.default_rng(0)
    rows = _rows(meta, 40, rng)
    # one instance alone in its slice: a rare decade, or an architecture or group seen once
    if meta.breakdowns:
        rows[0]["details"][meta.breakdowns[0].key] = 5.0
    else:
        rows[0]["group"] = next(g for g in meta.groups if g != rows[1]["group"])
        for r in rows[1:]:
            r["group"] = rows[1]["group"]
    full = aggregate(meta, rows)
    exposed = [s for s in _exposed_sets(meta, rows, full, np.random.default_rng(1)) if len(s) == 1]
    assert exposed
    # and the score itself follows: least squares over the published means
    (i,), = exposed[:1]
    sets = _published_sets(meta, rows, full)
    headline = meta.headline
    ranked = [r for r in rows if meta.ranked(r["group"])]
    values = [float(np.mean([r["metrics"][headline] for r in ranked]))] if ranked else []
    values += [full["groups"][g][headline] for g in full["groups"]]
    for b in meta.breakdowns:
        values += [v[headline] for v in full["breakdowns"][b.name].values()]
    m = meta.metric(headline)
    if m.aggregation != "mean":
        return   # a median is not a linear sum; the rank test above is the attack
    a = np.array([[1.0 / len(s) if i in s else 0.0 for i in range(len(rows))] for s in sets])
    weights, *_ = np.linalg.lstsq(a.T, np.eye(len(rows))[i], rcond=None)
    assert weights @ np.asarray(values) == pytest.approx(rows[i]["metrics"][headline])


def test_a_singleton_decade_of_rare_behavior_is_not_published_and_cannot_be_subtracted_out():
    meta = get_task("rare-behavior-whitebox").metadata
    worst = {m.name: 0.5 for m in meta.metrics}
    rows = ([{"group": "F1", "metrics": worst, "details": {"decade": -5.0}} for _ in range(12)]
            + [{"group": "F2", "metrics": worst, "details": {"decade": -4.0}} for _ in range(6)]
            + [{"group": "F3", "metrics": worst, "details": {"decade": -9.0}}])
    public = aggregate(meta, rows)["breakdowns"]["decade"]
    assert public["-9"]["n"] == 1                       # the public split shows the lone instance
    hidden = aggregate(meta, rows, hidden=True)
    # F3 (1 instance) is withheld; so is F2, else F3 = overall − F1 − F2
    assert set(hidden["groups"]) == {"F1"}
    # decade -9 and -4 go the same way; -5 is F1's instances, a set already published
    assert set(hidden["breakdowns"]["decade"]) == {"-5"}
    assert hidden["metrics"] == aggregate(meta, rows)["metrics"]


def test_withheld_slices_takes_the_next_smallest_until_the_rest_holds_the_minimum():
    assert withheld_slices({"a": 40, "b": 3, "c": 7, "d": 9}) == {"b", "c"}
    assert withheld_slices({"a": 40, "b": 9}) == set()
    assert withheld_slices({"a": 40, "b": 9}, unsliced=2) == {"b"}      # the unsliced two: total − a − b
    assert withheld_slices({"a": 3}) == {"a"}
    assert withheld_slices({"a": 4, "b": 4}, minimum=5) == {"a", "b"}


def test_unranked_groups_are_a_partition_of_their_own():
    """The overall is over the ranked groups only, so a small ranked group with a large unranked one
    withheld would still be the overall less the other ranked groups."""
    meta = next((t.metadata for t in TASKS if t.metadata.unranked_groups), None)
    if meta is None:
        pytest.skip("no task declares unranked groups")
    ranked = [g for g in meta.groups if meta.ranked(g)]
    unranked = meta.unranked_groups[0]
    rows = ([{"group": ranked[0], "metrics": {}, "details": {}}] * 30 + [{"group": unranked, "metrics": {}, "details": {}}] * 30)
    if len(ranked) > 1:
        rows += [{"group": ranked[1], "metrics": {}, "details": {}}] * 2
        kept = hidden_split_slices(meta, rows).groups
        assert ranked[1] not in kept and ranked[0] not in kept and unranked in kept
