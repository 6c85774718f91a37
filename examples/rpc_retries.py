"""RPC calls with latency, rate limits and retries: every attempt is its own rpc span.

Run: python examples/rpc_retries.py
"""

from __future__ import annotations

import asyncio
import random

import mevobs


class ProviderError(Exception):
    def __init__(self, message: str, status_code: int) -> None:
        super().__init__(message)
        self.status_code = status_code


rng = random.Random(3)


@mevobs.rpc(method="eth_getBalance", provider="https://arb1.example.org/v1/s3cr3tKeyInTheUrl0123")
async def get_balance(address: str) -> int:
    await asyncio.sleep(rng.uniform(0.005, 0.02))
    if rng.random() < 0.4:
        raise ProviderError("429 Too Many Requests", status_code=429)  # outcome rate_limited
    return 10**18


async def with_retries(address: str, attempts: int = 4) -> int:
    for attempt in range(attempts):
        try:
            return await get_balance(address)
        except ProviderError:
            await asyncio.sleep(0.01 * 2**attempt)
    raise RuntimeError("provider keeps rate limiting")


if __name__ == "__main__":
    with mevobs.configure(service_name="rpc-client", exporter="none", log_destination="stdout"):
        print(asyncio.run(with_retries("0x" + "c0" * 20)))
