"""Attack tests of rare-behavior's headline (issue 15): answers that know nothing about the model must
not beat honest estimation, and a better estimate must score better.

The shortcuts, none of which makes a forward pass:

* rare-floor-prior: the announced top 1e-3 as the bound, the prior's median 10^-7.5 as the estimate;
* rare-floor-cp-blind: the zero-hit Clopper-Pearson bound for the instance's budget (about 3/n);
* the prior's quantiles: its median and its 95% quantile (the constant with the least expected
  pinball loss, a little below the top);
* claimed zero hits: rare-mc's own answer for no hit in the whole budget.

The honest reference is plain Monte Carlo (rare-mc's answer from its hit count), simulated exactly:
its answer depends on the hit count k ~ Bin(budget, p) alone, so a population of instances drawn
as the task announces them (log10 p uniform on its range, the budget uniform on BUDGETS) costs no
forward pass. Monte Carlo is the weakest honest method; if it does not beat a shortcut, nothing
that estimates is rewarded for it. The dev test then runs the best black-box baseline for real.
"""
from __future__ import annotations

import math

import numpy as np
import pytest

from benchmark.answers import scalar
from benchmark.dataset import DataError, InstanceRecord, open_split
from benchmark.stats import paired_difference
from benchmark.task import get_task
from benchmark.tasks.rare_behavior import task as rare_task
from evaluator.runner import method_problem

from .builders import load_method
from .extraction_attack import CountingOracle

BLACK, WHITE = get_task("rare-behavior"), get_task("rare-behavior-whitebox")
POPULATION = 3000


def headline(task, answer: dict, p: float, budget: int | None = None) -> float:
    record = InstanceRecord(id="x", group="F3", public={} if budget is None else {"budget": budget})
    return task.score(task.validate_answer(answer, record), {"p": np.array([p])}, record)[task.metadata.headline]


def assert_better(task, ours: list[float], theirs: list[float], what: str) -> None:
    """``ours`` beats ``theirs`` on the headline, by its declared direction, with a paired 95%
    bootstrap interval that excludes 0."""
    metric = task.metadata.headline_metric
    d = paired_difference(list(zip(ours, theirs)), aggregation=metric.aggregation)
    lo, hi = (d.ci_low, d.ci_high) if metric.higher_is_better else (-d.ci_high, -d.ci_low)
    assert lo > 0, (f"{task.name}: {what}: headline {metric.name} {d.value_a:.4f} against {d.value_b:.4f}, "
                    f"gain {abs(d.diff):.4f} with interval [{lo:.4f}, {hi:.4f}] (oriented: > 0 is better)")


def answer(p_hat: float, upper: float) -> dict:
    return {"p_hat": np.array(p_hat), "upper": np.array(upper)}


@pytest.fixture(scope="module")
def population():
    rng = np.random.default_rng(0)
    log10_p = rng.uniform(*rare_task.LOG10_P_RANGE, POPULATION)
    budgets = rng.choice(rare_task.BUDGETS, POPULATION)
    return [(10.0 ** lp, int(n)) for lp, n in zip(log10_p, budgets)]


@pytest.fixture(scope="module")
def mc():
    return load_method("rare-mc")


@pytest.fixture(scope="module")
def honest_mc(population, mc):
    rng = np.random.default_rng(1)
    return [headline(BLACK, mc.mc_answer(int(rng.binomial(n, p)), n), p, n) for p, n in population]


def _prior_quantiles(problem):
    lo, hi = rare_task.LOG10_P_RANGE
    return answer(10.0 ** ((lo + hi) / 2), 10.0 ** (lo + 0.95 * (hi - lo)))


def _claimed_zero_hits():
    mc = load_method("rare-mc")
    return lambda problem: mc.mc_answer(0, int(problem["budget"]))


SHORTCUTS = {
    "floor-prior": lambda: load_method("rare-floor-prior").estimate,
    "floor-cp-blind": lambda: load_method("rare-floor-cp-blind").estimate,
    "prior-quantiles": lambda: _prior_quantiles,
    "claimed-zero-hits": _claimed_zero_hits,
}


@pytest.mark.parametrize("shortcut", list(SHORTCUTS))
def test_no_skill_answer_does_not_beat_honest_monte_carlo(shortcut, population, honest_mc):
    estimate = SHORTCUTS[shortcut]()
    theirs = [headline(BLACK, estimate({"budget": n}), p, n) for p, n in population]
    assert_better(BLACK, honest_mc, theirs, f"simulated rare-mc against {shortcut}")


@pytest.mark.parametrize("task", [BLACK, WHITE], ids=lambda t: t.name)
def test_a_better_estimate_scores_better_with_the_same_bound(task, population):
    """The floor's own bound with an estimate within 0.3 decades of p (noise, no bias) must beat the
    floor: if it does not, the headline ignores the estimate and ranks methods by their bounds'
    zero-hit constants."""
    floor = load_method("rare-floor-cp-blind" if task is BLACK else "rare-floor-prior").estimate
    rng = np.random.default_rng(2)
    ours, theirs = [], []
    for p, n in population:
        base = floor({"budget": n})
        upper = float(base["upper"])
        p_hat = min(p * 10.0 ** rng.normal(0.0, 0.3), upper)
        ours.append(headline(task, answer(p_hat, upper), p, n))
        theirs.append(headline(task, base, p, n))
    assert_better(task, ours, theirs, "estimate within 0.3 decades against the floor, same bound")


def test_the_floors_and_baselines_use_the_announced_range(mc):
    for name in ("rare-floor-prior", "rare-floor-cp-blind"):
        assert tuple(load_method(name).LOG10_P_RANGE) == tuple(rare_task.LOG10_P_RANGE), name
    assert tuple(mc.LOG10_P_RANGE) == tuple(rare_task.LOG10_P_RANGE)
    lo, hi = rare_task.LOG10_P_RANGE
    assert f"[{lo:g}, {hi:g}]" in BLACK.metadata.description and f"[{lo:g}, {hi:g}]" in WHITE.metadata.description


# --- the dev split, for real -----------------------------------------------------------------------

def _dev_split():
    try:
        return open_split(BLACK.name, "dev")
    except DataError:
        return None


@pytest.mark.slow  # runs the black-box baselines and floors over the dev split (15 s)
def test_the_best_blackbox_baseline_beats_both_floors_on_dev():
    """rare-ce-is through the real oracle on every black-box dev instance, against both floors: each
    gap must exclude 0 (in-process: the oracle counts and refuses past the budget like the evaluator's)."""
    split = _dev_split()
    if split is None:
        pytest.fail("the rare-behavior dev split is missing: `phasebench data build --task rare-behavior`")
    ce_is = load_method("rare-ce-is")
    floors = {name: load_method(name).estimate for name in ("rare-floor-prior", "rare-floor-cp-blind")}
    ours: list[float] = []
    theirs: dict[str, list[float]] = {name: [] for name in floors}
    for record in split.instances:
        truth = split.load_answer(record.id)
        p, n = scalar(truth["p"]), int(record.public["budget"])
        oracle = CountingOracle(BLACK.oracle(record, truth))
        problem = {**method_problem(record), "oracle": oracle, **split.load_inputs(record.id)}
        ours.append(headline(BLACK, ce_is.estimate(problem), p, n))
        assert oracle.used <= n
        for name, estimate in floors.items():
            theirs[name].append(headline(BLACK, estimate(dict(record.public)), p, n))
    for name, values in theirs.items():
        assert_better(BLACK, ours, values, f"rare-ce-is against {name} on dev ({len(ours)} instances)")
    assert math.isfinite(sum(ours))
