"""Storage URLs as they may be shown: a password in a URL (postgresql://user:secret@host/db)
never reaches a terminal, a log or a report page."""

from __future__ import annotations

import re

MASK = "***"
# scheme://user:password@ -> scheme://user:***@ ; the password ends at the last '@' before the host
_PASSWORD = re.compile(r"(?P<head>[A-Za-z][A-Za-z0-9+.\-]*://[^:/@\s]*:)(?P<password>[^\s/]*)@")


def mask_passwords(text: str) -> str:
    """`text` with the password of every URL in it replaced by MASK."""
    return _PASSWORD.sub(lambda m: f"{m['head']}{MASK}@", text)
