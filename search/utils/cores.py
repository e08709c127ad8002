"""How many torch threads a trial or a run should train with: what the machine can give now, and what the
network needs.

Torch's default (one intra-op thread per core) makes every one of a training step's ~1,000 small operations
wait for all its threads; when another process holds a core, each operation waits for a thread that is not
running, and a step takes 2-3x longer than with one thread (a B0 step at 32 px, batch 32, beside one busy
process on 2 cores: 1 thread 0.19-0.21 s, 2 threads 0.43-0.57 s; idle: 0.25 s and 0.19 s). So:

- **the free cores**: the cores this process may run on (its affinity) less what other processes kept busy
  (from /proc/stat, this process's own CPU time taken out) since the last look -- over the previous trial,
  or over a short first sample;
- **the network's need**: a network under ``SMALL_MACS`` multiply-adds per sample gains nothing from a second
  thread even on an idle machine (measured on 2 cores at batch 32: 0.34 M MACs 21-26 ms with 1 thread, 20-22 ms
  with 2; 1.6 M MACs 52 ms and 35-39 ms), so it takes one.

``--threads-per-worker`` (or ``--cpus-per-trial`` on Ray, or ``$OMP_NUM_THREADS`` for ``effnas train``) is a
ceiling the user sets; none of this is used where the user fixed the threads.
"""
from __future__ import annotations

import math
import os
import time
from dataclasses import dataclass, field

SMALL_MACS = 1_000_000  # per sample: below this, one thread (see above)
FIRST_SAMPLE_SECONDS = 0.25
ROUND_UP = 0.5  # free cores rounded to the nearest: noise (steal, kernel work) under half a core is no competitor,
# and a process sharing our cores shows as most of one (3 runnable threads on 2 cores: 0.67 each)
_BUSY_FIELDS = (0, 1, 2, 5, 6, 7)  # user, nice, system, irq, softirq, steal (of /proc/stat's cpu line)


def _affinity() -> set[int]:
    try:
        return set(os.sched_getaffinity(0))
    except (AttributeError, OSError):
        return set(range(os.cpu_count() or 1))


def usable_cores() -> int:
    """The cores this process may run on (its affinity), at most ``$OMP_NUM_THREADS`` where that is set."""
    count = max(1, len(_affinity()))
    ceiling = os.environ.get("OMP_NUM_THREADS", "")
    return min(count, int(ceiling)) if ceiling.isdigit() and int(ceiling) > 0 else count


def _busy_and_total(cpus: set[int]) -> tuple[float, float] | None:
    """Seconds the CPUs ``cpus`` were busy, and in all, since boot, from their /proc/stat lines (None where there
    is no /proc/stat)."""
    try:
        with open("/proc/stat") as handle:
            lines = [line.split() for line in handle if line.startswith("cpu") and line[3:4].isdigit()]
    except OSError:
        return None
    busy = total = 0
    for fields in lines:
        if int(fields[0][3:]) not in cpus:
            continue
        values = [int(v) for v in fields[1:9]]
        busy += sum(values[i] for i in _BUSY_FIELDS if i < len(values))
        total += sum(values)
    if not total:
        return None
    ticks = os.sysconf("SC_CLK_TCK") if hasattr(os, "sysconf") else 100
    return busy / ticks, total / ticks


@dataclass
class CoreMeter:
    """The cores of this process's affinity that other processes left free, measured between calls of
    :meth:`free` (so a neighbour pinned to other CPUs is no competitor, and one on ours is)."""

    cores: int = field(default_factory=usable_cores)
    cpus: set[int] = field(default_factory=_affinity)
    _last: tuple[float, float, float] | None = None  # (busy, total, own CPU seconds) at the last look

    def _now(self) -> tuple[float, float, float] | None:
        sample = _busy_and_total(self.cpus)
        if sample is None:
            return None
        return (*sample, time.process_time())

    def free(self) -> float:
        """Cores free of other processes since the last call (the first call samples for a moment)."""
        if self._last is None:
            self._last = self._now()
            if self._last is None:
                return float(self.cores)
            time.sleep(FIRST_SAMPLE_SECONDS)
        now = self._now()
        if now is None or self._last is None:
            return float(self.cores)
        busy, total, own = (a - b for a, b in zip(now, self._last))
        self._last = now
        if total <= 0:
            return float(self.cores)
        cpus = len(self.cpus)
        others = max(0.0, busy - own) / total * cpus  # cores' worth that other processes kept busy on our CPUs
        return max(0.0, min(float(self.cores), cpus - others))


def threads_for(macs: float, *, free: float, limit: int | None = None) -> int:
    """Threads for a network of ``macs`` multiply-adds per sample with ``free`` cores free (at most ``limit``):
    one for a small network, else the free cores rounded to the nearest, at least one."""
    if macs < SMALL_MACS:
        return 1
    threads = max(1, math.floor(free + ROUND_UP))
    return min(threads, limit) if limit else threads


def policy_note(*, free: float, cores: int, limit: int) -> str:
    """The policy in a header line."""
    most = f", at most {limit} per worker" if limit < cores else ""
    return (f"threads chosen per network: the free cores (now {free:.1f} of {cores}{most}), 1 under "
            f"{SMALL_MACS / 1e6:g} M MACs per sample; --threads-per-worker N fixes them")
