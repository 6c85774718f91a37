"""Cost of the secret scrubber: per short attribute value, and per byte of long text.

Run: PYTHONPATH=src python benchmarks/scrub.py [--repeat N]

Short values are the common case (amounts, symbols, exchange names, addresses,
hashes under their own keys). Long text is adversarial: one shape per pattern
that a backtracking scrubber would have been quadratic on, at 1 KB, 40 KB and
1 MB, scrubbed with the default limit (so the large ones are cut first) and
without a limit (the cost per byte of the patterns themselves). Times are the
fastest of ``--repeat`` runs of CPU time of this process, so other processes on
a shared machine do not count.
"""

from __future__ import annotations

import argparse
import time
from collections.abc import Callable

from mevobs._scrub import bip39_words, scrub_value

SHORT_VALUES: tuple[tuple[str, object], ...] = (
    ("mev.amount.in", "1000000000000000000"),
    ("mev.token.in", "WETH"),
    ("mev.exchange", "uniswap_v3"),
    ("mev.chain", "arbitrum"),
    ("mev.slippage.bp", "-12"),
    ("mev.profit.net_eth", "0.0123"),
    ("mev.tx.hash", "0x" + "ab" * 32),
    ("mev.tx.to", "0x" + "cd" * 20),
    ("mev.pool", "WETH/USDC 0.05%"),
    ("mev.rpc.method", "eth_sendRawTransaction"),
    ("mev.block.number", 19_000_000),
    ("mev.gas.cost_eth", 0.0021),
)

SHAPES: tuple[tuple[str, Callable[[int], str]], ...] = (
    ("revert hex", lambda n: "execution reverted: 0x" + "08c379a0" * (n // 8)),
    ("65-hex runs", lambda n: ("ab" * 32 + "c ") * (n // 66)),
    ("url slashes", lambda n: "https://a" + "/b" * (n // 2)),
    ("query params", lambda n: "https://a/?" + "key=v&" * (n // 6)),
    ("pairs", lambda n: "password=" * (n // 9)),
    ("quotes", lambda n: "a:'a:\"" * (n // 6)),
    ("long names", lambda n: ("a" * 60 + ": ") * (n // 62)),
    ("list words", lambda n: "abandon ability " * (n // 16)),
    ("eleven words", lambda n: ("able " * 11 + "zzz ") * (n // 60)),
    ("base64", lambda n: "aB3+/" * (n // 5)),
    ("random tokens", lambda n: "aB3dE5fG7hJ9kL1mN3pQ5rS7 " * (n // 25)),
    ("jwt heads", lambda n: "eyJ" * (n // 3)),
    (
        "log lines",
        lambda n: (
            ("nonce too low for 0x" + "ab" * 20 + " via https://x.io/v3/" + "cd" * 16 + "\n") * (n // 86)
        ),
    ),
)


def _best(repeat: int, fn: Callable[[], object], inner: int = 1) -> float:
    best = float("inf")
    for _ in range(repeat):
        start = time.process_time()
        for _ in range(inner):
            fn()
        best = min(best, (time.process_time() - start) / inner)
    return best


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--repeat", type=int, default=7)
    args = parser.parse_args()
    bip39_words()
    print("short values (ns per scrub_value call)")
    total = 0.0
    for key, value in SHORT_VALUES:
        ns = _best(args.repeat, lambda k=key, v=value: scrub_value(k, v), inner=20_000) * 1e9
        total += ns
        print(f"  {key:22} {str(value)[:26]:28} {ns:7.0f}")
    print(f"  {'mean':50} {total / len(SHORT_VALUES):7.0f}")
    print()
    print("long text: ms per call with the default limit | ns per byte without a limit")
    sizes = (1_000, 40_000, 1_000_000)
    print(
        f"  {'shape':15}" + "".join(f"{n:>10,}" for n in sizes) + " |" + "".join(f"{n:>10,}" for n in sizes)
    )
    worst = dict.fromkeys(sizes, 0.0)
    for name, make in SHAPES:
        texts = [make(n) for n in sizes]
        limited = [_best(args.repeat, lambda t=t: scrub_value("mev.note", t)) * 1e3 for t in texts]
        unlimited = [
            _best(max(1, args.repeat // 2), lambda t=t: scrub_value("mev.note", t, limit=10**9))
            * 1e9
            / len(t)
            for t in texts
        ]
        for n, ns in zip(sizes, unlimited, strict=True):
            worst[n] = max(worst[n], ns)
        print(
            f"  {name:15}"
            + "".join(f"{ms:10.3f}" for ms in limited)
            + " |"
            + "".join(f"{ns:10.0f}" for ns in unlimited)
        )
    print(f"  {'worst ns/byte':15}{'':30} |" + "".join(f"{worst[n]:10.0f}" for n in sizes))


if __name__ == "__main__":
    main()
