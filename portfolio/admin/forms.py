"""Forms for the centre admin: people and enrolments."""

from __future__ import annotations

from flask_wtf import FlaskForm
from wtforms import (
    BooleanField,
    DateField,
    EmailField,
    SelectField,
    SelectMultipleField,
    StringField,
)
from wtforms.fields.choices import SelectChoice
from wtforms.validators import DataRequired, Length
from wtforms.widgets import CheckboxInput, ListWidget

from portfolio.models.users import ROLE_LABELS


class CheckboxesField(SelectMultipleField):
    widget = ListWidget(prefix_label=False)
    option_widget = CheckboxInput()




def choices(pairs: list[tuple[object, str]]) -> list[SelectChoice]:
    """Turn (value, label) pairs into WTForms choices."""
    return [SelectChoice(value, label) for value, label in pairs]  # type: ignore[arg-type]


ROLE_CHOICES = choices([(role.value, label) for role, label in ROLE_LABELS.items()])
ASSESSOR_STATUS_CHOICES = choices([("qualified", "Qualified assessor"),
                                   ("trainee", "Trainee (decisions need a countersignature)")])


class PersonForm(FlaskForm):
    full_name = StringField("Full name", validators=[DataRequired(), Length(max=200)],
                            render_kw={"autocomplete": "off"})
    email = EmailField("Email address", validators=[DataRequired(), Length(max=254)],
                       render_kw={"autocomplete": "off"})
    roles = CheckboxesField("Roles", choices=ROLE_CHOICES,
                            description="A person may hold several roles.")
    assessor_status = SelectField("Assessor status", choices=ASSESSOR_STATUS_CHOICES,
                                  description="Only used when the person is an assessor.")
    send_reset = BooleanField(
        "Email them a link to choose a new password",
        description="For someone who has forgotten theirs. Nobody else sees or sets it; using "
                    "the link signs them out everywhere else.")
    is_active = BooleanField("Account active", default=True,
                             description="An inactive account cannot sign in or use API tokens.")


class EnrolmentForm(FlaskForm):
    learner_id = SelectField("Learner", coerce=int)
    unit_id = SelectField("Unit", coerce=int)
    assessor_id = SelectField("Assessor", coerce=int)
    iqa_id = SelectField("Internal quality assurer", coerce=int,
                         description="Must not be the learner's assessor.")
    start_on = DateField("Start date", validators=[DataRequired()])
    planned_end_on = DateField("Planned end date", validators=[DataRequired()])
    employer = StringField("Employer", validators=[DataRequired(), Length(max=200)])
    workplace = StringField("Workplace", validators=[DataRequired(), Length(max=200)],
                            description="The site or branch where the learner works.")
    status = SelectField("Status", choices=choices([("active", "Active"),
                                                    ("completed", "Completed"),
                                                    ("withdrawn", "Withdrawn")]),
                         default="active")
