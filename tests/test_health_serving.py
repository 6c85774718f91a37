"""HealthServer under hostile or heavy traffic: idle floods, probe storms, slowloris,
huge headers, keep-alive, bounded connections, shared readiness runs, fast rebinding.

The 1 000-connection tests raise this process's soft open-files limit (both ends of
every connection live here) and are skipped only when the hard limit forbids it.
"""

from __future__ import annotations

import http.client
import json
import re
import resource
import socket
import subprocess
import sys
import threading
import time
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import Any

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

import mevobs
from mevobs.guards._health_http import _parse_head

#: Both ends of 1 000 connections, the storm client's, and headroom; the server
#: admits at most a quarter of the soft limit, so this also lets it take 1 000.
_FILES_NEEDED = 4400


@pytest.fixture
def many_files() -> Iterator[None]:
    soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    if hard != resource.RLIM_INFINITY and hard < _FILES_NEEDED:
        pytest.skip(f"RLIMIT_NOFILE hard limit {hard} < {_FILES_NEEDED}: cannot hold 1 000 connections")
    wanted = _FILES_NEEDED * 2 if hard == resource.RLIM_INFINITY else min(hard, _FILES_NEEDED * 2)
    resource.setrlimit(resource.RLIMIT_NOFILE, (max(soft, wanted), hard))
    yield
    resource.setrlimit(resource.RLIMIT_NOFILE, (soft, hard))


def probe(port: int, path: str = "/healthz", head: bytes = b"") -> tuple[int, float]:
    """One probe on a fresh connection: (status, seconds)."""
    start = time.perf_counter()
    with socket.create_connection(("127.0.0.1", port), timeout=10) as sock:
        sock.sendall(f"GET {path} HTTP/1.1\r\nHost: probe\r\nConnection: close\r\n".encode() + head + b"\r\n")
        data = b""
        while chunk := sock.recv(65536):
            data += chunk
    return int(data.split(b" ", 2)[1]), time.perf_counter() - start


def process_threads() -> int:
    status = Path("/proc/self/status").read_text()
    return int(next(line.split()[1] for line in status.splitlines() if line.startswith("Threads:")))


def closed_by_server(sock: socket.socket, timeout: float) -> bool:
    """True once the peer has closed ``sock`` (EOF or reset), False if still open after ``timeout``."""
    sock.settimeout(timeout)
    try:
        return sock.recv(1) == b""
    except (ConnectionResetError, BrokenPipeError):
        return True
    except TimeoutError:
        return False


# A probe storm from its own process (so the client does not share the server's
# GIL): N non-blocking sockets connect at once and one selector loop drives them.
_STORM = r"""
import json, selectors, socket, sys, time
port, path, n = int(sys.argv[1]), sys.argv[2], int(sys.argv[3])
request = f"GET {path} HTTP/1.1\r\nHost: storm\r\nConnection: close\r\n\r\n".encode()
sel, born, data, out = selectors.DefaultSelector(), {}, {}, []
for _ in range(n):
    s = socket.socket()
    s.setblocking(False)
    s.connect_ex(("127.0.0.1", port))
    born[s], data[s] = time.perf_counter(), b""
    sel.register(s, selectors.EVENT_WRITE)
def done(s, outcome):
    out.append([time.perf_counter() - born[s], outcome])
    sel.unregister(s)
    s.close()
deadline = time.perf_counter() + 10
while len(out) < n and time.perf_counter() < deadline:
    for key, events in sel.select(0.5):
        s = key.fileobj
        if events & selectors.EVENT_WRITE:
            error = s.getsockopt(socket.SOL_SOCKET, socket.SO_ERROR)
            if error:
                done(s, f"connect errno {error}")
                continue
            s.send(request)
            sel.modify(s, selectors.EVENT_READ)
            continue
        try:
            chunk = s.recv(65536)
        except OSError as exc:
            done(s, type(exc).__name__)
            continue
        data[s] += chunk
        if not chunk:
            done(s, int(data[s].split(b" ", 2)[1]) if data[s] else "closed without an answer")
out += [[10.0, "timeout"]] * (n - len(out))
print(json.dumps(out))
"""


def storm(port: int, path: str, n: int = 1000) -> list[tuple[float, Any]]:
    done = subprocess.run(
        [sys.executable, "-c", _STORM, str(port), path, str(n)], capture_output=True, text=True, timeout=60
    )
    assert done.returncode == 0, done.stderr
    return [(seconds, outcome) for seconds, outcome in json.loads(done.stdout)]


def p99(seconds: list[float]) -> float:
    return sorted(seconds)[int(len(seconds) * 0.99) - 1]


