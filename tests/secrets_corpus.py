"""Secrets the scrubber must remove, and look-alikes it must keep, as data.

Each :class:`Case` names the secret, the text or attribute value that carries
it, the path through mevobs it represents (so an end-to-end test can send it
through the exporters the same way) and the substrings that must not survive.
A case with ``key`` is an attribute value (``scrub_value(key, value)``); one
without is free text (``scrub_text(text)``).

The secrets are generated from a fixed seed when this module is imported, so
the corpus is the same on every run and the repository holds no string that a
secret scanner would take for a live credential.
"""

from __future__ import annotations

import base64
import itertools
import json
import random
import string
import uuid
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

EXCEPTION = "exception message"
STACK_TRACE = "stack trace"
LOG = "log message"
LIST_ATTRIBUTE = "list attribute"
RECORD_ARGUMENT = "record_* argument"
SECURITY_DETAIL = "security detail"
SQLITE = "sqlite statement"
ATTRIBUTE = "span attribute"
PATHS = (EXCEPTION, STACK_TRACE, LOG, LIST_ATTRIBUTE, RECORD_ARGUMENT, SECURITY_DETAIL, SQLITE, ATTRIBUTE)


@dataclass(frozen=True)
class Case:
    """One carrier of one secret (or a few)."""

    id: str
    path: str
    secrets: tuple[str, ...]
    text: str | None = None
    key: str | None = None
    value: Any = None
    notes: str = ""


@dataclass(frozen=True)
class Keep:
    """A value that looks like a secret but must come out unchanged."""

    id: str
    text: str | None = None
    key: str | None = None
    value: Any = None
    keep: tuple[str, ...] = field(default=())


_rnd = random.Random(20240601)
_B62 = string.ascii_letters + string.digits
_B64 = _B62 + "+/"
_B58 = "123456789ABCDEFGHJKLMNPQRSTUVWXYZabcdefghijkmnopqrstuvwxyz"
WORDLIST = (Path(__file__).parent.parent / "src" / "mevobs" / "_bip39_english.txt").read_text().split()


def _pick(alphabet: str, n: int) -> str:
    return "".join(_rnd.choice(alphabet) for _ in range(n))


def _hex(n: int) -> str:
    return _pick("0123456789abcdef", n)


def mnemonic(n: int) -> list[str]:
    """n words from the BIP-39 list (a checksum is not needed to be secret)."""
    return [_rnd.choice(WORDLIST) for _ in range(n)]


def windows(words: list[str], sep: str = " ", width: int = 3) -> tuple[str, ...]:
    """Every run of ``width`` consecutive words: none may survive, not only the whole phrase."""
    return tuple(sep.join(words[i : i + width]) for i in range(len(words) - width + 1))


def _jwt() -> str:
    header = base64.urlsafe_b64encode(b'{"alg":"HS256","typ":"JWT"}').rstrip(b"=").decode()
    claims = json.dumps({"sub": _pick(_B62, 12), "iat": 1717000000 + _rnd.randrange(10**6)}).encode()
    payload = base64.urlsafe_b64encode(claims).rstrip(b"=").decode()
    return f"{header}.{payload}.{_pick(_B62 + '-_', 43)}"


