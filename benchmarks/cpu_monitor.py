"""Log how busy the machine is while a benchmark runs, and how much of it is *other* work.

On a 2-core machine a concurrent job (tests, another benchmark) changes timings by far more
than the differences being measured, so a benchmark run should come with this log:

    python benchmarks/cpu_monitor.py --root PID --out cpu.log [--every 2]

Every ``--every`` seconds one line: time, machine busy cores, cores used by processes that are
not ``--root`` or its descendants ("other"), and the busiest other processes. Stops when the
root process exits. Standard library only.
"""

from __future__ import annotations

import argparse
import os
import time

TICK = os.sysconf("SC_CLK_TCK")


def table() -> dict[int, tuple[int, float, str, int]]:
    out = {}
    for entry in os.listdir("/proc"):
        if not entry.isdigit():
            continue
        try:
            with open(f"/proc/{entry}/stat") as f:
                stat = f.read()
            name = stat[stat.index("(") + 1:stat.rindex(")")]
            fields = stat[stat.rindex(")") + 2:].split()
            out[int(entry)] = (int(fields[1]), (int(fields[11]) + int(fields[12])) / TICK, name,
                               int(fields[3]))
        except (OSError, ValueError, IndexError):
            pass
    return out


def busy_s() -> float:
    with open("/proc/stat") as f:
        v = [int(x) for x in f.readline().split()[1:]]
    return (sum(v) - v[3] - (v[4] if len(v) > 4 else 0)) / TICK


def descendants(tab: dict, root: int) -> set[int]:
    own = set()
    for pid in tab:
        p, n = pid, 0
        while p and n < 64:
            if p == root:
                own.add(pid)
                break
            p, n = tab.get(p, (0,))[0], n + 1
    return own


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--root", type=int, required=True)
    ap.add_argument("--out", required=True)
    ap.add_argument("--every", type=float, default=2.0)
    args = ap.parse_args()
    me = os.getpid()
    prev, prev_busy, prev_t = table(), busy_s(), time.monotonic()
    total_other = total_busy = total_t = 0.0
    # Sessions our processes ran in: a Ray worker orphaned at shutdown (re-parented to init)
    # keeps its session, so it still counts as ours.
    sessions = {prev[p][3] for p in descendants(prev, args.root)}
    with open(args.out, "a", buffering=1) as log:
        log.write(f"# cpu_monitor root={args.root} every={args.every}s "
                  "columns: time busy_cores other_cores top_other\n")
        while os.path.exists(f"/proc/{args.root}"):
            time.sleep(args.every)
            cur, b, t = table(), busy_s(), time.monotonic()
            dt = t - prev_t
            own = descendants(cur, args.root) | {me}
            sessions |= {cur[p][3] for p in own if p in cur}
            own |= {p for p, v in cur.items() if v[3] in sessions}
            others = []
            for pid, (_, cpu, name, _) in cur.items():
                if pid in own:
                    continue
                # A process not seen before started during this window: all its CPU is new.
                d = cpu - prev[pid][1] if pid in prev else min(cpu, dt * (os.cpu_count() or 1))
                if d > 0:
                    others.append((d, pid, name))
            other = sum(d for d, _, _ in others)
            others.sort(reverse=True)
            top = " ".join(f"{name}[{pid}]:{d / dt:.2f}" for d, pid, name in others[:3])
            log.write(f"{time.strftime('%H:%M:%S')} {(b - prev_busy) / dt:.2f} {other / dt:.2f} "
                      f"{top}\n")
            total_other, total_busy, total_t = total_other + other, total_busy + b - prev_busy, total_t + dt
            prev, prev_busy, prev_t = cur, b, t
        if total_t:
            log.write(f"# mean over {total_t:.0f} s: busy {total_busy / total_t:.2f} cores, "
                      f"other {total_other / total_t:.2f} cores\n")


if __name__ == "__main__":
    main()
