"""Bounds of the fast path against a real OTLP gRPC receiver (``otlp_sink.Sink``).

Exact counts from 8 threads through configure(), the series cap and the metrics
export split under gRPC's 4 MiB, forked children and fork-pool workers exporting
their own telemetry under their own ``service.instance.id``, and the memory of a
million full calls. The scenarios that own a process run as scripts in a subprocess
that exports to the receiver this test process runs.
"""

from __future__ import annotations

import json
import subprocess
import sys
import textwrap
import threading
from collections import Counter, defaultdict
from typing import Any

import pytest
from tests.integration.otlp_sink import Sink, attrs

import mevobs

pytestmark = pytest.mark.integration

GRPC_LIMIT = 4 * 1024 * 1024
"""gRPC's default largest message: a collector refuses a request past it."""


def _run(code: str, *args: str, timeout: float = 300) -> Any:
    """Run a script; its last stdout line is JSON."""
    proc = subprocess.run(
        [sys.executable, "-c", textwrap.dedent(code), *args], capture_output=True, text=True, timeout=timeout
    )
    assert proc.returncode == 0, proc.stderr[-4000:]
    return json.loads(proc.stdout.splitlines()[-1])


def _latest(sink: Sink, name: str) -> dict[str, list[Any]]:
    """The data points of metric ``name`` per service.instance.id: the latest of each
    series (cumulative: the total), across the requests an export was split into."""
    series: dict[str, dict[Any, Any]] = defaultdict(dict)
    with sink.lock:
        requests = list(sink.metrics)
    for request in requests:
        for rm in request.resource_metrics:
            instance = attrs(rm.resource.attributes)["service.instance.id"]
            for sm in rm.scope_metrics:
                for metric in sm.metrics:
                    if metric.name == name:
                        for point in getattr(metric, metric.WhichOneof("data")).data_points:
                            key = tuple(sorted(attrs(point.attributes).items()))
                            series[instance][key] = point
    return {instance: list(points.values()) for instance, points in series.items()}


def _number(point: Any) -> float:
    """A sum or gauge point's value, integer or double."""
    return float(getattr(point, point.WhichOneof("value")))


def _spans_by_instance(sink: Sink) -> Counter[str]:
    with sink.lock:
        requests = list(sink.traces)
    return Counter(
        attrs(rs.resource.attributes)["service.instance.id"]
        for request in requests
        for rs in request.resource_spans
        for ss in rs.scope_spans
        for _ in ss.spans
    )


# ----------------------------------------------------------------------- threads


def test_8_threads_of_100_000_calls_give_exact_counts_through_configure(sink: Sink) -> None:
    """The exported duration count and gas cost sum of 800 000 calls from 8 threads are exact."""
    threads_n, calls = 8, 100_000
    tel = mevobs.configure(
        exporter="otlp",
        endpoint=f"http://127.0.0.1:{sink.port}",
        sample_ratio=0.0,
        log_destination="none",
        log_level="WARNING",
        export_interval_seconds=60,
    )

    @mevobs.swap(exchange="uniswap_v2", chain="ethereum")
    def swap(i: int) -> int:
        mevobs.current_operation().record_gas(gas_used=500_000, effective_gas_price_wei=10**12)  # 0.5 ETH
        return i

    def run() -> None:
        for i in range(calls):
            swap(i)

    workers = [threading.Thread(target=run) for _ in range(threads_n)]
    for worker in workers:
        worker.start()
    for worker in workers:
        worker.join()
    assert tel.force_flush(30)
    durations = _latest(sink, "mev.operation.duration")
    costs = _latest(sink, "mev.gas.cost")
    assert len(durations) == 1
    assert sum(p.count for p in next(iter(durations.values()))) == threads_n * calls
    assert sum(_number(p) for p in next(iter(costs.values()))) == threads_n * calls * 0.5
    tel.shutdown()


# -------------------------------------------------------------------- the series cap

SERIES = """
import gc, json, os, sys, time
import mevobs
from mevobs import semconv
from mevobs._state import dropped_counts

def rss():
    with open("/proc/self/statm") as f:
        return int(f.read().split()[1]) * os.sysconf("SC_PAGE_SIZE")

tel = mevobs.configure(
    exporter="otlp", endpoint=sys.argv[1], cardinality_cap=100, max_series_per_metric=int(sys.argv[2]),
    sample_ratio=0.0, log_destination="none", log_level="WARNING", export_interval_seconds=60,
)

@mevobs.arbitrage(strategy="base")
def run(exchange, chain, strategy):
    op = mevobs.current_operation()
    op.set_attribute(semconv.ATTR_EXCHANGE, exchange)
    op.set_attribute(semconv.ATTR_CHAIN, chain)
    op.set_attribute(semconv.ATTR_STRATEGY, strategy)
    op.record_gas(gas_used=100_000, effective_gas_price_wei=10**9)
    op.record_profit(gross_wei=10**15)

run("warm", "up", "x")
gc.collect()
base = rss()
for e in range(100):
    for c in range(100):
        for s in range(10):
            run(f"ex{e}", f"chain{c}", f"s{s}")
ok = tel.force_flush(60)
gc.collect()
series = {spec.name: len(points) for spec, points in tel._fast.table.metrics()}
print(json.dumps({
    "flushed": ok, "rss_mib": (rss() - base) / 2**20, "series": series,
    "series_cap": dropped_counts().get("series_cap", 0), "dropped": dropped_counts(),
}), flush=True)
os._exit(0)  # no second export at exit: the receiver holds exactly one collection
"""
COMBOS = 100 * 100 * 10 + 1  # the warm-up call is one more
PER_CALL = ("mev.operation.duration", "mev.gas.used", "mev.gas.cost", "mev.profit")


