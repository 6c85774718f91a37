"""The fast pipeline: the worker that turns finished operations into spans and logs.

Callers hand over finished operations (``_fastcall``) and log records (the
queueing log handler); a worker thread converts them at the export boundary
(``_records``: scrubbing, truncation), offers exemplars to the metric slots for
the traces that are kept, and batches spans and log records for the outputs
(OTLP encoders, SDK exporters, JSON lines); a sender thread does the network I/O
so a slow collector never stalls conversion, and a writer thread does the
stream and file I/O so a stalled stderr never stalls either.

Every queue is bounded. Past the high-water mark of the span queue, traces with
nothing important in them are shed first; past its capacity everything is, and
each loss is counted on ``mev.telemetry.dropped`` with its reason. Metrics never
pass through here: they are exact in their slots whatever the load.
"""

from __future__ import annotations

import collections
import logging
import os
import threading
import time
import weakref
from collections.abc import Callable, Mapping, Sequence
from typing import Any, Protocol

from mevobs import semconv
from mevobs._fastcall import FastSink
from mevobs._logs import BOUNDARY
from mevobs._records import OperationLog, SpanFields, operation_log, operation_record
from mevobs._slots import Exemplar, HistogramSlot, SlotTable
from mevobs._state import LOGGER, STATE, on_fork_in_child, yield_gil

_MASK64 = (1 << 64) - 1
_new_tuple = tuple.__new__
BATCH_SPANS = 512
"""Spans per export request (also split by size by the encoders)."""
BATCH_SECONDS = 0.2
"""Longest a converted span or log record waits for its batch."""
IDLE_POLL = 0.02
"""How often an idle worker looks at its queue (it never blocks a caller to be woken).

Each look needs the GIL. A trading thread that never releases it (a busy loop)
gives it up only when the interpreter forces a switch, at whatever bytecode it is
running: the call in progress then waits for the worker. Fewer looks mean fewer
such interruptions; at 10 000 calls/s a look every 5 ms put one call in 600
behind the worker (p99.9 of 150-580 us), every 20 ms about one in 3 000 (47-92 us).
A flush or a shutdown wakes the worker at once."""
CHUNK = 64
"""Items converted between two yields of the GIL (about 300 us of conversion). A
yield hands the GIL to a thread that asked for it; to a busy caller that took it
back meanwhile, the worker then waits a switch interval for its next chunk, so
small chunks starve the worker behind a busy caller."""
MAX_SENDS = 16
"""Batches waiting for the sender past which the worker waits for it (twice as many
are shed and counted: a stop or a flush while the collector is gone)."""


class SpanOutput(Protocol):
    """Where converted spans go: an OTLP encoder with its exporter, or an SDK exporter."""

    def add(self, span: SpanFields) -> None: ...

    def add_operation(self, op: Any) -> None:
        """A finished fast-path operation (``add(span_fields(op))``, or a shortcut to it)."""

    def add_foreign(self, span: Any) -> None:
        """A span another instrumentation made (an SDK ``ReadableSpan``)."""

    def take(self) -> Callable[[], bool] | None:
        """The buffered spans as one send job (run on the sender thread), or None."""

    def pending(self) -> int: ...

    def shutdown(self) -> None: ...


class LogOutput(Protocol):
    """Where log records go: JSON lines to a stream or file, OTLP log records."""

    def emit(self, record: logging.LogRecord) -> None: ...

    def take(self) -> Callable[[], bool] | None: ...

    def pending(self) -> int: ...

    def shutdown(self) -> None: ...


