"""One progress callback type for every long loop, and the one way the CLI shows it.

A library function that runs long takes ``progress: Progress | None`` and calls
``progress(done, total, stage=..., **info)`` as it goes: ``done`` units finished so far (not
an increment), ``total`` units in all (None when unknown), ``stage`` names the loop ("patches",
"epoch 3/10"; a new stage starts a new bar or line), and ``info`` adds figures to the line
(``unit="img"`` names the rate's unit, ``text=`` is shown as it is, any other key as
``key value``). ``None`` means silent; :func:`silent` is the do-nothing callback.

:class:`Meter` shows the calls on a stream: a redrawn bar on a terminal, and off a terminal
(a log file, ``nohup``, a pipe) one line every :data:`INTERVAL_S` seconds or every 10 %,
with count/total, rate and ETA. ``A2_PROGRESS_INTERVAL`` (seconds) overrides the interval.
"""

from __future__ import annotations

import os
import sys
import time
from typing import Iterable, Iterator, Optional, Protocol

# Off a terminal: a line at least this often (seconds), and at every tenth of the total.
INTERVAL_S = 5.0
LINE_STEPS = 10                 # a line at every tenth of the total
INTERVAL_ENV = "A2_PROGRESS_INTERVAL"
# On a terminal: redraw the bar at most this often (seconds).
REDRAW_S = 0.1
BAR_WIDTH = 30


class Progress(Protocol):
    """``progress(done, total, *, stage="", **info)``: see the module docstring."""

    def __call__(self, done: int, total: Optional[int], *, stage: str = "", **info) -> None: ...


def silent(done: int, total: Optional[int], *, stage: str = "", **info) -> None:
    """The progress callback that shows nothing."""


def or_silent(progress: Optional[Progress]) -> Progress:
    """``progress``, or :func:`silent` when it is None."""
    return silent if progress is None else progress


class Counter:
    """For loops that count in increments: ``tick = Counter(progress, total, "encoding")``,
    then ``tick(n)`` after each chunk of ``n`` units calls ``progress(done, total, stage=...)``
    (k-means' chunk callbacks, ``progress(n_images_done)``, take a Counter)."""

    def __init__(self, progress: Optional[Progress], total: Optional[int], stage: str = "", *,
                 done: int = 0, **info):
        self.progress, self.total, self.stage, self.done, self.info = or_silent(progress), total, stage, done, info
        self.progress(self.done, self.total, stage=self.stage, **self.info)

    def __call__(self, n: int = 1, **info) -> None:
        self.done += n
        self.progress(self.done, self.total, stage=self.stage, **{**self.info, **info})


def track(iterable: Iterable, progress: Optional[Progress], total: Optional[int] = None, stage: str = "",
          **info) -> Iterator:
    """Yield the items of ``iterable``, reporting one unit done after each."""
    if total is None and hasattr(iterable, "__len__"):
        total = len(iterable)
    tick = Counter(progress, total, stage, **info)
    for item in iterable:
        yield item
        tick(1)


def interval_from_env(default: float = INTERVAL_S) -> float:
    """Seconds between lines off a terminal: ``$A2_PROGRESS_INTERVAL`` when set, else ``default``."""
    value = os.environ.get(INTERVAL_ENV)
    if value is None or value.strip() == "":
        return default
    try:
        seconds = float(value)
    except ValueError:
        return default
    return max(seconds, 0.0)


def _clock(seconds: float) -> str:
    seconds = int(round(seconds))
    h, rest = divmod(seconds, 3600)
    m, s = divmod(rest, 60)
    return f"{h}:{m:02d}:{s:02d}" if h else f"{m}:{s:02d}"


def _rate(rate: float) -> str:
    return f"{rate:.0f}" if rate >= 100 else f"{rate:.1f}" if rate >= 1 else f"{rate:.2g}"


