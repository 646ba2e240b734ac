"""History extraction throughput: wfmon's reader vs the SDK's own JSON decode.

Two workloads, both real histories from the Temporal dev server:

- one ~45,000-event history of a workflow that ran 10,000 activities, two at a time
  (generated once, about four minutes, and cached as ``bench/results/history-50k.json``;
  not in git);
- 1,000 small histories (the checked-in fixtures, cycled).

Figures: events/s of ``read_history`` on decoded events, the baseline
``WorkflowHistory.from_json`` on the same history, their ratio (target: extraction adds
at most 50% on top of the decode), and peak memory (tracemalloc) of reading the big
history whole vs streamed in 1,000-event pages. Streaming keeps the report (one record
per component, payloads decoded) plus a transient part, which must stay flat: the same
for a tenth of the pages as for all of them. (tracemalloc sees Python objects only;
protobuf's own C buffers for the page being parsed are not counted.)
Median of 3 runs.
"""

from __future__ import annotations

import asyncio
import gc
import shutil
import tempfile
import time
import tracemalloc
from collections.abc import Callable, Iterator
from datetime import timedelta
from pathlib import Path
from typing import Any

from temporalio import activity, workflow
from temporalio.api.history.v1 import History, HistoryEvent
from temporalio.client import Client, WorkflowHistory
from temporalio.worker import Worker

from bench.common import RESULTS_DIR, median, write_result
from wfmon.history import HistoryReader, HistoryReport, read_history

CACHE = RESULTS_DIR / "history-50k.json"
FIXTURES = Path(__file__).resolve().parents[1] / "tests" / "fixtures" / "histories"
TARGET_EVENTS = 49_900
MAX_ACTIVITIES = 10_000
PAGE_SIZE = 1_000
REPEAT = 3


# -- the generating workflow ------------------------------------------------------------


@activity.defn(name="bench-step")
async def bench_step(item: dict[str, Any]) -> dict[str, Any]:
    return {"id": item["id"], "total": item["value"] * 2, "tags": ["bench", "step"]}


@workflow.defn(name="BenchManyActivities", sandboxed=False)
class ManyActivitiesWorkflow:
    """Runs activities two at a time until ~50,000 events or 10,000 activities."""

    @workflow.run
    async def run(self) -> int:
        done = 0
        while done < MAX_ACTIVITIES and workflow.info().get_current_history_length() < (
            TARGET_EVENTS - 20
        ):
            await asyncio.gather(
                *(
                    workflow.execute_activity(
                        bench_step,
                        {"id": done + i, "value": done + i},
                        activity_id=f"step-{done + i}",
                        start_to_close_timeout=timedelta(seconds=30),
                    )
                    for i in range(2)
                )
            )
            done += 2
        return done


def generate(path: Path) -> None:
    """Run the workflow on a throwaway dev server and save its history as JSON."""
    from wfmon.dev import temporal
    from wfmon.dev.process import free_port

    state = Path(tempfile.mkdtemp(prefix="wfmon-bench-history-"))
    port = free_port()
    pid = temporal.start(
        state, temporal.TemporalPorts(grpc=port, ui=None, http=free_port(), metrics=free_port())
    )

    async def run() -> str:
        client = await Client.connect(f"127.0.0.1:{port}")
        async with Worker(
            client,
            task_queue="bench-history",
            workflows=[ManyActivitiesWorkflow],
            activities=[bench_step],
            max_concurrent_activities=10,
        ):
            handle = await client.start_workflow(
                ManyActivitiesWorkflow.run, id="bench-50k", task_queue="bench-history"
            )
            await handle.result()
            return (await handle.fetch_history()).to_json()

    try:
        text = asyncio.run(run())
    finally:
        temporal.stop(pid)
        shutil.rmtree(state, ignore_errors=True)
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(text)


# -- measurements -----------------------------------------------------------------------


def _best(fn: Callable[[], Any]) -> float:
    times = []
    for _ in range(REPEAT):
        gc.collect()
        t0 = time.perf_counter()
        fn()
        times.append(time.perf_counter() - t0)
    return median(times)