PK = _hex(64)
PK2 = _hex(64)
PK_UPPER = _hex(64).upper()
INFURA = _hex(32)
ALCHEMY = _pick(_B62, 32)
QUICKNODE = _hex(40)
ANKR = _hex(64)
CHAINSTACK = _hex(32)
BLAST = str(uuid.UUID(int=_rnd.getrandbits(128)))
GETBLOCK = _hex(32)
GETBLOCK_UUID = str(uuid.UUID(int=_rnd.getrandbits(128)))
MORALIS_NODE = _hex(24)
MORALIS_KEY = _pick(_B62, 64)
ETHERSCAN = _pick(string.ascii_uppercase + string.digits, 34)
URL_PASSWORD = _pick(_B62, 14) + "!"
BASIC = base64.b64encode(f"bot:{_pick(_B62, 16)}".encode()).decode()
BEARER = _pick(_B62 + "-._~", 40)
JWT = _jwt()
JWT2 = _jwt()
AWS_ID = "AKIA" + _pick(string.ascii_uppercase + "234567", 16)
AWS_SECRET = _pick(_B64, 40)
GCP_KEY = "AIza" + _pick(_B62 + "-_", 35)
GCP_PEM_BODY = _pick(_B64, 64)
AZURE_KEY = _pick(_B64, 86) + "=="
AZURE_SIG = _pick(_B62, 43) + "%3D"
SLACK = f"xoxb-{_rnd.randrange(10**11, 10**12)}-{_rnd.randrange(10**12, 10**13)}-{_pick(_B62, 24)}"
SLACK_HOOK = _pick(_B62, 24)
GITHUB = "ghp_" + _pick(_B62, 36)
GITHUB_PAT = "github_pat_" + _pick(_B62, 22) + "_" + _pick(_B62, 59)
TELEGRAM = f"{_rnd.randrange(10**9, 10**10)}:AA{_pick(_B62 + '-_', 33)}"
DISCORD = _pick(_B62 + "-_", 68)
STRIPE = "sk_live_" + _pick(_B62, 24)
OPENAI = "sk-proj-" + _pick(_B62 + "-_", 48)
PASSWORD = "Tr0ub4dor&3x" + _pick(_B62, 6)
DB_PASSWORD = _pick(_B62, 20)
REDIS_PASSWORD = _pick(_B62, 24)
SOLANA = _pick(_B58, 88)
XPRV = "xprv9s21ZrQH143K" + _pick(_B58, 95)
COOKIE = _pick(_B62, 32)
M12, M15, M18, M21, M24 = (mnemonic(n) for n in (12, 15, 18, 21, 24))
M12B, M24B = mnemonic(12), mnemonic(24)
M12C = mnemonic(12)
FLASHBOTS = _hex(64)
TX_HASH = "0x" + _hex(64)
BLOCK_HASH = "0x" + _hex(64)

