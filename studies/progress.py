"""A one-line progress display: trials done of total, best so far, time left."""
from __future__ import annotations

import sys
import time
from typing import TextIO


class Progress:
    def __init__(self, *, total: int, done: int = 0, stream: TextIO = sys.stderr) -> None:
        self.total, self.start_done, self.done = total, done, done
        self.stream = stream
        self.start = time.perf_counter()
        self.failed = 0
        self.stopped = 0
        self.best: tuple[float, float] | None = None  # (accuracy, macs)
        self.tty = stream.isatty()

    def update(self, *, done: int, failed: int, best: tuple[float, float] | None, stopped: int = 0) -> None:
        self.done, self.failed, self.best, self.stopped = done, failed, best, stopped
        self._draw()

    def _draw(self) -> None:
        elapsed = time.perf_counter() - self.start
        finished = self.done - self.start_done
        width = 24
        filled = int(width * self.done / max(1, self.total))
        bar = "#" * filled + "." * (width - filled)
        left = "--"
        if finished > 0:
            left = duration(elapsed / finished * max(0, self.total - self.done))
        best = "best --"
        if self.best is not None:
            best = f"best acc {self.best[0]:.3f} @ {self.best[1] / 1e6:.2f}M MACs"
        failed = (f"  stopped early {self.stopped}" if self.stopped else "") + (
            f"  failed {self.failed}" if self.failed else "")
        line = f"[{bar}] {self.done}/{self.total} trials  {best}{failed}  {duration(elapsed)} elapsed, ~{left} left"
        if self.tty:
            self.stream.write("\r\033[K" + line)
        else:
            self.stream.write(line + "\n")
        self.stream.flush()

    def close(self) -> None:
        if self.tty:
            self.stream.write("\n")
            self.stream.flush()


def duration(seconds: float) -> str:
    seconds = int(round(seconds))
    return f"{seconds // 60}m{seconds % 60:02d}s" if seconds >= 60 else f"{seconds}s"
