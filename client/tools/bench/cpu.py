"""CPU accounting of a measured window from /proc (Linux): the CPU seconds each group of
processes used (a process tree: gunicorn's master and workers, PostgreSQL's postmaster and
backends, the load generator), everything else from ``/proc/stat`` busy time minus the groups,
and the machine's utilization, busy / (cores x wall).

Django-free: the load generator (``client.tools.loadgen``) imports it and takes the snapshots
at the edges of its own measured window.

A process's ``utime + stime`` (``/proc/<pid>/stat``) covers all its threads; a child that exits
and is reaped moves its whole CPU into its parent's ``cutime + cstime``, so a group's CPU over a
window is: for each member alive at the end, its own and its reaped children's ticks at the end
minus at the start (0 if it started since); for each member gone by the end, minus its ticks at
the start (the parent's ``cutime`` now holds all of them)."""

from __future__ import annotations

import os
import time
from dataclasses import dataclass

CLK_TCK = os.sysconf("SC_CLK_TCK") if hasattr(os, "sysconf") else 100


@dataclass(frozen=True)
class Proc:
    comm: str
    ppid: int
    own: int  # utime + stime, ticks (all threads)
    children: int  # cutime + cstime: reaped children, ticks
    start: int  # starttime, ticks since boot (a pid reused is another process)


def parse_cpu_line(text: str) -> dict[str, int]:
    """The first ``cpu`` line of /proc/stat, in ticks: ``busy`` (user, nice, system, irq,
    softirq; guest time is already inside user and nice), ``idle`` (idle, iowait), ``steal``
    (taken by the hypervisor) and ``total`` (all of them)."""
    for line in text.splitlines():
        fields = line.split()
        if fields and fields[0] == "cpu":
            values = [int(v) for v in fields[1:]] + [0] * 10
            user, nice, system, idle, iowait, irq, softirq, steal = values[:8]
            busy = user + nice + system + irq + softirq
            return {"busy": busy, "idle": idle + iowait, "steal": steal, "total": busy + idle + iowait + steal}
    raise ValueError("no cpu line in /proc/stat")


def parse_pid_stat(text: str) -> Proc:
    """One /proc/<pid>/stat line. The command name is in parentheses and may hold spaces or
    parentheses itself, so the fields are counted from the last ')'."""
    head, _, tail = text.rpartition(")")
    comm = head.split("(", 1)[1]
    fields = tail.split()  # fields[0] is the state (field 3 of proc(5))
    return Proc(
        comm=comm,
        ppid=int(fields[1]),
        own=int(fields[11]) + int(fields[12]),
        children=int(fields[13]) + int(fields[14]),
        start=int(fields[19]),
    )


def snapshot() -> dict:
    """The monotonic time, the machine's CPU line and every process's ticks."""
    t = time.monotonic()
    with open("/proc/stat") as f:
        machine = parse_cpu_line(f.read())
    procs: dict[int, Proc] = {}
    for name in os.listdir("/proc"):
        if not name.isdigit():
            continue
        try:
            with open(f"/proc/{name}/stat") as f:
                procs[int(name)] = parse_pid_stat(f.read())
        except (OSError, IndexError, ValueError):
            continue  # exited meanwhile
    return {"t": t, "machine": machine, "procs": procs}


def postmasters(procs: dict[int, Proc]) -> list[int]:
    """PostgreSQL's root processes: a ``postgres`` whose parent is not one."""
    return [
        pid
        for pid, p in procs.items()
        if p.comm == "postgres" and (p.ppid not in procs or procs[p.ppid].comm != "postgres")
    ]


def _tree(procs: dict[int, Proc], roots: list[int]) -> set[int]:
    members = {pid for pid in roots if pid in procs}
    grew = True
    while grew:
        grew = False
        for pid, p in procs.items():
            if pid not in members and p.ppid in members:
                members.add(pid)
                grew = True
    return members


def group_ticks(before: dict[int, Proc], after: dict[int, Proc], roots: list[int]) -> int:
    """The ticks the process trees under ``roots`` used between the two snapshots."""
    now = _tree(after, roots)
    then = _tree(before, roots)
    ticks = 0
    for pid in now:
        p, old = after[pid], before.get(pid)
        if old is not None and old.start == p.start:
            ticks += (p.own - old.own) + (p.children - old.children)
        else:
            ticks += p.own + p.children
    for pid in then:
        p, new = before[pid], after.get(pid)
        if new is None or new.start != p.start:
            ticks -= p.own + p.children  # reaped: its parent's cutime took all of it
    return max(0, ticks)


def account(
    before: dict, after: dict, groups: dict[str, list[int]], *, cores: int | None = None, known: dict | None = None
) -> dict:
    """CPU seconds per group (``groups``: name -> root pids; ``postgres`` is found when not
    given; ``known``: name -> seconds measured otherwise, e.g. a reaped child's rusage),
    ``other`` (machine busy minus the groups), wall seconds, machine busy and steal seconds, and
    ``utilization`` = busy / (cores x wall)."""
    groups = dict(groups)
    groups.setdefault("postgres", postmasters(after["procs"]) or postmasters(before["procs"]))
    wall = after["t"] - before["t"]
    busy = (after["machine"]["busy"] - before["machine"]["busy"]) / CLK_TCK
    steal = (after["machine"]["steal"] - before["machine"]["steal"]) / CLK_TCK
    cores = cores or os.cpu_count() or 1
    seconds = {name: group_ticks(before["procs"], after["procs"], roots) / CLK_TCK for name, roots in groups.items()}
    seconds.update(known or {})
    seconds["other"] = max(0.0, busy - sum(seconds.values()))
    return {
        "wall_s": wall,
        "cores": cores,
        "busy_s": busy,
        "steal_s": steal,
        "seconds": seconds,
        "utilization": busy / (cores * wall) if wall > 0 else float("nan"),
    }


def per_request_ms(cpu: dict, requests: int) -> dict[str, float]:
    """Each group's CPU per request answered in the window, ms, and ``total``."""
    if not requests:
        return {name: float("nan") for name in [*cpu["seconds"], "total"]}
    out = {name: s * 1000 / requests for name, s in cpu["seconds"].items()}
    out["total"] = cpu["busy_s"] * 1000 / requests
    return out