CASES: tuple[Case, ...] = (
    # ---- the findings of the adversarial review --------------------------------
    Case("pk-no-keyword", EXCEPTION, (PK,), text=f"account {PK} has insufficient funds"),
    Case("mnemonic-whole-message", EXCEPTION, (" ".join(M12), *windows(M12)), text=" ".join(M12)),
    Case(
        "mnemonic-invalid-24",
        EXCEPTION,
        windows(M24),
        text=f"invalid mnemonic: {' '.join(M24)}",
        notes="used to redact only the first word",
    ),
    Case(
        "dict-repr-pairs",
        EXCEPTION,
        (ALCHEMY, PASSWORD),
        text=f"bad config {{'api_key': '{ALCHEMY}', 'password': '{PASSWORD}', 'chain': 'ethereum'}}",
    ),
    Case("json-apikey", LOG, (MORALIS_KEY,), text=json.dumps({"apiKey": MORALIS_KEY, "chain": "eth"})),
    Case("authorization-eq-jwt", LOG, (JWT,), text=f"request failed: Authorization={JWT}"),
    Case(
        "list-of-rpc-urls",
        LIST_ATTRIBUTE,
        (INFURA, ALCHEMY),
        key="mev.rpc.providers",
        value=[f"https://mainnet.infura.io/v3/{INFURA}", f"https://eth-mainnet.g.alchemy.com/v2/{ALCHEMY}"],
    ),
    Case("wallet-token-key", RECORD_ARGUMENT, (BEARER,), key="wallet.token", value=BEARER),
    Case("signer-id-holding-a-key", ATTRIBUTE, (PK2,), key="signer_id", value="0x" + PK2),
    Case(
        "sqlite-key-and-url",
        SQLITE,
        (PK, INFURA),
        text=(
            "INSERT INTO wallets (label, pk, rpc) VALUES "
            f"('hot', '0x{PK}', 'https://mainnet.infura.io/v3/{INFURA}')"
        ),
    ),
    # ---- raw private keys ------------------------------------------------------
    Case("pk-0x-log", LOG, (PK2,), text=f"loaded signer 0x{PK2} for chain 1"),
    Case("pk-upper", EXCEPTION, (PK_UPPER,), text=f"ValueError: bad key length for {PK_UPPER}"),
    Case(
        "pk-in-traceback",
        STACK_TRACE,
        (PK,),
        text=(
            "Traceback (most recent call last):\n"
            '  File "/srv/bot/main.py", line 12, in <module>\n'
            f"    acct = Account.from_key('0x{PK}')\n"
            "ValueError: The private key must be exactly 32 bytes long"
        ),
    ),
    Case("pk-env", LOG, (FLASHBOTS,), text=f"env: FLASHBOTS_SIGNER_KEY=0x{FLASHBOTS} CHAIN=1"),
    Case(
        "pk-json-keystore",
        LOG,
        (PK2,),
        text=json.dumps({"address": "0x" + "1f" * 20, "privateKey": "0x" + PK2}),
    ),
    Case("pk-record-to", RECORD_ARGUMENT, (PK,), key="mev.tx.to", value="0x" + PK),
    Case("pk-record-token", RECORD_ARGUMENT, (PK2,), key="mev.token.in", value=PK2),
    Case("pk-security-detail", SECURITY_DETAIL, (PK,), key="signer", value="0x" + PK),
    Case("xprv", LOG, (XPRV,), text=f"derived from {XPRV} at m/44'/60'/0'/0/0"),
    Case("solana-base58", LOG, (SOLANA,), text=f"keypair {SOLANA} loaded"),
    # ---- mnemonics -------------------------------------------------------------
    Case("mnemonic-15-log", LOG, windows(M15), text=f"restoring wallet from {' '.join(M15)} ..."),
    Case("mnemonic-18-repr", EXCEPTION, windows(M18), text=f"Mnemonic('{' '.join(M18)}') failed checksum"),
    Case(
        "mnemonic-21-numbered",
        LOG,
        tuple(f"{i}. {a} {i + 1}. {b}" for i, (a, b) in enumerate(itertools.pairwise(M21), 1)),
        text="seed words: " + " ".join(f"{i}. {w}" for i, w in enumerate(M21, 1)),
    ),
    Case("mnemonic-24-json-array", LOG, windows(M24B, '", "'), text=json.dumps({"words": M24B})),
    Case("mnemonic-12-lines", STACK_TRACE, windows(M12B, "\n"), text="phrase was:\n" + "\n".join(M12B)),
    Case("mnemonic-12-upper", EXCEPTION, windows([w.upper() for w in M12C]), text=" ".join(M12C).upper()),
    Case(
        "mnemonic-word-list-attribute",
        LIST_ATTRIBUTE,
        tuple(M12),
        key="mev.recovery.words",
        value=list(M12),
        notes="one word per element",
    ),
    Case("seed-phrase-pair", LOG, windows(M24), text=f"seed phrase: {' '.join(M24)}"),
    # ---- RPC provider URLs -----------------------------------------------------
    Case("infura-https", EXCEPTION, (INFURA,), text=f"cannot reach https://mainnet.infura.io/v3/{INFURA}"),
    Case("infura-wss", LOG, (INFURA,), text=f"ws closed: wss://mainnet.infura.io/ws/v3/{INFURA} code=1006"),
    Case(
        "infura-urllib3",
        EXCEPTION,
        (INFURA,),
        text=(
            "HTTPSConnectionPool(host='sepolia.infura.io', port=443): Max retries exceeded with url: "
            f"/v3/{INFURA} (Caused by NewConnectionError('Failed to establish a new connection'))"
        ),
    ),
    Case(
        "alchemy-https",
        EXCEPTION,
        (ALCHEMY,),
        text=f"HTTPProvider('https://arb-mainnet.g.alchemy.com/v2/{ALCHEMY}')",
    ),
    Case(
        "alchemy-wss", LOG, (ALCHEMY,), text=f"subscribing via wss://eth-mainnet.g.alchemy.com/v2/{ALCHEMY}"
    ),
    Case(
        "quicknode",
        EXCEPTION,
        (QUICKNODE,),
        text=f"429 from https://withered-bold-sea.quiknode.pro/{QUICKNODE}/",
    ),
    Case("ankr", LOG, (ANKR,), text=f"rpc https://rpc.ankr.com/eth/{ANKR} slow"),
    Case(
        "chainstack", EXCEPTION, (CHAINSTACK,), text=f"timeout https://nd-123-456-789.p2pify.com/{CHAINSTACK}"
    ),
    Case("blast", LOG, (BLAST,), text=f"using https://eth-mainnet.blastapi.io/{BLAST}"),
    Case("getblock-path", EXCEPTION, (GETBLOCK,), text=f"502 https://go.getblock.io/{GETBLOCK}"),
    Case(
        "getblock-query",
        LOG,
        (GETBLOCK_UUID,),
        text=f"GET https://eth.getblock.io/mainnet/?api_key={GETBLOCK_UUID}",
    ),
    Case(
        "moralis-path",
        EXCEPTION,
        (MORALIS_NODE,),
        text=f"https://speedy-nodes-nyc.moralis.io/{MORALIS_NODE}/eth/mainnet",
    ),
    Case("moralis-header", LOG, (MORALIS_KEY,), text=f"headers: X-API-Key: {MORALIS_KEY}"),
    Case(
        "etherscan-apikey",
        EXCEPTION,
        (ETHERSCAN,),
        text=(
            "https://api.etherscan.io/api?module=account&action=txlist"
            f"&address=0x{'ab' * 20}&apikey={ETHERSCAN}"
        ),
    ),
    Case(
        "rpc-provider-attribute",
        ATTRIBUTE,
        (INFURA,),
        key="mev.rpc.provider",
        value=f"https://mainnet.infura.io/v3/{INFURA}",
    ),
    # ---- basic auth, bearer, JWT, cookies ------------------------------------------
    Case(
        "url-userinfo",
        EXCEPTION,
        (URL_PASSWORD,),
        text=f"connect https://bot:{URL_PASSWORD}@node.internal:8545 refused",
    ),
    Case("url-userinfo-odd-password", LOG, ("p@ss/w#rd",), text="http://admin:p@ss/w#rd@10.0.0.5:8545/ down"),
    Case("basic-header", LOG, (BASIC,), text=f"Authorization: Basic {BASIC}"),
    Case("basic-lower", EXCEPTION, (BASIC,), text=f"401 with authorization: basic {BASIC}"),
    Case(
        "bearer-http-dump",
        STACK_TRACE,
        (BEARER,),
        text=(
            "POST /rpc HTTP/1.1\r\nHost: relay.example\r\n"
            f"Authorization: Bearer {BEARER}\r\nContent-Type: application/json"
        ),
    ),
    Case(
        "headers-dict",
        EXCEPTION,
        (JWT2,),
        text=f"{{'User-Agent': 'web3.py/6.15', 'Authorization': 'Bearer {JWT2}', 'Accept': '*/*'}}",
    ),
    Case("jwt-bare", LOG, (JWT,), text=f"session {JWT} expired"),
    Case("cookie-header", LOG, (COOKIE,), text=f"Cookie: session={COOKIE}; theme=dark"),
    # ---- cloud and chat credentials ----------------------------------------------
    Case(
        "aws-env",
        LOG,
        (AWS_ID, AWS_SECRET),
        text=f"AWS_ACCESS_KEY_ID={AWS_ID} AWS_SECRET_ACCESS_KEY={AWS_SECRET} AWS_REGION=us-east-1",
    ),
    Case(
        "aws-repr",
        EXCEPTION,
        (AWS_ID, AWS_SECRET),
        text=f"Credentials(access_key='{AWS_ID}', secret_key='{AWS_SECRET}', token=None)",
    ),
    Case("aws-id-bare", LOG, (AWS_ID,), text=f"assumed {AWS_ID} for s3 upload"),
    Case("gcp-api-key", EXCEPTION, (GCP_KEY,), text=f"403 https://sheets.googleapis.com/v4/x?key={GCP_KEY}"),
    Case(
        "gcp-service-account",
        LOG,
        (GCP_PEM_BODY,),
        text=json.dumps(
            {
                "type": "service_account",
                "private_key": f"-----BEGIN PRIVATE KEY-----\n{GCP_PEM_BODY}\n-----END PRIVATE KEY-----\n",
            }
        ),
    ),
    Case(
        "azure-connection-string",
        EXCEPTION,
        (AZURE_KEY,),
        text=f"DefaultEndpointsProtocol=https;AccountName=mevlogs;AccountKey={AZURE_KEY};EndpointSuffix=core.windows.net",
    ),
    Case(
        "azure-sas",
        LOG,
        (AZURE_SIG,),
        text=f"PUT https://mevlogs.blob.core.windows.net/c/b?sv=2022-11-02&ss=b&sp=w&sig={AZURE_SIG}",
    ),
    Case("slack-bot", LOG, (SLACK,), text=f"notifier using {SLACK}"),
    Case(
        "slack-webhook",
        EXCEPTION,
        (SLACK_HOOK,),
        text=f"POST https://hooks.slack.com/services/T0A1B2C3D/B0A1B2C3D/{SLACK_HOOK} failed",
    ),
    Case("github-classic", LOG, (GITHUB,), text=f"git clone https://{GITHUB}@github.com/org/bot.git"),
    Case("github-pat", EXCEPTION, (GITHUB_PAT,), text=f"token {GITHUB_PAT} lacks scope"),
    Case(
        "telegram-url",
        EXCEPTION,
        (TELEGRAM,),
        text=f"https://api.telegram.org/bot{TELEGRAM}/sendMessage timed out",
    ),
    Case("telegram-env", LOG, (TELEGRAM,), text=f"TELEGRAM_BOT_TOKEN={TELEGRAM}"),
    Case(
        "discord-webhook",
        LOG,
        (DISCORD,),
        text=f"https://discord.com/api/webhooks/{_rnd.randrange(10**17, 10**18)}/{DISCORD}",
    ),
    Case("stripe", EXCEPTION, (STRIPE,), text=f"stripe error for {STRIPE}"),
    Case("openai", LOG, (OPENAI,), text=f"llm client key {OPENAI}"),
    # ---- passwords -------------------------------------------------------------
    Case("password-kv", LOG, (PASSWORD,), text=f"login user=bot password={PASSWORD} ok=false"),
    Case("password-colon", EXCEPTION, (PASSWORD,), text=f"secret: {PASSWORD}"),
    Case("postgres-dsn", EXCEPTION, (DB_PASSWORD,), text=f"postgresql://mev:{DB_PASSWORD}@db:5432/trades"),
    Case("redis-url", LOG, (REDIS_PASSWORD,), text=f"redis://:{REDIS_PASSWORD}@cache:6379/0 unreachable"),
    Case(
        "escaped-json",
        LOG,
        (PASSWORD,),
        text='payload="{\\"user\\": \\"bot\\", \\"password\\": \\"' + PASSWORD + '\\"}"',
    ),
    Case(
        "sqlite-update-url",
        SQLITE,
        (ALCHEMY,),
        text=f"UPDATE config SET rpc_url = 'https://eth-mainnet.g.alchemy.com/v2/{ALCHEMY}' WHERE id = 1",
    ),
    Case(
        "security-detail-header",
        SECURITY_DETAIL,
        (BEARER,),
        key="mev.security.detail",
        value=f"Authorization: Bearer {BEARER}",
    ),
    Case("api-key-attribute", ATTRIBUTE, (ALCHEMY,), key="ALCHEMY_API_KEY", value=ALCHEMY),
    # ---- found by the end-to-end test (tests/integration/test_secrets_e2e.py) -----------
    Case(
        "escaped-json-in-rpc-error",
        EXCEPTION,
        (PASSWORD,),
        text=str({"code": -32000, "message": json.dumps(json.dumps({"user": "bot", "password": PASSWORD}))}),
        notes="JSON in a string in a dict repr: the quotes escaped twice",
    ),
    Case(
        "mnemonic-lines-in-repr",
        SECURITY_DETAIL,
        windows(M12B, "\\n"),
        text=repr("phrase was:\n" + "\n".join(M12B)),
        notes="a newline-separated phrase after repr(): words joined by a backslash and an n",
    ),
    Case(
        "sqlite-doubled-quotes",
        SQLITE,
        (PASSWORD,),
        text=f"INSERT INTO cfg (body) VALUES ('{{''user'': ''bot'', ''password'': ''{PASSWORD}''}}')",
    ),
    Case(
        "hash-key-holding-text",
        RECORD_ARGUMENT,
        (PK,),
        key="mev.tx.hash",
        value=f"{TX_HASH} (signed with 0x{PK})",
        notes="a hash key keeps one hex number, not any 64-hex in its text",
    ),
)

