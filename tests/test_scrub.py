"""The secret scrubber: what it removes, what it keeps, and that it stays linear."""

from __future__ import annotations

import hashlib
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest

import secrets_corpus as corpus
from mevobs._scrub import (
    DEFAULT_LIMIT,
    REDACTED,
    bip39_words,
    is_secret_key,
    looks_unbounded_label,
    scrub_text,
    scrub_text_checked,
    scrub_value,
    scrub_value_checked,
)

FINDINGS = 10  # the first cases of the corpus reproduce the adversarial review


def _scrubbed(case: corpus.Case | corpus.Keep, keep: tuple[str, ...] = ()) -> Any:
    if case.key is None:
        assert case.text is not None
        return scrub_text(case.text, keep=keep)
    return scrub_value(case.key, case.value, keep=keep)


def _best_of(runs: int, fn: Callable[[], object], clock: Callable[[], float] = time.perf_counter) -> float:
    """Seconds of the fastest of ``runs`` calls: the cost of the code, not of a
    neighbour that took the CPU for one of them."""
    best = float("inf")
    for _ in range(runs):
        start = clock()
        fn()
        best = min(best, clock() - start)
    return best


class TestCorpus:
    @pytest.mark.parametrize("case", corpus.CASES, ids=[c.id for c in corpus.CASES])
    def test_secret_is_removed(self, case: corpus.Case) -> None:
        out = _scrubbed(case)
        text = out if isinstance(out, str) else repr(out)
        leaked = [s for s in case.secrets if s in text]
        assert not leaked, f"{case.id} ({case.path}) leaked {leaked} in {text!r}"
        assert REDACTED in text

    @pytest.mark.parametrize("case", corpus.KEEPS, ids=[k.id for k in corpus.KEEPS])
    def test_look_alike_is_kept(self, case: corpus.Keep) -> None:
        expected = case.text if case.key is None else case.value
        assert _scrubbed(case, case.keep) == expected

    def test_corpus_describes_itself(self) -> None:
        """Every case names a known path, carries each of its secrets (or the test
        could not fail) and has a unique id; enough cases beyond the findings."""
        ids = [c.id for c in corpus.CASES] + [k.id for k in corpus.KEEPS]
        assert len(ids) == len(set(ids))
        assert len(corpus.CASES) - FINDINGS >= 30
        assert {c.path for c in corpus.CASES} == set(corpus.PATHS)
        for case in corpus.CASES:
            assert case.secrets and (case.text is None) != (case.key is None), case.id
            carrier = case.text if case.text is not None else repr(case.value)
            for secret in case.secrets:
                assert secret in carrier, (case.id, secret)


class TestFindings:
    """The adversarial review's examples, with the exact output they now get."""

    def test_key_without_keyword(self) -> None:
        key = "4c0883a69102937d6231471b5dbb6204fe5129617082792ae468d01a3f362318"
        assert (
            scrub_text(f"account {key} has insufficient funds")
            == f"account {REDACTED} has insufficient funds"
        )

    def test_whole_message_and_prefixed_mnemonics(self) -> None:
        words = corpus.mnemonic(24)
        assert scrub_text(" ".join(words[:12])) == REDACTED
        assert scrub_text("invalid mnemonic: " + " ".join(words)) == f"invalid mnemonic: {REDACTED}"

    def test_quoted_pairs(self) -> None:
        assert scrub_text("{'api_key': 'abc123', 'password': 'p w', 'chain': 'eth'}") == (
            f"{{'api_key': '{REDACTED}', 'password': '{REDACTED}', 'chain': 'eth'}}"
        )
        assert scrub_text('{"apiKey":"k3y","n":1}') == f'{{"apiKey":"{REDACTED}","n":1}}'

    def test_authorization_without_bearer(self) -> None:
        assert (
            scrub_text("Authorization=eyJhbGciOiJIUzI1NiJ9.eyJzdWIiOiIxIn0.c2ln")
            == f"Authorization={REDACTED}"
        )

    def test_list_values(self) -> None:
        urls = ["https://mainnet.infura.io/v3/9aa3d95b3bc440fa88ea12eaa4456161", "https://rpc.ankr.com/eth"]
        assert scrub_value("mev.rpc.urls", urls) == ["https://mainnet.infura.io/v3/" + REDACTED, urls[1]]

    def test_credential_keys(self) -> None:
        assert scrub_value("wallet.token", "abc") == REDACTED
        assert scrub_value("signer_id", "0x" + "5e" * 32) == REDACTED
        assert scrub_value("signer_id", "kms-7") == "kms-7"

    def test_sqlite_statement(self) -> None:
        statement = (
            "INSERT INTO w VALUES ('0x"
            + "7f" * 32
            + "', 'https://mainnet.infura.io/v3/9aa3d95b3bc440fa88ea12eaa4456161')"
        )
        assert (
            scrub_text(statement)
            == f"INSERT INTO w VALUES ('{REDACTED}', 'https://mainnet.infura.io/v3/{REDACTED}')"
        )


