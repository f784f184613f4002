"""What every benchmark needs: where the docs are, database URLs, free ports, the machine."""

from __future__ import annotations

import os
import platform
import re
import socket
from pathlib import Path
from urllib.parse import quote

from django.conf import settings
from django.core.management.base import CommandError
from django.db import connection

ROOT = Path(settings.BASE_DIR)
DOC = ROOT / "docs" / "benchmarks.md"


def database_url(db: dict, name: str) -> str:
    auth = quote(db.get("USER") or "postgres", safe="")
    if db.get("PASSWORD"):
        auth += ":" + quote(db["PASSWORD"], safe="")
    host = db.get("HOST") or "127.0.0.1"
    port = db.get("PORT") or "5432"
    return f"postgres://{auth}@{host}:{port}/{name}"


def free_port(preferred: int) -> int:
    for port in range(preferred, preferred + 50):
        with socket.socket() as s:
            try:
                s.bind(("127.0.0.1", port))
                return port
            except OSError:
                continue
    raise CommandError(f"no free port from {preferred}")


def redis_up() -> bool:
    try:
        with socket.create_connection(("127.0.0.1", 6379), timeout=0.5):
            return True
    except OSError:
        return False


def sql(statement: str, params=()) -> int:
    with connection.cursor() as cursor:
        cursor.execute(statement, params)
        return cursor.rowcount


def scalar(statement: str, params=()):
    with connection.cursor() as cursor:
        cursor.execute(statement, params)
        return cursor.fetchone()[0]


def loadavg() -> float:
    """The 1-minute load average: other work on the shared machine skews every figure."""
    return os.getloadavg()[0]


def memory_gib() -> float:
    try:
        found = re.search(r"MemTotal:\s+(\d+)", Path("/proc/meminfo").read_text())
    except OSError:
        return 0.0
    return int(found.group(1)) / 2**20 if found else 0.0


def machine() -> str:
    cpu = ""
    try:
        found = re.search(r"model name\s*:\s*(.+)", Path("/proc/cpuinfo").read_text())
    except OSError:
        found = None
    if found:
        cpu = found.group(1).strip()
    return (
        f"{os.cpu_count()} CPUs ({cpu or platform.machine()}), {memory_gib():.1f} GiB memory, "
        f"PostgreSQL {scalar('SHOW server_version')}, Python {platform.python_version()}, "
        f"{platform.system()} {platform.release()}"
    )
