"""vl-convert in a process of its own: the alerts' email charts drawn on another core while the run goes on.

The alerts draw a trajectory PNG per email (flows/alerts/delivery.py, `_Charts`). vl-convert holds the GIL while
its JavaScript engine starts (0.5-1 s of a process's first chart), so drawn on a thread of the run's process it
held up the rules, the composing and the storing for that long; in a process of its own it does not. The flow
starts it after the build (`start_early`) and has it draw the email recipients' own scope charts from the built
marts while they are checked and published (`draw_early`); the alerts take one of those only for the very spec
they compute from the published marts (`ChartProcess.drawn_ahead_for`).
"""

from __future__ import annotations

import json
import queue
import struct
import subprocess
import sys
import threading
from concurrent.futures import Future
from pathlib import Path

from flows import charts

# The drawing process's program: vl-convert and flows/png.py (found where this package is; numpy loaded before
# the first request). One request a line (JSON) on stdin; each answer on stdout is b"C" (the PNG compacted, as
# asked), b"P" (as vl-convert wrote it: not asked, or flows.png could not be imported there) or b"E", a 4-byte
# length and the PNG (or the error's text).
_WORKER_PROGRAM = r"""
import json, struct, sys
import vl_convert
sys.path.append(sys.argv[1])
try:
    import numpy
    from flows.png import compact_png
except ImportError:
    compact_png = None
out = sys.stdout.buffer
for line in sys.stdin.buffer:
    request = json.loads(line)
    compact = request.pop("compact") and compact_png is not None
    try:
        body = vl_convert.vegalite_to_png(allowed_base_urls=[], **request)
        body, kind = (compact_png(body), b"C") if compact else (body, b"P")
    except Exception as error:
        body, kind = f"{type(error).__name__}: {error}".encode("utf-8", "replace"), b"E"
    out.write(kind + struct.pack(">I", len(body)) + body)
    out.flush()
"""
# where the package `flows` is, for the drawing process (started isolated: `python -I`)
_PACKAGES_ROOT = str(Path(charts.__file__).resolve().parents[1])


