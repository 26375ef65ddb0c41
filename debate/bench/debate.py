"""`debate bench debate`: what the engine costs beyond LangGraph, and throughput with a slow model.

1. Engine wall time per debate with an instant in-process fake model (the real graph, store,
   retrieval and checkpointer, durability "sync"), beside the bare LangGraph floor: the same
   graph shape, checkpointer and durability with empty nodes. Target: engine ÷ floor ≤ 2.0.
2. Debates per second with a fake model over HTTP that answers after ``latency_s`` and never
   concedes (so every debate makes the same calls), at several concurrency levels, beside the
   ideal = concurrency ÷ (sequential calls per debate × latency). With 2 rounds and a judge
   panel fanned out in parallel a debate makes 5 sequential calls. Targets: ≥ 90 % of ideal at
   32 and ≥ 80 % at 64. The fake server runs in its own process, as a model endpoint would:
   in the engine's process its request handling would compete with the engine for the GIL.
   The CPU the engine's process spends per debate is reported beside each level.
"""

from __future__ import annotations

import asyncio
import operator
import statistics
import tempfile
import time
from pathlib import Path
from typing import Annotated, Any, TypedDict

from langgraph.graph import StateGraph
from langgraph.types import Send

from debate.core.config import Settings, load_settings
from debate.engine.agents import ModelBackend
from debate.engine.graph import add_debate_edges
from debate.engine.runs import Executor, create_runs, open_checkpointer
from debate.kb.hypotheses import import_file
from debate.kb.ingest import ingest_paths
from debate.llm.fake import InstantChatClient, fake_server_process
from debate.store.db import ensure_schema

DATA = Path(__file__).resolve().parent.parent / "data"
SEQUENTIAL_CALLS = 5  # 2 rounds x (proposer, critic) + one parallel judge step


class _FloorState(TypedDict):
    run_id: str
    round: int
    judged: Annotated[list[int], operator.add]


def _floor_graph(rounds: int, judges: int) -> StateGraph:
    """The debate graph's shape with empty nodes: what LangGraph alone costs."""

    async def empty(state: Any) -> dict[str, Any]:
        return {}

    async def next_round(state: _FloorState) -> dict[str, Any]:
        return {"round": state["round"] + 1}

    async def judge(state: dict[str, Any]) -> dict[str, Any]:
        return {"judged": [state["seat"]]}

    def route(state: _FloorState) -> Any:
        if state["round"] < rounds:
            return "next_round"
        return [Send("judge", {"run_id": state["run_id"], "seat": s}) for s in range(judges)]

    g = StateGraph(_FloorState)
    for name in ("retrieve", "proposer", "critic", "consensus", "persist"):
        g.add_node(name, empty)
    g.add_node("next_round", next_round)
    g.add_node("judge", judge)
    add_debate_edges(g, route)
    return g


def _prepare(root: Path, n_hypotheses: int) -> tuple[Settings, Any, list[str]]:
    """A database with the sample KB and ``n_hypotheses`` copies of the sample hypotheses."""
    import yaml

    settings = load_settings(database_url=f"sqlite:///{root}/bench.db")
    engine = ensure_schema(settings.database_url)
    ingest_paths(engine, [DATA / "kb"])
    base = yaml.safe_load((DATA / "hypotheses.yaml").read_text())
    rows = []
    for i in range(n_hypotheses):
        h = dict(base[i % len(base)])
        h["id"] = f"h-{0xB0000000 + i:08x}"
        h["title"] = f"{h['title']} (bench copy {i})"
        rows.append(h)
    f = root / "hyps.yaml"
    f.write_text(yaml.safe_dump(rows))
    return settings, engine, import_file(engine, f)


async def _engine_per_debate(settings: Settings, engine: Any, ids: list[str]) -> list[float]:
    run_ids = create_runs(engine, settings, ids, backend="openai")
    times = []
    async with Executor(engine, settings, backend="openai") as ex:
        ex.backend = ModelBackend(InstantChatClient(), model="instant")
        for rid in run_ids:
            t0 = time.perf_counter()
            outcome = await ex.execute(rid)
            times.append(time.perf_counter() - t0)
            assert outcome.status == "done", outcome.error
    return times


