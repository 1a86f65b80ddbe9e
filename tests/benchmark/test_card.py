"""The dataset card makes the layout a loadable Hugging Face dataset, one config per task, and is
generated from the tasks' metadata: the committed card is exactly what the generator writes."""
import pytest
import yaml

from benchmark.card import dataset_card, task_notes_path, task_section
from benchmark.dataset import PACKAGE_DATA
from benchmark.metadata import Metric
from benchmark.task import all_tasks, get_task
from tests.builders import build_tiny_split, fake_task, registered

CARD = PACKAGE_DATA / "phasebench" / "README.md"


def _front_matter() -> dict:
    text = CARD.read_text()
    assert text.startswith("---\n")
    return yaml.safe_load(text.split("---\n")[1])


def test_card_has_a_config_per_task_with_both_splits():
    configs = {c["config_name"]: c for c in _front_matter()["configs"]}
    assert set(configs) == {t.name for t in all_tasks()}
    for name, cfg in configs.items():
        splits = {f["split"]: f["path"] for f in cfg["data_files"]}
        assert splits == {s: f"{name}/{s}/instances.jsonl" for s in ("dev", "test")}
        assert f"## {name} (version" in CARD.read_text(), f"the card documents {name}"


def test_datasets_loads_the_layout_offline(tmp_path, monkeypatch):
    monkeypatch.setenv("HF_HUB_OFFLINE", "1")
    from datasets import load_dataset

    root = tmp_path / "repo"
    build_tiny_split(root, n_instances=2)
    build_tiny_split(root, split="test", answers_root=tmp_path / "private", n_instances=3)
    # The card of the one task built here: `datasets` resolves the first config's files as the default.
    (root / "README.md").write_text(str(dataset_card([get_task("planted-features")])), encoding="utf-8")
    dev = load_dataset(str(root), "planted-features", split="dev", cache_dir=str(tmp_path / "cache"))
    test = load_dataset(str(root), "planted-features", split="test", cache_dir=str(tmp_path / "cache"))
    assert dev["id"] == ["tiny-0", "tiny-1"] and len(test) == 3
    assert set(dev.column_names) == {"id", "group", "n_features", "n_samples", "dim"}


def test_the_committed_card_is_the_generated_one():
    # A failure here means metadata or notes changed without the card: run `phasebench data card`.
    assert CARD.read_text(encoding="utf-8") == str(dataset_card())


def _flipped(metric: Metric) -> Metric:
    return metric.model_copy(update={"higher_is_better": not metric.higher_is_better})


@pytest.mark.parametrize("name", [t.name for t in all_tasks()])
def test_a_changed_metric_direction_changes_the_card(name, monkeypatch):
    task = get_task(name)
    before = task_section(task)
    meta = task.metadata
    monkeypatch.setattr(task, "metadata", meta.model_copy(update={"metrics": [_flipped(m) for m in meta.metrics]}))
    after = task_section(task)
    assert after != before and str(dataset_card()) != CARD.read_text(encoding="utf-8")
    headline = next(line for line in after.splitlines() if line.startswith(f"| `{meta.headline}` (headline)"))
    assert ("↑" in headline) == (not meta.headline_metric.higher_is_better)


def test_a_section_says_what_the_metadata_says():
    meta = get_task("rare-behavior").metadata
    section = task_section(get_task("rare-behavior"))
    assert section.startswith(f"## rare-behavior (version {meta.version})\n")
    for field, spec in meta.input_schema.items():
        assert f"| `{field}` |" in section and (spec.public_because or "").replace("|", "\\|") in section
    assert meta.dataset.revision in section and (meta.dataset.train_revision or "unpinned") in section
    assert "| `is_loss` | ↓ lower is better | median |" in section
    assert f"{meta.limits.wall_time_s:g} s wall time" in section


def test_a_task_without_notes_gets_its_metadata_section(tmp_path):
    task = fake_task("card-toy", metrics=[Metric(name="hits", description="share | of hits", higher_is_better=True,
                                                 best=1.0, worst=0.0)])
    assert not task_notes_path(task).exists()
    with registered(task):
        card = str(dataset_card())
    assert "## card-toy (version 1)" in card and "| `hits` (headline) | ↑ higher is better | mean |" in card
    assert "share \\| of hits" in card  # a pipe in a description does not break the table
    front = yaml.safe_load(card.split("---\n")[1])
    assert "card-toy" in {c["config_name"] for c in front["configs"]}
