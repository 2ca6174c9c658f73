"""SMS text: which encoding a body needs (GSM-7 or UCS-2), how long it is and how many
segments it takes, and the normalisation of characters that force UCS-2 for no good reason.

Pure functions only. The alphabet is GSM 03.38 (3GPP TS 23.038): the basic set costs one
septet per character, the extension table (reached through an escape) two. A body with any
other character goes as UCS-2, whose length is counted in UTF-16 code units (an emoji is 2).
One segment holds 160 septets or 70 code units; a multipart message 153 or 67 per part, and
an escape pair or a surrogate pair is never split across parts.
"""

from __future__ import annotations

import hashlib
from dataclasses import dataclass
from typing import Literal

# GSM 03.38 basic character set, in code order, without 0x1B (the escape to the extension table).
GSM7_BASIC = frozenset(
    "@£$¥èéùìòÇ\nØø\rÅåΔ_ΦΓΛΩΠΨΣΘΞ"  # 0x00-0x1A
    "ÆæßÉ !\"#¤%&'()*+,-./0123456789:;<=>?"  # 0x1C-0x3F
    "¡ABCDEFGHIJKLMNOPQRSTUVWXYZÄÖÑÜ§"  # 0x40-0x5F
    "¿abcdefghijklmnopqrstuvwxyzäöñüà"  # 0x60-0x7F
)
# The extension table: each of these is sent as escape + code, two septets.
GSM7_EXTENSION = frozenset("\f^{}\\[~]|€")

SINGLE_GSM7, PART_GSM7 = 160, 153
SINGLE_UCS2, PART_UCS2 = 70, 67

Encoding = Literal["GSM-7", "UCS-2"]

# Characters a word processor or a spreadsheet puts in text that have a GSM-7 equivalent.
_REPLACEMENTS: dict[str, str] = {
    **dict.fromkeys("\u00a0\u2000\u2001\u2002\u2003\u2004\u2005\u2006\u2007\u2008", " "),
    **dict.fromkeys("\u2009\u200a\u202f\u205f\u3000\t", " "),  # thin, hair, narrow nbsp, tab
    **dict.fromkeys("\u200b\u2060\ufeff\u00ad", ""),  # zero-width space, word joiner, BOM, shy
    **dict.fromkeys("\u2018\u2019\u201a\u201b\u2032\u02bc", "'"),  # curly single quotes, prime
    **dict.fromkeys("\u201c\u201d\u201e\u201f\u2033\u00ab\u00bb", '"'),  # curly double, «»
    **dict.fromkeys("\u2010\u2011\u2012\u2013\u2014\u2015\u2212", "-"),  # hyphens, dashes, minus
    "\u2026": "...",  # ellipsis
    "\u2028": "\n",  # line separator
    "\u2029": "\n",  # paragraph separator
}
_TABLE = str.maketrans(_REPLACEMENTS)


@dataclass(frozen=True)
class SmsInfo:
    """How a body goes out: its encoding, its length in septets (GSM-7) or UTF-16 code units
    (UCS-2), and the number of segments the recipient is billed for."""

    encoding: Encoding
    length: int
    segments: int


def normalise_sms(text: str) -> str:
    """`text` with typographic spaces, quotes, dashes and ellipses replaced by their plain
    GSM-7 equivalents, and Windows line ends made plain; everything else is left as it is
    (letters in names are never changed)."""
    return text.replace("\r\n", "\n").translate(_TABLE)


def is_gsm7(text: str) -> bool:
    """Whether every character of `text` is in the GSM 03.38 basic set or extension table."""
    return all(ch in GSM7_BASIC or ch in GSM7_EXTENSION for ch in text)


def _units(text: str, encoding: Encoding) -> list[int]:
    """The cost of each character: septets for GSM-7, UTF-16 code units for UCS-2."""
    if encoding == "GSM-7":
        return [2 if ch in GSM7_EXTENSION else 1 for ch in text]
    return [2 if ord(ch) > 0xFFFF else 1 for ch in text]


def _pack(units: list[int], capacity: int) -> int:
    """How many parts of `capacity` the characters fill, none split across two parts."""
    parts, used = 1, 0
    for cost in units:
        if used + cost > capacity:
            parts, used = parts + 1, 0
        used += cost
    return parts


def sms_info(text: str) -> SmsInfo:
    """The encoding, length and segment count of `text` as it would be sent (0 segments when
    it is empty)."""
    encoding: Encoding = "GSM-7" if is_gsm7(text) else "UCS-2"
    units = _units(text, encoding)
    length = sum(units)
    single, part = (SINGLE_GSM7, PART_GSM7) if encoding == "GSM-7" else (SINGLE_UCS2, PART_UCS2)
    if length == 0:
        segments = 0
    elif length <= single:
        segments = 1
    else:
        segments = _pack(units, part)
    return SmsInfo(encoding, length, segments)


def body_fingerprint(text: str) -> str:
    """A short hash of a message's normalised text: what an attempt sent, kept with its claim
    so that an in-doubt SMS is matched against the provider's copy even if the appointment or
    the templates changed since."""
    return hashlib.sha256(normalise_sms(text).encode()).hexdigest()[:32]
