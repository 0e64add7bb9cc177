"""vl-convert in a process of its own: the alerts' email charts drawn on another core while the run goes on.

The alerts draw a trajectory PNG per email (flows/alerts/delivery.py, `_Charts`). vl-convert holds the GIL while
its JavaScript engine starts (0.5-1 s of a process's first chart), so drawn on a thread of the run's process it
held up the rules, the composing and the storing for that long; in a process of its own it does not.
"""

from __future__ import annotations

import json
import struct
import subprocess
import sys

from flows import charts

# The drawing process's program: vl-convert only. One request a line (JSON) on stdin; each answer on stdout is
# b"P" or b"E", a 4-byte length and the PNG (or the error's text).
_WORKER_PROGRAM = r"""
import json, struct, sys
import vl_convert
out = sys.stdout.buffer
for line in sys.stdin.buffer:
    request = json.loads(line)
    try:
        body, kind = vl_convert.vegalite_to_png(allowed_base_urls=[], **request), b"P"
    except Exception as error:
        body, kind = f"{type(error).__name__}: {error}".encode("utf-8", "replace"), b"E"
    out.write(kind + struct.pack(">I", len(body)) + body)
    out.flush()
"""


class ChartProcess:
    """One drawing process. The same spec gives the same bytes as `charts.render_png` (the spec reaches
    vl-convert through JSON, which keeps every key, its order and every number). `draw` raises where the process
    cannot draw (it failed to start, died, or vl-convert refused the spec): the caller draws in-process instead.
    Asked from one thread at a time."""

    def __init__(self) -> None:
        self.process = subprocess.Popen(
            [sys.executable, "-I", "-c", _WORKER_PROGRAM],
            stdin=subprocess.PIPE,
            stdout=subprocess.PIPE,
            stderr=subprocess.DEVNULL,
        )

    def _request(self, spec: dict, locale: str, scale: float) -> bytes:
        request = {
            "vl_spec": spec,
            "scale": scale,
            "format_locale": charts.FORMAT_LOCALES.get(locale, charts.FORMAT_LOCALES["id"]),
            "time_format_locale": charts.TIME_FORMAT_LOCALES.get(locale, charts.TIME_FORMAT_LOCALES["id"]),
        }
        self.process.stdin.write(json.dumps(request).encode("utf-8") + b"\n")
        self.process.stdin.flush()
        head = self.process.stdout.read(5)
        if len(head) < 5:
            raise OSError("the chart process ended")
        body = self.process.stdout.read(struct.unpack(">I", head[1:])[0])
        if head[:1] != b"P":
            raise RuntimeError(body.decode("utf-8", "replace"))
        return body

    def warm_up(self, locale: str = "id") -> None:
        """Start the process's engine (as `charts.warm_up` does in this one)."""
        self._request(charts.png_spec(charts.WARM_UP_DATA, locale), locale, 1)

    def draw(self, spec: dict, locale: str = "id", scale: float = 1.5) -> bytes:
        """`charts.render_png(spec, locale, scale)`, drawn by the process."""
        return charts.compact_png(self._request(spec, locale, scale))

    def close(self, wait_seconds: float = 5) -> None:
        """End the process: at once, or when it has answered what it was asked (within `wait_seconds`)."""
        try:
            if not wait_seconds:
                raise subprocess.TimeoutExpired(self.process.args, 0)
            self.process.stdin.close()
            self.process.wait(timeout=wait_seconds)
        except (OSError, ValueError, subprocess.TimeoutExpired):
            self.process.kill()
            self.process.wait()
            try:
                self.process.stdin.close()
            except (OSError, ValueError):  # a request half written to the ended process
                pass
