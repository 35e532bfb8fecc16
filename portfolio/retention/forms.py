"""The retention page's forms: the centre's period, a legal hold, and removing work now."""

from __future__ import annotations

from flask_wtf import FlaskForm
from wtforms import BooleanField, IntegerField, StringField
from wtforms.validators import Length, NumberRange, Optional

from portfolio.retention.services import HOLD_REASON_CHARS, MAX_KEEP_MONTHS


class PolicyForm(FlaskForm):
    work_keep_months = IntegerField(
        "Months to keep learner work after an enrolment ends",
        validators=[Optional(), NumberRange(min=1, max=MAX_KEEP_MONTHS,
                                            message=f"Between 1 and {MAX_KEEP_MONTHS} months.")],
        description="Leave it empty to keep everything until you choose a period. Funding "
                    "rules may ask for 6 years (72 months).")
    work_until_eqa = BooleanField(
        "Also wait until an external quality assurer has reviewed it",
        description="Work is then kept until a pack for the EQA that included the enrolment "
                    "has closed, however long that takes.")


class HoldForm(FlaskForm):
    reason = StringField("Why it must be kept", validators=[Length(max=HOLD_REASON_CHARS)],
                         description="For example an appeal, a complaint or an investigation. "
                                     "Whoever lifts the hold reads it.")


class ConfirmRemoval(FlaskForm):
    """Only the CSRF token: removing work is one button, after the list of what goes."""
