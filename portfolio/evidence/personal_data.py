"""Spot third-party personal data in evidence text: email addresses, UK phone numbers and
postcodes, payment card numbers, and people named by a title or an initial ("Mrs Jones",
"M. Patel").

Each finding carries a partly masked excerpt, so the warning itself does not repeat the data,
and its span, so `mask_personal_data` can take it out of a copy. Every pattern is linear: bounded
quantifiers, no nested repetition, so a hostile text cannot make the scan slow.
"""

from __future__ import annotations

import heapq
import re
from collections.abc import Iterable, Iterator
from dataclasses import dataclass

MAX_FINDINGS = 50


@dataclass(frozen=True)
class Finding:
    """One piece of personal data found in a text."""

    kind: str
    excerpt: str
    position: int
    end: int = 0


_EMAIL = re.compile(
    r"(?<![A-Za-z0-9._%+\-])"
    r"([A-Za-z0-9._%+\-]{1,64})@((?:[A-Za-z0-9](?:[A-Za-z0-9\-]{0,61}[A-Za-z0-9])?\.){1,8}"
    r"[A-Za-z]{2,24})(?![A-Za-z0-9\-])")

# A UK number: +44 / 0044 (with an optional "(0)") or a leading 0, then 9 or 10 digits with
# single spaces, dashes or a closing bracket between them.
_PHONE = re.compile(
    r"(?<![\w+\-/.])"
    r"(?P<prefix>(?:\+|00)44[ \-]?(?:\(0\)[ \-]?)?|\(?0)"
    r"[1-9](?:\d|[ \-]\d|\)[ \-]?\d){8,9}"
    r"(?![\d])(?![\-/.]\d)")
# What comes just before a reference number that looks like a phone number.
_REFERENCE_BEFORE = re.compile(
    r"(?:order|invoice|ref|reference|account|a/c|policy|case|ticket|booking|customer|serial|"
    r"tracking)\s*(?:no\.?|number|id)?\s*[:#.]?\s*$", re.IGNORECASE)

# Full UK postcode: outward code (A9, A99, AA9, AA99, A9A, AA9A with the letters each position
# allows), then the inward code, with one optional space.
_POSTCODE = re.compile(
    r"\b(?:GIR ?0AA|(?:[A-PR-UWYZ](?:\d\d?|[A-HK-Y]\d\d?|\d[A-HJKPSTUW]|[A-HK-Y]\d[ABEHMNPRV-Y]))"
    r" ?\d[ABD-HJLNP-UW-Z]{2})\b", re.IGNORECASE)

_CARD = re.compile(r"(?<![\d\-])(?:\d[ \-]?){12,18}\d(?![\d])(?![\-]\d)")


def _luhn(digits: str) -> bool:
    total = 0
    for i, ch in enumerate(reversed(digits)):
        n = int(ch)
        if i % 2:
            n = n * 2 - 9 if n > 4 else n * 2
        total += n
    return total % 10 == 0


def _digits(text: str) -> str:
    return "".join(ch for ch in text if ch.isdigit())


def _national_phone(match_text: str) -> str:
    """Return a phone number as national digits (0 and the rest), whatever its prefix."""
    text = match_text.replace("(0)", "", 1) if match_text.startswith(("+", "00")) else match_text
    digits = _digits(text)
    if match_text.startswith("+44"):
        digits = "0" + digits[2:]
    elif match_text.startswith("0044"):
        digits = "0" + digits[4:]
    return digits


def _valid_phone(national: str) -> bool:
    rest = national[1:]
    if len(rest) == 10:
        return rest[0] in "1235789"
    return len(rest) == 9 and rest[0] in "18"  # a few old area codes, 0800 short numbers


def _mask_digits(text: str, keep_start: int, keep_end: int) -> str:
    total = sum(ch.isdigit() for ch in text)
    out, seen = [], 0
    for ch in text:
        if ch.isdigit():
            seen += 1
            out.append(ch if seen <= keep_start or seen > total - keep_end else "*")
        else:
            out.append(ch)
    return "".join(out)


def _mask_email(local: str, domain: str) -> str:
    return f"{local[0]}***@{domain}"


def _normal(kind: str, text: str) -> str:
    if kind == "email address":
        return text.strip().lower()
    if kind == "phone number":
        return _national_phone(re.sub(r"\s", "", text.strip()))
    if kind == "card number":
        return _digits(text)
    return re.sub(r"\s", "", text).upper()


def _emails(text: str) -> Iterator[tuple[int, int, int, str, str]]:
    for m in _EMAIL.finditer(text):
        local = m.group(1)
        if local.startswith(".") or local.endswith(".") or ".." in local:
            continue
        if m.group(2).lower().endswith(".invalid"):
            continue  # nobody's address (RFC 2606): how a redacted address is often written
        yield m.start(), 0, m.end(), "email address", _mask_email(local, m.group(2))


def _cards(text: str) -> Iterator[tuple[int, int, int, str, str]]:
    for m in _CARD.finditer(text):
        value = m.group(0)
        digits = _digits(value)
        if not (13 <= len(digits) <= 19) or digits[0] not in "23456":
            continue
        if len(set(digits)) == 1 or not _luhn(digits):
            continue
        separators = {ch for ch in value if not ch.isdigit()}
        if len(separators) > 1:
            continue  # "1234 5678-..." mixes separators: not how a card number is written
        yield m.start(), 1, m.end(), "card number", _mask_digits(value, 0, 4)


def _phones(text: str) -> Iterator[tuple[int, int, int, str, str]]:
    for m in _PHONE.finditer(text):
        value = m.group(0)
        national = _national_phone(value)
        if not _valid_phone(national):
            continue
        if _REFERENCE_BEFORE.search(text, max(0, m.start() - 30), m.start()):
            continue
        keep = len(_digits(m.group("prefix"))) + 1  # the prefix and the next digit
        yield m.start(), 2, m.end(), "phone number", _mask_digits(value, keep, 3)


