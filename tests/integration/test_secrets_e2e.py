"""No secret of the corpus leaves the process, whatever path it takes and whichever way out.

``secrets_bot.py`` plants every case of ``tests/secrets_corpus.py`` in every path
(call arguments, exception messages and stack traces, host log messages, list
attributes, every ``record_*`` argument, security event details, metric labels, a
sqlite statement and its error) in a subprocess configured for one exporter route
and one pipeline. Every byte that leaves it is then searched for every secret:
stdout (console spans and metrics) and stderr, the JSON log file, and the raw
request bodies a receiver on 127.0.0.1 got (OTLP over gRPC and over HTTP, gzip
undone). Secrets are searched case-insensitively and in their JSON-escaped forms.

The bot tags each carrier whose tag can survive scrubbing; every tag must arrive,
so an empty search result means the records were exported and clean, not lost.
"""

from __future__ import annotations

import gzip
import json
import os
import subprocess
import sys
import threading
from collections.abc import Iterator
from concurrent import futures
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any

import grpc
import pytest

import mevobs
import secrets_corpus as corpus

pytestmark = pytest.mark.integration

BOT = Path(__file__).with_name("secrets_bot.py")
TESTS = Path(__file__).parent.parent
# Losses that would make "nothing leaked" mean "nothing was sent".
LOSSES = ("queue_full", "overload", "log_queue_full", "export_failed", "sampling_overflow")
COMMON: dict[str, Any] = {
    "service_name": "secrets-e2e",
    "sample_ratio": 1.0,
    "log_level": "DEBUG",  # dropped-value details are logged too
    "instrument": ["sqlite3"],
    "max_queue_size": 1 << 16,
    "export_interval_seconds": 60,  # metrics leave once, at shutdown
}


# ------------------------------------------------------------------ receivers


class GrpcReceiver(grpc.GenericRpcHandler):
    """Accepts any unary call and keeps its raw request bytes (no protobuf parsing)."""

    def __init__(self) -> None:
        self.bodies: list[tuple[str, bytes]] = []
        self.lock = threading.Lock()
        self.server = grpc.server(
            futures.ThreadPoolExecutor(max_workers=4),
            handlers=[self],
            options=[("grpc.max_receive_message_length", 256 << 20)],
        )
        self.port = self.server.add_insecure_port("127.0.0.1:0")

    def service(self, handler_call_details: Any) -> Any:
        method = handler_call_details.method

        def keep(request: bytes, context: Any) -> bytes:
            with self.lock:
                self.bodies.append((method, request))
            return b""  # an empty Export*ServiceResponse

        return grpc.unary_unary_rpc_method_handler(keep)


class HttpReceiver(ThreadingHTTPServer):
    """Accepts any POST and keeps its raw body, gzip undone."""

    def __init__(self) -> None:
        super().__init__(("127.0.0.1", 0), _Post)
        self.bodies: list[tuple[str, bytes]] = []


class _Post(BaseHTTPRequestHandler):
    server: HttpReceiver

    def do_POST(self) -> None:
        body = self.rfile.read(int(self.headers.get("Content-Length", "0")))
        if self.headers.get("Content-Encoding") == "gzip":
            body = gzip.decompress(body)
        self.server.bodies.append((self.path, body))
        self.send_response(200)
        self.send_header("Content-Type", "application/x-protobuf")
        self.send_header("Content-Length", "0")
        self.end_headers()

    def log_message(self, format: str, *args: Any) -> None:
        pass


@pytest.fixture
def grpc_receiver() -> Iterator[GrpcReceiver]:
    receiver = GrpcReceiver()
    receiver.server.start()
    yield receiver
    receiver.server.stop(grace=None)


@pytest.fixture
def http_receiver() -> Iterator[HttpReceiver]:
    server = HttpReceiver()
    thread = threading.Thread(target=server.serve_forever, args=(0.05,), daemon=True)
    thread.start()
    yield server
    server.shutdown()
    server.server_close()
    thread.join(5)


# ------------------------------------------------------------------ searching


_ESCAPES = (
    lambda text: json.dumps(text)[1:-1],
    lambda text: json.dumps(text, ensure_ascii=False)[1:-1],
    lambda text: repr(text)[1:-1],
)


def variants(secret: str) -> set[bytes]:
    """The secret as bytes, lower-cased: raw, and escaped as JSON or a repr would,
    up to twice (a repr inside a JSON line, JSON inside an exception's repr)."""
    forms = {secret}
    for _ in range(2):
        forms |= {escape(form) for form in forms for escape in _ESCAPES}
    return {form.lower().encode() for form in forms}


def leaks(outputs: dict[str, bytes]) -> list[str]:
    """Every (case, secret, output) where a secret of the corpus was found, with context."""
    found: list[str] = []
    lowered = {name: data.lower() for name, data in outputs.items()}
    for case in corpus.CASES:
        for secret in case.secrets:
            for form in variants(secret):
                for name, data in lowered.items():
                    at = data.find(form)
                    if at >= 0:
                        context = outputs[name][max(0, at - 80) : at + len(form) + 40]
                        found.append(f"{case.id} ({case.path}) in {name}: {context!r}")
    return found


