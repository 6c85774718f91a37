"""The HTTP side of :class:`~mevobs.HealthServer`: one thread, one selector.

A thread per connection (``http.server``) let 1 000 idle clients cost 1 000
threads; a fixed pool would let as many idle clients starve it. asyncio was
measured too: its per-connection transport and accept task cost two to three
times the CPU, and it answers a burst in batches, so under a storm of
simultaneous probes each waited for the whole burst. Here connections are accepted and
answered in small interleaved batches on one thread, every connection is
bounded in time and number, and ``/readyz`` probes park here, costing nothing,
until the shared run of the checks wakes the thread once for all of them.
"""

from __future__ import annotations

import collections
import concurrent.futures
import contextlib
import email.utils
import json
import os
import re
import selectors
import socket
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any
from urllib.parse import urlsplit

from mevobs._state import LOGGER

if TYPE_CHECKING:
    from mevobs.guards._health import CheckResult

Run = concurrent.futures.Future[list["CheckResult"]]
#: What ``/readyz`` waits on: a run of the checks (None: no checks) and how long to wait.
Readiness = Callable[[], tuple["Run | None", float]]

#: Longest request head (request line and headers) read; longer answers 431.
_MAX_HEAD = 8192
_REASONS = {
    200: "OK",
    400: "Bad Request",
    401: "Unauthorized",
    404: "Not Found",
    405: "Method Not Allowed",
    431: "Request Header Fields Too Large",
    503: "Service Unavailable",
}
_VERSION = re.compile(r"HTTP/1\.[0-9]")
_ENDPOINTS = ["/healthz", "/readyz"]


def listen(host: str, port: int, backlog: int) -> socket.socket:
    """A bound, listening, non-blocking socket; IPv4 first for names that have both."""
    infos = socket.getaddrinfo(host or None, port, type=socket.SOCK_STREAM, flags=socket.AI_PASSIVE)
    infos.sort(key=lambda info: info[0] != socket.AF_INET)
    family, kind, proto, _, address = infos[0]
    sock = socket.socket(family, kind, proto)
    try:
        if os.name == "posix":
            # A restarted bot rebinds its port at once, though the connections
            # of its previous run linger in TIME_WAIT. (Not on Windows, where
            # the flag lets a second live server take the port; nor SO_REUSEPORT,
            # which does the same on Linux.)
            sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        sock.bind(address)
        sock.listen(backlog)  # the kernel caps it at net.core.somaxconn
        sock.setblocking(False)
    except BaseException:
        sock.close()
        raise
    return sock