KEEPS: tuple[Keep, ...] = (
    Keep("tx-hash-in-keep", text=f"tx {TX_HASH} reverted in block {BLOCK_HASH}", keep=(TX_HASH, BLOCK_HASH)),
    Keep("tx-hash-in-keep-without-0x", text=f"replacing {TX_HASH[2:].upper()}", keep=(TX_HASH,)),
    Keep("tx-hash-key", key="mev.tx.hash", value=TX_HASH),
    Keep("tx-hash-key-without-0x", key="mev.tx.hash", value=TX_HASH[2:]),
    Keep("block-hash-key", key="blockHash", value=BLOCK_HASH),
    Keep("pool-id-key", key="balancer.pool_id", value="0x" + _hex(64)),
    Keep("v4-pool-id-as-address", key="mev.pool.address", value="0x" + _hex(64)),
    Keep("amount", key="mev.amount.in", value="1000000000000000000"),
    Keep("amount-max-uint", key="mev.amount.out", value=str(2**256 - 1)),
    Keep("decimal-text", text="amount_in=1500000000000000000 amount_out=2999.5 slippage=0.3%"),
    Keep("address-value", key="mev.tx.to", value="0x" + _hex(40)),
    Keep("address-checksummed", key="mev.pool.address", value="0x5C69bEe701ef814a2B6a3EDD4B1652CB9cc5aA6f"),
    Keep("address-in-text", text=f"transfer to 0x{_hex(40)} failed: insufficient allowance"),
    Keep("address-in-explorer-url", text=f"see https://etherscan.io/address/0x{_hex(40)}"),
    Keep("token-symbols", key="mev.token.in", value="WETH"),
    Keep("token-symbol-metric", key="mev.token", value="USDC.e"),
    Keep("sell-token", key="sellToken", value="0x" + _hex(40)),
    Keep("exchange", key="mev.exchange", value="uniswap_v3"),
    Keep("pool-name", key="mev.pool", value="WETH/USDC 0.05%"),
    Keep("rpc-error", text="execution reverted: UniswapV2: INSUFFICIENT_OUTPUT_AMOUNT"),
    Keep("nonce", text="nonce too low: next nonce 42, tx nonce 41"),
    Keep(
        "english-11-list-words",
        text="please check your account balance before you submit another order again today",
    ),
    Keep(
        "english-prose",
        text="The quick brown fox jumps over the lazy dog while the bot waits for the next block.",
    ),
    Keep("revert-selector", text="execution reverted: 0x08c379a0"),
    Keep("basic-prose", text="basic authentication failed for this endpoint"),
    Keep("json-error", text="Unexpected token } in JSON at position 0; unexpected token: '}'"),
    Keep("missing-key", text="KeyError: 'missing key: amount_in'"),
    Keep(
        "traceback-paths",
        text=(
            '  File "/home/bot/.venv/lib/python3.11/site-packages/web3/manager.py", '
            "line 211, in request_blocking"
        ),
    ),
    Keep(
        "camel-identifier", text="raised in UniswapV3SwapRouterDeployment02 via TriangularArbitrageStrategy"
    ),
    Keep("trace-id", key="trace_id", value=_hex(32)),
    Keep("numbers-pass-through", key="mev.gas.used", value=21000),
    Keep("bool-pass-through", key="mev.tx.status", value=True),
    Keep("public-url", text="https://etherscan.io/tx/" + TX_HASH, keep=(TX_HASH,)),
)