class TestFloods:
    def test_a_thousand_idle_connections_cost_no_threads_and_are_closed_after_the_idle_timeout(
        self, many_files: None
    ) -> None:
        """1 000 silent connections: the process stays under 50 threads, /healthz answers
        in under 100 ms meanwhile, and the server closes every one after idle_timeout."""
        with mevobs.HealthServer(port=0, interval=None, idle_timeout=3.0) as server:
            connected = time.monotonic()
            idle = [socket.create_connection(("127.0.0.1", server.port)) for _ in range(1000)]
            try:
                deadline = time.monotonic() + 5
                while server.open_connections < 1000 and time.monotonic() < deadline:
                    time.sleep(0.01)
                assert server.open_connections == 1000  # all accepted, none answered or dropped yet
                assert threading.active_count() < 50
                assert process_threads() < 50
                latencies = [probe(server.port)[1] for _ in range(10)]
                assert server.open_connections >= 1000  # the idle ones were still open during the probes
                assert max(latencies) < 0.1, latencies
                assert closed_by_server(idle[0], timeout=6)
                assert time.monotonic() - connected > 2.9  # not before its idle timeout
                assert all(closed_by_server(sock, timeout=2) for sock in idle)
                assert server.open_connections == 0
            finally:
                for sock in idle:
                    sock.close()

    @pytest.mark.parametrize("path", ["/healthz", "/readyz"])
    def test_a_thousand_simultaneous_probes_all_answer_with_p99_under_500_ms(
        self, path: str, many_files: None
    ) -> None:
        """1 000 probes connecting at once: every one is answered 200 (no timeout, refusal
        or reset), p99 < 500 ms; on /readyz the checks never run twice at once and at
        most max_check_runs_per_second runs start in any second."""
        lock, state = threading.Lock(), {"runs": 0, "running": 0, "most": 0}

        def node() -> bool:
            with lock:
                state["runs"] += 1
                state["running"] += 1
                state["most"] = max(state["most"], state["running"])
            time.sleep(0.02)  # an RPC round trip
            with lock:
                state["running"] -= 1
            return True

        async def exporter() -> None:
            pass

        checks = {"node": node, "exporter": exporter}
        with mevobs.HealthServer(port=0, interval=None, checks=checks) as server:
            start = time.monotonic()
            results = storm(server.port, path)
            elapsed = time.monotonic() - start
        outcomes = [outcome for _, outcome in results]
        assert outcomes == [200] * 1000, {o: outcomes.count(o) for o in set(outcomes)}
        worst = p99([seconds for seconds, _ in results])
        assert worst < 0.5, f"p99 {worst * 1000:.0f} ms"
        if path == "/readyz":
            assert state["most"] == 1
            assert 1 <= state["runs"] <= 5 * (elapsed + 1)

    def test_slowloris_and_a_huge_header_neither_stall_probes_nor_crash_the_server(self) -> None:
        """Clients trickling a header a byte a second are cut off at idle_timeout; a 1 MB
        header gets 431 (or a reset) without the server reading it all; probes meanwhile
        answer in under 100 ms and the server serves on afterwards."""
        with mevobs.HealthServer(port=0, interval=None, idle_timeout=2.0) as server:
            slow = [socket.create_connection(("127.0.0.1", server.port)) for _ in range(20)]
            opened = time.monotonic()
            for sock in slow:
                sock.sendall(b"GET /healthz HTTP/1.1\r\nX-Slow: ")
            huge: dict[str, Any] = {}

            def send_huge() -> None:
                try:
                    with socket.create_connection(("127.0.0.1", server.port), timeout=10) as sock:
                        sock.sendall(b"GET /healthz HTTP/1.1\r\nX-Huge: " + b"a" * 1_000_000 + b"\r\n\r\n")
                        huge["answer"] = sock.recv(65536)
                except OSError as exc:
                    huge["error"] = exc

            sender = threading.Thread(target=send_huge)
            sender.start()
            latencies, cut_off = [], set()
            while time.monotonic() - opened < 4:
                for i, sock in enumerate(slow):
                    if i not in cut_off:
                        try:
                            sock.send(b"a")
                        except OSError:
                            cut_off.add(i)
                latencies += [probe(server.port)[1] for _ in range(3)]
                time.sleep(1)
            sender.join(15)
            assert not sender.is_alive()
            assert huge.get("answer", b"").startswith(b"HTTP/1.1 431") or isinstance(
                huge.get("error"), (ConnectionResetError, BrokenPipeError)
            ), huge
            assert all(i in cut_off or closed_by_server(sock, 1) for i, sock in enumerate(slow))
            assert max(latencies) < 0.1, latencies
            assert probe(server.port)[0] == 200
            for sock in slow:
                sock.close()

    def test_when_full_the_least_recently_active_idle_connection_makes_room(self) -> None:
        with mevobs.HealthServer(port=0, interval=None, max_connections=10) as server:
            idle = [socket.create_connection(("127.0.0.1", server.port)) for _ in range(10)]
            deadline = time.monotonic() + 5
            while server.open_connections < 10 and time.monotonic() < deadline:
                time.sleep(0.01)
            assert probe(server.port)[0] == 200
            assert closed_by_server(idle[0], timeout=2)
            assert not closed_by_server(idle[-1], timeout=0.2)
            for sock in idle:
                sock.close()


