"""Timing ``bench_jobs``: each job and its bare SQL on the same restored data, a ``CHECKPOINT``
before each timing, the median of the rounds; the Python heap peak (tracemalloc) and the growth
of the maximum resident set (getrusage)."""

from __future__ import annotations

import gc
import os
import platform
import resource
import statistics
import time
import tracemalloc
from collections.abc import Callable

from django.db import DatabaseError

from client.tools.bench.common import scalar, sql
from client.tools.bench.jobs_data import JobsBench


def fmt(times: list[float]) -> str:
    return "/".join(f"{t:.3f}" for t in times)


def maxrss_kib() -> int:
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss  # KiB on Linux


def measure(fn: Callable) -> tuple[float, float, float, object]:
    try:  # start each timing with no dirty pages left to flush (less noise); needs superuser
        sql("CHECKPOINT")
    except DatabaseError:
        pass
    gc.collect()
    rss_before = maxrss_kib()
    tracemalloc.start()
    started = time.perf_counter()
    result = fn()
    elapsed = time.perf_counter() - started
    _, peak = tracemalloc.get_traced_memory()
    tracemalloc.stop()
    return elapsed, peak / 2**20, (maxrss_kib() - rss_before) / 1024, result


def compare(b: JobsBench, name: str, job: Callable, bare: Callable, restore: Callable) -> dict:
    bare()  # warm the cache with the same pages
    restore()
    job_times, bare_times, peaks, rss = [], [], [], []
    for _ in range(b.rounds):
        job_s, peak_mib, rss_mib, summary = measure(job)
        restore()
        bare_s, _, _, bare_rows = measure(bare)
        restore()
        job_times.append(job_s)
        bare_times.append(bare_s)
        peaks.append(peak_mib)
        rss.append(rss_mib)
    b.out(f"{name}: {summary}; job {fmt(job_times)} s, bare {fmt(bare_times)} s")
    job_s, bare_s = statistics.median(job_times), statistics.median(bare_times)
    return {
        "job": name,
        "job_s": job_s,
        "bare_s": bare_s,
        "ratio": job_s / bare_s if bare_s else float("nan"),
        "peak_mib": max(peaks),
        "rss_mib": max(rss),
        "bare_rows": bare_rows,
    }


def table(b: JobsBench, rows: list[dict]) -> str:
    lines = [
        "",
        f"median of {b.rounds} round(s), each job and its bare SQL on the same restored data",
        "",
        "| job | job (s) | bare SQL (s) | ratio | Python heap peak (MiB) | max RSS growth (MiB) | rows (bare) |",
        "|---|---:|---:|---:|---:|---:|---:|",
    ]
    for r in rows:
        lines.append(
            f"| {r['job']} | {r['job_s']:.3f} | {r['bare_s']:.3f} | {r['ratio']:.2f} | {r['peak_mib']:.2f} | "
            f"{r['rss_mib']:.1f} | {r['bare_rows']:,} |"
        )
    return "\n".join(lines)


def machine(b: JobsBench) -> str:
    mem_kib = 0
    try:
        with open("/proc/meminfo") as f:
            mem_kib = int(next(line for line in f if line.startswith("MemTotal")).split()[1])
    except (OSError, StopIteration, ValueError):
        pass
    version = scalar("SHOW server_version")
    return (
        f"machine: {os.cpu_count()} CPUs (nproc), {mem_kib / 2**20:.1f} GiB memory, {platform.platform()}, "
        f"PostgreSQL {version}; scale {b.n:,} rows"
    )