class TestStructure:
    def test_hex64_is_bounded_by_non_hex(self) -> None:
        key = "ab" * 32
        assert scrub_text(f"k {key}x") == f"k {REDACTED}x"
        assert scrub_text(f"data 0x{key}ff") == f"data 0x{key}ff"  # 66 hex digits: calldata, not a key
        assert scrub_text(f"to 0x{'ab' * 20}") == f"to 0x{'ab' * 20}"

    def test_keep_matches_any_case_and_prefix(self) -> None:
        tx = "0x" + "Ab" * 32
        assert scrub_text(f"tx {tx[2:].lower()} mined", keep=[tx]) == f"tx {tx[2:].lower()} mined"
        assert scrub_text(f"tx {tx} mined", keep=["0x" + "cd" * 32]) == f"tx {REDACTED} mined"

    @pytest.mark.parametrize("n", [12, 15, 18, 21, 24])
    def test_mnemonic_lengths_inside_a_sentence(self, n: int) -> None:
        words = corpus.mnemonic(n)
        assert scrub_text(f"restore from {' '.join(words)} failed") == f"restore from {REDACTED} failed"

    def test_eleven_list_words_are_not_a_mnemonic(self) -> None:
        words = corpus.mnemonic(11)
        text = " ".join(words) + " failed"
        assert scrub_text(text) == text

    def test_a_run_longer_than_a_mnemonic_goes_whole(self) -> None:
        words = corpus.mnemonic(30)
        assert scrub_text(", ".join(words)) == REDACTED

    @pytest.mark.parametrize(
        "text",
        [
            "Authorization: Bearer abc.def-ghi",
            "authorization: Basic dXNlcjpwYXNzd29yZA==",
            "AUTHORIZATION=xyz123",
            "Proxy-Authorization: Digest username=bot, response=6629fae49393a05397450978507c4ef1",
            "{'Authorization': 'token abc123'}",
            "GET / HTTP/1.1\r\nAuthorization: AWS4-HMAC-SHA256 Credential=AKID/20240101/s3/aws4\r\nX: y",
        ],
    )
    def test_authorization_in_any_spelling(self, text: str) -> None:
        out = scrub_text(text)
        assert REDACTED in out
        for part in ("abc", "dXNl", "xyz123", "6629fae4", "AKID"):
            assert part not in out

    def test_a_value_is_not_swallowed_by_an_ordinary_name(self) -> None:
        assert scrub_text("note: password=hunter2 retry") == f"note: password={REDACTED} retry"

    def test_password_with_spaces_after_a_colon(self) -> None:
        assert scrub_text("password: correct horse battery staple") == f"password: {REDACTED}"

    def test_prose_words_after_a_colon_are_not_credentials(self) -> None:
        for text in ("unexpected token: '}'", "missing key: amount", "KeyError: 'private_key'"):
            assert scrub_text(text) == text

    def test_userinfo_without_a_scheme(self) -> None:
        assert scrub_text("connect default:s3cretPw@redis:6379") == f"connect default:{REDACTED}@redis:6379"
        assert (
            scrub_text("clone git@github.com:org/repo.git for a@b.io")
            == "clone git@github.com:org/repo.git for a@b.io"
        )

    def test_url_parts(self) -> None:
        assert scrub_text("wss://u:p@x.io/ws/v3/0123456789abcdef0123456789abcdef?token=t&n=1#k") == (
            f"wss://{REDACTED}@x.io/ws/v3/{REDACTED}?token={REDACTED}&n=1#k"
        )


