"""The ``python -m debate.llm.fake`` command: run the fake server in the foreground."""

from __future__ import annotations

import argparse
import signal
import threading
from pathlib import Path

from debate.llm.fake.server import FakeOpenAIServer


def main(argv: list[str] | None = None) -> int:
    """Run the fake server in the foreground until SIGTERM/SIGINT."""
    args = _parser().parse_args(argv)
    log_file = args.log.open("a", encoding="utf-8") if args.log else None
    server = FakeOpenAIServer(
        latency_s=args.latency,
        host=args.host,
        port=args.port,
        log_file=log_file,
        stream_delay_s=args.stream_delay,
        n_ctx=args.n_ctx,
    )
    stop = threading.Event()

    def on_signal(signum: int, frame: object) -> None:
        stop.set()

    signal.signal(signal.SIGTERM, on_signal)
    signal.signal(signal.SIGINT, on_signal)
    server.start()
    # The parent (fake_server_process, tests) waits for this exact line on stdout.
    print(f"READY {server.base_url}", flush=True)
    try:
        while not stop.wait(0.5):
            pass
    finally:
        server.stop()
        if log_file is not None:
            log_file.close()
    return 0


def _parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="python -m debate.llm.fake", description="Run a fake OpenAI-compatible server."
    )
    parser.add_argument("--host", default="127.0.0.1")
    parser.add_argument("--port", type=int, default=0)
    parser.add_argument("--latency", type=float, default=0.0, help="seconds added to every reply")
    parser.add_argument("--log", type=Path, default=None, help="append one JSON line per request")
    parser.add_argument("--stream-delay", type=float, default=0.0, help="seconds between streamed chunks")
    parser.add_argument("--n-ctx", type=int, default=None, help="play llama.cpp with this context (/props, /tokenize)")
    return parser
