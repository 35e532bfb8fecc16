"""Forms for reviewing, deciding and signing."""

from __future__ import annotations

from flask_wtf import FlaskForm
from wtforms import BooleanField, HiddenField, PasswordField, RadioField, StringField, TextAreaField
from wtforms.validators import Length

from portfolio.admin.forms import choices


class SignFields(FlaskForm):
    typed_name = StringField("Your full name", validators=[Length(max=200)],
                             render_kw={"autocomplete": "name"},
                             description="Type it exactly as it appears on your account.")
    password = PasswordField("Your password", validators=[Length(max=1000)],
                             render_kw={"autocomplete": "current-password"},
                             description="Signing needs your password again, every time.")


class ReviewForm(FlaskForm):
    outcome = RadioField("Decision", choices=choices([
        ("accepted", "Accept this evidence"),
        ("referred", "Refer it back to the learner")]))
    feedback_md = TextAreaField("Feedback for the learner", validators=[Length(max=20_000)],
                                render_kw={"rows": 5, "data-markdown-preview": "feedback-preview"},
                                description="Needed when referring back: say what to change.")
    valid = BooleanField("Valid: relevant to the criteria")
    authentic = BooleanField("Authentic: the learner's own work")
    reliable = BooleanField("Reliable: would give the same result again")
    current = BooleanField("Current: recent enough to show competence now")
    sufficient = BooleanField("Sufficient: enough, with the other evidence")
    expected_version = HiddenField()
