"""The split draw (benchmark/task.py): train, dev and test come from three keys and share nothing.

A method fitted on train and validated on dev (or ranked on test) must never have seen an instance of
the split it is scored on: no id, no seed, no identical public input. The public inputs are compared
through the committed manifests of train and dev (the sha256 of every inputs file) and a few test
instances generated from a fresh secret.
"""
from __future__ import annotations

import json
from itertools import combinations

import pytest

from benchmark.dataset import PACKAGE_DATA, SplitWriter, sha256_file
from benchmark.split_secret import SplitSecret, new_secret_text
from benchmark.task import DEV_SECRET, TRAIN_SECRET, all_tasks, get_task

EMBEDDED = PACKAGE_DATA / "phasebench"
FRESH = SplitSecret.parse(new_secret_text(), "a fresh test secret")
TRAIN_TASKS = [t for t in all_tasks() if "train" in t.splits]
#: Per task, the groups whose instances are cheap enough to generate in a unit test (seconds), and how
#: many test instances to generate and compare.
CHEAP_GROUPS = {"planted-features": {"T1", "T3"}, "scaling-exponents": {"A"}, "rare-behavior": {"F3"},
                "rare-behavior-whitebox": {"F1"}}
N_TEST_GENERATED = 2


def _cheapest(task, specs, k: int):
    """The k specs of the cheap groups that take least to generate (rare-behavior's truth enumerates every
    sequence, vocab^length of them; planted-features' toy models are trained)."""
    cheap = [s for s in specs if s.group in CHEAP_GROUPS[task.name] and s.params.get("structure") != "toy_model"]
    return sorted(cheap, key=lambda s: (s.params.get("vocab", 1) ** s.params.get("length", 1),
                                        s.params.get("n_samples", 0), s.id))[:k]


def _manifest(task: str, split: str) -> dict[str, str]:
    return json.loads((EMBEDDED / task / split / "manifest.json").read_text())["files"]


def _input_hashes(task: str, split: str) -> dict[str, str]:
    """sha256 of each public inputs file of a committed split -> instance id."""
    return {digest: rel.split("/")[1].removesuffix(".safetensors")
            for rel, digest in _manifest(task, split).items() if rel.startswith("inputs/")}


def test_the_tasks_with_a_train_split():
    """Every task but grokking-onset (whose train split comes with its GPU-built splits) draws train."""
    assert {t.name for t in TRAIN_TASKS} == {"planted-features", "scaling-exponents", "rare-behavior",
                                             "rare-behavior-whitebox"}


def test_the_train_key_is_public_and_its_own():
    assert TRAIN_SECRET.public and DEV_SECRET.public
    assert TRAIN_SECRET.key != DEV_SECRET.key


@pytest.mark.parametrize("task", TRAIN_TASKS, ids=lambda t: t.name)
def test_train_dev_and_test_share_no_id_and_no_seed(task):
    specs = {"train": task.instance_specs("train"), "dev": task.instance_specs("dev"),
             "test": task.instance_specs("test", FRESH)}
    assert specs["train"], f"{task.name}: an empty train split"
    for a, b in combinations(specs, 2):
        assert {s.id for s in specs[a]}.isdisjoint(s.id for s in specs[b]), f"{task.name}: {a} and {b} share an id"
        assert {s.seed for s in specs[a]}.isdisjoint(s.seed for s in specs[b]), \
            f"{task.name}: {a} and {b} share a seed"
    assert all(s.split == "train" for s in specs["train"])
    # the same call twice draws the same split: it is public, and anyone can rebuild it
    assert [(s.id, s.seed, s.params) for s in task.instance_specs("train")] == \
        [(s.id, s.seed, s.params) for s in specs["train"]]


@pytest.mark.parametrize("task", TRAIN_TASKS, ids=lambda t: t.name)
def test_the_committed_train_split_is_the_pinned_draw(task):
    """The committed train index lists exactly the drawn ids, and its manifest is the metadata's pin."""
    folder = EMBEDDED / task.name / "train"
    assert "sha256:" + sha256_file(folder / "manifest.json") == task.metadata.dataset.train_revision
    index = [json.loads(line)["id"] for line in (folder / "instances.jsonl").read_text().splitlines()]
    assert index == [s.id for s in task.instance_specs("train")]


