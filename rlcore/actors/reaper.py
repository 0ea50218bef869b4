"""The reaper of a local Ray: a small process that ends every process of the driver's local Ray
once the driver is gone, however it went (a SIGKILL or the OOM killer included).

Ray ties its gcs_server, raylet, monitor, dashboard head and log monitor to the driver
(PR_SET_PDEATHSIG), but not what the raylet starts: measured with Ray 2.60, a SIGKILL of the
driver left ``ray::DashboardAgent`` and ``ray::RuntimeEnvAgent`` alive, orphaned to PID 1,
still there 20 s later (the rollout workers went by themselves). ``ray_setup.init_ray`` starts
this script for a local Ray it starts itself, never for a cluster it joins:

    python -I -S reaper.py DRIVER_PID        (stdin: a pipe whose write end the driver holds)

It runs on the standard library alone (it imports no rlcore, Ray or torch) and reads /proc, so
it is Linux only. The driver writes ``root PID`` lines once ``ray.init`` has returned: the
processes Ray started (``all_processes`` of Ray's node). Until then, every process the driver
starts after the reaper counts as Ray's. Every ``POLL_S`` the reaper records the roots and
their descendants with their start times, so a PID the kernel gives to another process later is
never signalled. It reaps, then exits, when:

- the driver is gone: its end of the pipe closes (the driver exited or was killed), or its PID
  no longer names the driver (a forked child of the driver may keep the pipe open);
- every root is gone: the driver shut Ray down (``ray.shutdown()``, at exit or in a test) and
  any straggler of that Ray is ended.

To reap: SIGTERM to every recorded process whose start time still matches and to their current
descendants, SIGKILL ``TERM_S`` later to those still there.
"""

from __future__ import annotations

import os
import select
import signal
import sys
import time

POLL_S = 0.5
TERM_S = 1.0  # from SIGTERM to SIGKILL
KILL_S = 2.0  # waiting for the SIGKILLed to go


def proc_stat(pid: int) -> tuple[str, int, int] | None:
    """(state, parent PID, start time in clock ticks since boot) of a process, or None."""
    try:
        with open(f"/proc/{pid}/stat", "rb") as f:
            text = f.read().decode("ascii", "replace")
    except OSError:
        return None
    fields = text[text.rindex(")") + 2:].split()  # the name, in parentheses, may hold spaces
    return fields[0], int(fields[1]), int(fields[19])


def process_table() -> dict[int, tuple[str, int, int]]:
    table = {}
    for name in os.listdir("/proc"):
        if name.isdigit():
            stat = proc_stat(int(name))
            if stat is not None:
                table[int(name)] = stat
    return table


def descendants(roots, table) -> set[int]:
    """The PIDs below ``roots`` in ``table``'s process tree (the roots excluded)."""
    children: dict[int, list[int]] = {}
    for pid, (_, ppid, _) in table.items():
        children.setdefault(ppid, []).append(pid)
    found: set[int] = set()
    todo = list(roots)
    while todo:
        for child in children.get(todo.pop(), ()):
            if child not in found:
                found.add(child)
                todo.append(child)
    return found


def alive(pid: int, start: int, table=None) -> bool:
    """Whether ``pid`` is still the process that started at ``start`` (a zombie is gone)."""
    stat = table.get(pid) if table is not None else proc_stat(pid)
    return stat is not None and stat[2] == start and stat[0] not in ("Z", "X")


class Reaper:
    def __init__(self, driver: int, me: int | None = None):
        self.driver, self.me = driver, me if me is not None else os.getpid()
        stat = proc_stat(driver)
        self.driver_start = stat[2] if stat else None
        table = process_table()
        # the driver's processes from before Ray started are not Ray's
        self.before = {(pid, table[pid][2]) for pid in descendants([driver], table)
                       if pid in table}
        self.roots: dict[int, int] = {}  # PID -> start time
        self.seen: dict[int, int] = {}  # every process of that Ray recorded: PID -> start time

    def driver_alive(self) -> bool:
        return self.driver_start is not None and alive(self.driver, self.driver_start)

    def add_root(self, pid: int) -> None:
        stat = proc_stat(pid)
        if stat is not None and stat[0] not in ("Z", "X"):
            self.roots[pid] = self.seen[pid] = stat[2]

    def record(self) -> dict:
        """Record the current processes of the Ray; returns the process table it read."""
        table = process_table()
        if self.roots:
            pids = descendants([p for p, s in self.roots.items() if alive(p, s, table)], table)
        else:
            pids = {pid for pid in descendants([self.driver], table)
                    if (pid, table[pid][2]) not in self.before}
        for pid in pids | set(self.seen):
            if pid == self.me or pid not in table:
                continue
            if pid in self.seen and self.seen[pid] != table[pid][2]:
                del self.seen[pid]  # gone, and the PID given to another process
            elif table[pid][0] not in ("Z", "X"):
                self.seen[pid] = table[pid][2]
        for pid in [p for p, start in self.seen.items() if not alive(p, start, table)]:
            del self.seen[pid]
        return table

    def roots_gone(self) -> bool:
        return bool(self.roots) and not any(alive(p, s) for p, s in self.roots.items())

    def targets(self) -> dict[int, int]:
        """The recorded processes still there, and their current descendants."""
        table = process_table()
        found = {p: s for p, s in self.seen.items() if alive(p, s, table)}
        for pid in descendants(found, table):
            if pid != self.me and table[pid][0] not in ("Z", "X"):
                found[pid] = table[pid][2]
        return found

    def reap(self, term_s: float = TERM_S, kill_s: float = KILL_S) -> None:
        for sig, wait_s in ((signal.SIGTERM, term_s), (signal.SIGKILL, kill_s)):
            targets = self.targets()
            if not targets:
                return
            for pid, start in targets.items():
                if alive(pid, start):
                    try:
                        os.kill(pid, sig)
                    except OSError:
                        pass
            deadline = time.monotonic() + wait_s
            while time.monotonic() < deadline and any(alive(p, s) for p, s in targets.items()):
                time.sleep(0.05)


def main(argv: list[str]) -> int:
    signal.signal(signal.SIGINT, signal.SIG_IGN)  # a Ctrl-C is for the driver
    reaper = Reaper(int(argv[0]))
    if not reaper.driver_alive():
        return 0
    buffer = b""
    while True:
        readable, _, _ = select.select([0], [], [], POLL_S)
        if readable:
            chunk = os.read(0, 4096)
            if not chunk:  # every write end is closed: the driver is gone
                break
            buffer += chunk
            *lines, buffer = buffer.split(b"\n")
            for line in lines:
                words = line.split()
                if len(words) == 2 and words[0] == b"root" and words[1].isdigit():
                    reaper.add_root(int(words[1]))
        if not reaper.driver_alive() or reaper.roots_gone():
            break
        reaper.record()
    reaper.reap()
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