class TestKeys:
    @pytest.mark.parametrize(
        "key",
        [
            "private_key", "privateKey", "PRIVATE_KEY", "mev.api_key", "X-Api-Key", "apikey", "Authorization",
            "password", "db.passwd", "seedPhrase", "mnemonic", "client_secret", "aws_secret_access_key",
            "wallet.token", "token", "access_token", "X-Auth-Token", "id_token", "session_cookie",
            "signing_key", "wallet_key", "credentials", "jwt", "auth",
        ],
    )  # fmt: skip
    def test_secret_keys(self, key: str) -> None:
        assert is_secret_key(key)
        assert scrub_value(key, "anything") == REDACTED

    @pytest.mark.parametrize(
        "key",
        [
            "mev.token", "mev.token.in", "mev.token.out", "token_in", "token0", "tokenAddress",
            "sellToken", "buy_token", "mev.tx.hash", "signer_id", "signer", "wallet_id", "cache_key",
            "pool_key", "poolKey", "public_key", "keyboard", "tokens", "mev.exchange", "author",
        ],
    )  # fmt: skip
    def test_ordinary_keys(self, key: str) -> None:
        assert not is_secret_key(key)

    def test_hash_and_id_keys_keep_their_hex_unless_they_name_key_material(self) -> None:
        value = "0x" + "9c" * 32
        assert scrub_value("mev.tx.hash", value) == value
        assert scrub_value("topics", value) == value
        assert scrub_value("mev.note", value) == REDACTED
        assert scrub_value("wallet_id", value) == REDACTED

    def test_values_keep_their_kind(self) -> None:
        key = "0x" + "3e" * 32
        assert scrub_value("mev.path", ("WETH", key, 3)) == ("WETH", REDACTED, 3)
        assert scrub_value("mev.path", ["WETH", 2.5, True]) == ["WETH", 2.5, True]
        assert scrub_value("mev.gas.used", 21000) == 21000
        assert scrub_value("mev.ok", False) is False
        assert scrub_value("api_key", ["a", "b"]) == REDACTED

    def test_other_objects_become_their_scrubbed_text(self) -> None:
        """What a log formatter would print with str() is scrubbed first."""
        assert (
            scrub_value("mev.config", {"api_key": "abc123", "n": 1}) == f"{{'api_key': '{REDACTED}', 'n': 1}}"
        )
        assert scrub_value("mev.path", ["a", {"password": "x"}]) == ["a", f"{{'password': '{REDACTED}'}}"]
        assert scrub_value("mev.note", None) is None

        class Broken:
            def __str__(self) -> str:
                raise RuntimeError("no")

        assert scrub_value("mev.note", Broken()) == REDACTED


