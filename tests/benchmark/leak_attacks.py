"""Attackers for the leak probes: each uses only what a method or a reader of the repository has (the
public code, the public index, the public input files and their manifest), never a hidden file.

``old_specs`` rebuilds a split the way splits were drawn before the keyed derivation (configurations
in the public code, ids ``<split>-<index>-<group>`` in index order, instance seeds
``SeedSequence([seed, i])`` cut to 32 bits and shared by every task), so that every probe is shown to
succeed against the weakness it guards: none can pass vacuously.
"""
from __future__ import annotations

import datetime
import hashlib
import re
import tempfile
from collections.abc import Callable, Iterator
from contextlib import ExitStack, contextmanager
from dataclasses import dataclass, replace
from pathlib import Path
from typing import Any

import numpy as np
import pytest

from benchmark.dataset import SplitData, SplitWriter, open_split, write_arrays
from benchmark.split_secret import SplitSecret
from benchmark.task import DEV_SECRET, InstanceSpec, Task
from benchmark.tasks.grokking_onset import design as grok_design
from benchmark.tasks.grokking_onset.generator import (
    config_params,
    run_configs,
    trained_split,
)
from benchmark.tasks.planted_features import task as planted
from benchmark.tasks.rare_behavior import task as rare
from benchmark.tasks.scaling_exponents import task as scaling
from benchmark.tasks.scaling_exponents.generator import make_instance
from tests.benchmark.tasks.grokking_onset.builders import tiny_design

#: The old scheme's secret in these tests: a date, as the old dev seeds were (20240601, 20240717, ...).
OLD_SECRET = 20240105


# --- tiny published distributions, so that test splits build in seconds -------------------------

@contextmanager
def tiny_test_designs() -> Iterator[None]:
    """Every task's test distribution shrunk (same kinds, fewer and smaller instances). Both the
    builds and the attackers run inside it: it is the 'published distribution' of these tests."""
    with ExitStack() as stack:
        mp = stack.enter_context(pytest.MonkeyPatch.context())
        mp.setitem(planted.TIER_COUNTS, "test", {tier: 2 for tier in planted.TIER_COUNTS["test"]})
        mp.setitem(planted.SIZES, "test", {"d": (8, 12, 16), "ratio": (3.0, 5.0), "n_samples": (600, 1200)})
        mp.setitem(scaling.KIND_COUNTS, "test", {("A", "chinchilla"): 3, ("A", "bnsl"): 3, ("A", "m4"): 3,
                                                 ("B", "random_features"): 1, ("B", "variance_limited"): 1,
                                                 ("C", "published"): 1})
        mp.setitem(rare.DESIGNS, "test", rare.SplitDesign(n_f1=3, n_f2_plane=3, f2_box_dims=(3,),
                                                          f3_shapes=((4, 5, 1, 16),)))
        mp.setitem(rare.BLACKBOX_DESIGNS, "test", rare.SplitDesign(n_f1=0, n_f2_plane=0, f2_box_dims=(),
                                                                   f3_shapes=((4, 5, 1, 16), (5, 4, 1, 16),
                                                                              (4, 4, 1, 16))))
        grok = tiny_design(transformers=replace(tiny_design().transformers, lr=(1e-3, 3e-3), wd=(0.01, 0.02),
                                                train_frac=(0.5, 0.7)))
        mp.setitem(grok_design.DESIGNS, "test", grok)
        mp.setitem(grok_design.SCALES["embedded"], "test", grok)
        trained_split.cache_clear()
        try:
            yield
        finally:
            trained_split.cache_clear()


def _tiny_rare(params: dict[str, Any]) -> dict[str, Any]:
    """F1 models of the tiny design: small inputs and few layers, so one generation takes milliseconds."""
    if "rank" in params:
        return {**params, "dim": 16, "hidden_layers": min(params["hidden_layers"], 1), "width": 8}
    return params


def shrink(task: Task, specs: list[InstanceSpec]) -> list[InstanceSpec]:
    if task.name.startswith("rare-behavior"):
        return [replace(s, params=_tiny_rare(s.params)) for s in specs]
    return specs


# --- building splits ------------------------------------------------------------------------------

def build_specs(task: Task, specs: list[InstanceSpec], root: Path, private: Path, group_public: bool) -> SplitData:
    """Write a test split from the given specs (the task's own writer rules: sorted by id)."""
    writer = SplitWriter(root, task.name, "test", private, group_public=group_public)
    for spec in specs:
        try:
            inst = task.generate(spec)
        except ValueError:  # a grokking run that groks inside its prefix is not an instance
            continue
        writer.add(spec.id, spec.group, inst.public_fields, inst.inputs, inst.answer,
                   {"params": spec.params, **inst.answer_info}, hidden=inst.hidden)
    writer.close()
    return open_split(task.name, "test", root, private)


