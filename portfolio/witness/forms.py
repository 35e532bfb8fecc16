"""Forms for asking for a testimony and for the witness's own page."""

from __future__ import annotations

from flask_wtf import FlaskForm
from wtforms import (
    BooleanField,
    DateField,
    EmailField,
    RadioField,
    StringField,
    TextAreaField,
)
from wtforms.validators import Length, Optional

from portfolio.admin.forms import CheckboxesField, choices


class RequestForm(FlaskForm):
    witness_name = StringField("Witness's full name", validators=[Length(max=200)])
    witness_email = EmailField("Witness's work email", validators=[Length(max=254)],
                               description="The link goes here. It works once, for a limited "
                                           "time.")
    witness_role = StringField("Witness's job role", validators=[Length(max=200)])
    organisation = StringField("Organisation", validators=[Length(max=200)])
    relationship = StringField("Relationship to the learner", validators=[Length(max=200)],
                               description="For example: line manager, team leader. Not a "
                                           "relative.")
    is_expert = BooleanField("Expert witness",
                             description="Occupationally competent and named in the "
                                         "assessment plan.")
    expert_competence = TextAreaField("What makes them an expert witness",
                                      validators=[Length(max=2000)], render_kw={"rows": 2})
    activity = TextAreaField("The activity they saw", validators=[Length(max=2000)],
                             render_kw={"rows": 3},
                             description="What happened, in a sentence or two.")
    activity_on = DateField("When", validators=[Optional()])
    activity_place = StringField("Where", validators=[Length(max=200)])
    criterion_ids = CheckboxesField("Criteria it relates to", coerce=int)
    draft_md = TextAreaField("A draft for the witness (optional)",
                             validators=[Length(max=20_000)], render_kw={"rows": 4},
                             description="The witness should write in their own words; any "
                                         "draft is shown to them to correct, and the assessor "
                                         "is told if it is signed unchanged.")


class TestimonyForm(FlaskForm):
    testimony_md = TextAreaField("What you saw, in your own words",
                                 validators=[Length(max=20_000)], render_kw={"rows": 10})
    relationship = StringField("Your relationship to the learner",
                               validators=[Length(max=200)])
    related = RadioField("Are you related to the learner?",
                         choices=choices([("no", "No"), ("yes", "Yes")]), default="no")
    no_customer_data = BooleanField("My testimony does not name any customer or give their "
                                    "details")
    typed_name = StringField("Sign by typing your full name", validators=[Length(max=200)],
                             render_kw={"autocomplete": "name"})


class DeclineForm(FlaskForm):
    reason = StringField("Why you are declining (optional)", validators=[Length(max=500)])
