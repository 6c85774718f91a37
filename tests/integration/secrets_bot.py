"""A bot-like script that plants every secret of the corpus in every path mevobs exports.

Run by ``test_secrets_e2e.py`` in a subprocess (its own OpenTelemetry globals, its
own stdout), once per exporter route and pipeline::

    python secrets_bot.py RESULT_JSON WORKDIR [configure keyword=value ...]

Each case's carrier (its text, or ``key=value`` for an attribute case) goes into
call arguments, exception messages (plain, RPC-style, chained, grouped, and the
source line of the raising frame), host log messages and their ``extra``, list
attributes, every ``record_*`` argument, security event details, metric labels and
sqlite statements. Where the text can survive scrubbing, it is prefixed with a tag
(``[cNNN-path]``) that must reach the output: the test checks the tags arrived, so
that "no secret found" cannot mean "nothing exported". Call arguments get a tag of
their own that must not arrive. The result file lists both kinds of tags and
``mevobs.dropped_counts()``.
"""

from __future__ import annotations

import contextlib
import importlib.util
import json
import logging
import sqlite3
import sys
from collections.abc import Callable
from decimal import Decimal
from pathlib import Path
from typing import Any

import mevobs
import secrets_corpus as corpus

LOGGER = logging.getLogger("mevobs")
APP_LOGGER = logging.getLogger("mevobs.bot")  # a child: propagates, but skips the parent's filters


def carrier(case: corpus.Case) -> str:
    """The case as free text: its text, or ``key=value`` as a log line would print it."""
    if case.text is not None:
        return case.text
    value = case.value
    if isinstance(value, (list, tuple)):
        value = json.dumps(list(value))
    return f"{case.key}={value}"


def attribute(case: corpus.Case) -> tuple[str, Any]:
    """The case as one attribute: its own key and value, or its text under a neutral key."""
    if case.key is not None:
        return case.key, case.value
    return "bot.note", case.text


class RpcError(Exception):
    """What web3 libraries raise for a JSON-RPC error: the response's error object."""


class Holder:
    """A non-string detail whose str() carries the secret (a config object, a URL object)."""

    def __init__(self, text: str) -> None:
        self.text = text

    def __str__(self) -> str:
        return f"Holder(url={self.text!r})"


def sql_literal(text: str) -> str:
    return "'" + text.replace("'", "''") + "'"


def sql_identifier(text: str) -> str:
    return '"' + text.replace('"', '""') + '"'


def source_module(workdir: Path, texts: list[tuple[str, str]]) -> Any:
    """A module whose function ``fail_i`` raises on a source line holding the text of
    ``texts[i]`` as a string literal, after its tag: a traceback prints that line,
    read back from the file."""
    lines = []
    for i, (tag, text) in enumerate(texts):
        raising = f"_ = {tag!r}; raise RuntimeError('signer load failed' + {text!r}[:0])"
        lines.append(f"def fail_{i}():\n    {raising}\n")
    path = workdir / "bot_signer.py"
    path.write_text("\n".join(lines))
    spec = importlib.util.spec_from_file_location("bot_signer", path)
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def run(workdir: Path) -> tuple[list[str], list[str]]:
    """Plant every case in every path; return the tags that must reach the output and
    those that must not (call arguments: mevobs never records them)."""
    expected: list[str] = []
    absent: list[str] = []
    conn = sqlite3.connect(":memory:")  # after configure(): the instrumentation wraps connect
    sources = [(f"[c{n:03d}-source]", carrier(c)) for n, c in enumerate(corpus.CASES)]
    expected += [tag for tag, _ in sources]
    signer = source_module(workdir, sources)
    for n, case in enumerate(corpus.CASES):

        def tag(path: str, n: int = n) -> str:
            found = f"[c{n:03d}-{path}]"
            expected.append(found)
            return found

        absent.append(f"[c{n:03d}-argument]")
        # Each cursor is closed, as docs/getting-started.md advises: a failing statement under
        # the sqlite3 instrumentation leaves a reference cycle holding its cursor, which the
        # garbage collector frees on whichever thread it runs in, and CPython 3.11's sqlite3
        # loses the error of a failed statement when a cursor of the same connection is
        # finalized on another thread in between ("SystemError: ... returned NULL without
        # setting an exception").
        with contextlib.closing(conn.cursor()) as cursor:
            plant(case, tag, absent[-1], getattr(signer, f"fail_{n}"), cursor)
    conn.close()
    return expected, absent


