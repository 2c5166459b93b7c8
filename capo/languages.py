"""Language codes, full names and translation directions such as ``en-de``.

Names come from ISO 639 via pycountry; a few entries are shortened to the
plain names the CAPO paper's prompt template uses (Appendix D, Table 6).
"""

from __future__ import annotations

import re
from functools import cache

import pycountry

from capo.errors import UserError

# ISO 639 names that are longer than the names a prompt should carry.
_PLAIN_NAMES = {"el": "Greek", "nl": "Dutch", "es": "Spanish", "ne": "Nepali"}
_DIRECTION = re.compile(r"^([a-z]{2,3})-([a-z]{2,3})$")


class UnknownLanguageError(UserError):
    """A language code that ISO 639 does not know."""


@cache
def to_alpha2(code: str) -> str:
    """Normalise an ISO 639-1 or 639-3 code (``de``, ``deu``, ``ara``) to 639-1 when one exists."""
    code = code.strip().lower()
    lang = pycountry.languages.get(alpha_2=code) if len(code) == 2 else None
    if lang is None and len(code) == 3:
        lang = pycountry.languages.get(alpha_3=code) or pycountry.languages.get(bibliographic=code)
    if lang is None:
        raise UnknownLanguageError(f"unknown language code {code!r}")
    return getattr(lang, "alpha_2", lang.alpha_3)


@cache
def language_name(code: str) -> str:
    """Full English name for a language code: ``de`` -> ``German``."""
    alpha2 = to_alpha2(code)
    if alpha2 in _PLAIN_NAMES:
        return _PLAIN_NAMES[alpha2]
    lang = pycountry.languages.get(alpha_2=alpha2) or pycountry.languages.get(alpha_3=alpha2)
    return lang.name.split(";")[0].split(" (")[0]


def make_direction(src: str, tgt: str) -> str:
    """``make_direction("eng", "deu") == "en-de"``."""
    return f"{to_alpha2(src)}-{to_alpha2(tgt)}"


def parse_direction(direction: str) -> tuple[str, str]:
    """Split ``en-de`` into ``("en", "de")``, normalising codes; raises on anything else."""
    match = _DIRECTION.match(direction.strip().lower())
    if match is None:
        raise UnknownLanguageError(f"not a translation direction like 'en-de': {direction!r}")
    return to_alpha2(match.group(1)), to_alpha2(match.group(2))


def find_direction(name: str) -> str | None:
    """The translation direction a file or folder name states, by one rule:

    every ``xx-yy`` in the name (codes of two or three letters, not inside a longer word, overlapping
    ones included: ``nul-en-de`` holds ``nul-en`` and ``en-de``) whose codes ISO 639 knows is a
    candidate; pairs of two-letter codes are preferred to pairs with a three-letter one; the name
    states a direction when the preferred candidates all name the same one. None otherwise
    (``en-de-fr``: ``en-de`` or ``de-fr``), and the reader then asks for a direction."""
    found = re.finditer(r"(?<![a-z])(?=([a-z]{2,3})-([a-z]{2,3})(?![a-z]))", name.lower())
    candidates: dict[bool, set[str]] = {True: set(), False: set()}
    for match in found:
        src, tgt = match.group(1), match.group(2)
        try:
            direction = make_direction(src, tgt)
        except UnknownLanguageError:
            continue
        candidates[len(src) == len(tgt) == 2].add(direction)
    best = candidates[True] or candidates[False]
    return next(iter(best)) if len(best) == 1 else None
