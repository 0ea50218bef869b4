"""How busy the machine is while a benchmark runs, and how much of it is *other* work.

On a 2-core machine a concurrent job (tests, another benchmark) changes timings by far more
than the differences being measured, so a benchmark run should come with this log:

    python benchmarks/cpu_monitor.py --root PID --out cpu.log [--every 2]

Every ``--every`` seconds one line: time, machine busy cores, cores used by processes that are
not ``--root``, its descendants or in a session one of them ran in ("other"), and the busiest
other processes. Stops when the root process exits. benchmarks/cartpole.py uses ``OtherCpu``
to record the same for each of its measurements. Standard library only, Linux /proc.
"""

from __future__ import annotations

import argparse
import os
import threading
import time
from typing import NamedTuple

TICK = os.sysconf("SC_CLK_TCK")


class Proc(NamedTuple):
    ppid: int
    sid: int
    cpu_s: float  # user + system CPU seconds so far
    name: str


def proc_table() -> dict[int, Proc]:
    """Every process we can read, from /proc/<pid>/stat."""
    out = {}
    for entry in os.listdir("/proc"):
        if not entry.isdigit():
            continue
        try:
            with open(f"/proc/{entry}/stat") as f:
                stat = f.read()
            fields = stat[stat.rindex(")") + 2:].split()  # the name may hold spaces
            out[int(entry)] = Proc(int(fields[1]), int(fields[3]),
                                   (int(fields[11]) + int(fields[12])) / TICK,
                                   stat[stat.index("(") + 1:stat.rindex(")")])
        except (OSError, ValueError, IndexError):
            pass
    return out


def session_pids(sid: int) -> list[int]:
    return [pid for pid, p in proc_table().items() if p.sid == sid]


def busy_s() -> float:
    """Busy CPU seconds of the whole machine (all cores) since boot, from /proc/stat."""
    with open("/proc/stat") as f:
        v = [int(x) for x in f.readline().split()[1:]]
    return (sum(v) - v[3] - (v[4] if len(v) > 4 else 0)) / TICK  # minus idle and iowait


def own_pids(table: dict[int, Proc], roots: set[int], sessions: set[int]) -> set[int]:
    """Processes that are a root, descend from one, or descend from a process in ``sessions``
    (a Ray worker orphaned at shutdown is re-parented to init but keeps its session)."""
    own = set()
    for pid in table:
        p, depth = pid, 0
        while p and depth < 64:
            if p in roots or (p in table and table[p].sid in sessions):
                own.add(pid)
                break
            p, depth = (table[p].ppid if p in table else 0), depth + 1
    return own


class OtherCpu:
    """CPU used by other processes since construction. ``sample()`` returns what each other
    process used since the previous sample; ``start(every)`` samples in a thread, so that
    processes which end before the measurement does are counted too (all but their last
    ``every`` seconds); ``result()`` stops it and sums up. On 2 cores,
    other_processes_cores = 1.0 means one core was taken away."""

    def __init__(self, roots: set[int], sessions: set[int] = frozenset(),
                 learn_sessions: bool = False):
        self.roots, self.sessions = set(roots), set(sessions)
        self.learn_sessions = learn_sessions  # count the sessions our processes run in as ours
        self.seen: dict[int, float] = {}  # pid -> its CPU seconds at the last sample
        self.other_s = 0.0
        self.t0, self.busy0 = time.monotonic(), busy_s()
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None
        self.sample(first=True)

    def sample(self, first: bool = False) -> list[tuple[float, int, str]]:
        table = proc_table()
        own = own_pids(table, self.roots, self.sessions)
        if self.learn_sessions:
            self.sessions |= {table[p].sid for p in own}
        own.add(os.getpid())  # the meter itself (its session is not learnt: it may be a shell's)
        used = []
        for pid, p in table.items():  # own ones too: one that turns "other" counts from now
            before = self.seen.get(pid, p.cpu_s if first else 0.0)  # new: all its CPU is new
            self.seen[pid] = p.cpu_s
            if pid not in own and p.cpu_s > before:
                used.append((p.cpu_s - before, pid, p.name))
        self.other_s += sum(u for u, _, _ in used)
        return used

    def start(self, every: float) -> "OtherCpu":
        def loop() -> None:
            while not self._stop.wait(every):
                self.sample()

        self._thread = threading.Thread(target=loop, daemon=True)
        self._thread.start()
        return self

    def result(self) -> dict:
        if self._thread is not None:
            self._stop.set()
            self._thread.join()
        self.sample()
        dt, busy = time.monotonic() - self.t0, busy_s() - self.busy0
        return {"seconds": round(dt, 2), "machine_busy_cores": round(busy / dt, 2),
                "other_processes_cores": round(self.other_s / dt, 2)}


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--root", type=int, required=True)
    ap.add_argument("--out", required=True)
    ap.add_argument("--every", type=float, default=2.0)
    args = ap.parse_args()
    meter = OtherCpu({args.root}, learn_sessions=True)
    prev_t, prev_busy = meter.t0, meter.busy0
    with open(args.out, "a", buffering=1) as log:
        log.write(f"# cpu_monitor root={args.root} every={args.every}s "
                  "columns: time busy_cores other_cores top_other\n")
        while os.path.exists(f"/proc/{args.root}"):
            time.sleep(args.every)
            used = sorted(meter.sample(), reverse=True)
            t, b = time.monotonic(), busy_s()
            dt = t - prev_t
            top = " ".join(f"{name}[{pid}]:{u / dt:.2f}" for u, pid, name in used[:3])
            log.write(f"{time.strftime('%H:%M:%S')} {(b - prev_busy) / dt:.2f} "
                      f"{sum(u for u, _, _ in used) / dt:.2f} {top}\n")
            prev_t, prev_busy = t, b
        total_t = prev_t - meter.t0
        if total_t:
            busy = (prev_busy - meter.busy0) / total_t
            log.write(f"# mean over {total_t:.0f} s: busy {busy:.2f} cores, "
                      f"other {meter.other_s / total_t:.2f} cores\n")


if __name__ == "__main__":
    main()
