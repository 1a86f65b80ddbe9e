"""The leak probes' figures, per task: what each attacker recovers from a test split drawn with a fresh
secret, next to the same attacker on the split drawn the old way and the no-skill floor.

    python scripts/leak_probe_report.py

Lookups run on the full-size test designs (specs only: no data is built); rare-behavior's lookup is also
scored with the task's own metric (the looked-up target p answered as p_hat and upper) against the
prior constant (u = 1e-3, no oracle call) and plain Monte Carlo's expected pinball at each budget.
"""
from __future__ import annotations

import math
import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

import numpy as np  # noqa: E402

from benchmark.split_secret import SplitSecret, new_secret_text  # noqa: E402
from benchmark.task import all_tasks, get_task  # noqa: E402
from benchmark.tasks.rare_behavior.scorer import pinball_log10  # noqa: E402
from tests.benchmark.leak_attacks import (PublicView, guess_key, guessable_seeds, label_accuracy,  # noqa: E402
                                          lookup_labels, majority_share, old_specs, stream_correlations)
from tests.benchmark.tasks.rare_behavior.test_oracle_extraction import expected_mc_pinball  # noqa: E402
from tests.benchmark.test_leak_probes import LABELS  # noqa: E402


def _view(task, specs):
    ordered = sorted(specs, key=lambda s: s.id)
    return PublicView(task, [s.id for s in ordered], [{} for _ in ordered], {}), ordered


def main() -> None:
    secret = SplitSecret.parse(new_secret_text(), "fresh")
    print("id / position lookup of the hidden label (share recovered; floor = the most common label)")
    print(f"{'task':<24}{'n':>4}{'fresh':>8}{'old':>8}{'floor':>8}")
    for name, label in LABELS.items():
        task = get_task(name)
        view, specs = _view(task, task.instance_specs("test", secret))
        old_view, old = _view(task, old_specs(task))
        truth = [label(s.group, s.params) for s in specs]
        fresh = label_accuracy(lookup_labels(view, label), truth)
        stale = label_accuracy(lookup_labels(old_view, label), [label(s.group, s.params) for s in old])
        print(f"{name:<24}{len(specs):>4}{fresh:>8.2f}{stale:>8.2f}{majority_share(truth):>8.2f}")

    task = get_task("rare-behavior")
    for scheme, specs in (("fresh", task.instance_specs("test", secret)), ("old", old_specs(task))):
        view, ordered = _view(task, specs)
        looked = [g for g in lookup_labels(view, lambda g, p: p["log10_p"])]
        truth = [s.params["log10_p"] for s in ordered]
        attack = np.mean([pinball_log10(10 ** (g + 0.01), 10 ** t) for g, t in zip(looked, truth)])
        floor = np.mean([pinball_log10(1e-3, 10 ** t) for t in truth])
        mc = np.mean([expected_mc_pinball(10 ** t, s.params["budget"]) for t, s in zip(truth, ordered)])
        print(f"rare-behavior, lookup answered as the bound ({scheme}): pinball {attack:.3f}; prior constant "
              f"{floor:.3f}; plain Monte Carlo (expected) {mc:.3f}")

    guesses = guessable_seeds()
    found = {t.name: guess_key(_view(t, t.instance_specs("test", secret))[0], guesses) for t in all_tasks()}
    print(f"secret guessing: {len(guesses)} integers and dates x 6 encodings each; keys found: "
          f"{sum(k is not None for k in found.values())} of {len(found)} tasks")
    fresh_r = stream_correlations({t.name: t.instance_specs("test", secret) for t in all_tasks()})
    old_r = stream_correlations({t.name: old_specs(t) for t in all_tasks()})
    tracks = {"grokking-onset", "grokking-onset-with-test"}
    print("largest |r| between two tasks' instance streams (the grokking tracks share their runs by design): "
          f"fresh {max(r for p, r in fresh_r.items() if set(p) != tracks):.2f}, "
          f"old {max(r for p, r in old_r.items() if set(p) != tracks):.2f}")
    seeds = [s.seed for t in all_tasks() for s in t.instance_specs("test", secret)]
    print(f"instance seeds: smallest bit length {min(x.bit_length() for x in seeds)} (old scheme: 32)")
    print(f"(decade labels: {sorted({math.floor(s.params['log10_p']) for s in task.instance_specs('test', secret)})})")


if __name__ == "__main__":
    main()
