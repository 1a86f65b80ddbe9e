"""Imported by worker processes (``phasebench worker --task-module``): registers queue-echo there."""
from benchmark.task import TASKS, all_tasks

from .echo_task import ECHO_TASK, EchoTask

if ECHO_TASK not in TASKS:
    list(all_tasks())  # the built-in tasks first, as tests.builders.registered does
    TASKS.register(ECHO_TASK, EchoTask())
