"""Every PHASEBENCH_* setting, in one model: its type, default and meaning.

The model is here, not in the evaluator, because the benchmark package reads some of them (the data
folders and the test-split secret) and must not import the evaluator. ``get_settings()`` reads the
environment at each call, so a changed variable (a test's ``monkeypatch.setenv``, CliRunner's
``env=``) is seen at once; an empty variable counts as unset, as click treats one. A command-line
flag, where a command has one, wins over the variable. `phasebench settings` lists them all, and
``--markdown`` prints the README's table.
"""
from __future__ import annotations

import os
from pathlib import Path
from typing import Annotated, Any
from urllib.parse import urlsplit, urlunsplit

from pydantic import Field, SecretStr, ValidationError, field_validator
from pydantic_settings import BaseSettings, NoDecode, SettingsConfigDict

__all__ = ["ENV_PREFIX", "INTERNAL", "PACKAGE_DATA", "RETIRED", "Settings", "SettingsError", "default_of",
           "env_name", "get_settings", "markdown_table", "retired_in_environment", "shown_default",
           "shown_value"]

ENV_PREFIX = "PHASEBENCH_"
PACKAGE_DATA = Path(__file__).resolve().parent / "data"
_REPO = PACKAGE_DATA.parents[1]

#: Variables that were settings once and are refused now, with what to do instead. Refused only by
#: the code that would have read them (a stale one must not stop unrelated commands).
RETIRED = {
    "PHASEBENCH_TEST_SEED": "an integer seed can be guessed. Make a key with `phasebench data secret new` "
                            "(or set PHASEBENCH_TEST_SECRET to one)",
}
#: PHASEBENCH_* variables that the code reads but nobody sets: a process passes them to its children.
INTERNAL = {
    "PHASEBENCH_WORKER_GPUS": "`phasebench worker` to its pool processes: the GPU of each slot",
    "PHASEBENCH_WORKER_NAME": "`phasebench worker` to its pool processes: the name each slot reports",
}


class SettingsError(ValueError):
    """A PHASEBENCH_* variable holds a value its setting cannot take; the message names the variable."""


class Settings(BaseSettings):
    """Each field is a variable: its name in capitals after PHASEBENCH_ (``queue``: PHASEBENCH_QUEUE)."""
    model_config = SettingsConfigDict(env_prefix=ENV_PREFIX, extra="forbid", env_ignore_empty=True,
                                      validate_default=True, frozen=True)

    # --- data --------------------------------------------------------------------------------
    data: Path = Field(default=PACKAGE_DATA / "phasebench", description=(
        "Dataset folder that commands read and `phasebench data build/pull` write (a `--data-dir` flag wins); "
        "the default is the copy embedded in the package."))
    private_dir: Path = Field(default=PACKAGE_DATA / "private", description=(
        "Folder of the test split's answers, never published (a `--private-dir` flag wins)."))
    test_secret: SecretStr | None = Field(default=None, description=(
        "The test split's key as hex, at least 128 bits, for CI secrets; when set, the secret file is not "
        "read. Make one with `phasebench data secret new --print`. Never printed."))
    test_secret_file: Path = Field(default=Path("var/test-secret"), description=(
        "File holding the test split's key (mode 0600; relative to the working directory), read when "
        "PHASEBENCH_TEST_SECRET is unset."))
    cache: Path = Field(default_factory=lambda: Path.home() / ".cache" / "phasebench", description=(
        "Where datasets fetched from the Hub (`--data-repo org/name@commit`) are kept, one folder per "
        "pinned commit."))
    task_modules: Annotated[tuple[str, ...], NoDecode] = Field(default=(), description=(
        "Modules to import before a command runs, each registering extra tasks (comma- or space-separated; "
        "`--task-module` flags win)."))

    # --- results and the job queue ---------------------------------------------------------------
    db: str = Field(default="sqlite:///var/phasebench.sqlite", description=(
        "Results database URL (SQLAlchemy), shared by the evaluator, the job queue and the website "
        "(a `--db` flag wins)."))
    broker: str = Field(default="amqp://guest:guest@127.0.0.1:5672//", description=(
        "Job queue's Celery broker URL: amqp://... (RabbitMQ) or redis://... (a `--broker` flag wins)."))
    queue: str = Field(default="phasebench", min_length=1, description=(
        "Job queue name prefix: jobs go to `<prefix>.cpu` or `<prefix>.cuda` (a `--queue` flag wins)."))
    job_max_retries: int = Field(default=10, ge=0, description=(
        "Retries of one queued job after an infrastructure failure (sandbox, database), with backoff."))
    job_max_attempts: int = Field(default=20, ge=1, description=(
        "Attempts after which a queued job whose workers keep dying is given up."))
    job_retry_backoff_s: float = Field(default=1.0, ge=0, allow_inf_nan=False, description=(
        "First retry delay of a queued job, in seconds; doubled at each retry, at most 60 s."))

    # --- the website -----------------------------------------------------------------------------
    leaderboard_cache: bool = Field(default=True, description=(
        "Whether the website keeps derived data (ranked boards, rank intervals, rendered pages) in process "
        "memory between requests; off, every request reads the stored board snapshots and results again "
        "(for measuring, or several short-lived workers)."))

    # --- the docker sandbox ----------------------------------------------------------------------
    image: str = Field(default="localhost/phasebench-evaluator:latest", min_length=1, description=(
        "Evaluator image the docker sandbox runs methods in (`make evaluator-image` builds it)."))
    docker_host: str | None = Field(default=None, description=(
        "Docker Engine API URL for the docker sandbox, e.g. unix:///run/podman.sock; unset: $DOCKER_HOST, "
        "else the default socket."))
    gpu: str = Field(default="0", min_length=1, description=(
        "Device id of the GPU the docker sandbox gives a `--device cuda` container."))

    @field_validator("task_modules", mode="before")
    @classmethod
    def _split_modules(cls, value: Any) -> Any:
        return tuple(value.replace(",", " ").split()) if isinstance(value, str) else value