class TestReadiness:
    def test_healthz_answers_while_a_check_blocks_the_check_loop_and_readyz_reports_it(self) -> None:
        """/healthz never touches the check loop: an async check that blocks the loop does
        not delay liveness, and /readyz answers 503 once the run outlives every timeout + 1 s."""

        async def blocks_the_loop() -> None:
            time.sleep(2.0)  # the mistake a check can make: sync I/O inside async def

        mevobs.register_health_check("blocker", blocks_the_loop, timeout=0.2)
        try:
            with mevobs.HealthServer(port=0, interval=None) as server, ThreadPoolExecutor(1) as pool:
                readiness = pool.submit(probe, server.port, "/readyz")
                time.sleep(0.2)
                latencies = [probe(server.port)[1] for _ in range(5)]
                code, seconds = readiness.result(10)
        finally:
            mevobs.unregister_health_check("blocker")
        assert max(latencies) < 0.1, latencies
        assert code == 503 and 1.1 < seconds < 1.9  # the deadline: 0.2 s + 1 s, not the 2 s block

    def test_probes_arriving_during_a_run_share_it(self) -> None:
        runs = []

        def slow() -> bool:
            runs.append(1)
            time.sleep(0.5)
            return True

        checks = {"slow": slow}
        with (
            mevobs.HealthServer(port=0, interval=None, checks=checks) as server,
            ThreadPoolExecutor(50) as pool,
        ):
            answers = list(pool.map(lambda _: probe(server.port, "/readyz")[0], range(50)))
        assert answers == [200] * 50
        assert len(runs) == 1

    def test_probes_over_the_rate_get_the_latest_result_never_more_than_a_second_old(self) -> None:
        """With probes back to back, runs start at most max_check_runs_per_second times a
        second, yet a failure shows in the answers within about a second."""
        state: dict[str, Any] = {"ok": True, "runs": 0}

        def node() -> bool:
            state["runs"] += 1
            return bool(state["ok"])

        with mevobs.HealthServer(
            port=0, interval=None, checks={"node": node}, max_check_runs_per_second=2
        ) as server:
            connection = http.client.HTTPConnection("127.0.0.1", server.port, timeout=10)
            start, codes = time.monotonic(), []
            while time.monotonic() - start < 1.5:
                connection.request("GET", "/readyz")
                response = connection.getresponse()
                response.read()
                codes.append(response.status)
            assert set(codes) == {200} and len(codes) > 20
            assert state["runs"] <= 4  # two in the first second, two in the next half
            state["ok"] = False
            flipped = time.monotonic()
            while True:
                connection.request("GET", "/readyz")
                response = connection.getresponse()
                response.read()
                if response.status == 503:
                    break
                assert time.monotonic() - flipped < 1.25
            connection.close()


