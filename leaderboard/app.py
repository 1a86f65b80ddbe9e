"""Application factory for the leaderboard website."""
from __future__ import annotations

from datetime import UTC, datetime
from typing import Any

from flask import Flask, jsonify, render_template, request
from flask.json.provider import DefaultJSONProvider
from sqlalchemy.exc import OperationalError, ProgrammingError
from werkzeug.exceptions import HTTPException

from evaluator.results.summary import clean_number
from evaluator.store import SchemaOutOfDate

from . import db
from .api_models import ErrorBody

__all__ = ["create_app", "fmt_ci", "fmt_dt", "fmt_num", "fmt_runtime"]

DASH = "—"


def fmt_num(value: Any, digits: int = 3) -> str:
    """A number with ``digits`` decimals; "—" for None, NaN, inf or anything non-numeric."""
    f = clean_number(value)
    return DASH if f is None else f"{f:.{digits}f}"


def fmt_ci(low: Any, high: Any, digits: int = 3) -> str:
    lo, hi = fmt_num(low, digits), fmt_num(high, digits)
    return "" if lo == DASH and hi == DASH else f"[{lo}, {hi}]"


def fmt_dt(value: datetime | None) -> str:
    if value is None:
        return DASH
    if value.tzinfo is not None:
        value = value.astimezone(UTC)
    return value.strftime("%Y-%m-%d %H:%M UTC")


def fmt_runtime(seconds: Any) -> str:
    text = fmt_num(seconds, 1)
    if text == DASH:
        return DASH
    s = float(seconds)
    if s >= 3600:
        return f"{s / 3600:.1f} h"
    if s >= 60:
        return f"{s / 60:.1f} min"
    return f"{s:.1f} s"


def sort_value(value: Any) -> str:
    """A machine-readable number for table.js's data-v attributes ("" when missing)."""
    f = clean_number(value)
    return "" if f is None else repr(f)


def create_app(config: dict[str, Any] | None = None) -> Flask:
    """Build the website. ``config`` keys: ``DATABASE_URL`` (default: $PHASEBENCH_DB or the local
    SQLite file, see :func:`evaluator.store.database_url`), ``TESTING``, and any Flask setting."""
    app = Flask(__name__, static_folder="static", template_folder="templates")
    app.config.update(DATABASE_URL=None, TESTING=False, JSON_SORT_KEYS=False)
    app.config.update(config or {})
    if isinstance(app.json, DefaultJSONProvider):
        app.json.sort_keys = False
    db.init_app(app)

    app.jinja_env.filters.update(num=fmt_num, ci=fmt_ci, dt=fmt_dt, runtime=fmt_runtime, sv=sort_value)
    app.jinja_env.trim_blocks = True
    app.jinja_env.lstrip_blocks = True

    from .views.api import bp as api_bp
    from .views.pages import bp as pages_bp
    app.register_blueprint(pages_bp)
    app.register_blueprint(api_bp, url_prefix="/api/v1", name="api_v1")
    app.register_blueprint(api_bp, url_prefix="/api")   # the original unversioned routes, as aliases
    from .views.jobs import api_bp as jobs_api_bp
    from .views.jobs import bp as jobs_bp
    app.register_blueprint(jobs_bp)
    app.register_blueprint(jobs_api_bp, url_prefix="/api/v1", name="jobs_api_v1")

    @app.before_request
    def _schema() -> None:
        if request.endpoint != "static":
            db.ensure_schema()

    def _wants_json() -> bool:
        return request.path == "/api" or request.path.startswith("/api/")

    def _error(code: int, title: str, message: str):
        if _wants_json():
            return jsonify(ErrorBody(error=title, message=message, status=code).model_dump(mode="json")), code
        return render_template("error.html", code=code, title=title, message=message), code

    @app.errorhandler(HTTPException)
    def _http_error(e: HTTPException):
        return _error(e.code or 500, e.name, e.description or e.name)

    @app.errorhandler(SchemaOutOfDate)
    def _schema_error(e: SchemaOutOfDate):
        return _error(503, "Results database not ready", str(e))

    @app.errorhandler(OperationalError)
    @app.errorhandler(ProgrammingError)
    def _db_error(e: Exception):
        app.logger.exception("database error")
        return _error(503, "Results database unavailable",
                      "the results database could not be read; try again later")

    return app