def env_name(field: str) -> str:
    return ENV_PREFIX + field.upper()


def default_of(field: str) -> Any:
    """A setting's default, for code that needs it without reading the environment."""
    return Settings.model_fields[field].get_default(call_default_factory=True)


def get_settings() -> Settings:
    """The settings as the environment has them now; SettingsError names each invalid variable."""
    try:
        return Settings()
    except ValidationError as exc:
        raise SettingsError("; ".join(_describe(error) for error in exc.errors())) from None


def _describe(error: Any) -> str:
    field = str(error["loc"][0]) if error["loc"] else ""
    if field not in Settings.model_fields:
        return error["msg"]
    secret = Settings.model_fields[field].annotation in (SecretStr, SecretStr | None)
    value = "(hidden)" if secret else repr(error.get("input"))
    return f"{env_name(field)}={value}: {error['msg']}"


def retired_in_environment() -> list[str]:
    """The retired variables that are set (non-empty) now."""
    return [name for name in RETIRED if os.environ.get(name)]


# --- how they are shown ------------------------------------------------------------------------
def _shown(value: Any) -> str:
    if value is None:
        return "(unset)"
    if isinstance(value, SecretStr):
        return "(set, hidden)" if value.get_secret_value() else "(unset)"
    if isinstance(value, tuple):
        return ",".join(value) if value else "(none)"
    return str(value)


def shown_value(settings: Settings, field: str) -> str:
    """A setting's current value, fit to print: secrets hidden, URL passwords masked."""
    value = getattr(settings, field)
    if isinstance(value, str) and "://" in value:
        parts = urlsplit(value)
        if parts.password:
            netloc = parts.netloc.replace(f":{parts.password}@", ":***@", 1)
            value = urlunsplit(parts._replace(netloc=netloc))
    return _shown(value)


def shown_default(field: str) -> str:
    """A setting's default as the README gives it: paths in the repository relative to it, and the
    home folder as ~, so that the table is the same on every machine."""
    value = default_of(field)
    if isinstance(value, Path) and value.is_absolute():
        for base, prefix in ((_REPO, ""), (Path.home(), "~/")):
            if value.is_relative_to(base):
                return prefix + value.relative_to(base).as_posix()
    return _shown(value)


def markdown_table() -> str:
    """The README's table of settings, one row per variable."""
    rows = ["| Variable | Default | Description |", "| --- | --- | --- |"]
    for field, info in Settings.model_fields.items():
        description = (info.description or "").replace("|", "\\|")
        default = shown_default(field)
        rows.append(f"| `{env_name(field)}` | {default if default.startswith('(') else f'`{default}`'} | "
                    f"{description} |")
    return "\n".join(rows) + "\n"