def _peak(fn: Callable[[], Any]) -> tuple[int, int]:
    """(peak bytes, bytes still held by fn's result): peak minus held is the transient
    memory of reading, which is what must stay flat as a history grows."""
    gc.collect()
    tracemalloc.start()
    result = fn()
    current, peak = tracemalloc.get_traced_memory()
    tracemalloc.stop()
    del result
    return peak, current


def _pages(events: list[HistoryEvent]) -> list[bytes]:
    """The history as the server sends it: protobuf pages of PAGE_SIZE events."""
    return [
        History(events=events[i : i + PAGE_SIZE]).SerializeToString()
        for i in range(0, len(events), PAGE_SIZE)
    ]


def _stream(pages: list[bytes]) -> Iterator[HistoryEvent]:
    for page in pages:
        yield from History.FromString(page).events


def _read_pages(pages: list[bytes]) -> HistoryReport:
    reader = HistoryReader()
    reader.feed(_stream(pages))
    return reader.finish()


def main() -> None:
    if not CACHE.exists():
        print("generating the 50,000-event history once (about four minutes)...", flush=True)
        generate(CACHE)
    text = CACHE.read_text()
    history = WorkflowHistory.from_json("bench-50k", text)
    events = list(history.events)
    report = read_history(history)
    n_events, n_components = len(events), len(report.components)

    decode_s = _best(lambda: WorkflowHistory.from_json("bench-50k", text))
    extract_s = _best(lambda: read_history(events))
    pages = _pages(events)
    stream_s = _best(lambda: _read_pages(pages))

    peak_whole, _ = _peak(lambda: read_history(WorkflowHistory.from_json("bench-50k", text)))
    peak_all, held_all = _peak(lambda: _read_pages(pages))
    tenth = pages[: max(1, len(pages) // 10)]
    peak_tenth, held_tenth = _peak(lambda: _read_pages(tenth))

    small_texts = [
        p.read_text()
        for p in sorted(FIXTURES.glob("*.json"))
        if not p.name.endswith(".pending.json")
    ]
    small = [small_texts[i % len(small_texts)] for i in range(1000)]
    small_histories = [WorkflowHistory.from_json("s", t) for t in small]
    small_events = sum(len(h.events) for h in small_histories)
    small_decode_s = _best(lambda: [WorkflowHistory.from_json("s", t) for t in small])
    small_extract_s = _best(lambda: [read_history(h) for h in small_histories])

    figures: dict[str, Any] = {
        "big": {
            "events": n_events,
            "components": n_components,
            "json_mb": round(len(text) / 1e6, 1),
            "sdk_from_json_s": round(decode_s, 3),
            "sdk_from_json_events_per_s": round(n_events / decode_s),
            "extract_s": round(extract_s, 3),
            "extract_events_per_s": round(n_events / extract_s),
            "extract_over_decode": round(extract_s / decode_s, 3),
            "stream_pages_parse_and_extract_s": round(stream_s, 3),
            "peak_mb_from_json_then_extract": round(peak_whole / 1e6, 1),
            "peak_mb_streamed_all_pages": round(peak_all / 1e6, 1),
            "report_mb_all_pages": round(held_all / 1e6, 1),
            "transient_kb_streamed_all_pages": round((peak_all - held_all) / 1e3, 1),
            "peak_mb_streamed_tenth_of_pages": round(peak_tenth / 1e6, 1),
            "transient_kb_streamed_tenth_of_pages": round((peak_tenth - held_tenth) / 1e3, 1),
        },
        "small": {
            "histories": len(small),
            "events": small_events,
            "sdk_from_json_s": round(small_decode_s, 3),
            "extract_s": round(small_extract_s, 3),
            "extract_events_per_s": round(small_events / small_extract_s),
            "extract_over_decode": round(small_extract_s / small_decode_s, 3),
        },
        "target": "extract_over_decode <= 0.5",
    }
    big = figures["big"]
    write_result(
        "history",
        figures,
        f"{n_events} events: extract {big['extract_events_per_s']:,} ev/s, "
        f"{big['extract_over_decode']:.0%} of from_json; "
        f"1000 small: {figures['small']['extract_over_decode']:.0%}; "
        f"streamed: report {big['report_mb_all_pages']} MB + transient "
        f"{big['transient_kb_streamed_all_pages']} KB "
        f"(tenth of pages: {big['transient_kb_streamed_tenth_of_pages']} KB)",
    )


if __name__ == "__main__":
    main()
