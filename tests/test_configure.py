"""configure(): settings precedence, validation, no duplicate exporters, globals, a dead collector."""

from __future__ import annotations

import socket
import time
import warnings
from collections.abc import Iterator

import pytest
from pydantic import ValidationError

import mevobs
from mevobs import Settings
from mevobs._state import STATE


@pytest.fixture
def clean_env(monkeypatch: pytest.MonkeyPatch) -> Iterator[pytest.MonkeyPatch]:
    for name in list(__import__("os").environ):
        if name.startswith(("MEVOBS_", "OTEL_")):
            monkeypatch.delenv(name)
    yield monkeypatch


def closed_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


class TestSettings:
    def test_defaults(self, clean_env: pytest.MonkeyPatch) -> None:
        s = Settings.load()
        assert (s.exporter, s.sample_ratio, s.log_format, s.enabled) == ("none", 1.0, "json", True)

    def test_keyword_beats_mevobs_env_beats_otel_env(self, clean_env: pytest.MonkeyPatch) -> None:
        from mevobs._pipeline import resource_for

        def service(**kwargs: object) -> object:
            return resource_for(Settings.load(**kwargs)).attributes["service.name"]

        clean_env.setenv("OTEL_SERVICE_NAME", "from-otel")
        assert service() == "from-otel"
        clean_env.setenv("MEVOBS_SERVICE_NAME", "from-mevobs")
        assert service() == "from-mevobs"
        assert service(service_name="from-kwarg") == "from-kwarg"

    def test_standard_otel_variables(self, clean_env: pytest.MonkeyPatch) -> None:
        """OTEL_* values the SDK reads (endpoint, resource) are left to it; those mevobs
        decides become settings, without counting as the user's explicit choice."""
        clean_env.setenv("OTEL_EXPORTER_OTLP_ENDPOINT", "http://collector:4318")
        clean_env.setenv("OTEL_EXPORTER_OTLP_PROTOCOL", "http/protobuf")
        clean_env.setenv("OTEL_RESOURCE_ATTRIBUTES", "team=mev, region=eu")
        clean_env.setenv("OTEL_TRACES_SAMPLER", "parentbased_traceidratio")
        clean_env.setenv("OTEL_TRACES_SAMPLER_ARG", "0.25")
        s = Settings.load()
        assert s.exporter == "otlp-http" and s.endpoint is None
        assert s.resource_attributes == {}
        assert s.sample_ratio == 0.25
        assert s.model_fields_set == set()
        clean_env.setenv("OTEL_SDK_DISABLED", "true")
        assert Settings.load().enabled is False

    @pytest.mark.parametrize(
        ("kwargs", "field"),
        [
            ({"exporter": "zipkin"}, "exporter"),
            ({"sample_ratio": 1.5}, "sample_ratio"),
            ({"environment": "qa"}, "environment"),
            ({"log_level": "LOUD"}, "log_level"),
            ({"bogus": 1}, "bogus"),
        ],
    )
    def test_invalid_settings_name_the_field(self, kwargs: dict[str, object], field: str) -> None:
        with pytest.raises(ValidationError) as info:
            mevobs.configure(**kwargs)  # type: ignore[arg-type]
        assert field in str(info.value)

    def test_invalid_env_value_names_the_variable(self, clean_env: pytest.MonkeyPatch) -> None:
        from mevobs._settings import SettingsError

        clean_env.setenv("MEVOBS_RESOURCE_ATTRIBUTES", "no-equals-sign")
        with pytest.raises(SettingsError, match=r"^MEVOBS_RESOURCE_ATTRIBUTES='no-equals-sign': "):
            Settings.load()


