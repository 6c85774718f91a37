"""The Alertmanager configuration: critical to the pager, warnings to chat."""

from __future__ import annotations

from typing import Any

from mevobs.alerts import _promql as q
from mevobs.alerts._settings import AlertSettings

PAGER = "pager"
CHAT = "chat"
GROUP_BY = ("alertname", q.L_CHAIN, q.L_EXCHANGE)


def build_alertmanager_config(settings: AlertSettings | None = None) -> dict[str, Any]:
    """Route ``severity="critical"`` to the pager webhook and ``warning`` to the chat
    webhook, grouped by alert, chain and exchange; a critical alert silences the
    warnings of the same chain, exchange and process while it fires."""
    s = settings or AlertSettings()
    return {
        "route": {
            "receiver": CHAT,
            "group_by": list(GROUP_BY),
            "group_wait": s.group_wait,
            "group_interval": s.alert_group_interval,
            "repeat_interval": s.repeat_interval,
            "routes": [
                {"receiver": PAGER, "matchers": ['severity="critical"'], "continue": False},
                {"receiver": CHAT, "matchers": ['severity="warning"']},
            ],
        },
        "receivers": [
            {
                "name": PAGER,
                "webhook_configs": [{"url": str(s.pager_webhook_url), "send_resolved": True}],
            },
            {
                "name": CHAT,
                "webhook_configs": [{"url": str(s.chat_webhook_url), "send_resolved": True}],
            },
        ],
        "inhibit_rules": [
            {
                "source_matchers": ['severity="critical"'],
                "target_matchers": ['severity="warning"'],
                # Alertmanager counts a label both alerts lack as equal: without the
                # process labels, a bot down would mute every other bot's memory warning.
                "equal": [q.L_CHAIN, q.L_EXCHANGE, q.L_JOB, q.L_INSTANCE, q.L_SERVICE_NAME],
            }
        ],
    }