class FastPipeline(FastSink):
    """Owns the slots, the queues and the threads of one ``configure()``."""

    def __init__(
        self,
        *,
        table: SlotTable,
        span_output: SpanOutput | None,
        log_outputs: Sequence[LogOutput],
        sample_ratio: float,
        slow_seconds: float,
        slow_by_kind: Mapping[str, float] | None = None,
        max_queue: int = 8192,
        high_water: float = 0.75,
        exemplars: bool = True,
    ) -> None:
        self.table = table
        self.sample_threshold = min(int(sample_ratio * (1 << 64)), 1 << 64)
        self.slow_ns = {"": int(slow_seconds * 1e9)}
        self.slow_ns.update({k: int(v * 1e9) for k, v in (slow_by_kind or {}).items()})
        self.span_output = span_output
        self.log_outputs = list(log_outputs)
        self.max_queue = max_queue
        self.high_water = int(max_queue * high_water)
        self.exemplars = exemplars
        self._queue: collections.deque[tuple[Any, ...]] = collections.deque()
        self._queued = 0  # spans waiting in the queue
        self._count_lock = threading.Lock()
        self._sends: collections.deque[tuple[Callable[[], bool], int]] = collections.deque()
        self._wake = threading.Event()
        self._send_wake = threading.Event()
        self._idle = threading.Event()
        self._stop = False
        self._worker_ident: int | None = None
        self._threads: list[threading.Thread] = []
        self._lock = threading.Lock()
        self._pid = os.getpid()
        #: Run in a forked child after the reset (the builder re-creates exporters there).
        self.fork_hooks: list[Callable[[], None]] = []
        _PIPELINES.add(self)

    # -------------------------------------------------------------- callers

    def submit_trace(self, ops: list[Any], important: bool) -> None:
        if self.span_output is None:
            return
        count = len(ops)
        with self._count_lock:
            after = self._queued + count
            full = after > self.max_queue
            if full or (not important and after > self.high_water):
                reason = "queue_full" if full else "overload"
            else:
                reason = ""
                self._queued = after
        if reason:
            STATE.dropped(reason, "", count)
            return
        self._queue.append(("t", ops))
        self._ensure_started()

    def export_early(self, ops: list[Any]) -> None:
        STATE.dropped("sampling_overflow", "", len(ops))
        self.submit_trace(ops, True)

    def submit_log(self, op: Any, level: int) -> None:
        if len(self._queue) >= self.max_queue:
            STATE.dropped("log_queue_full")
            return
        self._queue.append(("l", op, level))
        self._ensure_started()

    def submit_record(self, record: logging.LogRecord) -> None:
        """A log record written on another thread (the queueing handler)."""
        if len(self._queue) >= self.max_queue:
            STATE.dropped("log_queue_full")
            return
        self._queue.append(("r", record))
        self._ensure_started()

    def submit_foreign(self, span: Any) -> None:
        """An SDK span of another instrumentation, outside any mevobs operation."""
        if self.span_output is None:
            return
        self.submit_trace([span], True)

    def on_worker(self) -> bool:
        return threading.get_ident() == self._worker_ident

    # --------------------------------------------------------------- worker

    def _ensure_started(self) -> None:
        if self._threads or self._stop:
            return
        with self._lock:
            if self._threads or self._stop:
                return
            worker = threading.Thread(target=self._run, name="mevobs-worker", daemon=True)
            sender = threading.Thread(target=self._send_loop, name="mevobs-sender", daemon=True)
            self._threads = [worker, sender]
            worker.start()
            sender.start()

    def _run(self) -> None:
        self._worker_ident = threading.get_ident()
        last_batch = time.monotonic()
        queue = self._queue
        while True:
            if not queue:
                self._idle.set()
                if self._stop:
                    self._cut_batches()
                    return
                self._wake.wait(IDLE_POLL)
                self._wake.clear()
                if time.monotonic() - last_batch >= BATCH_SECONDS:
                    self._cut_batches()
                    last_batch = time.monotonic()
                continue
            self._idle.clear()
            if len(self._sends) >= MAX_SENDS and not self._stop:
                # The sender is behind (a slow collector, or a burst): converting more
                # would only shed converted batches at its door, whatever they hold.
                # Wait instead; the bounded queue in front of the worker sheds what
                # callers submit meanwhile, successful traces first.
                self._wake.wait(IDLE_POLL)
                self._wake.clear()
                continue
            for _ in range(CHUNK):
                if not queue:
                    break
                item = queue.popleft()
                try:
                    self._handle(item)
                except Exception as exc:  # a bad record must not kill the worker
                    STATE.dropped("recorder_error", f"worker: {type(exc).__name__}")
            output = self.span_output
            if output is not None and output.pending() >= BATCH_SPANS:
                self._cut_batches()
                last_batch = time.monotonic()
            yield_gil()  # yield the GIL: a caller waits for one chunk at most

    def _handle(self, item: tuple[Any, ...]) -> None:
        kind = item[0]
        if kind == "t":
            ops = item[1]
            with self._count_lock:
                self._queued -= len(ops)
            output = self.span_output
            if output is None:
                return
            for op in ops:
                if getattr(op, "_sink", None) is self:
                    output.add_operation(op)
                    if self.exemplars:
                        self._offer_exemplars(op)
                else:
                    output.add_foreign(op)
        elif kind == "l":
            entry = operation_log(item[1], item[2])
            if entry.exc is None and self._only_handler(entry.level):
                self._emit_operation(entry)
            else:
                LOGGER.handle(operation_record(entry))
        else:
            self._emit(item[1])

    def _only_handler(self, level: int) -> bool:
        """Whether this pipeline's handler is all a record of ``level`` on the ``mevobs``
        logger would reach: no other handler there or above it, no filter but the
        boundary's (which leaves a clean record without an exception as it is). Then
        nobody would see the stdlib record, and the outputs need not have it made."""
        logger = LOGGER
        if logger.disabled or logger.filters != [BOUNDARY]:
            return False
        ours = False
        for handler in logger.handlers:
            if type(handler) is FastLogHandler and handler.pipeline is self and handler.level <= level:
                ours = True
            elif type(handler) is not logging.NullHandler:
                return False
        parent = logger.parent if logger.propagate else None
        while parent is not None:
            if parent.handlers:
                return False
            parent = parent.parent if parent.propagate else None
        return ours

    def _emit_operation(self, entry: OperationLog) -> None:
        """:meth:`_emit` of ``operation_record(entry)``; the record is made only for an
        output that cannot render the entry itself."""
        record: logging.LogRecord | None = None
        for output in self.log_outputs:
            try:
                emit = getattr(output, "emit_operation", None)
                if emit is None or not emit(entry):
                    if record is None:
                        record = operation_record(entry)
                    output.emit(record)
            except Exception as exc:
                STATE.dropped("recorder_error", f"log output: {type(exc).__name__}")
        self._cut_full_logs()

    def _emit(self, record: logging.LogRecord) -> None:
        for output in self.log_outputs:
            try:
                output.emit(record)
            except Exception as exc:
                STATE.dropped("recorder_error", f"log output: {type(exc).__name__}")
        self._cut_full_logs()

    def _cut_full_logs(self) -> None:
        for output in self.log_outputs:
            if output.pending() >= BATCH_SPANS:
                self._cut_batches()
                break

    def _offer_exemplars(self, op: Any) -> None:
        bundle = op._bundle
        if bundle is None:
            return
        end = op._wall_ns + op._duration_ns
        # HistogramSlot.offer_exemplar inlined, the Exemplar built by tuple.__new__ (its
        # class's own __new__ is a Python function): this runs for every kept span.
        bundle.duration.exemplars[op._dur_index] = _new_tuple(
            Exemplar, (op._duration_ns / 1e9, end, op._trace_id, op._span_id)
        )
        if op._gas_index >= 0:
            gas = bundle.others.get(semconv.GAS_USED.name)
            if isinstance(gas, HistogramSlot):
                gas.offer_exemplar(
                    op._gas_index, Exemplar(float(op._gas_used), end, op._trace_id, op._span_id)
                )

    def _cut_batches(self) -> None:
        outputs: list[Any] = [self.span_output, *self.log_outputs]
        for output in outputs:
            if output is None:
                continue
            count = output.pending()
            job = output.take()
            if job is None:
                continue
            if len(self._sends) >= 2 * MAX_SENDS:  # stopping on a dead collector: shed, count
                STATE.dropped("queue_full", "sender", count)
                continue
            self._sends.append((job, count))
            self._send_wake.set()

    def _send_loop(self) -> None:
        sends = self._sends
        while True:
            if not sends:
                if self._stop and not self._threads[0].is_alive():
                    return
                self._send_wake.wait(0.05)
                self._send_wake.clear()
                continue
            job, count = sends.popleft()
            try:
                ok = job()
            except Exception:
                ok = False
            if not ok:
                STATE.dropped("export_failed", "", count)
            self._wake.set()  # a worker waiting for room in the send queue has it

    # ----------------------------------------------------------- lifecycle

    def flush(self, timeout: float) -> bool:
        """Convert and send everything queued; False if ``timeout`` passed first."""
        deadline = time.monotonic() + timeout
        if not self._threads:
            return True
        if self.on_worker():
            return False  # a handler flushing from the worker would wait for itself
        while self._queue or not self._idle.is_set():
            self._wake.set()
            if time.monotonic() > deadline:
                return False
            time.sleep(0.001)
        done = threading.Event()

        def mark() -> bool:
            done.set()
            return True

        with self._lock:
            self._cut_batches()
            self._sends.append((mark, 0))
            self._send_wake.set()
        return done.wait(max(0.0, deadline - time.monotonic()))

    def shutdown(self, timeout: float) -> bool:
        """Flush within ``timeout``, then stop the threads (daemons: never block exit) and
        the outputs; an output that does not stop in what is left of ``timeout`` (a log
        file on a stalled pipe) is left to finish on a daemon thread."""
        deadline = time.monotonic() + timeout
        ok = self.flush(timeout)
        self._stop = True
        self._wake.set()
        self._send_wake.set()
        # What arrived after the flush (records logged while it ran) is converted and
        # sent before the outputs close: an exporter shut down under a send fails it.
        for thread in list(self._threads):
            if thread.ident != threading.get_ident():
                thread.join(max(0.0, deadline - time.monotonic()))
        ok = ok and not any(thread.is_alive() for thread in self._threads)
        outputs: list[Any] = [self.span_output, *self.log_outputs]
        closing = [
            threading.Thread(target=_shutdown_quietly, args=(output,), name="mevobs-shutdown", daemon=True)
            for output in outputs
            if output is not None
        ]
        for thread in closing:
            thread.start()
        for thread in closing:
            thread.join(max(0.0, deadline - time.monotonic()))
        return ok and not any(thread.is_alive() for thread in closing)

    def after_fork_in_child(self) -> None:
        """A forked child: the parent's threads do not exist here, its locks may be held,
        and what it queued or batched is the parent's to export. Start empty, with an empty
        slot table (the child's totals are its own), then run :attr:`fork_hooks`; the
        threads start with the child's first record."""
        self._queue.clear()
        self._sends.clear()
        self._queued = 0
        self._threads = []
        self._worker_ident = None
        self._lock = threading.Lock()
        self._count_lock = threading.Lock()
        self._wake = threading.Event()
        self._send_wake = threading.Event()
        self._idle = threading.Event()
        self._pid = os.getpid()
        if self._stop:
            return  # shut down in the parent: stays down
        for output in [self.span_output, *self.log_outputs]:
            if output is not None:
                output.take()  # the parent's batch: dropped unsent, never exported twice
                reset = getattr(output, "after_fork_in_child", None)
                if reset is not None:
                    reset()
        self.table = self.table.empty_like()
        for hook in self.fork_hooks:
            hook()


def _shutdown_quietly(output: Any) -> None:
    try:
        output.shutdown()
    except Exception:
        STATE.dropped("export_failed", "shutdown")


class FastLogHandler(logging.Handler):
    """The ``mevobs`` logger's handler in the fast path: a record written on any
    thread is queued (formatting and I/O happen on the worker and the writer);
    records the worker itself builds are handled there at once."""

    def __init__(self, pipeline: FastPipeline) -> None:
        super().__init__()
        self.pipeline = pipeline

    def handle(self, record: logging.LogRecord) -> bool:
        # No handler lock: the pipeline's queue is the synchronisation.
        if self.pipeline.on_worker():
            self.pipeline._emit(record)
        else:
            self.pipeline.submit_record(record)
        return True

    def emit(self, record: logging.LogRecord) -> None:
        self.handle(record)


_PIPELINES: weakref.WeakSet[FastPipeline] = weakref.WeakSet()


def _reset_pipelines_in_child() -> None:
    for pipeline in list(_PIPELINES):
        pipeline.after_fork_in_child()


on_fork_in_child(_reset_pipelines_in_child)
