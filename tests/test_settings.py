"""The PHASEBENCH_* settings: one model (benchmark/settings.py) knows every variable the code reads,
every read goes through it, an invalid value is refused naming its variable, and the README's
table is the one `phasebench settings --markdown` prints."""
from __future__ import annotations

import re
import sys
from pathlib import Path

import pytest
from click.testing import CliRunner

from benchmark.dataset import PACKAGE_DATA, default_data_dir
from benchmark.settings import (INTERNAL, RETIRED, Settings, SettingsError, env_name, get_settings,
                                markdown_table)
from evaluator.cli import main
from evaluator.queue import QueueConfig

REPO = Path(__file__).resolve().parents[1]
PACKAGES = ("benchmark", "evaluator", "leaderboard", "scripts")
SETTINGS_MODULE = "benchmark/settings.py"
README_START, README_END = "<!-- settings:start -->", "<!-- settings:end -->"

# A variable read by name, past the model: os.environ.get("PHASEBENCH_X"), getenv, environ["..."],
# env.get("...") on a copy of the environment, or a click option's envvar=.
_HAND_READ = re.compile(r"""(?:\.get|getenv)\(\s*["']PHASEBENCH_|environ\[\s*["']PHASEBENCH_|envvar\s*=""")


def _sources():
    for package in PACKAGES:
        for path in sorted((REPO / package).rglob("*.py")):
            yield path.relative_to(REPO).as_posix(), path.read_text(encoding="utf-8")


def test_every_variable_the_code_names_is_a_setting_or_listed_as_none():
    settings = {env_name(field) for field in Settings.model_fields}
    named: dict[str, set[str]] = {}
    for rel, text in _sources():
        for name in re.findall(r"PHASEBENCH_[A-Z0-9_]*[A-Z0-9]", text):
            named.setdefault(name, set()).add(rel)
    unknown = {name: sorted(files) for name, files in named.items()
               if name not in settings | INTERNAL.keys() | RETIRED.keys()}
    assert not unknown, f"PHASEBENCH_* names that are no field of benchmark.settings.Settings: {unknown}"
    others = "\n".join(text for rel, text in _sources() if rel != SETTINGS_MODULE)
    unread = [field for field in Settings.model_fields if not re.search(rf"\.{field}\b", others)]
    assert not unread, f"settings that nothing reads: {unread}"


def test_no_module_reads_a_setting_past_the_model():
    hand = [f"{rel}: {m.group(0)}" for rel, text in _sources() if rel != SETTINGS_MODULE
            for m in _HAND_READ.finditer(text)]
    assert not hand, hand


def test_every_setting_has_a_type_a_default_and_a_description():
    for field, info in Settings.model_fields.items():
        assert info.annotation is not None and not info.is_required(), field
        assert info.description and len(info.description) > 20, field


@pytest.mark.parametrize("variable, value, why", [
    ("PHASEBENCH_JOB_MAX_RETRIES", "abc", "valid integer"),
    ("PHASEBENCH_JOB_MAX_ATTEMPTS", "0", "greater than or equal to 1"),
    ("PHASEBENCH_JOB_RETRY_BACKOFF_S", "soon", "valid number"),
    ("PHASEBENCH_JOB_RETRY_BACKOFF_S", "nan", "finite number"),
])
def test_an_invalid_value_is_refused_naming_its_variable(monkeypatch, variable, value, why):
    monkeypatch.setenv(variable, value)
    with pytest.raises(SettingsError, match=f"{variable}='{value}'.*{why}"):
        get_settings()
    out = CliRunner().invoke(main, ["tasks"])
    assert out.exit_code == 1 and variable in out.output and why in out.output, out.output
    with pytest.raises(SettingsError, match=variable):
        QueueConfig.from_env()


def test_an_empty_variable_counts_as_unset(monkeypatch):
    monkeypatch.setenv("PHASEBENCH_DATA", "")
    assert default_data_dir() == PACKAGE_DATA / "phasebench"
    monkeypatch.setenv("PHASEBENCH_DATA", "/elsewhere")
    assert default_data_dir() == Path("/elsewhere")   # read at each call, not when imported


