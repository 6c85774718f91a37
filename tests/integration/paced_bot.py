"""A bot that makes decorated calls on a fixed schedule, for the paced throughput test.

Run in a fresh interpreter, as a bot runs: the throughput it shows is the library's,
not that of a test process carrying the heap and the leftover threads of a whole
suite (whose garbage collections pause every thread, after which the schedule's
catch-up burst would be what is measured). Prints one JSON line: the elapsed time of
the paced calls, the drops they caused by reason, and the CPU time of each thread.

    python paced_bot.py ENDPOINT RATE SECONDS
"""

from __future__ import annotations

import json
import os
import sys
import threading
import time
from collections.abc import Callable

import mevobs


def paced(call: Callable[[int], object], rate: int, seconds: float) -> float:
    """Call ``call`` ``rate * seconds`` times on this thread, on an absolute schedule of
    ``rate`` calls per second (the calls due are made, then the thread sleeps for a
    millisecond, as a bot waiting for its next event does). Returns the elapsed time."""
    total = int(rate * seconds)
    begin = time.perf_counter()
    done = 0
    while done < total:
        due = min(total, int((time.perf_counter() - begin) * rate) + 1)
        while done < due:
            call(done)
            done += 1
        time.sleep(0.001)
    return time.perf_counter() - begin


def thread_cpu() -> dict[str, float]:
    """CPU seconds of each live thread, by name (Linux: /proc/self/task)."""
    names = {t.native_id: t.name for t in threading.enumerate()}
    tick = os.sysconf("SC_CLK_TCK")
    out: dict[str, float] = {}
    for tid in os.listdir("/proc/self/task"):
        try:
            with open(f"/proc/self/task/{tid}/stat") as f:
                fields = f.read().rsplit(")", 1)[1].split()
        except OSError:
            continue
        name = names.get(int(tid), "native threads")
        out[name] = out.get(name, 0.0) + (int(fields[11]) + int(fields[12])) / tick
    return out


def main() -> None:
    endpoint, rate, seconds = sys.argv[1], int(sys.argv[2]), float(sys.argv[3])
    telemetry = mevobs.configure(
        service_name="throughput-bot",
        exporter="otlp",
        endpoint=endpoint,
        sample_ratio=1.0,
        log_destination="none",
        log_level="WARNING",  # a success logs at INFO: spans only
        export_interval_seconds=60.0,  # metrics leave once, on force_flush
        export_timeout_seconds=10.0,
    )

    @mevobs.swap(exchange="paced", chain="ethereum")
    def swap(i: int) -> int:
        return i

    warmup = 2_000  # the connection to the collector is up and every cache is filled
    for i in range(warmup):
        swap(i)
    flushed = telemetry.force_flush(10)
    before = mevobs.dropped_counts()
    cpu_before = thread_cpu()
    elapsed = paced(swap, rate, seconds)
    flushed = telemetry.force_flush(60) and flushed
    cpu = {k: round(v - cpu_before.get(k, 0.0), 2) for k, v in thread_cpu().items()}
    after = mevobs.dropped_counts()
    drops = {k: v - before.get(k, 0) for k, v in after.items() if v != before.get(k, 0)}
    telemetry.shutdown()
    print(json.dumps({"warmup": warmup, "elapsed": elapsed, "flushed": flushed, "drops": drops, "cpu": cpu}))


if __name__ == "__main__":
    main()
