"""PhaseBench tasks: generators, data layout, scorers and their metadata."""
from .answers import AnswerError
from .dataset import DataError, InstanceRecord, SplitData, open_split, verify_split
from .metadata import AnswerField, DatasetRef, FieldSpec, Metric, ResourceLimits, TaskMetadata
from .oracle import Oracle
from .registry import DuplicateNameError, Registry, UnknownNameError
from .task import TASKS, Task, all_tasks, get_task, register_task

__version__ = "0.1.0"

__all__ = [
    "AnswerError", "AnswerField", "DataError", "DatasetRef", "DuplicateNameError", "FieldSpec", "InstanceRecord",
    "Metric", "Oracle", "Registry", "ResourceLimits", "SplitData", "TASKS", "Task", "TaskMetadata",
    "UnknownNameError", "all_tasks", "get_task", "open_split", "register_task", "verify_split",
]