def _postcodes(text: str) -> Iterator[tuple[int, int, int, str, str]]:
    for m in _POSTCODE.finditer(text):
        value = m.group(0)
        inward = value[-3:]
        if value != value.upper() and inward[1:] in ("st", "nd", "rd", "th"):
            continue  # "b12 3rd": an ordinal in running text, not a postcode
        outward = value[:-3].strip()
        yield m.start(), 3, m.end(), "postcode", f"{outward.upper()} {inward[0]}**"


_TITLE = r"(?:Mr|Mrs|Ms|Miss|Mx|Dr|Prof|Sir|Dame|Lady|Lord)"
# O'Brien, McDonald, Smith-Jones: bounded pieces, no nested repetition.
_LOWER = r"[a-z\u00e0-\u00ff]"
_SURNAME = (rf"[A-Z](?:['\u2019][A-Z])?{_LOWER}{{1,30}}(?:[A-Z]{_LOWER}{{1,30}})?"
            rf"(?:[\-'\u2019][A-Z]?{_LOWER}{{1,30}})?")
# "Mrs Jones", "Mr. A. Khan", "Dr J Smith": a title, optional initials, a capitalised surname.
_TITLED = re.compile(rf"\b{_TITLE}\.? (?:[A-Z]\.? ?){{0,3}}(?P<surname>{_SURNAME})\b")
# "M. Patel", "J.R. Smith": initials with full stops, then a surname.
_INITIALLED = re.compile(rf"(?<![\w.])(?:[A-Z]\. ?){{1,3}}(?P<surname>{_SURNAME})\b")
# Words that follow an initial at the end of a sentence ("... in Block A. The customer").
_NOT_SURNAMES = frozenset((
    "the", "this", "that", "then", "there", "these", "those", "they", "their", "when", "where",
    "what", "which", "while", "with", "we", "he", "she", "it", "its", "his", "her", "our", "my",
    "your", "you", "and", "but", "or", "so", "if", "as", "at", "in", "on", "of", "to", "for",
    "from", "by", "after", "before", "during", "once", "also", "all", "any", "each", "every",
    "no", "not", "one", "two", "three", "monday", "tuesday", "wednesday", "thursday", "friday",
    "saturday", "sunday", "january", "february", "march", "april", "may", "june", "july",
    "august", "september", "october", "november", "december",
))


def _names(text: str) -> Iterator[tuple[int, int, int, str, str]]:
    found = sorted([(m.start(), m.end(), m.group(0), m.group("surname"))
                    for pattern in (_TITLED, _INITIALLED) for m in pattern.finditer(text)])
    for start, end, value, surname in found:
        if surname.casefold() in _NOT_SURNAMES:
            continue
        head = value[:len(value) - len(surname)]
        yield start, 4, end, "name", f"{head}{surname[0]}{'*' * (len(surname) - 1)}"


_KINDS = ("email address", "phone number", "postcode", "card number")


def _allowed(allow: Iterable[str]) -> dict[str, set[str]]:
    """What never counts as a finding: each item whole, the data found inside it (a work
    address's postcode and phone number), and the surnames of the people it names."""
    allowed: dict[str, set[str]] = {}
    for item in allow:
        if not item or not item.strip():
            continue
        for kind in _KINDS:
            allowed.setdefault(kind, set()).add(_normal(kind, item))
        for start, _priority, end, kind, _excerpt in heapq.merge(
                _emails(item), _cards(item), _phones(item), _postcodes(item)):
            allowed.setdefault(kind, set()).add(_normal(kind, item[start:end]))
        words = item.split()
        if len(words) >= 2 and "@" not in item:  # a person's name: allow their surname
            allowed.setdefault("name", set()).add(words[-1].casefold())
    return allowed


def _is_allowed(kind: str, value: str, allowed: dict[str, set[str]]) -> bool:
    if kind == "name":
        return value.split()[-1].strip(".").casefold() in allowed.get("name", ())
    return _normal(kind, value) in allowed.get(kind, ())


def find_personal_data(text: str, *, allow: Iterable[str] = (),
                       limit: int = MAX_FINDINGS) -> list[Finding]:
    """Find likely personal data in a text, in order of position, at most 50 findings.

    `allow` lists what is not a customer's: the learner's own email, name and work address.
    """
    if not text:
        return []
    allowed = _allowed(allow)
    # Each scanner yields in position order; merged, an earlier finding wins an overlap, and at
    # the same position the more specific kind (email, card, phone, postcode, name) wins.
    merged = heapq.merge(_emails(text), _cards(text), _phones(text), _postcodes(text),
                         _names(text))
    findings: list[Finding] = []
    covered_to = -1
    for start, _priority, end, kind, excerpt in merged:
        if start < covered_to:
            continue
        covered_to = end
        if _is_allowed(kind, text[start:end], allowed):
            continue
        findings.append(Finding(kind=kind, excerpt=excerpt, position=start, end=end))
        if len(findings) >= limit:
            break
    return findings


def mask_personal_data(text: str, *, allow: Iterable[str] = ()) -> tuple[str, int]:
    """Return a copy of the text with every finding replaced by "[<kind> removed]", and how
    many were replaced."""
    findings = find_personal_data(text, allow=allow, limit=len(text) + 1)
    out, last = [], 0
    for f in findings:
        start = f.position
        if text[start] == "(" and ")" not in text[start:f.end]:
            start += 1  # "(07700 900123)": the bracket belongs to the sentence
        out.append(text[last:start])
        out.append(f"[{f.kind} removed]")
        last = f.end
    out.append(text[last:])
    return "".join(out), len(findings)
