"""PhaseBench leaderboard website: server-rendered pages and a JSON API over the results store."""
from .app import create_app

__all__ = ["create_app"]