def new_specs(task: Task, secret: SplitSecret) -> list[InstanceSpec]:
    return shrink(task, task.instance_specs("test", secret))


def old_specs(task: Task, seed: int = OLD_SECRET, seed_bits: int = 32) -> list[InstanceSpec]:
    """The split drawn the old way (see the module's docstring); ``seed_bits`` narrows the instance
    seeds further, to show the seed brute force working in a test's time."""
    def old_seed(i: int) -> int:
        return int(np.random.SeedSequence([seed, i]).generate_state(1)[0]) % 2 ** seed_bits

    if task.name.startswith("grokking-onset"):
        return [InstanceSpec(id=f"test-{i:03d}-{c.op}", group=c.op, params=config_params(c), seed=c.seed,
                             split="test", index=i) for i, c in enumerate(run_configs("test", seed))]
    public_list = task.draw_configs("test", _public_config_stream(task))
    return shrink(task, [InstanceSpec(id=f"test-{i:03d}-{group}", group=group, params=params, seed=old_seed(i),
                                      split="test", index=i) for i, (group, params) in enumerate(public_list)])


def _public_config_stream(task: Task) -> np.random.Generator:
    """What the old code's list of test configurations amounts to: draws anyone can repeat."""
    return DEV_SECRET.rng(task.name, "test", "configs")


# --- what the attacker sees -------------------------------------------------------------------------

@dataclass
class PublicView:
    task: Task
    ids: list[str]                      # in the public index's order
    fields: list[dict[str, Any]]        # the public fields (the group only where it is public)
    input_sha256: dict[str, str]        # id -> sha256 of its public inputs file (from the manifest)

    @classmethod
    def of(cls, task: Task, split: SplitData) -> PublicView:
        import json
        manifest = json.loads((split.root / "manifest.json").read_text())["files"]
        fields = [{**r.public, **({"group": r.group} if r.group_public else {})} for r in split.instances]
        return cls(task, [r.id for r in split.instances], fields,
                   {r.id: manifest[f"inputs/{r.id}.safetensors"] for r in split.instances})


def _sha256_of_inputs(inputs: dict[str, np.ndarray]) -> str:
    with tempfile.TemporaryDirectory() as tmp:
        path = Path(tmp) / "x.safetensors"
        write_arrays(path, inputs)
        return hashlib.sha256(path.read_bytes()).hexdigest()


def guessable_seeds() -> list[int]:
    """Integers a careless operator picks: dates (project years first, the way an attacker would
    order them: the old dev seeds were 2024 dates), then small integers."""
    days = [datetime.date(2024, 1, 1) + datetime.timedelta(days=k) for k in range(3 * 366)]
    days += [datetime.date(2023, 12, 31) - datetime.timedelta(days=k) for k in range(9 * 366)]
    return [int(d.strftime("%Y%m%d")) for d in days] + list(range(10_000))


def key_encodings(guess: int) -> list[SplitSecret]:
    """Every way the guess could have been turned into a key."""
    text = str(guess)
    return [SplitSecret(text.encode()), SplitSecret(guess.to_bytes(8, "big")), SplitSecret(guess.to_bytes(16, "big")),
            SplitSecret(guess.to_bytes(32, "big")), SplitSecret(hashlib.sha256(text.encode()).digest()),
            SplitSecret.public_label(text)]


# --- the attacks ------------------------------------------------------------------------------------

def lookup_labels(view: PublicView, label_of: Callable[[str, dict[str, Any]], Any]) -> list[Any]:
    """id or position -> configuration: the attacker reads an index out of each id (else uses the
    position in the index) and looks it up in the configurations the public code draws (the list the
    old code held; the public key's draws). Returns a predicted hidden label per public record."""
    candidates = view.task.draw_configs("test", _public_config_stream(view.task))
    predicted = []
    for position, instance_id in enumerate(view.ids):
        numbers = re.findall(r"(?<![0-9a-f])(\d{1,4})(?![0-9a-f])", instance_id)
        index = int(numbers[0]) if numbers else position
        group, params = candidates[index % len(candidates)]
        predicted.append(label_of(group, params))
    return predicted


def guess_key(view: PublicView, guesses: list[int]) -> SplitSecret | None:
    """Brute force of the split key over guessable integers: a key is right when it derives an id that
    the public index holds (the derivation is public code)."""
    public_ids = set(view.ids)
    for key in [DEV_SECRET] + [k for g in guesses for k in key_encodings(g)]:
        if any(key.token(view.task.name, "test", "id", i) in public_ids for i in range(3)):
            return key
    return None


