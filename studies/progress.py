"""One-line progress displays: a study's trials (done of total, best so far, time left) and a training run's
epoch (steps, loss, images/s, time left)."""
from __future__ import annotations

import sys
import time
from typing import TextIO


class Progress:
    def __init__(self, *, total: int, done: int = 0, stream: TextIO = sys.stderr, score: str | None = None) -> None:
        self.score = score  # a zero-cost study's evaluator: its best is a score, not an accuracy
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
        bar = _bar(self.done / max(1, self.total))
        left = "--"
        if finished > 0:
            left = duration(elapsed / finished * max(0, self.total - self.done))
        best = "best --"
        if self.best is not None:
            value = f"{self.score} {self.best[0]:.4g}" if self.score else f"acc {self.best[0]:.3f}"
            best = f"best {value} @ {self.best[1] / 1e6:.2f}M MACs"
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


def _bar(fraction: float, width: int = 24) -> str:
    filled = int(width * min(1.0, max(0.0, fraction)))
    return "#" * filled + "." * (width - filled)


class EpochProgress:
    """A bar per epoch of a training run. On a terminal it redraws at most every ``interval`` seconds (reading
    the loss from the device only then); elsewhere it writes one line when the epoch ends."""

    def __init__(self, *, epoch: int, epochs: int, images_per_step: int, stream: TextIO = sys.stderr,
                 interval: float = 0.25) -> None:
        self.epoch, self.epochs, self.images_per_step = epoch, epochs, images_per_step
        self.stream, self.interval, self.tty = stream, interval, stream.isatty()
        self.start = self.drawn = time.perf_counter()
        self.loss: float | None = None

    def step(self, done: int, steps: int, loss) -> None:
        now = time.perf_counter()
        if self.tty and (now - self.drawn >= self.interval or done == steps):
            self.drawn, self.loss = now, float(loss)
            self.stream.write("\r\033[K" + self._line(done, steps, now))
            self.stream.flush()

    def _line(self, done: int, steps: int, now: float) -> str:
        elapsed = max(now - self.start, 1e-9)
        speed = done * self.images_per_step / elapsed
        left = duration(elapsed / max(done, 1) * (steps - done))
        loss = f"loss {self.loss:.4f}" if self.loss is not None else "loss --"
        return (f"epoch {self.epoch}/{self.epochs} [{_bar(done / max(1, steps))}] {done}/{steps} steps  {loss}  "
                f"{speed:,.0f} img/s  ~{left} left")

    def close(self, summary: str) -> None:
        """The epoch's last line, with what validation said."""
        elapsed = duration(time.perf_counter() - self.start)
        line = f"epoch {self.epoch}/{self.epochs} done in {elapsed}: {summary}"
        self.stream.write(("\r\033[K" if self.tty else "") + line + "\n")
        self.stream.flush()