def plant(
    case: corpus.Case, tag: Callable[[str], str], argument: str, fail: Callable[[], None], cursor: Any
) -> None:
    """One case in every path; ``tag(path)`` names a carrier that must arrive."""
    text = carrier(case)
    key, value = attribute(case)

    # Call arguments are never recorded: the decorated function takes the secret.
    @mevobs.swap(exchange="uniswap_v3", chain="ethereum")
    def swap(secret: str, *, signer_key: str) -> str:
        return "ok"

    swap(text, signer_key=text)
    swap(argument, signer_key=argument)

    # Exception message, from a decorated function.
    @mevobs.arbitrage(strategy="triangular")
    def arbitrage(secret: str) -> None:
        raise ValueError(f"{tag('exc')} {secret}")

    # RPC-style errors: the JSON-RPC error object, and a rate limit with the URL.
    @mevobs.rpc(method="eth_sendRawTransaction", provider=text, endpoints=[tag("endpoints"), text])
    def send_raw(secret: str) -> None:
        raise RpcError({"code": -32000, "message": f"{tag('rpc')} {secret}"})

    @mevobs.rpc(method="eth_call", provider="https://rpc.example/v1")
    def call(secret: str) -> None:
        raise RpcError({"code": 429, "message": f"{tag('ratelimit')} too many requests for {secret}"})

    # Stack traces: a chained cause, an implicit context, a group, a source line.
    @mevobs.swap(exchange="curve")
    def chained(secret: str) -> None:
        try:
            raise LookupError(f"{tag('cause')} {secret}")
        except LookupError as exc:
            raise RuntimeError(f"{tag('wrapped')} signer unavailable") from exc

    @mevobs.swap(exchange="balancer")
    def context(secret: str) -> None:
        try:
            raise OSError(f"{tag('context')} {secret}")
        except OSError:
            raise RuntimeError(f"{tag('during')} retry failed")  # noqa: B904 - the implicit context

    @mevobs.liquidity(exchange="uniswap_v3", action="add")
    def grouped(secret: str) -> None:
        if sys.version_info >= (3, 11):
            raise ExceptionGroup(  # noqa: F821
                f"{tag('group')} batch failed", [ValueError(f"{tag('member')} {secret}")]
            )
        raise ValueError(f"{tag('group')} {tag('member')} {secret}")

    @mevobs.swap(exchange="sushiswap")
    def from_source() -> None:
        fail()

    for fn in (arbitrage, send_raw, call, chained, context, grouped):
        with contextlib.suppress(Exception):
            fn(text)
    with contextlib.suppress(Exception):
        from_source()

    # A verdict of record_error_if is the error.type: the node's error text, here.
    @mevobs.rpc(method="eth_getBlock", record_error_if=lambda result: result.get("error"))
    def get_block() -> dict[str, Any]:
        return {"error": f"{tag('verdict')} {text}"}

    get_block()

    # Bounded labels given a secret by mistake: the span name and static attributes.
    @mevobs.swap(exchange=f"{tag('wrapper_exchange')} {text}", chain=text, strategy=text)
    def mislabelled() -> None:
        pass

    @mevobs.rpc(method=f"{tag('wrapper_method')} {text}")
    def mislabelled_rpc() -> None:
        pass

    mislabelled()
    mislabelled_rpc()

    # Every recorder of an operation, every argument; bad values are dropped, counted.
    with mevobs.swap(exchange="uniswap_v2", chain="ethereum", attributes={key: value}) as op:
        op.set_attribute(key, value)
        op.set_attribute("bot.note", f"{tag('attr')} {text}")
        op.set_attribute("rpc.fallbacks", [tag("list"), text, text])
        op.set_attribute(mevobs.semconv.ATTR_EXCHANGE, f"{tag('label')} {text}")
        op.set_attribute(text, "key-is-the-secret")
        op.record_tx(tx_hash=f"{tag('txhash')} {text}", block_number=text, status=text, to=text)
        op.record_gas(
            gas_used=text, effective_gas_price_wei=text, l1_fee_wei=text, gas_used_for_l1=text,
            coinbase_transfer_wei=text,
        )  # fmt: skip
        op.record_swap(
            token_in=f"{tag('token_in')} {text}", token_out=text, amount_in=text, amount_out=text,
            expected_amount_out=text,
        )  # fmt: skip
        op.record_liquidity(pool=f"{tag('pool')} {text}", amount0=text, amount1=text, liquidity=text)
        op.record_profit(gross_wei=text, usd=text, eth_price_usd=text, expected_wei=text)
        op.record_profit(gross_eth=text)
        op.record_opportunity(text)  # type: ignore[arg-type]
        op.set_outcome(text)  # type: ignore[arg-type]
        op.add_event("bot.checkpoint", {key: value, "note": f"{tag('event')} {text}"})
        # Security event inside an operation: an event on its span, a log, a metric.
        mevobs.record_security_event(
            "manual",
            f"{tag('security')} {text}",
            operation=text,
            exchange=text,
            chain=text,
            detail=f"{tag('detail')} {text}",
            holder=Holder(text),
            items=[text],
            amount=Decimal("1.5"),
            **{key: value},
        )
        # sqlite: the statement (db.statement) and an error that quotes it.
        cursor.execute("SELECT " + sql_literal(f"{tag('sql')} {text}"))
        with contextlib.suppress(sqlite3.Error):
            cursor.execute("SELECT * FROM " + sql_identifier(f"{tag('sqlerr')} {text}"))

    # Outside any operation: security event, gauges whose labels carry the text.
    mevobs.record_security_event("manual", f"{tag('security_out')} {text}", detail=Holder(text))
    mevobs.record_security_event(text, text)  # an unknown kind: dropped, counted
    mevobs.record_pool_liquidity(text, 1.0, exchange=text, chain=text)
    mevobs.record_price_deviation(text, 5, exchange=text)
    mevobs.record_exposure(text, 1, chain=text)
    cursor.execute("SELECT " + sql_literal(f"{tag('sql_out')} {text}"))

    # Host log messages: the application logging on the mevobs logger and a child.
    LOGGER.warning(
        "%s fallback to %s",
        tag("log"),
        text,
        extra={"mevobs": {key: value, "bot.note": f"{tag('extra')} {text}"}, "wallet": text},
    )
    APP_LOGGER.error("%s child logger: %s", tag("child"), text)
    try:
        raise ConnectionError(f"{tag('logexc')} {text}")
    except ConnectionError:
        LOGGER.exception("%s provider down", tag("logexc_msg"))
        APP_LOGGER.exception("%s provider down (child)", tag("childexc_msg"))


def main() -> None:
    result_path, workdir = Path(sys.argv[1]), Path(sys.argv[2])
    options: dict[str, Any] = {}
    for arg in sys.argv[3:]:
        name, _, raw = arg.partition("=")
        options[name] = json.loads(raw)
    mevobs.configure(**options)
    expected, absent = run(workdir)
    mevobs.shutdown(timeout_seconds=30)
    result = {"expected": expected, "absent": absent, "dropped": mevobs.dropped_counts()}
    result_path.write_text(json.dumps(result))


if __name__ == "__main__":
    main()
