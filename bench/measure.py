"""Running a workload in a fresh process and measuring it from outside: wall time and the
peak memory of the whole process tree.

Memory is the resident set size (RSS) summed over the process and all its descendants
(Prefect's temporary server, for example), sampled with psutil from a thread of this
process, so the measured process carries no instrumentation. The process's own
`ru_maxrss` is kept too: the sampled peak is never reported below it. Summing RSS
counts pages shared between processes more than once, so the tree figure errs high.

Two ways to start a fresh process:
- `fresh`: a new interpreter (`python -m bench.workloads`), as a command-line run starts;
- `forked`: a fork of a server process that imported the pipeline, Prefect and GX once
  (multiprocessing's forkserver), so each pipeline stage starts clean without paying
  ~5 s of imports. Its RSS includes those imports (about 350 MB), as the stage's
  process would under `jkn run`.
"""

from __future__ import annotations

import json
import multiprocessing
import os
import subprocess
import sys
import threading
import time
from dataclasses import dataclass, field
from pathlib import Path

import psutil

from bench import workloads

PROJECT_ROOT = Path(__file__).resolve().parent.parent
MB = 1024 * 1024
FORKSERVER_PRELOAD = ["bench.workloads", "flows.pipeline", "great_expectations"]


class BenchError(RuntimeError):
    """A measured workload failed; the message holds the end of its log."""


@dataclass
class Measurement:
    label: str
    seconds: float  # the workload's own wall time, measured inside the process after its imports
    cpu_seconds: float  # user + system CPU of the workload (and its waited-for children)
    import_seconds: float  # importing what the workload needs, before its clock started
    process_seconds: float  # from start to exit, as seen from outside
    peak_rss_mb: float  # whole process tree
    peak_rss_main_mb: float  # the measured process alone
    peak_spill_mb: float  # DuckDB temporary files on disk
    samples: int
    other_cpu_seconds: float = 0.0  # CPU the rest of the machine used meanwhile (contention)
    result: dict = field(default_factory=dict)
    log: str = ""

    def as_dict(self) -> dict:
        return {
            "seconds": round(self.seconds, 3),
            "cpu_seconds": round(self.cpu_seconds, 3),
            "import_seconds": round(self.import_seconds, 3),
            "process_seconds": round(self.process_seconds, 3),
            "peak_rss_mb": round(self.peak_rss_mb, 1),
            "peak_rss_main_mb": round(self.peak_rss_main_mb, 1),
            "peak_spill_mb": round(self.peak_spill_mb, 1),
            "rss_samples": self.samples,
            "other_cpu_seconds": round(self.other_cpu_seconds, 2),
            "log": self.log,
        }


class TreeSampler(threading.Thread):
    """Samples the RSS of a process tree (and the size of a spill folder) until stopped."""

    def __init__(self, pid: int, interval: float, spill_dir: Path | None = None):
        super().__init__(daemon=True)
        self.pid = pid
        self.interval = interval
        self.spill_dir = spill_dir
        self.peak_tree = 0
        self.peak_main = 0
        self.peak_spill = 0
        self.samples = 0
        self.cpu_by_pid: dict[int, float] = {}  # last seen user + system CPU of each process in the tree
        self._stop_event = threading.Event()

    def run(self) -> None:
        try:
            root = psutil.Process(self.pid)
        except psutil.NoSuchProcess:
            return
        while True:
            self.sample(root)
            if self._stop_event.wait(self.interval):
                break

    def sample(self, root: psutil.Process) -> None:
        try:
            processes = [root, *root.children(recursive=True)]
        except psutil.NoSuchProcess:
            return
        total = 0
        for process in processes:
            try:
                rss = process.memory_info().rss
                cpu = process.cpu_times()
            except (psutil.NoSuchProcess, psutil.AccessDenied, psutil.ZombieProcess):
                continue
            self.cpu_by_pid[process.pid] = cpu.user + cpu.system
            total += rss
            if process.pid == self.pid:
                self.peak_main = max(self.peak_main, rss)
        self.peak_tree = max(self.peak_tree, total)
        self.peak_spill = max(self.peak_spill, _allocated_bytes(self.spill_dir))
        self.samples += 1

    def stop(self) -> None:
        self._stop_event.set()
        self.join()


def _allocated_bytes(folder: Path | None) -> int:
    if folder is None or not folder.exists():
        return 0
    total = 0
    for dirpath, _, filenames in os.walk(folder):
        for name in filenames:
            try:
                total += os.stat(os.path.join(dirpath, name)).st_blocks * 512
            except FileNotFoundError:
                continue
    return total