@pytest.mark.parametrize("task", [pytest.param(t, marks=[pytest.mark.slow] if t.name == "rare-behavior" else [])
                                  for t in TRAIN_TASKS], ids=lambda t: t.name)
def test_train_dev_and_test_share_no_public_input(task, tmp_path):
    train, dev = _input_hashes(task.name, "train"), _input_hashes(task.name, "dev")
    assert len(train) == len(task.instance_specs("train")) and len(dev) == len(task.instance_specs("dev"))
    assert not set(train) & set(dev), f"{task.name}: train and dev share the inputs of {sorted(set(train) & set(dev))}"
    # Test instances, generated from a fresh secret (a few of the cheap groups; the draws are independent).
    # rare-behavior's smallest test model holds 8^8 sequences to enumerate: one instance is enough there
    specs = _cheapest(task, task.instance_specs("test", FRESH), 1 if task.name == "rare-behavior" else N_TEST_GENERATED)
    assert specs, f"{task.name}: no cheap test instance to generate"
    writer = SplitWriter(tmp_path, task.name, "test", tmp_path / "private", group_public=task.metadata.group_public)
    for spec in specs:
        inst = task.generate(spec)
        writer.add(spec.id, spec.group, inst.public_fields, inst.inputs, inst.answer, {}, hidden=inst.hidden)
        digest = sha256_file(tmp_path / task.name / "test" / "inputs" / f"{spec.id}.safetensors")
        assert digest not in train, f"{task.name}: test instance {spec.id} has the inputs of train {train.get(digest)}"
        assert digest not in dev, f"{task.name}: test instance {spec.id} has the inputs of dev {dev.get(digest)}"


def test_the_published_scaling_instance_is_not_in_train():
    """Family C is the published Chinchilla data: the one instance whose inputs do not depend on the
    seed, the same in dev and test by design (unranked there). Train leaves it out, so that fitting on
    train never means fitting on an instance of the scored splits."""
    task = get_task("scaling-exponents")
    assert {s.group for s in task.instance_specs("train")} == {"A", "B"}
    assert "C" in task.metadata.unranked_groups


def test_a_task_without_a_train_split_says_so():
    grok = get_task("grokking-onset")
    assert "train" not in grok.splits
    with pytest.raises(ValueError, match="grokking-onset: no train split; it has dev, test"):
        grok.secret_for("train")


@pytest.mark.parametrize("task", TRAIN_TASKS, ids=lambda t: t.name)
def test_a_rebuilt_train_instance_matches_the_committed_manifest(task, tmp_path):
    """The code still draws the pinned bytes: one cheap train instance rebuilt as ``Task.build`` writes it
    (a whole rebuild is `phasebench data build --split train --force`, minutes)."""
    manifest = _manifest(task.name, "train")
    [spec] = _cheapest(task, task.instance_specs("train"), 1)
    inst = task.generate(spec)
    writer = SplitWriter(tmp_path, task.name, "train", tmp_path, group_public=task.metadata.group_public)
    writer.add(spec.id, spec.group, inst.public_fields, inst.inputs, inst.answer,
               {"params": spec.params, **inst.answer_info}, hidden=inst.hidden)
    for kind in ("inputs", "answers"):
        rel = f"{kind}/{spec.id}.safetensors"
        assert sha256_file(tmp_path / task.name / "train" / rel) == manifest[rel], f"{task.name}/train: {rel}"


def test_a_split_built_by_several_workers_is_the_pinned_one(tmp_path):
    """Task.build(workers=2) generates instances in spawned processes and writes them in order: the
    files, and so the revision, are the one-process build's (the dev pin)."""
    task = get_task("scaling-exponents")
    bar_steps = []

    def progress(specs):
        for spec in specs:
            bar_steps.append(spec.id)
            yield spec

    revision = task.build("dev", None, tmp_path / "data", tmp_path / "data", progress, workers=2)
    assert revision == task.metadata.dataset.pin("dev")
    assert bar_steps == [s.id for s in task.instance_specs("dev")]
    with pytest.raises(ValueError, match="workers must be at least 1"):
        task.build("dev", None, tmp_path / "again", tmp_path / "again", workers=0)
