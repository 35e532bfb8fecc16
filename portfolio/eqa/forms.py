"""Forms for EQA access packs."""

from __future__ import annotations

from flask_wtf import FlaskForm
from wtforms import DateField, SelectField, SelectMultipleField, StringField, TextAreaField
from wtforms.validators import Length, Optional
from wtforms.widgets import CheckboxInput, ListWidget


class CheckboxesField(SelectMultipleField):
    widget = ListWidget(prefix_label=False)
    option_widget = CheckboxInput()

    def pre_validate(self, form: object) -> None:
        # The service says which choice is wrong, in words; WTForms would only say "invalid".
        pass


class PackForm(FlaskForm):
    title = StringField("Name of the pack", validators=[Length(max=200)],
                        description="For example the visit or sample reference the EQA gave.")
    eqa_id = SelectField("External quality assurer", coerce=int,
                         description="Only people with the EQA role in your centre are listed.")
    enrolment_ids = CheckboxesField("Learners and units in the sample", coerce=int,
                                    description="Tick each learner's unit the EQA asked to see. "
                                                "They see nothing else.")
    note = TextAreaField("Note to the EQA", validators=[Optional(), Length(max=2000)],
                         description="Shown on the pack's first page. Optional.")
    valid_from = DateField("First day", validators=[Optional()],
                           description="The EQA can open the pack from this day.")
    valid_to = DateField("Last day", validators=[Optional()],
                         description="The pack closes at the end of this day.")


class RevokeForm(FlaskForm):
    reason = StringField("Reason (optional)", validators=[Optional(), Length(max=300)],
                         description="Recorded in the audit trail.")