def default_max_connections() -> int:
    """1024, but at most a quarter of the open-files limit: a flood of health
    connections must leave the bot descriptors for its own sockets."""
    try:
        import resource

        soft = resource.getrlimit(resource.RLIMIT_NOFILE)[0]
    except (ImportError, OSError, ValueError):
        return 1024
    return 1024 if soft == resource.RLIM_INFINITY else max(16, min(1024, soft // 4))


@dataclass(frozen=True)
class _Request:
    method: str
    path: str
    keep_alive: bool
    authorization: str | None


def _parse_head(head: bytes) -> _Request | None:
    """What a probe's request head says, or None when it is not HTTP/1.x."""
    lines = head.decode("latin-1").split("\r\n")
    while lines and not lines[0]:  # RFC 9112 2.2: empty lines before a request may be ignored
        lines.pop(0)
    parts = lines[0].split(" ") if lines else []
    if len(parts) != 3 or not _VERSION.fullmatch(parts[2]):
        return None
    method, target, version = parts
    headers: dict[str, str] = {}
    for line in lines[1:]:
        if not line:
            continue
        name, colon, value = line.partition(":")
        if not colon or not name or name[0] in " \t" or name[-1] in " \t":
            return None  # obsolete line folding, space before the colon: refused, as RFC 9112 asks
        headers.setdefault(name.lower(), value.strip(" \t"))
    tokens = {token.strip().lower() for token in headers.get("connection", "").split(",")}
    keep_alive = "keep-alive" in tokens if version == "HTTP/1.0" else "close" not in tokens
    if "transfer-encoding" in headers or headers.get("content-length", "0") != "0":
        keep_alive = False  # a body is never read: the connection ends with the answer instead
    path = target if target.startswith("/") else urlsplit(target).path
    return _Request(method, path.split("?", 1)[0].rstrip("/"), keep_alive, headers.get("authorization"))


_date_cache: tuple[int, str] = (0, "")


def _http_date() -> str:
    global _date_cache
    now = int(time.time())
    if _date_cache[0] != now:
        _date_cache = (now, email.utils.formatdate(now, usegmt=True))
    return _date_cache[1]


def _response(
    code: int, body: bytes, *, keep_alive: bool, head_only: bool = False, extra: tuple[str, ...] = ()
) -> bytes:
    lines = [
        f"HTTP/1.1 {code} {_REASONS[code]}",
        f"Date: {_http_date()}",
        "Content-Type: application/json",
        f"Content-Length: {len(body)}",
        "Cache-Control: no-store",
        "Connection: keep-alive" if keep_alive else "Connection: close",
        *extra,
    ]
    return ("\r\n".join(lines) + "\r\n\r\n").encode("latin-1") + (b"" if head_only else body)


def _json(body: dict[str, Any]) -> bytes:
    return json.dumps(body).encode()


def _failed(exc: BaseException) -> bytes:
    return _json({"status": "fail", "error": type(exc).__name__, "checks": []})


class _Conn:
    """One client connection, as the front's thread sees it."""

    __slots__ = ("buffer", "closed", "eof", "events", "keep_alive", "out", "scanned", "sock")

    def __init__(self, sock: socket.socket) -> None:
        self.sock = sock
        self.buffer = bytearray()
        self.scanned = 0  # no request head ends before this offset of the buffer
        self.out = b""  # answer bytes the client has not taken yet
        self.keep_alive = True
        self.events = 0  # what the selector watches for
        self.eof = False
        self.closed = False


_Waiting = list[tuple[_Conn, _Request]]


class HttpFront:
    """Serves ``/healthz`` and ``/readyz`` on ``listener`` from its own thread until :meth:`stop`.

    ``authorised`` vets the ``Authorization`` header; ``readiness`` gives the run
    a ``/readyz`` probe waits on (it is called on this thread and must not block).
    """

    def __init__(
        self,
        listener: socket.socket,
        *,
        authorised: Callable[[str | None], bool],
        readiness: Readiness,
        idle_timeout: float,
        max_connections: int,
    ) -> None:
        self.authorised = authorised
        self.readiness = readiness
        self.listener = listener
        self.idle_timeout = idle_timeout
        self.max_connections = max_connections
        # Connections that must act before a deadline (send a request, take an
        # answer), least recently active first; the timeout is the same for all,
        # so that is deadline order and the order to evict in when full.
        self.timed: collections.OrderedDict[_Conn, float] = collections.OrderedDict()
        self.busy: set[_Conn] = set()  # waiting for a run of the checks
        self.waiting: dict[Run, _Waiting] = {}
        self.give_up: dict[Run, float] = {}
        self.finished: collections.deque[Run] = collections.deque()  # appended by the check loop
        self.paused_until = 0.0  # accepting paused: the process is out of descriptors
        self.stopping = False
        self.wake_lock = threading.Lock()
        self.wake_in, self.wake_out = socket.socketpair()
        self.wake_in.setblocking(False)
        self.wake_out.setblocking(False)
        self.selector = selectors.DefaultSelector()
        self.selector.register(listener, selectors.EVENT_READ, "accept")
        self.selector.register(self.wake_in, selectors.EVENT_READ, "wake")
        self.thread = threading.Thread(target=self.run, name="mevobs-health-http", daemon=True)
        self.thread.start()

    @property
    def open_connections(self) -> int:
        return len(self.timed) + len(self.busy)

    def stop(self) -> None:
        self.stopping = True
        self.wake()
        self.thread.join(5)
        with self.wake_lock:
            self.wake_out.close()

    def wake(self) -> None:
        """From any thread: make the front look at its queue (or at ``stopping``)."""
        with self.wake_lock, contextlib.suppress(OSError):  # full: a wake-up is pending already
            self.wake_out.send(b"\0")

    def run(self) -> None:
        try:
            while not self.stopping:
                for key, events in self.selector.select(self.timeout()):
                    try:
                        self.dispatch(key.data, events)
                    except Exception as exc:  # one bad connection must not stop the server
                        LOGGER.debug("health server: %s", type(exc).__name__)
                        if isinstance(key.data, _Conn):
                            self.close(key.data)
                self.expire()
        except Exception as exc:
            LOGGER.warning("health server stopped serving: %s: %s", type(exc).__name__, exc)
        finally:
            for conn in [*self.timed, *self.busy]:
                self.close(conn)
            self.selector.close()
            self.listener.close()
            self.wake_in.close()

    def dispatch(self, target: object, events: int) -> None:
        if isinstance(target, _Conn):
            if events & selectors.EVENT_WRITE:
                self.flush(target)
            if events & selectors.EVENT_READ and not target.closed:
                self.read(target)
        elif target == "accept":
            self.accept()
        else:
            with contextlib.suppress(OSError):
                self.wake_in.recv(4096)
            while self.finished:
                run = self.finished.popleft()
                self.give_up.pop(run, None)
                self.settle(run, self.waiting.pop(run, []))

    def timeout(self) -> float | None:
        soonest = [*self.give_up.values(), *([self.paused_until] if self.paused_until else [])]
        if self.timed:
            soonest.append(next(iter(self.timed.values())))
        return max(0.0, min(soonest) - time.monotonic()) if soonest else None

    def expire(self) -> None:
        now = time.monotonic()
        while self.timed:
            conn, deadline = next(iter(self.timed.items()))
            if deadline > now:
                break
            self.close(conn)
        for run, deadline in list(self.give_up.items()):
            if deadline <= now:  # the run outlived every check's timeout: the check loop is hung
                del self.give_up[run]
                self.answer(self.waiting.pop(run, []), 503, _failed(TimeoutError()))
        if self.paused_until and now >= self.paused_until:
            self.paused_until = 0.0
            self.selector.register(self.listener, selectors.EVENT_READ, "accept")

    def accept(self) -> None:
        for _ in range(64):  # then serve those already connected before accepting more
            try:
                sock, _ = self.listener.accept()
            except (BlockingIOError, InterruptedError, ConnectionAbortedError):
                return
            except OSError as exc:  # out of descriptors: the backlog waits a moment
                LOGGER.debug("health server accept: %s", exc)
                self.selector.unregister(self.listener)
                self.paused_until = time.monotonic() + 0.1
                return
            sock.setblocking(False)
            if len(self.timed) + len(self.busy) >= self.max_connections:
                if not self.timed:  # all busy answering: the newcomer is turned away
                    sock.close()
                    continue
                self.close(next(iter(self.timed)))
            conn = _Conn(sock)
            self.watch(conn)
            self.arm(conn)
            self.read(conn)  # a probe usually sends at once: spare it a trip round the selector

    def arm(self, conn: _Conn) -> None:
        self.timed[conn] = time.monotonic() + self.idle_timeout
        self.timed.move_to_end(conn)

    def watch(self, conn: _Conn) -> None:
        events = (0 if conn.eof else selectors.EVENT_READ) | (selectors.EVENT_WRITE if conn.out else 0)
        if events == conn.events:
            return
        if not conn.events:
            self.selector.register(conn.sock, events, conn)
        elif not events:
            self.selector.unregister(conn.sock)
        else:
            self.selector.modify(conn.sock, events, conn)
        conn.events = events

    def close(self, conn: _Conn) -> None:
        if conn.closed:
            return
        conn.closed = True
        self.timed.pop(conn, None)
        self.busy.discard(conn)
        if conn.events:
            self.selector.unregister(conn.sock)
        conn.sock.close()

    def read(self, conn: _Conn) -> None:
        try:
            data = conn.sock.recv(65536)
        except (BlockingIOError, InterruptedError):
            return
        except OSError:
            self.close(conn)
            return
        if not data:
            conn.eof = True
            if conn in self.busy or conn.out:
                self.watch(conn)  # answer first, then close
            else:
                self.close(conn)
            return
        conn.buffer += data
        if conn in self.busy or conn.out:  # pipelined behind an answer still pending
            if len(conn.buffer) > _MAX_HEAD:
                self.close(conn)
            return
        self.take(conn)

    def take(self, conn: _Conn) -> None:
        """Answer every whole request head in the buffer, until one must wait."""
        while not (conn.closed or conn.out or conn in self.busy):
            end = conn.buffer.find(b"\r\n\r\n", conn.scanned)
            if end < 0 or end + 4 > _MAX_HEAD:
                if end >= 0 or len(conn.buffer) > _MAX_HEAD:
                    body = _json({"status": "request head too large"})
                    self.reply(conn, _response(431, body, keep_alive=False), False)
                elif conn.eof:
                    self.close(conn)
                else:
                    conn.scanned = max(0, len(conn.buffer) - 3)
                return
            head = bytes(conn.buffer[: end + 4])
            del conn.buffer[: end + 4]
            conn.scanned = 0
            self.handle(conn, _parse_head(head))

    def handle(self, conn: _Conn, request: _Request | None) -> None:
        if request is None:
            self.reply(conn, _response(400, _json({"status": "bad request"}), keep_alive=False), False)
            return
        if request.method not in ("GET", "HEAD"):
            body, allow = _json({"status": "method not allowed"}), ("Allow: GET, HEAD",)
            self.reply(conn, _response(405, body, keep_alive=False, extra=allow), False)
            return
        extra: tuple[str, ...] = ()
        if not self.authorised(request.authorization):
            code, body = 401, _json({"status": "unauthorized"})
            extra = ('WWW-Authenticate: Bearer realm="mevobs"',)
        elif request.path == "/healthz":
            code, body = 200, b'{"status": "ok"}'
        elif request.path == "/readyz":
            self.await_readiness(conn, request)
            return
        else:
            code, body = 404, _json({"status": "not found", "endpoints": _ENDPOINTS})
        keep_alive = request.keep_alive
        answer = _response(code, body, keep_alive=keep_alive, head_only=request.method == "HEAD", extra=extra)
        self.reply(conn, answer, keep_alive)

    def await_readiness(self, conn: _Conn, request: _Request) -> None:
        """Park ``conn`` until the shared run ends; one wake-up answers every probe parked on it."""
        try:
            run, deadline = self.readiness()
        except Exception as exc:  # the check loop is closed
            self.answer([(conn, request)], 503, _failed(exc), resume=False)
            return
        if run is None or run.done():
            self.settle(run, [(conn, request)], resume=False)
            return
        self.timed.pop(conn, None)
        self.busy.add(conn)
        waiting = self.waiting.get(run)
        if waiting is None:
            waiting = self.waiting[run] = []
            self.give_up[run] = time.monotonic() + deadline
            run.add_done_callback(self.finished_run)
        waiting.append((conn, request))

    def finished_run(self, run: Run) -> None:
        """On the check loop's thread: hand the run over to the front."""
        self.finished.append(run)
        self.wake()

    def settle(self, run: Run | None, waiting: _Waiting, *, resume: bool = True) -> None:
        try:
            results = run.result(0) if run is not None else []
        except BaseException as exc:  # CancelledError too: the server is closing
            self.answer(waiting, 503, _failed(exc), resume=resume)
            return
        ok = all(r.ok for r in results)
        body = _json({"status": "ok" if ok else "fail", "checks": [r.as_json() for r in results]})
        self.answer(waiting, 200 if ok else 503, body, resume=resume)

    def answer(self, waiting: _Waiting, code: int, body: bytes, *, resume: bool = True) -> None:
        for conn, request in waiting:
            self.busy.discard(conn)
            answer = _response(code, body, keep_alive=request.keep_alive, head_only=request.method == "HEAD")
            self.reply(conn, answer, request.keep_alive)
            if resume:  # requests pipelined behind this one
                self.take(conn)

    def reply(self, conn: _Conn, answer: bytes, keep_alive: bool) -> None:
        if conn.closed:
            return
        conn.keep_alive = keep_alive and not conn.eof and not self.stopping
        try:
            sent = conn.sock.send(answer)
        except (BlockingIOError, InterruptedError):
            sent = 0
        except OSError:
            self.close(conn)
            return
        conn.out = answer[sent:]
        if conn.out:  # the client must take the rest within the idle timeout
            self.arm(conn)
            self.watch(conn)
        else:
            self.answered(conn)

    def flush(self, conn: _Conn) -> None:
        try:
            sent = conn.sock.send(conn.out)
        except (BlockingIOError, InterruptedError):
            return
        except OSError:
            self.close(conn)
            return
        conn.out = conn.out[sent:]
        if not conn.out:
            self.watch(conn)
            self.answered(conn)
            self.take(conn)

    def answered(self, conn: _Conn) -> None:
        if conn.keep_alive:
            self.arm(conn)
        else:
            self.close(conn)
