"""Third-party personal data in evidence text: what is found, what is not, and how it is shown."""

from __future__ import annotations

import pytest

from portfolio.evidence.personal_data import MAX_FINDINGS, Finding, find_personal_data

CASES = [
    # Phone numbers
    ("Call me on +44 7700 900123 please", ["phone number"]),
    ("Office: 0113 496 0000", ["phone number"]),
    ("mobile 07700900123", ["phone number"]),
    ("ring 07700-900-123", ["phone number"]),
    ("(0113) 496 0000 is the shop", ["phone number"]),
    ("+44 (0)20 7946 0000", ["phone number"]),
    ("0044 20 7946 0000", ["phone number"]),
    ("Freephone 0800 123456", ["phone number"]),
    ("020 7946 0000 and 0161 496 0000", ["phone number", "phone number"]),
    # Postcodes
    ("She lives at SW1A 1AA.", ["postcode"]),
    ("post to m1 1ae", ["postcode"]),
    ("Leeds LS1 4DY", ["postcode"]),
    ("EC1A1BB", ["postcode"]),
    ("W1A 0AX", ["postcode"]),
    ("GIR 0AA", ["postcode"]),
    # Emails
    ("Email jo.bloggs+work@example.co.uk about it", ["email address"]),
    ("<sam_smith@mail.example.com>", ["email address"]),
    # Cards
    ("Card 4111 1111 1111 1111 was charged", ["card number"]),
    ("paid with 5555-5555-5555-4444", ["card number"]),
    ("amex 378282246310005", ["card number"]),
    # Mixed
    ("Jo (jo@example.com, 07700 900123) of LS1 4DY",
     ["email address", "phone number", "postcode"]),
    # Negatives
    ("Order 12345678 shipped", []),
    ("Order no. 01234567890 was late", []),
    ("ref: 0123456789", []),
    ("ORD-0123456789", []),
    ("Invoice #2024-0001-55", []),
    ("On 05/03/2024 at 10:15 she called", []),
    ("2024-03-05T10:15:00", []),
    ("between 09:30 and 17:00", []),
    ("4111 1111 1111 1112 fails the Luhn check", []),
    ("1234567890123456", []),
    ("0000 0000 0000 0000", []),
    ("serial 00447700900123456789", []),
    ("criterion 2.1 and 1.8, unit 40", []),
    ("room B12 3rd floor", []),
    ("Version 1.2.3 released", []),
    ("not an email: jo@localhost or @example.com", []),
    ("12345 67890 12345", []),
    ("", []),
]


@pytest.mark.parametrize(("text", "kinds"), CASES)
def test_what_is_found(text: str, kinds: list[str]) -> None:
    assert [f.kind for f in find_personal_data(text)] == kinds


def test_excerpts_are_masked() -> None:
    text = ("jo@example.com, +44 7700 900123, 07700 900123, SW1A 1AA, 4111 1111 1111 1111, "
            "4111111111111111")
    findings = find_personal_data(text)
    assert [f.excerpt for f in findings] == [
        "j***@example.com", "+44 7*** ***123", "07*** ***123", "SW1A 1**",
        "**** **** **** 1111", "************1111",
    ]
    assert [text[f.position] for f in findings] == ["j", "+", "0", "S", "4", "4"]
    assert findings[0] == Finding(kind="email address", excerpt="j***@example.com", position=0,
                                  end=14)


def test_positions_are_in_order() -> None:
    text = "SW1A 1AA then jo@example.com then 0113 496 0000"
    findings = find_personal_data(text)
    assert [f.position for f in findings] == [0, 14, 34]


def test_allowed_values_are_ignored() -> None:
    text = "Me: Learner@Example.com, 07700 900123. Customer: jo@example.com, +44 7700 900999"
    findings = find_personal_data(text, allow=["learner@example.com", "+447700900123", ""])
    assert [(f.kind, f.excerpt) for f in findings] == [
        ("email address", "j***@example.com"), ("phone number", "+44 7*** ***999")]


def test_digits_inside_an_email_are_not_a_phone_number() -> None:
    findings = find_personal_data("07700900123@example.com")
    assert [f.kind for f in findings] == ["email address"]


def test_findings_are_capped() -> None:
    text = " ".join(f"user{i}@example.com" for i in range(200))
    assert len(find_personal_data(text)) == MAX_FINDINGS


@pytest.mark.parametrize("text", [
    "a" * 200_000,
    "1" * 200_000,
    "1 " * 100_000,
    "0" + "1-" * 100_000,
    "a@" * 100_000,
    "a." * 100_000 + "@",
    "x@" + "a." * 100_000,
    "+44 " * 50_000,
    "SW1A " * 40_000,
])
def test_hostile_text_finishes(text: str) -> None:
    # Linear patterns: each of these finishes at once (a backtracking pattern would hang here).
    assert len(find_personal_data(text)) <= MAX_FINDINGS


@pytest.mark.parametrize(("text", "excerpts"), [
    # Defect 9: customer names in logs were never flagged.
    ("Rang M. Patel back about the refund.", ["M. P****"]),
    ("Mrs Jones wanted a callback; Mr. A. Khan did not.", ["Mrs J****", "Mr. A. K***"]),
    ("Ms O'Brien and Dr McDonald-Smith", ["Ms O******", "Dr M*************"]),
    ("Logged in Block A. The customer was calm.", []),
    ("Dear Sir, thank you. I. Then left.", []),
])
def test_names_with_a_title_or_an_initial_are_found(text: str, excerpts: list[str]) -> None:
    assert [f.excerpt for f in find_personal_data(text) if f.kind == "name"] == excerpts


def test_the_learners_own_work_address_and_name_are_not_a_customers() -> None:
    """Defect 9: the learner's own work address was flagged as customer data."""
    workplace = "Acme Utilities, 4 Park Row, Leeds LS1 5HD, 0113 496 0000"
    text = ("I work at 4 Park Row, Leeds LS1 5HD (0113 496 0000). Mrs Learner is me; "
            "the customer, Mrs Jones of BD7 1DP, rang 0113 496 0999.")
    found = find_personal_data(text, allow=[workplace, "Lee Learner", "lee@example.org"])
    assert [(f.kind, f.excerpt) for f in found] == [
        ("name", "Mrs J****"), ("postcode", "BD7 1**"), ("phone number", "01** *** *999")]


def test_masking_replaces_each_finding_and_nothing_else() -> None:
    from portfolio.evidence.personal_data import mask_personal_data

    text = "Mrs Jones (jo@example.com, 07700 900123) at SW1A 1AA. Lee Learner helped."
    masked, count = mask_personal_data(text, allow=["Lee Learner"])
    assert masked == ("[name removed] ([email address removed], [phone number removed]) at "
                      "[postcode removed]. Lee Learner helped.")
    assert count == 4 and find_personal_data(masked) == []
