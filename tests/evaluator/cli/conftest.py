"""The queue's fixtures (real brokers and PostgreSQL) for the queue commands' tests."""
from tests.evaluator.queue.conftest import broker_url, echo_data, echo_task, pg_url  # noqa: F401  (fixtures)