def test_100x100x10_label_combinations_stay_within_the_series_cap_and_export_under_4_mib(sink: Sink) -> None:
    """100 exchanges x 100 chains x 10 strategies pass the cardinality cap (100 values
    per label) and stop at the series cap: at most 2000 series + 1 overflow per metric,
    the overflow counted, RSS bounded, and the metrics export, profit included, reaches
    the receiver in requests under gRPC's 4 MiB."""
    cap = 2000
    result = _run(SERIES, f"http://127.0.0.1:{sink.port}", str(cap))
    assert result["flushed"]
    for name in PER_CALL:
        assert result["series"][name] == cap + 1, result["series"]
    assert result["series_cap"] == len(PER_CALL) * (COMBOS - cap)
    assert result["rss_mib"] <= 32, result  # measured +11 MiB
    sizes = [request.ByteSize() for request in sink.metrics]
    assert sizes and max(sizes) < GRPC_LIMIT
    (durations,) = _latest(sink, "mev.operation.duration").values()
    assert len(durations) == cap + 1
    assert sum(p.count for p in durations) == COMBOS
    (profits,) = _latest(sink, "mev.profit").values()
    assert len(profits) == cap + 1
    assert sum(_number(p) for p in profits) == pytest.approx(COMBOS * 0.0009)  # gross 0.001 - gas 0.0001
    (dropped,) = _latest(sink, "mev.telemetry.dropped").values()
    assert {attrs(p.attributes)["reason"]: _number(p) for p in dropped}["series_cap"] == result["series_cap"]


def test_a_metrics_export_past_4_mib_is_split_and_every_series_arrives(sink: Sink) -> None:
    """With a series cap high enough for one collection to weigh more than gRPC's
    limit, the exporter's batches keep each request under it, and nothing is lost."""
    cap = 20_000
    result = _run(SERIES, f"http://127.0.0.1:{sink.port}", str(cap))
    assert result["flushed"]
    sizes = [request.ByteSize() for request in sink.metrics]
    assert sum(sizes) > GRPC_LIMIT  # one collection: as one request it would have been refused
    assert max(sizes) < GRPC_LIMIT
    (durations,) = _latest(sink, "mev.operation.duration").values()
    assert len(durations) == cap + 1
    assert sum(p.count for p in durations) == COMBOS


# ---------------------------------------------------------------------------- fork

FORK = """
import json, os, sys
import mevobs

tel = mevobs.configure(
    exporter="otlp", endpoint=sys.argv[1], service_name="forker", log_destination="none",
    export_interval_seconds=60,
)

@mevobs.swap(exchange="uniswap_v2", chain="ethereum")
def swap(i):
    mevobs.current_operation().record_gas(gas_used=500_000, effective_gas_price_wei=10**12)
    return i

for i in range(100):
    swap(i)
assert tel.force_flush(10)
parent_id = tel.tracer_provider.resource.attributes["service.instance.id"]
pid = os.fork()
if pid == 0:
    for i in range(30):
        swap(i)
    sys.exit(0)  # atexit flushes the child's own pipeline
assert os.waitpid(pid, 0)[1] == 0
for i in range(10):
    swap(i)
tel.shutdown()
print(json.dumps({"parent": parent_id}))
"""


def test_a_forked_child_exports_only_its_own_telemetry_under_a_new_instance_id(sink: Sink) -> None:
    """fork() after configure(): the child exports its own 30 calls (spans and metrics)
    under a service.instance.id of its own; the parent's totals are its 110 calls."""
    parent = _run(FORK, f"http://127.0.0.1:{sink.port}")["parent"]
    durations = _latest(sink, "mev.operation.duration")
    costs = _latest(sink, "mev.gas.cost")
    assert set(durations) == set(costs) and len(durations) == 2 and parent in durations
    (child,) = set(durations) - {parent}
    assert sum(p.count for p in durations[parent]) == 110
    assert sum(_number(p) for p in costs[parent]) == 55.0
    assert sum(p.count for p in durations[child]) == 30
    assert sum(_number(p) for p in costs[child]) == 15.0
    assert _spans_by_instance(sink) == {parent: 110, child: 30}
    with sink.lock:
        names = {
            attrs(rm.resource.attributes)["service.name"]
            for request in sink.metrics
            for rm in request.resource_metrics
        }
    assert names == {"forker"}