class Runner:
    """Starts measured processes; keeps their logs and result files under `work_dir`."""

    def __init__(self, work_dir: Path, interval: float = 0.05):
        self.work_dir = work_dir
        self.interval = interval
        self.logs = work_dir / "logs"
        self.logs.mkdir(parents=True, exist_ok=True)
        self._forkserver = None

    def fresh(
        self, label: str, workload: str, arguments: dict, environment: dict, cwd: Path, spill_dir: Path | None = None
    ) -> Measurement:
        """Run `workload` in a new Python interpreter."""
        result_path, log_path = self._paths(label)
        command = [
            sys.executable,
            "-m",
            "bench.workloads",
            workload,
            json.dumps(arguments),
            str(result_path),
            str(log_path),
            json.dumps(environment),
            str(cwd),
        ]
        env = {**_without_jkn(os.environ), **environment, "PYTHONPATH": str(PROJECT_ROOT)}

        def start():
            process = subprocess.Popen(command, cwd=PROJECT_ROOT, env=env, stdin=subprocess.DEVNULL)
            return process.pid, process.wait

        return self._watch(label, result_path, log_path, spill_dir, start)

    def forked(
        self, label: str, workload: str, arguments: dict, environment: dict, cwd: Path, spill_dir: Path | None = None
    ) -> Measurement:
        """Run `workload` in a fork of the pre-imported server process."""
        context = self._context()
        result_path, log_path = self._paths(label)

        def start():
            process = context.Process(
                target=workloads.run_workload,
                args=(workload, arguments, str(result_path), str(log_path), environment, str(cwd)),
            )
            process.start()

            def wait():
                process.join()
                return process.exitcode

            return process.pid, wait

        return self._watch(label, result_path, log_path, spill_dir, start)

    def _watch(self, label: str, result_path: Path, log_path: Path, spill_dir: Path | None, start) -> Measurement:
        """Time a process from its start to its end, sample its tree's memory meanwhile, and note
        the CPU the rest of the machine used. `start()` starts it and returns its pid and a
        function that waits for it and returns its exit code."""
        busy = _machine_busy_seconds()
        started = time.perf_counter()
        pid, wait = start()
        sampler = TreeSampler(pid, self.interval, spill_dir)
        sampler.start()
        exit_code = wait()
        elapsed = time.perf_counter() - started
        sampler.stop()
        busy = _machine_busy_seconds() - busy
        return self._measurement(label, result_path, log_path, elapsed, busy, sampler, exit_code)

    def warm_forkserver(self) -> None:
        """Start the forkserver and let it finish its imports before anything is timed, so its
        start-up does not compete with a measured process for the CPU."""
        process = self._context().Process(target=time.sleep, args=(0,))
        process.start()
        process.join()

    def _context(self):
        if self._forkserver is None:
            self._forkserver = multiprocessing.get_context("forkserver")
            self._forkserver.set_forkserver_preload(FORKSERVER_PRELOAD)
        return self._forkserver

    def _paths(self, label: str) -> tuple[Path, Path]:
        safe = label.replace(" ", "_").replace("/", "_")
        result_path = self.logs / f"{safe}.json"
        log_path = self.logs / f"{safe}.log"
        for path in (result_path, log_path):
            path.unlink(missing_ok=True)
        return result_path, log_path

    def _measurement(
        self,
        label,
        result_path: Path,
        log_path: Path,
        elapsed: float,
        busy: float,
        sampler: TreeSampler,
        exit_code: int | None,
    ) -> Measurement:
        outcome = json.loads(result_path.read_text(encoding="utf-8")) if result_path.exists() else {}
        if not outcome.get("ok"):
            tail = log_path.read_text(encoding="utf-8", errors="replace")[-3000:] if log_path.exists() else ""
            raise BenchError(
                f"{label}: {outcome.get('error') or f'process exited with code {exit_code}'}\nlog {log_path}:\n{tail}"
            )
        floor_mb = max(outcome.get("maxrss_self_mb", 0.0), outcome.get("maxrss_children_mb", 0.0))
        return Measurement(
            label=label,
            seconds=outcome["seconds"],
            cpu_seconds=outcome.get("cpu_seconds", 0.0),
            import_seconds=outcome.get("import_seconds", 0.0),
            process_seconds=elapsed,
            peak_rss_mb=max(sampler.peak_tree / MB, floor_mb),
            peak_rss_main_mb=max(sampler.peak_main / MB, outcome.get("maxrss_self_mb", 0.0)),
            peak_spill_mb=sampler.peak_spill / MB,
            samples=sampler.samples,
            other_cpu_seconds=max(
                busy - max(sum(sampler.cpu_by_pid.values()), outcome.get("cpu_total_seconds", 0.0)), 0.0
            ),
            result=outcome.get("result") or {},
            log=str(log_path),
        )


def _machine_busy_seconds() -> float:
    """CPU seconds all cores spent working since boot (guest time is already in user time)."""
    times = psutil.cpu_times()
    return sum(getattr(times, name, 0.0) for name in ("user", "nice", "system", "irq", "softirq"))


def _without_jkn(environment) -> dict:
    """The environment without any JKN_ setting: each measured process gets exactly the
    settings the benchmark chose."""
    return {name: value for name, value in environment.items() if not name.upper().startswith("JKN_")}
