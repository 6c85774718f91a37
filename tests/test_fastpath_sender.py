"""The fast pipeline's worker and sender: a sender slower than the worker makes the
worker wait, it does not make converted batches disappear."""

from __future__ import annotations

import threading
import time
from collections.abc import Callable
from typing import Any

import mevobs
from mevobs._fastpath import BATCH_SPANS, MAX_SENDS, FastPipeline
from mevobs._slots import SlotTable


class SlowOutput:
    """A span output whose every send takes ``seconds`` (a collector under load)."""

    def __init__(self, seconds: float) -> None:
        self.seconds = seconds
        self.batch: list[Any] = []
        self.sent = 0
        self.lock = threading.Lock()

    def add(self, span: Any) -> None:
        self.batch.append(span)

    def add_operation(self, op: Any) -> None:
        self.batch.append(op)

    def add_foreign(self, span: Any) -> None:
        self.batch.append(span)

    def pending(self) -> int:
        return len(self.batch)

    def take(self) -> Callable[[], bool] | None:
        if not self.batch:
            return None
        batch, self.batch = self.batch, []

        def send() -> bool:
            time.sleep(self.seconds)
            with self.lock:
                self.sent += len(batch)
            return True

        return send

    def shutdown(self) -> None:
        pass


def test_a_slow_sender_loses_nothing_the_queue_accepted() -> None:
    """Four times more full batches than the send queue holds, each send 10 ms: every
    span accepted into the worker's queue is sent, none is counted as dropped."""
    output = SlowOutput(0.01)
    pipeline = FastPipeline(
        table=SlotTable(),
        span_output=output,
        log_outputs=[],
        sample_ratio=1.0,
        slow_seconds=1.0,
        max_queue=1_000_000,
    )
    spans = 4 * MAX_SENDS * BATCH_SPANS
    before = mevobs.dropped_counts()
    try:
        for _ in range(spans // 8):
            pipeline.submit_trace([object()] * 8, False)  # spans of another instrumentation
        assert pipeline.flush(30)
        assert output.sent == spans
        assert mevobs.dropped_counts() == before
    finally:
        pipeline.shutdown(5)


class ClosingOutput(SlowOutput):
    """A span output whose sends fail once it is shut down, as the SDK's exporters do."""

    def __init__(self) -> None:
        super().__init__(0.001)
        self.closed = False

    def take(self) -> Callable[[], bool] | None:
        send = super().take()
        if send is None:
            return None

        def checked() -> bool:
            return not self.closed and send()

        return checked

    def shutdown(self) -> None:
        self.closed = True


def test_records_that_arrive_during_the_final_flush_are_sent_before_the_outputs_close() -> None:
    """Shutting down flushes, then stops: what callers (or log records written while the
    flush ran) queued after the flush is converted and sent before any output is shut
    down, so no send meets a closed exporter and nothing is counted as export_failed."""
    output = ClosingOutput()
    pipeline = FastPipeline(
        table=SlotTable(), span_output=output, log_outputs=[], sample_ratio=1.0, slow_seconds=1.0
    )
    flush = pipeline.flush

    def flush_then_more(timeout: float) -> bool:
        ok = flush(timeout)
        for _ in range(3 * BATCH_SPANS // 8):  # arrivals between the flush and the stop
            pipeline.submit_trace([object()] * 8, True)
        return ok

    pipeline.flush = flush_then_more  # type: ignore[method-assign]
    pipeline.submit_trace([object()] * 8, True)
    before = mevobs.dropped_counts()
    assert pipeline.shutdown(10)
    assert output.closed
    assert output.sent == 8 + 3 * BATCH_SPANS
    assert mevobs.dropped_counts() == before
