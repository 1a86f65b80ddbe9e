"""Evaluations as jobs on Celery (RabbitMQ by default, Redis by URL), with their states in the
results database. ``phasebench enqueue`` publishes, ``phasebench worker`` runs them, one per slot;
``phasebench jobs`` lists them. Without a broker, ``phasebench evaluate`` runs inline."""
from .app import TASK_NAME, make_app
from .config import DEFAULT_BROKER_URL, QueueConfig, import_task_modules
from .enqueue import EnqueuedJob, enqueue_submission
from .execute import INFRA_ERRORS, JobResult, execute_job
from .worker import WorkerPlan, plan_worker, run_worker

__all__ = ["DEFAULT_BROKER_URL", "EnqueuedJob", "INFRA_ERRORS", "JobResult", "QueueConfig", "TASK_NAME",
           "WorkerPlan", "enqueue_submission", "execute_job", "import_task_modules", "make_app",
           "plan_worker", "run_worker"]