class TestTruncation:
    def test_long_revert_is_cut_first(self) -> None:
        text = "execution reverted: 0x" + "08c379a0" * 5000
        out, truncated = scrub_text_checked(text)
        assert (
            truncated
            and out.startswith("execution reverted:")
            and out.endswith(f"…[truncated {len(text) - 20} chars]")
        )
        assert _best_of(3, lambda: scrub_text(text)) < 0.010

    def test_three_megabyte_message_is_cut_first(self) -> None:
        line = f"nonce too low for 0x{'ab' * 20} via https://x.io/v3/{'cd' * 16} password=x retry\n"
        text = line * (3_000_000 // len(line) + 1)
        out, truncated = scrub_text_checked(text)
        assert truncated and len(out) < DEFAULT_LIMIT * 2 and "cd" * 16 not in out
        assert _best_of(3, lambda: scrub_text(text)) < 0.010

    def test_marker_counts_what_was_dropped(self) -> None:
        out, truncated = scrub_text_checked("a b " * 100, limit=10)
        assert truncated and out == "a b a b a …[truncated 390 chars]"
        assert scrub_text_checked("short", limit=10) == ("short", False)

    def test_a_key_cut_by_the_limit_leaves_nothing_of_it(self) -> None:
        key = "0x" + "5d" * 32
        for cut in range(11, 11 + len(key)):
            out = scrub_text("signer is " + key + " ok", limit=cut)
            assert "5d5d" not in out, cut

    def test_a_mnemonic_cut_by_the_limit_leaves_no_word_of_it(self) -> None:
        words = corpus.mnemonic(24)
        text = "restoring from " + " ".join(words) + " now"
        for cut in range(16, len(text), 7):
            out = scrub_text(text, limit=cut)
            assert not any(w in out.split() for w in words[:11]), (cut, out)

    def test_checked_values_report_truncation(self) -> None:
        value, truncated = scrub_value_checked("mev.note", ["ok", "x" * 50], limit=20)
        assert truncated and value[0] == "ok" and value[1].startswith("…[truncated")
        assert scrub_value_checked("mev.note", "ok") == ("ok", False)


class TestLinearTime:
    """Each shape is one that made a backtracking pattern super-linear before, or
    that targets one of the current patterns; 1 MB of it is scrubbed quickly and
    the cost without a limit grows in proportion to the size."""

    SHAPES: tuple[tuple[str, Callable[[int], str]], ...] = (
        ("revert-hex", lambda n: "execution reverted: 0x" + "08c379a0" * (n // 8)),
        ("hex-65-runs", lambda n: ("ab" * 32 + "c ") * (n // 66)),
        ("url-slashes", lambda n: "https://a" + "/b" * (n // 2)),
        ("url-userinfo", lambda n: "https://" + "a:b@" * (n // 4)),
        ("schemes", lambda n: "a://" * (n // 4)),
        ("query", lambda n: "https://a/?" + "key=v&" * (n // 6)),
        ("pairs", lambda n: "password=" * (n // 9)),
        ("quotes", lambda n: "a:'a:\"" * (n // 6)),
        ("unclosed-quote", lambda n: 'password: "' + "x" * n),
        ("long-names", lambda n: ("a" * 60 + ": ") * (n // 62)),
        ("list-words", lambda n: "abandon ability " * (n // 16)),
        ("eleven-words", lambda n: ("able " * 11 + "zzz ") * (n // 60)),
        ("spaces", lambda n: "abandon" + " " * n + "ability"),
        ("jwt-heads", lambda n: "eyJ" * (n // 3)),
        ("jwt-dots", lambda n: "eyJaaa." * (n // 7)),
        ("base64", lambda n: "aB3+/" * (n // 5)),
        ("tokens", lambda n: "aB3dE5fG7hJ9kL1mN3pQ5rS7 " * (n // 25)),
        ("bearer", lambda n: "Bearer " * (n // 7)),
        ("pem", lambda n: "-----BEGIN PRIVATE KEY-----" * (n // 27)),
        ("telegram", lambda n: "123456789:" * (n // 10)),
        ("paths", lambda n: "/v3/" * (n // 4)),
        ("escaped-quotes", lambda n: ("password" + "\\" * 8 + '"": ') * (n // 20)),
        ("doubled-quotes", lambda n: "password: ''''x" * (n // 15)),
        ("quote-runs", lambda n: "'" * n),
        ("escaped-newlines", lambda n: "abandon\\\\n" * (n // 10)),
        ("backslash-n-starts", lambda n: "\\nabc" * (n // 5)),
    )

    @pytest.mark.parametrize(("name", "make"), SHAPES, ids=[s[0] for s in SHAPES])
    def test_one_megabyte_is_fast(self, name: str, make: Callable[[int], str]) -> None:
        text = make(1_000_000)
        assert _best_of(3, lambda: scrub_text(text)) < 0.050, name

    @pytest.mark.parametrize(("name", "make"), SHAPES, ids=[s[0] for s in SHAPES])
    def test_cost_grows_linearly_without_a_limit(self, name: str, make: Callable[[int], str]) -> None:
        """Eight times the input costs well under the 64 times a quadratic pattern would
        (CPU time of this process, so other processes on the machine do not count)."""
        small, large = make(4_000), make(32_000)
        t_small = _best_of(5, lambda: scrub_text(small, limit=10**9), time.process_time)
        t_large = _best_of(5, lambda: scrub_text(large, limit=10**9), time.process_time)
        assert t_large < 24 * t_small + 0.002, name


class TestUnboundedLabel:
    @pytest.mark.parametrize(
        "value",
        [
            "https://mainnet.infura.io/v3/x", "0x" + "ab" * 20, "0x" + "ab" * 32,
            "9aa3d95b3bc440fa88ea12eaa4456161",
            "550e8400-e29b-41d4-a716-446655440000", "1717000000", "rpc.ankr.com", "user@host",
            "aB3dE5fG7hJ9kL1mN3pQ5rS7tU9", "x" * 65, "password=abc", "ghp_" + "a1" * 18,
        ],
    )  # fmt: skip
    def test_unbounded(self, value: str) -> None:
        assert looks_unbounded_label(value)

    @pytest.mark.parametrize(
        "value",
        ["uniswap_v3", "ethereum", "triangular", "eth_call", "WETH", "rate_limited", "42161", "curve-v2"],
    )
    def test_bounded(self, value: str) -> None:
        assert not looks_unbounded_label(value)


def test_wordlist_is_the_bip39_english_list() -> None:
    """The shipped list is byte for byte the BIP-39 English list (its published SHA-256)."""
    path = Path(__file__).parent.parent / "src" / "mevobs" / "_bip39_english.txt"
    digest = hashlib.sha256(path.read_bytes()).hexdigest()
    assert digest == "2f5eed53a4727b4bf8880d8f3f199efc90e58503646d9ff8eff3a2ed3b24dbda"
    assert len(bip39_words()) == 2048
