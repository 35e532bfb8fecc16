"""The IQA pages' forms: what each POST carries, its limits, and the words for a wrong value.

The pages draw their own fields (the strategy's rates come from a table, the outcome's action
rows repeat), so these forms only read and check what was sent. `read` validates one and
raises `ValidationFailed` naming the first wrong field, which the view shows on the page it
came from, like a refusal from the services."""

from __future__ import annotations

from datetime import date
from typing import Any, TypeVar

from flask import request
from flask_wtf import FlaskForm
from wtforms import DateField, Field, IntegerField, StringField, TextAreaField
from wtforms.validators import AnyOf, DataRequired, Length, NumberRange, Optional, Regexp

from portfolio.errors import ValidationFailed
from portfolio.ids import MAX_ID, parse_id
from portfolio.sampling.strategy import RATE_FIELDS, STATUS_LABELS

MAX_TEXT = 20_000
MAX_ACTIONS = 10


class _Posted(FlaskForm):
    class Meta:
        csrf = False  # the app's CSRFProtect checks every POST before the view runs


F = TypeVar("F", bound=_Posted)


def read(form_class: type[F]) -> F:
    """The submitted form, checked.

    :raises ValidationFailed: the first field that is missing or wrong, with its message.
    """
    form = form_class()
    if not form.validate():
        name, errors = next(iter(form.errors.items()))
        message = errors[0] if isinstance(errors, list) and isinstance(errors[0], str) \
            else "Check this field."
        raise ValidationFailed(message, field=name)
    return form


class IdField(IntegerField):
    """An id: anything but a whole number in range reads as missing, so the field's own
    message is shown rather than WTForms' "Not a valid integer value"."""

    def process_formdata(self, valuelist: list[Any]) -> None:
        self.data = parse_id(valuelist[0]) if valuelist else None


class Day(DateField):
    """A date typed as YYYY-MM-DD; anything else reads as missing (see IdField)."""

    def process_formdata(self, valuelist: list[Any]) -> None:
        try:
            self.data = date.fromisoformat(str(valuelist[0]).strip()) if valuelist else None
        except ValueError:
            self.data = None


def _id(message: str) -> list[Any]:
    return [DataRequired(message), NumberRange(1, MAX_ID, message)]


_PERIOD = "Enter the period's first and last days."


class PlanForm(_Posted):
    unit_id = IdField(validators=_id("Choose one of the units you quality-assure."))
    period_start = Day(validators=[DataRequired(_PERIOD)])
    period_end = Day(validators=[DataRequired(_PERIOD)])


class StrategyForm(_Posted):
    """The rates (one whole percentage per kind of decision) and why they changed. The rates
    are read as text here: `strategy.parse_rates` checks each one and says which is wrong."""

    reason = TextAreaField(validators=[Length(max=2000, message="Keep the reason under "
                                                                "2,000 characters.")])

    def rates(self) -> dict[str, str]:
        return {name: (request.form.get(name) or "")[:10] for name in RATE_FIELDS}


class AssessorRateForm(_Posted):
    status = StringField(validators=[Optional(), AnyOf(
        list(STATUS_LABELS), message="Choose one of the assessor statuses.")])
    override_pct = StringField(validators=[Optional(), Regexp(
        r"^\s*[0-9]{1,3}\s*%?\s*$", message="The rate must be a whole percentage from 0 to "
                                             "100, or empty to follow the strategy.")])
    reason = TextAreaField(validators=[Length(max=2000, message="Keep the reason under "
                                                                "2,000 characters.")])
    unit_id = IdField(validators=[Optional()])

    def override(self) -> int | None:
        raw = (self.override_pct.data or "").strip().removesuffix("%").strip()
        return int(raw) if raw else None


class AddItemForm(_Posted):
    decision_id = IdField(validators=_id("Choose a decision to add."))
    reason = StringField(validators=[Length(max=300, message="Keep the reason under 300 "
                                                             "characters.")])


class RemoveItemForm(_Posted):
    reason = StringField(validators=[Length(max=300, message="Keep the reason under 300 "
                                                             "characters.")])


class Repeated(Field):
    """A field the page repeats under one name (one per row): its values in page order, the
    first `MAX_ACTIONS`, each at most `max_length` characters."""

    def __init__(self, *args: Any, max_length: int = 5000, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self.max_length = max_length

    def process_formdata(self, valuelist: list[Any]) -> None:
        self.data = [str(v) for v in valuelist][:MAX_ACTIONS]

    def pre_validate(self, form: Any) -> None:
        if self.data is None:
            self.data = []
        for n, value in enumerate(self.data, start=1):
            if len(value) > self.max_length:
                raise ValueError(f"Action {n}: keep it under {self.max_length:,} characters.")


class OutcomeForm(_Posted):
    """The IQA's signed outcome, with up to ten actions for the assessor. The outcome itself
    and the actions are checked by `outcomes.record_outcome`, which says what is wrong."""

    outcome = StringField(validators=[Length(max=30)])
    rationale_md = TextAreaField(validators=[Length(max=MAX_TEXT, message="Keep the rationale "
                                                                          "under 20,000 "
                                                                          "characters.")])
    action_description = Repeated(max_length=5000)
    action_due_on = Repeated(max_length=10)

    def actions(self) -> list[tuple[str, str]]:
        """(description, due date as typed) per row of the page."""
        dues = self.action_due_on.data or []
        return [(text, dues[n] if n < len(dues) else "")
                for n, text in enumerate(self.action_description.data or [])]


class ActionStepForm(_Posted):
    text_md = TextAreaField(validators=[Length(max=MAX_TEXT, message="Keep it under 20,000 "
                                                                     "characters.")])