def test_queue_settings_flag_then_variable_then_default(monkeypatch):
    monkeypatch.delenv("PHASEBENCH_JOB_MAX_RETRIES", raising=False)
    assert QueueConfig.from_env().max_infra_retries == QueueConfig.max_infra_retries == 10
    monkeypatch.setenv("PHASEBENCH_JOB_MAX_RETRIES", "3")
    monkeypatch.setenv("PHASEBENCH_QUEUE", "from-env")
    config = QueueConfig.from_env(queue_prefix="from-flag")
    assert (config.max_infra_retries, config.queue_prefix) == (3, "from-flag")


def test_task_modules_come_from_the_flag_else_the_variable(tmp_path, monkeypatch):
    marks = tmp_path / "imported"
    marks.mkdir()
    for name in ("pb_probe_a", "pb_probe_b", "pb_probe_c"):
        (tmp_path / f"{name}.py").write_text(f"import pathlib; pathlib.Path({str(marks)!r}, {name!r}).touch()\n")
    monkeypatch.syspath_prepend(str(tmp_path))

    def imported(env: dict[str, str], *flags: str) -> set[str]:
        for p in marks.iterdir():
            p.unlink()
        for name in ("pb_probe_a", "pb_probe_b", "pb_probe_c"):
            monkeypatch.delitem(sys.modules, name, raising=False)
        # --gpus 0,0 is refused after the eager --task-module import and before any broker is used.
        out = CliRunner().invoke(main, ["worker", "--gpus", "0,0", *flags], env=env)
        assert out.exit_code == 2 and "lists a GPU twice" in out.output, out.output
        return {p.name for p in marks.iterdir()}

    assert imported({"PHASEBENCH_TASK_MODULES": "pb_probe_a, pb_probe_b"}) == {"pb_probe_a", "pb_probe_b"}
    assert imported({"PHASEBENCH_TASK_MODULES": "pb_probe_a"}, "--task-module", "pb_probe_c") == {"pb_probe_c"}


def test_settings_command_shows_values_but_never_the_secret(monkeypatch, tmp_path):
    secret = "5f0c1e7a9b3d2468ace13579bdf02468"
    env = {"PHASEBENCH_TEST_SECRET": secret, "PHASEBENCH_DB": "postgresql+psycopg://me:hunter2@db/pb",
           "PHASEBENCH_DATA": str(tmp_path)}
    out = CliRunner().invoke(main, ["settings"], env=env)
    assert out.exit_code == 0, out.output
    assert secret not in out.output and "hunter2" not in out.output
    assert "PHASEBENCH_TEST_SECRET = (set, hidden)" in out.output
    assert "postgresql+psycopg://me:***@db/pb" in out.output and f"PHASEBENCH_DATA = {tmp_path}" in out.output
    for field, info in Settings.model_fields.items():
        assert env_name(field) in out.output and str(info.description) in out.output
    monkeypatch.setenv("PHASEBENCH_TEST_SECRET", secret)
    assert secret not in repr(get_settings()) and secret not in str(get_settings())


def test_markdown_table_is_the_same_on_every_machine(monkeypatch, tmp_path):
    table = CliRunner().invoke(main, ["settings", "--markdown"]).output
    assert table == markdown_table()
    assert str(REPO) not in table and str(Path.home()) not in table
    monkeypatch.setenv("PHASEBENCH_DATA", str(tmp_path))
    monkeypatch.setenv("HOME", str(tmp_path / "home"))
    assert markdown_table() == table   # defaults only, never this environment's values
    rows = [line for line in table.splitlines() if line.startswith("| `PHASEBENCH_")]
    assert len(rows) == len(Settings.model_fields)


def test_readme_holds_the_generated_table():
    text = (REPO / "README.md").read_text(encoding="utf-8")
    if README_START not in text or README_END not in text:
        pytest.skip(f"README.md has no {README_START} ... {README_END} markers yet: paste "
                    "`phasebench settings --markdown` between them")
    inside = text.split(README_START, 1)[1].split(README_END, 1)[0]
    assert inside.strip() == markdown_table().strip(), (
        "README.md's settings table is out of date: replace it with `phasebench settings --markdown`")
