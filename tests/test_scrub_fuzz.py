"""Fuzzing the scrubber with adversarial text up to 1 MB, with a secret planted in it.

Each example is cheap to build (a few fragments repeated and joined) but aims
at the patterns: long hex, near-URLs, nested and unclosed quotes, runs of
list words, names followed by separators. Every scrub must take under 50 ms
and return the text without the planted secret.

CI runs ``MEVOBS_FUZZ_EXAMPLES`` examples (10 000 by default, under a minute
here); the long run is ``MEVOBS_FUZZ_EXAMPLES=1000000 pytest tests/test_scrub_fuzz.py``.
"""

from __future__ import annotations

import os
import time

from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

import secrets_corpus as corpus
from mevobs._scrub import DEFAULT_LIMIT, scrub_text

MAX_LEN = 1_000_000
BOUND_SECONDS = 0.050

settings.register_profile(
    "mevobs-scrub-fuzz",
    max_examples=int(os.environ.get("MEVOBS_FUZZ_EXAMPLES", "10000")),
    deadline=None,  # timed inside the test, around the scrub only
    suppress_health_check=[HealthCheck.too_slow],
)

FRAGMENTS = (
    "0x", "08c379a0", "ab" * 32, "ab" * 32 + "c", "https://a", "/b", "/v3/", "//", "@", "a:b@", ":", "=",
    "&", "?", "#", "'", '"', '\\"', "\\", "{", "}", "[", "]", "(", ")", ",", ";", " ", "\n", "\t", "eyJ",
    "eyJaaa.", ".", "password", "password=", "api_key", "Authorization: ", "token", "key=", "secret: ",
    "Bearer ", "basic ", "abandon ", "ability ", "zoo ", "abandonx ", "AKIA", "ghp_", "xoxb-", "sk-",
    "-----BEGIN PRIVATE KEY-----", "[REDACTED]", "_", "-", "x" * 63, "a" * 60 + ".",
    "aB3dE5fG7hJ9kL1mN3pQ5rS7", "123456789:", "AA", "…", "été", "\u200b", "0", "9" * 20,
)  # fmt: skip

_M12 = corpus.M12
PLANTED: tuple[tuple[str, tuple[str, ...]], ...] = (
    (corpus.PK, (corpus.PK,)),
    ("0x" + corpus.PK2, (corpus.PK2,)),
    (" ".join(_M12), corpus.windows(_M12)),
    (f"https://mainnet.infura.io/v3/{corpus.INFURA}", (corpus.INFURA,)),
    (f"https://eth-mainnet.g.alchemy.com/v2/{corpus.ALCHEMY}", (corpus.ALCHEMY,)),
    (f"https://bot:{corpus.URL_PASSWORD}@node.internal:8545", (corpus.URL_PASSWORD,)),
    (corpus.JWT, (corpus.JWT,)),
    (f"password={corpus.PASSWORD}", (corpus.PASSWORD,)),
    (f"Authorization: Bearer {corpus.BEARER}\n", (corpus.BEARER,)),
    (f"{{'api_key': '{corpus.MORALIS_KEY}'}}", (corpus.MORALIS_KEY,)),
    (corpus.AWS_ID, (corpus.AWS_ID,)),
    (corpus.GITHUB, (corpus.GITHUB,)),
    (corpus.SLACK, (corpus.SLACK,)),
)


Recipe = tuple[list[tuple[str, int]], int, int]

# A recipe, not the text: a failing example then prints as a few fragments and
# counts rather than a megabyte.
RECIPES = st.tuples(
    st.lists(st.tuples(st.sampled_from(FRAGMENTS), st.integers(1, 1 << 17)), min_size=1, max_size=6),
    st.integers(0, len(PLANTED) - 1),
    st.integers(0, DEFAULT_LIMIT - 600),
)


def build(recipe: Recipe) -> tuple[str, tuple[str, ...]]:
    """The adversarial text with the secret planted at a position the limit keeps."""
    pieces, which, at = recipe
    text = "".join(fragment * min(count, MAX_LEN // len(fragment) + 1) for fragment, count in pieces)[
        :MAX_LEN
    ]
    carrier, secrets = PLANTED[which]
    at = min(at, len(text))
    # Spaces around the secret keep it a token of its own: what the text around
    # it does to the patterns is the point, not gluing it to a longer token.
    return (text[:at] + " " + carrier + " " + text[at:])[:MAX_LEN], secrets


@settings(settings.get_profile("mevobs-scrub-fuzz"))
@given(RECIPES)
def test_adversarial_text_is_scrubbed_fast_and_clean(recipe: Recipe) -> None:
    text, secrets = build(recipe)
    # One wall-clock sample on a shared machine also counts the time the process
    # was not scheduled; over the bound, the call is timed again (at most three
    # times) and the fastest sample must be under it.
    elapsed = float("inf")
    for _ in range(3):
        start = time.perf_counter()
        out = scrub_text(text)
        elapsed = min(elapsed, time.perf_counter() - start)
        if elapsed < BOUND_SECONDS:
            break
    assert elapsed < BOUND_SECONDS, f"{elapsed * 1000:.1f} ms"
    leaked = [s for s in secrets if s in out]
    assert not leaked, (leaked, out[:400])