def _bytes(n: float) -> str:
    """``n`` bytes as a short decimal size: 950 B, 27.9 kB, 24.9 MB, 2.8 GB."""
    for unit, scale in (("GB", 1e9), ("MB", 1e6), ("kB", 1e3)):
        if n >= scale:
            return f"{n / scale:.3g} {unit}"
    return f"{n:.0f} B"


def _number(value) -> str:
    if isinstance(value, float):
        return f"{value:.4g}"
    return str(value)


class Meter:
    """A :class:`Progress` that writes to ``stream`` (default stderr).

    On a terminal (``stream.isatty()``, or ``tty=True``) a bar redrawn in place; elsewhere a
    line when ``interval`` seconds have passed since the last one (default
    :func:`interval_from_env`), at each further tenth of the total, and at the end;
    ``quiet`` shows nothing. ``close()`` (or leaving a ``with`` block) ends an open bar line.
    """

    def __init__(self, stream=None, *, quiet: bool = False, interval: Optional[float] = None,
                 tty: Optional[bool] = None, clock=time.monotonic):
        self.stream = stream if stream is not None else sys.stderr
        self.quiet = quiet
        self.interval = interval_from_env() if interval is None else interval
        if tty is None:
            isatty = getattr(self.stream, "isatty", None)
            tty = bool(isatty()) if isatty is not None else False
        self.tty = tty
        self.clock = clock
        self._stage = None
        self._open = False      # a bar line is drawn and not yet ended (terminal)
        # per stage: [start time, done at start, last done, last shown time, last tenth shown];
        # a stage that comes back (the report's, between sections) keeps its rate
        self._stages = {}

    def __enter__(self):
        return self

    def __exit__(self, *exc):
        self.close()
        return False

    def close(self) -> None:
        if self._open:
            self.stream.write("\n")
            self.stream.flush()
            self._open = False
        self._stage = None

    def __call__(self, done: int, total: Optional[int], *, stage: str = "", **info) -> None:
        if self.quiet:
            return
        now = self.clock()
        if stage != self._stage:
            self.close()
            self._stage = stage
        state = self._stages.get(stage)
        if state is None or done < state[2]:        # a new stage, or the same name counting again
            state = self._stages[stage] = [now, done, done, None, -1]
        state[2] = done
        finished = total is not None and done >= total
        step = done * LINE_STEPS // total if total else 0
        if self.tty:
            if not finished and state[3] is not None and now - state[3] < REDRAW_S:
                return
            self.stream.write("\r" + self._line(state, done, total, now, info, bar=True) + "\x1b[K")
            self._open = True
            if finished:
                self.stream.write("\n")
                self._open = False
        else:
            due = state[3] is None or now - state[3] >= self.interval or step > state[4] or finished
            if not due:
                return
            self.stream.write(self._line(state, done, total, now, info, bar=False) + "\n")
        self.stream.flush()
        state[3], state[4] = now, step

    def _line(self, state, done, total, now, info, *, bar: bool) -> str:
        parts = [f"{self._stage}:" if self._stage else ""]
        if bar and total:
            filled = int(BAR_WIDTH * min(done / total, 1.0))
            parts.append("[" + "#" * filled + "-" * (BAR_WIDTH - filled) + "]")
        unit = info.get("unit")
        count = _bytes if unit == "B" else str  # bytes read as sizes, everything else as counts
        if total:
            parts.append(f"{count(done)}/{count(total)} ({100.0 * done / total:.0f}%)")
        else:
            parts.append(count(done))
        elapsed = now - state[0]
        if elapsed > 0 and done > state[1]:
            rate = (done - state[1]) / elapsed
            if unit == "B":
                parts.append(f"{_bytes(rate)}/s")
            else:
                parts.append(f"{_rate(rate)} {unit}/s" if unit else f"{_rate(rate)}/s")
            if total and done < total:
                parts.append(f"ETA {_clock((total - done) / rate)}")
            elif total:
                parts.append(f"in {_clock(elapsed)}")
        for key, value in info.items():
            if key == "unit":
                continue
            parts.append(str(value) if key == "text" else f"{key} {_number(value)}")
        return " ".join(p for p in parts if p)
