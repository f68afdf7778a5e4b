"""Structured logging: one line per event, key=value pairs (or JSON with
SAURON_LOG_FORMAT=json), the fields passed in `extra`."""

from __future__ import annotations

import json
import logging
import os
import sys
import time

_STANDARD = set(logging.makeLogRecord({}).__dict__) | {"message", "asctime"}


class KeyValueFormatter(logging.Formatter):
    def __init__(self, as_json: bool = False) -> None:
        super().__init__()
        self.as_json = as_json

    def format(self, record: logging.LogRecord) -> str:
        fields = {k: v for k, v in record.__dict__.items() if k not in _STANDARD}
        base = {
            "ts": time.strftime("%Y-%m-%dT%H:%M:%S", time.gmtime(record.created))
            + f".{int(record.msecs):03d}Z",
            "level": record.levelname.lower(),
            "logger": record.name,
            "msg": record.getMessage(),
        }
        if record.exc_info:
            base["exc"] = self.formatException(record.exc_info)
        if self.as_json:
            return json.dumps({**base, **fields}, default=str)
        parts = [f"{k}={_quote(v)}" for k, v in {**base, **fields}.items()]
        return " ".join(parts)


def _quote(value: object) -> str:
    text = str(value)
    return json.dumps(text) if (" " in text or "=" in text or not text) else text


def setup_logging(level: str | None = None) -> None:
    level = (level or os.environ.get("SAURON_LOG_LEVEL") or "warning").upper()
    handler = logging.StreamHandler(sys.stderr)
    handler.setFormatter(KeyValueFormatter(as_json=os.environ.get("SAURON_LOG_FORMAT") == "json"))
    root = logging.getLogger("sauron")
    root.handlers[:] = [handler]
    root.setLevel(level)
    root.propagate = False