def missing_tags(expected: list[str], outputs: dict[str, bytes]) -> list[str]:
    blob = b"\n".join(outputs.values())
    return [tag for tag in expected if tag.encode() not in blob]


def run_bot(workdir: Path, **options: Any) -> tuple[dict[str, bytes], dict[str, Any]]:
    """Run the bot configured with ``options``; its stdout, stderr and result file."""
    src = Path(mevobs.__file__).parent.parent
    env = {k: v for k, v in os.environ.items() if not k.startswith(("OTEL_", "MEVOBS_"))}
    env["PYTHONPATH"] = os.pathsep.join([str(src), str(TESTS)])
    result = workdir / "result.json"
    args = [f"{name}={json.dumps(value)}" for name, value in {**COMMON, **options}.items()]
    proc = subprocess.run(
        [sys.executable, str(BOT), str(result), str(workdir), *args],
        env=env,
        cwd=workdir,
        capture_output=True,
        timeout=300,
        check=False,
    )
    assert proc.returncode == 0, proc.stderr.decode(errors="replace")[-4000:]
    return {"stdout": proc.stdout, "stderr": proc.stderr}, json.loads(result.read_text())


def log_files(workdir: Path) -> dict[str, bytes]:
    files = {}
    for path in sorted(workdir.glob("bot.log*")):
        data = path.read_bytes()
        files[path.name] = gzip.decompress(data) if path.suffix == ".gz" else data
    return files


def check(outputs: dict[str, bytes], result: dict[str, Any]) -> None:
    lost = {k: v for k, v in result["dropped"].items() if k in LOSSES}
    assert not lost, f"records were lost, the search would prove nothing: {lost}"
    assert not missing_tags(result["expected"], outputs), "planted records did not arrive"
    blob = b"\n".join(outputs.values())
    assert not [tag for tag in result["absent"] if tag.encode() in blob], "a call argument was recorded"
    found = leaks(outputs)
    assert not found, f"{len(found)} secrets left the process:\n" + "\n".join(found[:40])


# ---------------------------------------------------------------------- tests


def test_the_search_finds_every_secret_in_its_unscrubbed_carrier() -> None:
    """The search can fail: each case's carrier, as planted, holds every secret it names."""
    for case in corpus.CASES:
        carrier = case.text if case.text is not None else f"{case.key}={json.dumps(case.value)}"
        found = leaks({"carrier": carrier.encode()})
        for secret in case.secrets:
            assert any(f"{case.id} ({case.path}) in carrier" in line for line in found), (case.id, secret)
        assert len([line for line in found if line.startswith(f"{case.id} ")]) >= len(case.secrets)


@pytest.mark.parametrize("pipeline", ["fast", "api"])
def test_console_spans_metrics_and_the_json_log_file_hold_no_secret(tmp_path: Path, pipeline: str) -> None:
    outputs, result = run_bot(
        tmp_path,
        exporter="console",
        log_destination="file",
        log_path=str(tmp_path / "bot.log"),
        pipeline=pipeline,
    )
    files = log_files(tmp_path)
    assert files, "no log file was written"
    assert b'"name":' in outputs["stdout"] and b"mev.operation.duration" in outputs["stdout"]
    check({**outputs, **files}, result)


@pytest.mark.parametrize("pipeline", ["fast", "api"])
def test_raw_otlp_grpc_requests_hold_no_secret(
    tmp_path: Path, grpc_receiver: GrpcReceiver, pipeline: str
) -> None:
    outputs, result = run_bot(
        tmp_path,
        exporter="otlp",
        endpoint=f"http://127.0.0.1:{grpc_receiver.port}",
        log_destination="stderr",
        pipeline=pipeline,
    )
    methods = {method.rsplit("/", 2)[-2] for method, _ in grpc_receiver.bodies}
    assert methods == {
        "opentelemetry.proto.collector.trace.v1.TraceService",
        "opentelemetry.proto.collector.metrics.v1.MetricsService",
        "opentelemetry.proto.collector.logs.v1.LogsService",
    }
    bodies = {f"grpc {i} {method}": body for i, (method, body) in enumerate(grpc_receiver.bodies)}
    check({**outputs, **bodies}, result)


def test_raw_otlp_http_requests_hold_no_secret(tmp_path: Path, http_receiver: HttpReceiver) -> None:
    outputs, result = run_bot(
        tmp_path,
        exporter="otlp-http",
        endpoint=f"http://127.0.0.1:{http_receiver.server_address[1]}",
        log_destination="none",
    )
    assert {path for path, _ in http_receiver.bodies} == {"/v1/traces", "/v1/metrics", "/v1/logs"}
    bodies = {f"http {i} {path}": body for i, (path, body) in enumerate(http_receiver.bodies)}
    check({**outputs, **bodies}, result)