class TestProtocol:
    def test_keep_alive_serves_many_requests_on_one_connection(self) -> None:
        with mevobs.HealthServer(port=0, interval=None) as server:
            connection = http.client.HTTPConnection("127.0.0.1", server.port, timeout=5)
            connection.connect()
            first = connection.sock
            for path in ("/healthz", "/readyz", "/nope", "/healthz"):
                connection.request("GET", path)
                response = connection.getresponse()
                response.read()
                assert response.getheader("Connection") == "keep-alive"
            assert connection.sock is first and response.status == 200
            connection.close()

    def test_pipelined_requests_are_answered_in_order_and_http_1_0_closes(self) -> None:
        with mevobs.HealthServer(port=0, interval=None) as server:
            with socket.create_connection(("127.0.0.1", server.port), timeout=5) as sock:
                sock.sendall(
                    b"GET /healthz HTTP/1.1\r\n\r\nGET /nope HTTP/1.1\r\n\r\nGET /healthz HTTP/1.0\r\n\r\n"
                )
                data = b""
                while chunk := sock.recv(65536):  # ends: the HTTP/1.0 request closes the connection
                    data += chunk
            statuses = re.findall(rb"HTTP/1\.1 (\d{3})", data)
            assert statuses == [b"200", b"404", b"200"]
            assert data.count(b"Connection: close") == 1

    def test_a_client_that_pipelines_without_reading_is_cut_off_not_buffered(self) -> None:
        """Requests keep coming but the answers are never read: once an answer is stuck and
        8 KiB more wait behind it, the server closes the connection, holding no more."""
        with mevobs.HealthServer(port=0, interval=None) as server:
            requests = b"GET /healthz HTTP/1.1\r\nHost: p\r\n\r\n" * 2000
            with socket.socket() as sock:
                sock.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, 4096)  # before connect: a small window
                sock.settimeout(10)
                sock.connect(("127.0.0.1", server.port))
                with pytest.raises((ConnectionResetError, BrokenPipeError)):
                    for _ in range(2000):  # up to 140 MB
                        sock.sendall(requests)
            assert probe(server.port)[0] == 200

    @pytest.mark.parametrize(
        ("request_bytes", "status"),
        [
            (b"POST /healthz HTTP/1.1\r\nContent-Length: 2\r\n\r\nhi", b"405"),
            (b"GET /healthz\r\n\r\n", b"400"),
            (b"GET /healthz HTTP/2.0\r\n\r\n", b"400"),
            (b"GET /healthz HTTP/1.1\r\n folded: header\r\n\r\n", b"400"),
            (b"GET /healthz HTTP/1.1\r\nHost : x\r\n\r\n", b"400"),
            (b"GET http://probe/healthz/?verbose=1 HTTP/1.1\r\n\r\n", b"200"),
        ],
    )
    def test_malformed_or_unsupported_requests_get_an_error_and_the_connection_closes(
        self, request_bytes: bytes, status: bytes
    ) -> None:
        with (
            mevobs.HealthServer(port=0, interval=None) as server,
            socket.create_connection(("127.0.0.1", server.port), timeout=5) as sock,
        ):
            sock.sendall(request_bytes)
            answer = sock.recv(65536)
            assert answer.split(b" ")[1] == status
            if status != b"200":
                assert b"Connection: close" in answer and closed_by_server(sock, 2)

    def test_head_answers_headers_only_and_401_names_the_scheme(self) -> None:
        with mevobs.HealthServer(port=0, interval=None, token="s3cret") as server:
            connection = http.client.HTTPConnection("127.0.0.1", server.port, timeout=5)
            connection.request("HEAD", "/healthz", headers={"Authorization": "Bearer s3cret"})
            response = connection.getresponse()
            assert response.status == 200 and response.read() == b""
            assert int(response.getheader("Content-Length") or 0) > 0
            connection.request("GET", "/readyz")
            response = connection.getresponse()
            assert response.status == 401 and json.loads(response.read()) == {"status": "unauthorized"}
            assert (response.getheader("WWW-Authenticate") or "").startswith("Bearer")
            connection.close()

    @settings(max_examples=200, deadline=None)
    @given(st.binary(max_size=2000))
    def test_the_head_parser_never_raises(self, head: bytes) -> None:
        _parse_head(head + b"\r\n\r\n")

    @settings(max_examples=30, deadline=None)
    @given(st.binary(min_size=1, max_size=20000))
    def test_arbitrary_bytes_never_stop_the_server(self, garbage: bytes) -> None:
        with socket.create_connection(("127.0.0.1", _shared_server().port), timeout=5) as sock:
            try:
                sock.sendall(garbage)
                sock.shutdown(socket.SHUT_WR)
                sock.recv(65536)
            except (ConnectionResetError, BrokenPipeError):
                pass
        assert probe(_shared_server().port)[0] == 200


_SHARED: list[mevobs.HealthServer] = []


def _shared_server() -> mevobs.HealthServer:
    """One server for every hypothesis example (closed at the end of the module)."""
    if not _SHARED:
        _SHARED.append(mevobs.HealthServer(port=0, interval=None))
    return _SHARED[0]


@pytest.fixture(autouse=True, scope="module")
def _close_shared_server() -> Iterator[None]:
    yield
    for server in _SHARED:
        server.close()


@pytest.mark.skipif(not Path("/proc/net/tcp").exists(), reason="reads TIME_WAIT sockets from /proc/net/tcp")
def test_a_restarted_server_rebinds_its_port_at_once_despite_time_wait() -> None:
    """The server closes first (Connection: close), so its side of the connection sits
    in TIME_WAIT; a plain socket cannot bind the port then, a new HealthServer can."""
    server = mevobs.HealthServer(port=0, interval=None)
    port = server.port
    assert probe(port)[0] == 200
    server.close()
    time_wait = [
        line.split()
        for line in Path("/proc/net/tcp").read_text().splitlines()[1:]
        if line.split()[3] == "06"  # TIME_WAIT
    ]
    assert any(int(fields[1].split(":")[1], 16) == port for fields in time_wait)
    with socket.socket() as plain, pytest.raises(OSError):
        plain.bind(("127.0.0.1", port))
    with mevobs.HealthServer(port=port, interval=None) as again:
        assert probe(again.port)[0] == 200