async def _floor_per_debate(settings: Settings, n: int, first: int = 0) -> list[float]:
    times = []
    async with open_checkpointer(settings) as saver:
        graph = _floor_graph(settings.debate.rounds, settings.debate.judges).compile(checkpointer=saver)
        for i in range(first, first + n):
            t0 = time.perf_counter()
            await graph.ainvoke(
                {"run_id": f"floor-{i}", "round": 1, "judged": []},
                {"configurable": {"thread_id": f"floor-{i}"}},
                durability="sync",
            )
            times.append(time.perf_counter() - t0)
    return times


async def _throughput(settings: Settings, engine: Any, ids: list[str], concurrency: int) -> tuple[float, float]:
    """(debates per second, CPU ms of this process per debate)."""
    run_ids = create_runs(engine, settings, ids, backend="openai")
    async with Executor(engine, settings, backend="openai") as ex:
        t0, cpu0 = time.perf_counter(), time.process_time()
        outcomes = await ex.execute_many(run_ids, concurrency=concurrency)
        elapsed, cpu = time.perf_counter() - t0, time.process_time() - cpu0
    assert all(o.status == "done" for o in outcomes), [o.error for o in outcomes if o.error][:3]
    return len(run_ids) / elapsed, 1000 * cpu / len(run_ids)


def run(
    debates: int = 60, concurrency: tuple[int, ...] = (1, 8, 32, 64), latency_s: float = 1.0, echo=print
) -> dict[str, Any]:  # type: ignore[no-untyped-def]
    result: dict[str, Any] = {}
    with tempfile.TemporaryDirectory() as tmp:
        root = Path(tmp)
        # Enough hypotheses for each level to run 3 full waves.
        need = debates + sum(max(3 * c, 4) for c in concurrency)
        settings, engine, ids = _prepare(root, need)
        # Alternate blocks of engine and floor debates, so a noisy moment of the machine weighs on
        # both sides rather than on one.
        engine_times: list[float] = []
        floor_times: list[float] = []
        block = max(1, min(10, debates))
        for start in range(0, debates, block):
            n = min(block, debates - start)
            engine_times += asyncio.run(_engine_per_debate(settings, engine, ids[start : start + n]))
            floor_times += asyncio.run(_floor_per_debate(settings, n, first=start))
        e_ms = statistics.median(engine_times) * 1000
        f_ms = statistics.median(floor_times) * 1000
        result["engine_ms_per_debate"] = round(e_ms, 1)
        result["floor_ms_per_debate"] = round(f_ms, 1)
        result["engine_over_floor"] = round(e_ms / f_ms, 2)
        echo(
            f"per debate (median of {debates}, alternating blocks of {block}): engine {e_ms:.1f} ms, bare LangGraph floor {f_ms:.1f} ms, "
            f"ratio {e_ms / f_ms:.2f} (target ≤ 2.0)"
        )
        result["throughput"] = _levels(settings, engine, ids[debates:], concurrency, latency_s, echo)
        engine.dispose()
    return result


def _levels(
    settings: Settings, engine: Any, ids: list[str], concurrency: tuple[int, ...], latency_s: float, echo
) -> list[dict[str, Any]]:  # type: ignore[no-untyped-def]
    """Debates/s at each concurrency level with a slow model over HTTP (none: nothing to run)."""
    levels: list[dict[str, Any]] = []
    if not concurrency:
        return levels
    offset = 0
    with fake_server_process(latency_s) as base_url:
        s2 = settings.model_copy(
            update={
                "openai": settings.openai.model_copy(
                    update={
                        "base_url": base_url,
                        "api_key": None,
                        # Room for every judge of every debate in flight: the model, not the limiter, is measured.
                        "max_concurrency": max(concurrency) * settings.debate.judges,
                    }
                )
            }
        )
        for c in concurrency:
            n = max(3 * c, 4)
            rate, cpu_ms = asyncio.run(_throughput(s2, engine, ids[offset : offset + n], c))
            offset += n
            ideal = c / (SEQUENTIAL_CALLS * latency_s)
            levels.append(
                {
                    "concurrency": c,
                    "debates": n,
                    "debates_per_s": round(rate, 3),
                    "ideal_per_s": round(ideal, 3),
                    "pct_of_ideal": round(100 * rate / ideal, 1),
                    "cpu_ms_per_debate": round(cpu_ms, 1),
                }
            )
            echo(
                f"concurrency {c:>3}: {rate:6.2f} debates/s, ideal {ideal:6.2f}, "
                f"{100 * rate / ideal:5.1f}% of ideal, {cpu_ms:5.1f} ms CPU per debate"
            )
    return levels