class ChartProcess:
    """One drawing process. The same spec gives the same bytes as `charts.render_png` (the spec reaches
    vl-convert through JSON, which keeps every key, its order and every number).

    `draw` queues a chart and returns its Future at once: one thread writes the requests, another reads the
    answers in the same order. The process compacts each PNG too (`flows.png.compact_png`, ~40 ms a chart that
    the run's process does not spend; here only if that process could not import it). A Future fails where the
    process cannot draw (it failed to start, died, or vl-convert refused the spec): the caller then draws in its
    own process."""

    def __init__(self) -> None:
        self.process = subprocess.Popen(
            [sys.executable, "-I", "-c", _WORKER_PROGRAM, _PACKAGES_ROOT],
            stdin=subprocess.PIPE,
            stdout=subprocess.PIPE,
            stderr=subprocess.DEVNULL,
        )
        self._closed = False
        # (level, code, language) -> (the spec's JSON, its PNG's Future): drawn before the alerts asked (`ahead`)
        self.drawn_ahead: dict[tuple[str, str, str], tuple[str, Future]] = {}
        self._requests: queue.SimpleQueue = queue.SimpleQueue()
        self._waiting: queue.SimpleQueue = queue.SimpleQueue()
        self._threads = [
            threading.Thread(target=self._write, name="jkn-charts-write", daemon=True),
            threading.Thread(target=self._read, name="jkn-charts-read", daemon=True),
        ]
        for thread in self._threads:
            thread.start()

    def _write(self) -> None:
        try:
            for line in iter(self._requests.get, None):
                self.process.stdin.write(line)
                self.process.stdin.flush()
        except (OSError, ValueError):  # the process ended: the reader fails what waits
            pass

    def _read(self) -> None:
        for future, compact in iter(self._waiting.get, None):
            try:
                head = self.process.stdout.read(5)
                if len(head) < 5:
                    raise OSError("the chart process ended")
                body = self.process.stdout.read(struct.unpack(">I", head[1:])[0])
                if head[:1] == b"E":
                    raise RuntimeError(body.decode("utf-8", "replace"))
                future.set_result(charts.compact_png(body) if compact and head[:1] == b"P" else body)
            except Exception as error:  # noqa: BLE001 - the chart's, raised where it is waited for
                future.set_exception(error)

    def _request(self, spec: dict, locale: str, scale: float, compact: bool) -> Future:
        request = {
            "vl_spec": spec,
            "scale": scale,
            "format_locale": charts.FORMAT_LOCALES.get(locale, charts.FORMAT_LOCALES["id"]),
            "time_format_locale": charts.TIME_FORMAT_LOCALES.get(locale, charts.TIME_FORMAT_LOCALES["id"]),
            "compact": compact,
        }
        future: Future = Future()
        if self._closed:
            future.set_exception(OSError("the chart process is closed"))
            return future
        self._waiting.put((future, compact))
        self._requests.put(json.dumps(request).encode("utf-8") + b"\n")
        return future

    def warm_up(self, locale: str = "id") -> Future:
        """Start the process's engine (about 0.7 s of a process's first chart) with a one-point chart."""
        return self._request(charts.png_spec(charts.WARM_UP_DATA, locale), locale, 1, compact=False)

    def draw(self, spec: dict, locale: str = "id", scale: float = 1.5) -> Future:
        """`charts.render_png(spec, locale, scale)`, drawn by the process: its Future."""
        return self._request(spec, locale, scale, compact=True)

    def ahead(self, key: tuple[str, str, str], spec: dict) -> None:
        """Draw the chart of `key` ((level, code, language)) now, from data read before the alerts ask for it
        (the built marts, before their checks): `drawn_ahead_for` gives it only for the very same spec."""
        self.drawn_ahead[key] = (json.dumps(spec), self.draw(spec, key[2]))

    def drawn_ahead_for(self, key: tuple[str, str, str], spec: dict) -> Future | None:
        """The PNG drawn `ahead` for `key`, if it was drawn from exactly `spec` (the same JSON); else None."""
        ahead = self.drawn_ahead.get(key)
        return ahead[1] if ahead is not None and ahead[0] == json.dumps(spec) else None

    def close(self, wait_seconds: float = 5) -> None:
        """End the process: at once, or when it has answered what it was asked (within `wait_seconds`). What
        was not answered fails, as does what is asked afterwards."""
        self._closed = True
        self._requests.put(None)
        try:
            if not wait_seconds:
                raise subprocess.TimeoutExpired(self.process.args, 0)
            self._threads[0].join(wait_seconds)
            self.process.stdin.close()
            self.process.wait(timeout=wait_seconds)
        except (OSError, ValueError, subprocess.TimeoutExpired):
            self.process.kill()
            self.process.wait()
        self._waiting.put(None)  # after what waits: each fails at the end of the output, or has its answer
        for thread in self._threads:
            thread.join(wait_seconds or 5)
        for pipe in (self.process.stdin, self.process.stdout):
            try:
                pipe.close()
            except (OSError, ValueError):
                pass


# A drawing process started before the alerts stage (`start_early`), taken by it (`take_early`).
_early: list[ChartProcess] = []
_early_lock = threading.Lock()


def start_early(locale: str = "id") -> None:
    """Start a drawing process now, its engine warmed up while the run's marts are checked and published
    (the alerts stage waited ~0.9 s for a process it started itself). Once per process; `close_early`
    ends it if no alerts stage took it."""
    with _early_lock:
        if _early:
            return
        try:
            process = ChartProcess()
        except OSError:  # the alerts stage starts its own, or draws in the run's process
            return
        process.warm_up(locale)
        _early.append(process)


def draw_early(specs: dict[tuple[str, str, str], dict]) -> None:
    """Have the process `start_early` started draw these charts ((level, code, language) -> spec) now, while
    the run's marts are checked and published; the alerts take each one whose spec they compute again."""
    with _early_lock:
        for key, spec in specs.items() if _early else ():
            _early[0].ahead(key, spec)


def take_early() -> ChartProcess | None:
    with _early_lock:
        return _early.pop() if _early else None


def close_early() -> None:
    process = take_early()
    if process is not None:
        process.close(wait_seconds=0)