def regenerate_old(view: PublicView, guesses: list[int]) -> int | None:
    """Regeneration with the old derivation. Grokking draws each run's configuration from the run's
    own seed, so one public value identifies it: the guess whose runs have a public record's (lr, wd,
    train_frac, init_scale). Other tasks: generate the instance at the top of the public index from the
    public configurations and the seed ``SeedSequence([guess, i])`` and compare its bytes with the
    manifest. Returns the guess that regenerates the data, or None."""
    if _is_grok(view.task):
        seen = {(f["lr"], f["wd"], f["train_frac"], f["init_scale"]) for f in view.fields}
        for guess in guesses:
            runs = run_configs("test", guess)
            # most of the guess's runs, not one: a design may fix some values for every run
            if sum((c.lr, c.wd, c.train_frac, c.init_scale) in seen for c in runs) > len(runs) // 2:
                return guess
        return None
    for guess in guesses:
        # the top three records must all regenerate: one black-box instance without input arrays can
        # agree with a wrong guess on its few public fields
        if all(any(_regenerates(view, spec, target) for spec in _first_specs(view.task, guess, target))
               for target in view.ids[:3]):
            return guess
    return None


def _is_grok(task: Task) -> bool:
    return task.name.startswith("grokking-onset")


def _first_specs(task: Task, guess: int, target: str) -> list[InstanceSpec]:
    """The candidate specs for the record at the top of the index: its index read from the id when
    the id has one, else index 0."""
    numbers = re.findall(r"-(\d{3})-", target)
    index = int(numbers[0]) if numbers else 0
    specs = old_specs(task, guess)
    return [specs[index]] if index < len(specs) else []


def _scaling_inputs(spec: InstanceSpec) -> dict[str, np.ndarray]:
    return scaling.public_arrays(make_instance(spec.params, spec.seed))


#: Tasks whose public inputs the attacker can regenerate without the answers' costly parts (the
#: scaling reference fit): a brute force only needs the inputs, and the inputs identify the instance.
INPUTS_ONLY = {"scaling-exponents": _scaling_inputs}


def _regenerates(view: PublicView, spec: InstanceSpec, target: str) -> bool:
    """The regenerated instance has the target's public fields and input bytes (both: a black-box
    instance may have no input arrays at all)."""
    if view.task.name in INPUTS_ONLY:
        return _sha256_of_inputs(INPUTS_ONLY[view.task.name](spec)) == view.input_sha256[target]
    try:
        inst = view.task.generate(spec)
    except (ValueError, RuntimeError):
        return False
    fields = view.fields[view.ids.index(target)]
    same_fields = all(fields.get(k) == v for k, v in inst.public_fields.items())
    return same_fields and _sha256_of_inputs(inst.inputs) == view.input_sha256[target]


def brute_force_instance_seed(view: PublicView, bits: int) -> int | None:
    """Instance-seed brute force over 2^bits candidates for the record at the top of the index, with
    the configuration the public code gives for it. Returns the seed found, or None."""
    target = view.ids[0]
    specs = _first_specs(view.task, OLD_SECRET, target)
    if not specs:
        return None
    for candidate in range(2 ** bits):
        if _regenerates(view, replace(specs[0], seed=candidate), target):
            return candidate
    return None


def stream_correlations(specs_by_task: dict[str, list[InstanceSpec]]) -> dict[tuple[str, str], float]:
    """Cross-task and cross-track correlation: for each pair of tasks built from the same secret, the
    correlation of the first draws of their instance streams at the same drawing index (the attacker
    is given the alignment for free). A shared stream (the 4-significant-figure leak: one task's
    public draws are another's hidden ones) shows as |r| = 1."""
    first = {}
    for name, specs in specs_by_task.items():
        ordered = sorted(specs, key=lambda s: s.index)
        # the first 64 draws of each stream: a thousand pairs or more, so that independent streams stay
        # far below the threshold (|r| ~ 0.03) while a shared one gives exactly 1
        first[name] = np.array([np.random.default_rng(s.seed).random(64) for s in ordered])
    names = sorted(first)
    out = {}
    for i, a in enumerate(names):
        for b in names[i + 1:]:
            n = min(len(first[a]), len(first[b]))
            out[(a, b)] = float(abs(np.corrcoef(first[a][:n].ravel(), first[b][:n].ravel())[0, 1]))
    return out


def label_accuracy(predicted: list[Any], truth: list[Any]) -> float:
    return float(np.mean([p == t for p, t in zip(predicted, truth)]))


def majority_share(truth: list[Any]) -> float:
    """The no-skill floor of a label: always answering the most common one."""
    _, counts = np.unique(np.array([str(t) for t in truth]), return_counts=True)
    return float(counts.max() / counts.sum())
