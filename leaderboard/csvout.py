"""CSV downloads of the site's tables."""
from __future__ import annotations

import csv
import io
import math
from collections.abc import Iterable, Sequence
from typing import Any

from flask import Response, request
from werkzeug.exceptions import BadRequest

from .openapi import Param

__all__ = ["FORMAT_PARAM", "cell", "csv_response", "wants_csv"]

_FORMULA = ("=", "+", "-", "@", "\t", "\r")


def wants_csv() -> bool:
    """``?format=csv`` (or ``json``, the default); anything else is a 400."""
    fmt = request.args.get("format", "json")
    if fmt not in ("json", "csv"):
        raise BadRequest(f"unknown format {fmt!r}; expected json or csv")
    return fmt == "csv"


FORMAT_PARAM = Param("format", {"type": "string", "enum": ["json", "csv"], "default": "json"},
                     "json (default) or csv: the table as a CSV download")


def cell(value: Any) -> Any:
    """A CSV cell: None/NaN/inf empty, and text that a spreadsheet would run as a formula
    (submission names are untrusted) prefixed with a quote."""
    if value is None:
        return ""
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, float):
        return repr(value) if math.isfinite(value) else ""
    if isinstance(value, int):
        return value
    text = str(value)
    return "'" + text if text.startswith(_FORMULA) else text


def csv_response(filename: str, header: Sequence[str], rows: Iterable[Sequence[Any]]) -> Response:
    buf = io.StringIO()
    w = csv.writer(buf, lineterminator="\n")
    w.writerow(header)
    for r in rows:
        w.writerow([cell(v) for v in r])
    safe = "".join(c if c.isalnum() or c in "-_." else "_" for c in filename)
    return Response(buf.getvalue(), mimetype="text/csv",
                    headers={"Content-Disposition": f'attachment; filename="{safe}"'})
