"""Small parsing helpers shared by the leaderboard tests."""
from __future__ import annotations

import re

__all__ = ["page_order", "api_order"]


def page_order(html: str) -> list[str]:
    """Submission names in ranking order, from the task page's rows (HTML-unescaped)."""
    import html as _html
    return [_html.unescape(n) for n in re.findall(r'<tr class="[^"]*" data-submission="([^"]*)"', html)]


def api_order(payload: dict) -> list[str]:
    return [r["submission"] for r in payload["rows"]]