class TestConfigure:
    def test_configure_twice_never_duplicates_exporters(self, clean_env: pytest.MonkeyPatch) -> None:
        first = mevobs.configure(exporter="console", log_destination="none")
        second = mevobs.configure(exporter="console", log_destination="none")
        assert first._closed
        assert not second._closed
        processors = second.tracer_provider._active_span_processor._span_processors
        assert len(processors) == 1
        from mevobs._state import LOGGER

        assert sum(1 for h in LOGGER.handlers if type(h).__name__ == "StreamHandler") == 0

    def test_disabled_records_nothing(self, clean_env: pytest.MonkeyPatch) -> None:
        mevobs.configure(enabled=False)
        with mevobs.swap(exchange="x") as op:
            assert not op.span.is_recording()

    def test_json_log_lines(self, clean_env: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]) -> None:
        import json

        mevobs.configure(service_name="bot-1", log_destination="stdout", log_format="json")
        with mevobs.swap(exchange="curve") as op:
            op.record_tx(tx_hash="0x" + "cd" * 32)
        mevobs.shutdown()
        line = json.loads(capsys.readouterr().out.strip().splitlines()[-1])
        assert line["level"] == "INFO" and line["logger"] == "mevobs"
        assert line["service.name"] == "bot-1"
        assert line["timestamp"].endswith("Z")
        assert line["trace_id"] == format(op.span.get_span_context().trace_id, "032x")
        assert line["attributes"]["mev.tx.hash"] == "0x" + "cd" * 32

    def test_application_globals_are_left_alone_with_a_warning(self) -> None:
        """Run in a subprocess: OpenTelemetry globals can be set only once per process."""
        import subprocess
        import sys
        import textwrap

        script = textwrap.dedent(
            """
            import warnings
            from opentelemetry import trace
            from opentelemetry.sdk.trace import TracerProvider
            import mevobs
            app = TracerProvider()
            trace.set_tracer_provider(app)
            with warnings.catch_warnings(record=True) as caught:
                warnings.simplefilter("always")
                tel = mevobs.configure(exporter="none", log_destination="none")
            assert trace.get_tracer_provider() is app
            assert any("install_global" in str(w.message) for w in caught), caught
            with mevobs.swap(exchange="x") as op:
                assert op.span.is_recording()
            tel.shutdown()
            print("ok")
            """
        )
        out = subprocess.run([sys.executable, "-c", script], capture_output=True, text=True, timeout=60)
        assert out.stdout.strip() == "ok", out.stderr

    def test_unconfigured_app_providers_receive_mevobs_telemetry(self) -> None:
        import subprocess
        import sys
        import textwrap

        script = textwrap.dedent(
            """
            from opentelemetry import trace
            from opentelemetry.sdk.trace import TracerProvider
            from opentelemetry.sdk.trace.export import SimpleSpanProcessor
            from opentelemetry.sdk.trace.export.in_memory_span_exporter import InMemorySpanExporter
            import mevobs

            @mevobs.swap(exchange="curve")     # decorated before the app installs providers
            def call():
                return 1

            exporter = InMemorySpanExporter()
            provider = TracerProvider()
            provider.add_span_processor(SimpleSpanProcessor(exporter))
            trace.set_tracer_provider(provider)
            call()
            print([s.name for s in exporter.get_finished_spans()])
            """
        )
        out = subprocess.run([sys.executable, "-c", script], capture_output=True, text=True, timeout=60)
        assert out.stdout.strip() == "['swap curve']", out.stderr


@pytest.mark.parametrize("exporter", ["otlp", "otlp-http"])
def test_dead_collector_never_blocks_or_raises(exporter: str, clean_env: pytest.MonkeyPatch) -> None:
    """10 000 calls against a closed local port complete; shutdown returns within 5 s."""
    port = closed_port()
    telemetry = mevobs.configure(
        exporter=exporter,  # type: ignore[arg-type]
        endpoint=f"http://127.0.0.1:{port}",
        log_destination="none",
        export_interval_seconds=0.2,
        max_queue_size=512,
        export_timeout_seconds=1,
    )

    @mevobs.swap(exchange="uniswap_v2", chain="ethereum")
    def call(i: int) -> int:
        mevobs.current_operation().record_gas(gas_used=21_000, effective_gas_price_wei=10**9)
        return i

    started = time.monotonic()
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        assert sum(call(i) for i in range(10_000)) == sum(range(10_000))
    calls_took = time.monotonic() - started
    started = time.monotonic()
    telemetry.shutdown(timeout_seconds=5)
    assert time.monotonic() - started < 5.5
    assert calls_took < 30
    # The bounded queue overflowed or exports failed: either way it was counted.
    assert sum(mevobs.dropped_counts().values()) > 0
    assert STATE.providers is None
