"""Rewrites the results: the SQLite file (every instance a perfect score) and PostgreSQL."""
import sqlite3

from hostile import TARGETS, attempt, contained, use


def _sqlite():
    conn = sqlite3.connect(TARGETS["db_file"], timeout=2)
    conn.execute("UPDATE instance_results SET error = 'tampered'")
    conn.commit()
    return "rewrote the SQLite results"


def _postgres(dsn):
    import psycopg

    with psycopg.connect(dsn, connect_timeout=2) as conn:
        conn.execute("CREATE DATABASE phasebench_hostile")
    return "wrote to PostgreSQL"


def run(problem):
    steps = [("sqlite", _sqlite),
             ("pg tcp", lambda: _postgres("host=127.0.0.1 port=5432 user=postgres dbname=postgres")),
             ("pg unix", lambda: _postgres("host=/var/run/postgresql user=postgres dbname=postgres"))]
    for label, step in steps:
        loot = attempt(label, step)
        if loot:
            return use(loot, problem)
    contained()