POOL = """
import json, multiprocessing, os, sys
import mevobs

tel = mevobs.configure(
    exporter="otlp", endpoint=sys.argv[1], log_destination="none", export_interval_seconds=60,
)

@mevobs.swap(exchange="uniswap_v2", chain="ethereum")
def swap(i):
    mevobs.current_operation().record_gas(gas_used=500_000, effective_gas_price_wei=10**12)
    return os.getpid()

for i in range(100):
    swap(i)
assert tel.force_flush(10)
parent_id = tel.tracer_provider.resource.attributes["service.instance.id"]
context = multiprocessing.get_context("fork")
if sys.argv[2] == "with":
    with context.Pool(4) as pool:  # leaving the block terminates the workers (SIGTERM)
        pids = pool.map(swap, range(800))
else:
    pool = context.Pool(4)
    pids = pool.map(swap, range(800))
    pool.close()
    pool.join()
for i in range(10):
    swap(i)
tel.shutdown()
print(json.dumps({"parent": parent_id, "workers": len(set(pids))}))
"""


@pytest.mark.parametrize("ending", ["with", "close"])
def test_fork_pool_workers_export_all_800_spans_and_their_own_metrics(sink: Sink, ending: str) -> None:
    """multiprocessing fork-pool workers export every span of their 800 calls, whether the
    pool is closed and joined or terminated by leaving ``with Pool()``; each worker's
    metrics are its own, and the parent's totals are its own 110 calls."""
    result = _run(POOL, f"http://127.0.0.1:{sink.port}", ending)
    parent = result["parent"]
    spans = _spans_by_instance(sink)
    assert spans.pop(parent) == 110
    assert sum(spans.values()) == 800
    assert 1 <= len(spans) <= 4
    durations = _latest(sink, "mev.operation.duration")
    assert sum(p.count for p in durations.pop(parent)) == 110
    assert {instance: sum(p.count for p in points) for instance, points in durations.items()} == spans


# -------------------------------------------------------------------------- memory

MEMORY = """
import gc, json, os, sys, time
import mevobs
from mevobs import _exporters
from mevobs._state import dropped_counts
from opentelemetry.sdk.trace.export import SpanExportResult

class Discard:
    '''Takes SDK spans or encoded OTLP payloads, counts them and drops them.'''

    def __init__(self):
        self.records = 0

    def export(self, batch):
        self.records += len(batch)
        return SpanExportResult.SUCCESS

    def export_encoded(self, payload, count):
        self.records += count
        return True

    def force_flush(self, timeout_millis=0):
        return True

    def shutdown(self):
        pass

spans = Discard()
_exporters.EXPORTERS["discard"] = _exporters.ExporterRow(
    "discard", "test: export and drop", lambda settings, signals: _exporters.SignalExporters(spans=spans)
)

def rss():
    with open("/proc/self/statm") as f:
        return int(f.read().split()[1]) * os.sysconf("SC_PAGE_SIZE")

tel = mevobs.configure(exporter="discard", log_destination="none", log_level="WARNING", sample_ratio=1.0)

@mevobs.swap(exchange="uniswap_v2", chain="ethereum")
def swap(i):
    mevobs.current_operation().record_gas(gas_used=21_000 + i % 7, effective_gas_price_wei=10**9)
    return i

WARM, CALLS, PACE = 20_000, 1_000_000, 4096
for i in range(WARM):
    swap(i)
    if i % PACE == PACE - 1:
        tel.force_flush(30)
tel.force_flush(30)
gc.collect()
base = rss()
start = time.monotonic()
for i in range(CALLS):
    swap(i)
    if i % PACE == PACE - 1:
        tel.force_flush(30)  # the worker keeps up: every span is converted and exported
elapsed = time.monotonic() - start
tel.force_flush(30)
gc.collect()
print(json.dumps({
    "rss_mib": (rss() - base) / 2**20, "seconds": elapsed, "exported": spans.records,
    "calls": WARM + CALLS, "dropped": dropped_counts(),
}))
"""


def test_a_million_full_calls_grow_rss_by_at_most_20_mib_once_the_queues_drained() -> None:
    """10^6 calls with every span converted and exported (sample_ratio=1, paced so the
    worker keeps up): RSS after gc and flush is within 20 MiB of where it started."""
    result = _run(MEMORY, timeout=900)
    print(f"\n10^6 full calls: {result['seconds']:.0f} s, RSS +{result['rss_mib']:.1f} MiB")
    assert result["exported"] == result["calls"]
    assert result["dropped"] == {}
    assert result["rss_mib"] <= 20, result
