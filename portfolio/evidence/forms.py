"""Evidence forms: one per kind, built from the kind's fields."""

from __future__ import annotations

from dataclasses import dataclass
from functools import cache

from flask_wtf import FlaskForm
from wtforms import (
    BooleanField,
    DateField,
    HiddenField,
    IntegerField,
    MultipleFileField,
    StringField,
    TextAreaField,
)
from wtforms.validators import Length, Optional

from portfolio.evidence.kinds import KINDS, Kind


class EvidenceForm(FlaskForm):
    title = StringField("Title", validators=[Length(max=200)],
                        description="A few words you will recognise in a list.")
    activity_on = DateField("Date of the activity", validators=[Optional()])
    activity_place = StringField("Where it happened", validators=[Length(max=200)],
                                 description="For example: customer service desk, Hull store.")
    body_md = TextAreaField("Text", validators=[Length(max=100_000)],
                            render_kw={"rows": 12, "data-markdown-preview": "body-preview"})
    files = MultipleFileField("Files")
    is_simulated = BooleanField(
        "This was a simulation or role-play, not real work",
        description="Be honest: the assessor decides whether simulated evidence can count.")
    personal_data_confirmed = BooleanField(
        "I have removed customers' names, contact details and account numbers, "
        "or there were none")
    change_note = StringField("What changed", validators=[Length(max=300)],
                              description="A short note for your assessor.")
    expected_version = HiddenField()


class WithdrawForm(FlaskForm):
    reason = StringField("Why are you withdrawing it?", validators=[Length(max=300)])


class ExpectedVersionForm(FlaskForm):
    expected_version = IntegerField()


@cache
def form_class(kind_key: str) -> type[EvidenceForm]:
    """Return the form class for a kind, with its detail fields added."""
    kind: Kind = KINDS[kind_key]
    attrs: dict[str, object] = {}
    for spec in kind.details:
        if spec.type == "checkbox":
            attrs[spec.name] = BooleanField(spec.label, description=spec.hint)
        elif spec.type == "textarea":
            attrs[spec.name] = TextAreaField(spec.label, description=spec.hint,
                                             validators=[Length(max=2000)],
                                             render_kw={"rows": 3})
        else:
            attrs[spec.name] = StringField(spec.label, description=spec.hint,
                                           validators=[Length(max=2000)])
    accept = ACCEPT.get(kind_key)
    if accept:
        # A phone offers its camera (or recorder) beside the gallery for these types; the
        # server still checks every file's content against the allow-list.
        attrs["files"] = MultipleFileField("Files", render_kw={"accept": accept})
    return type(f"{kind_key.title().replace('_', '')}Form", (EvidenceForm,), attrs)


# What the file picker offers first, for kinds whose files are of one sort. Other kinds take
# any allowed file, so their picker is not narrowed. HEIC and HEIF are named as well as
# image/*: some pickers do not count them as images, and an iPhone keeps its photos as HEIC
# (converted for preview and print here; the original is kept).
HEIF_ACCEPT = ".heic,.heif,image/heic,image/heif"
ACCEPT = {
    "photo": f"image/*,{HEIF_ACCEPT}",
    "email": ".eml,.msg,message/rfc822",
    "log": ".csv,.xlsx,text/csv",
    "witness_testimony": f"image/*,{HEIF_ACCEPT},application/pdf",
}


@dataclass(frozen=True)
class Capture:
    """A phone's camera or recorder, offered beside the file picker (static/js/uploads.js): an
    extra picker with `capture`, which opens the camera or recorder straight away."""

    accept: str
    facing: str  # "environment" (the back camera) or "user" (the front one, or the microphone)
    label: str


CAPTURE = {
    "photo": Capture("image/*", "environment", "Take a photo"),
    "witness_testimony": Capture("image/*", "environment", "Photograph a signed paper copy"),
    "observation": Capture("image/*", "environment", "Take a photo"),
    "work_product": Capture("image/*", "environment", "Photograph a document"),
    "professional_discussion": Capture("audio/*", "user", "Record the discussion"),
}
