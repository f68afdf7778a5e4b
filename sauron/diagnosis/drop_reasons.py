"""The names of the kernel's packet drop reasons (enum skb_drop_reason),
as the running kernel prints them: read from the kfree_skb tracepoint's
format in tracefs, since their values change from one kernel to the next."""

from __future__ import annotations

import re
from pathlib import Path

KFREE_SKB_FORMAT = Path("/sys/kernel/tracing/events/skb/kfree_skb/format")
_SYMBOL = re.compile(r'\{\s*(\d+)\s*,\s*"([A-Z0-9_]+)"\s*\}')


def drop_reason_names(format_path: Path = KFREE_SKB_FORMAT) -> dict[int, str]:
    """value -> name ("NO_SOCKET", "SOCKET_RCVBUFF", ...); empty when tracefs
    is not mounted or the kernel prints no reasons."""
    try:
        text = format_path.read_text()
    except OSError:
        return {}
    _, _, printed = text.partition("print fmt:")
    return {int(value): name for value, name in _SYMBOL.findall(printed)}
