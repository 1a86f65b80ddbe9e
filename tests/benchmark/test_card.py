"""The dataset card makes the layout a loadable Hugging Face dataset, one config per task."""
import shutil

import yaml

from benchmark.dataset import PACKAGE_DATA
from benchmark.task import all_tasks
from tests.builders import build_tiny_split

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
    shutil.copy(CARD, root / "README.md")
    dev = load_dataset(str(root), "planted-features", split="dev", cache_dir=str(tmp_path / "cache"))
    test = load_dataset(str(root), "planted-features", split="test", cache_dir=str(tmp_path / "cache"))
    assert dev["id"] == ["tiny-0", "tiny-1"] and len(test) == 3
    assert set(dev.column_names) == {"id", "group", "n_features", "n_samples", "dim"}
