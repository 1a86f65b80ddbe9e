"""docker/compose.yaml and the app image as data: the services the stack needs, commands that exist,
environment variables the CLI actually reads."""
import json
import re

import pytest
import yaml

from tests.builders import REPO
from tests.docker.test_workflows import _resolve

COMPOSE = yaml.safe_load((REPO / "docker" / "compose.yaml").read_text())




def test_the_stack_has_its_services():
    services = COMPOSE["services"]
    assert set(services) == {"postgres", "rabbitmq", "migrate", "leaderboard", "worker"}
    for name in ("migrate", "leaderboard", "worker"):
        build = services[name]["build"]
        assert (REPO / "docker" / build["context"] / build["dockerfile"]).resolve() == \
            REPO / "docker" / "leaderboard.Dockerfile"
    assert services["leaderboard"]["depends_on"]["migrate"]["condition"] == "service_completed_successfully"
    assert services["worker"]["depends_on"]["rabbitmq"]["condition"] == "service_healthy"


def test_commands_and_environment_are_the_clis(monkeypatch):
    from evaluator.queue import QueueConfig
    from evaluator.store.session import database_url
    services = COMPOSE["services"]
    worker, worker_path, worker_opts = _resolve(services["worker"]["command"][1:])
    assert worker_path == "worker" and set(worker_opts) <= {o for p in worker.params for o in p.opts}
    migrate, migrate_path, _ = _resolve(services["migrate"]["command"][1:])
    assert migrate_path == "db upgrade"
    env = services["worker"]["environment"]
    assert {"PHASEBENCH_DB", "PHASEBENCH_BROKER"} <= set(env)
    assert env["PHASEBENCH_DB"].startswith("postgresql+psycopg://") and "@postgres:5432/" in env["PHASEBENCH_DB"]
    assert env["PHASEBENCH_BROKER"].startswith("amqp://") and "@rabbitmq:5672/" in env["PHASEBENCH_BROKER"]
    # The containers set only variables the settings read: the worker's and the migration's flags are
    # left out, so what they connect to is what the compose file's environment says.
    for name, value in env.items():
        monkeypatch.setenv(name, value)
    config = QueueConfig.from_env(broker_url=None, db_url=None, queue_prefix=None)
    assert (config.database, config.broker_url) == (env["PHASEBENCH_DB"], env["PHASEBENCH_BROKER"])
    for name, value in services["migrate"]["environment"].items():
        monkeypatch.setenv(name, value)
    assert "--db" not in services["migrate"]["command"]
    assert database_url(None) == services["migrate"]["environment"]["PHASEBENCH_DB"]
    # The broker user exists: RabbitMQ's guest may not connect from another container.
    user = services["rabbitmq"]["environment"]["RABBITMQ_DEFAULT_USER"]
    assert f"amqp://{user}:" in env["PHASEBENCH_BROKER"]


def test_the_app_image_serves_the_leaderboard_factory_under_gunicorn():
    text = (REPO / "docker" / "leaderboard.Dockerfile").read_text()
    cmd = json.loads(re.search(r"^CMD (\[.*\])$", text, re.M).group(1))
    assert cmd[0] == "gunicorn" and cmd[-1] == "leaderboard:create_app()"
    import leaderboard
    app = leaderboard.create_app({"TESTING": True, "DATABASE_URL": "sqlite://"})
    assert app.name == "leaderboard.app"


def test_only_the_workers_image_installs_torch():
    services = COMPOSE["services"]
    # the website and the migration share one image, built without torch (the Dockerfile's default)
    assert services["leaderboard"]["image"] == services["migrate"]["image"] != services["worker"]["image"]
    assert "args" not in services["leaderboard"]["build"] and "args" not in services["migrate"]["build"]
    assert services["worker"]["build"]["args"] == {"WITH_TORCH": "1"}
    text = (REPO / "docker" / "leaderboard.Dockerfile").read_text()
    assert re.search(r"^ARG WITH_TORCH=0$", text, re.M)
    # a COPY of docker/wheels/ would leave the torch wheel in a layer of the website's image
    assert not re.search(r"^COPY docker/wheels", text, re.M)
    assert re.search(r"pip install .*--no-deps -e \.", text)


@pytest.mark.parametrize("dockerfile", ["leaderboard.Dockerfile", "evaluator.Dockerfile"])
def test_no_image_keeps_the_torch_wheel_in_a_layer(dockerfile):
    # A COPY layer keeps the 200 MB+ wheel in the image even after a later `rm`; a bind mount for
    # the one RUN that installs it leaves nothing behind.
    text = (REPO / "docker" / dockerfile).read_text()
    assert not re.search(r"^(COPY|ADD)\b.*docker/wheels", text, re.M)
    assert "--mount=type=bind,source=docker/wheels,target=/tmp/wheels" in text
