"""The exception form of an asset's Policy tab."""

from __future__ import annotations

from datetime import UTC, datetime, time

from flask_wtf import FlaskForm
from wtforms import DateField, HiddenField, TextAreaField
from wtforms.validators import Optional


class ExceptionForm(FlaskForm):
    control = HiddenField("Control")
    reason = TextAreaField("Reason", validators=[Optional()],
                           description="Why this asset may fail the control, and what is planned.")
    expires_on = DateField("Until", validators=[Optional()],
                           description="The last day the exception holds (at most a year away).")

    def expires_at(self) -> datetime | None:
        """The end of the chosen day, UTC: an exception "until 30 June" holds all of that day."""
        day = self.expires_on.data
        return datetime.combine(day, time.max, tzinfo=UTC) if day else None
