"""The results store: SQLAlchemy models, Alembic migrations and the reads and writes on them."""
from .migrate import SchemaOutOfDate, current_revision, head_revision, require_current, upgrade
from .models import (FINISHED, BoardRowRecord, BoardRowStored, BoardSnapshotRow, Evaluation, EvaluationStatus, InstanceResult, InstanceStatus,
                     Submission)
from .repository import LeaderboardRow, ResultsStore
from .session import database_url, make_engine, redact, session_scope

__all__ = [
    "FINISHED", "BoardRowRecord", "BoardRowStored", "BoardSnapshotRow", "Evaluation", "EvaluationStatus", "InstanceResult", "InstanceStatus",
    "LeaderboardRow", "ResultsStore", "SchemaOutOfDate", "Submission", "current_revision", "database_url",
    "head_revision", "make_engine", "redact", "require_current", "session_scope", "upgrade",
]
