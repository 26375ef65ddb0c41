"""Child processes for tests and benchmarks: the fake server, ``debate worker``, stopping them."""

from __future__ import annotations

import subprocess
import sys
import threading
from collections.abc import Iterable, Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any


@contextmanager
def fake_server_process(
    latency_s: float = 0.0, *, log: Path | None = None, start_timeout_s: float = 30.0
) -> Iterator[str]:
    """Run the fake server in a child process (``python -m debate.llm.fake``); yields its base URL.

    Benchmarks use this rather than :class:`FakeOpenAIServer`'s thread: a model endpoint never
    shares the engine's process, and in a thread the server's request handling would compete
    with the engine for the GIL and be counted as the engine's cost. ``log``: where the server
    appends one JSON line per request (with its arrival time), for tests that count requests
    from several processes.
    """
    args = [sys.executable, "-m", "debate.llm.fake", "--port", "0", "--latency", str(latency_s)]
    if log is not None:
        args += ["--log", str(log)]
    proc = subprocess.Popen(args, stdout=subprocess.PIPE, text=True)
    try:
        assert proc.stdout is not None
        ready = threading.Timer(start_timeout_s, proc.kill)  # a hung start ends in EOF, not a hang
        ready.start()
        try:
            line = proc.stdout.readline()
        finally:
            ready.cancel()
        if not line.startswith("READY "):
            raise RuntimeError(f"fake server did not start: {line.strip()!r}")
        yield line.split()[1]
    finally:
        stop_processes([proc], timeout_s=10)


def worker_process(env: dict[str, str], name: str, log: Path, *, concurrency: int) -> subprocess.Popen[bytes]:
    """``debate worker --name NAME`` in a child process, its stderr written to ``log``: a file,
    not a pipe (a pipe nobody reads fills up and stalls a busy worker)."""
    args = [sys.executable, "-m", "debate", "worker", "--concurrency", str(concurrency), "--name", name]
    with log.open("wb") as err:
        return subprocess.Popen(args, env=env, stdout=subprocess.DEVNULL, stderr=err)


def stop_processes(procs: Iterable[subprocess.Popen[Any]], *, timeout_s: float = 20.0) -> None:
    """SIGTERM every process still running, then wait for each (killed if not ended in
    ``timeout_s``)."""
    procs = list(procs)
    for proc in procs:
        if proc.poll() is None:
            proc.terminate()
    for proc in procs:
        try:
            proc.wait(timeout=timeout_s)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait()
