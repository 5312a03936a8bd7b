"""PII masking: e-mail addresses, IP addresses and phone numbers replaced by placeholders, counted per document."""
from __future__ import annotations

import ipaddress
import re

EMAIL = re.compile(r"\b[A-Za-z0-9._%+-]+@[A-Za-z0-9.-]+\.[A-Za-z]{2,}\b")
IPV4 = re.compile(r"(?<![\w.])(?:\d{1,3}\.){3}\d{1,3}(?![\w.])")
IPV6 = re.compile(r"(?<![\w:])(?:[0-9A-Fa-f]{0,4}:){2,7}[0-9A-Fa-f]{0,4}(?![\w:])")  # checked by ipaddress
# international (+CC ...) or North-American style numbers: 7+ digits in groups, not a plain year or count
PHONE = re.compile(r"(?<![\w+])(?:\+\d{1,3}[\s.-]?)?(?:\(\d{2,4}\)[\s.-]?|\d{2,4}[\s.-])\d{3,4}[\s.-]\d{3,4}(?![\w])")

PLACEHOLDERS = {"email": "<EMAIL>", "ip": "<IP_ADDRESS>", "phone": "<PHONE>"}


def _valid_ip(s: str) -> bool:
    try:
        ipaddress.ip_address(s)
        return True
    except ValueError:
        return False


def mask_pii(text: str, email: bool = True, ip: bool = True, phone: bool = True) -> tuple[str, dict[str, int]]:
    """The text with PII replaced, and how many of each kind were replaced."""
    counts = {"email": 0, "ip": 0, "phone": 0}

    def sub(kind: str, pattern: re.Pattern, s: str, valid=lambda m: True) -> str:
        def repl(m: re.Match) -> str:
            if not valid(m.group(0)):
                return m.group(0)
            counts[kind] += 1
            return PLACEHOLDERS[kind]
        return pattern.sub(repl, s)

    if email:
        text = sub("email", EMAIL, text)
    if ip:
        text = sub("ip", IPV4, text, _valid_ip)
        text = sub("ip", IPV6, text, _valid_ip)
    if phone:
        text = sub("phone", PHONE, text, lambda s: sum(c.isdigit() for c in s) >= 7)
    return text, counts
