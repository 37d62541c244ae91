"""The notification settings form of `/account/notifications`."""

from __future__ import annotations

from flask_wtf import FlaskForm
from wtforms import (
    BooleanField,
    RadioField,
    SelectChoice,
    SelectField,
    SelectMultipleField,
    SubmitField,
)
from wtforms.widgets import CheckboxInput, ListWidget

from webapp.models import EmailMode, EventSeverity
from webapp.services.outbox import KINDS


class CheckboxesField(SelectMultipleField):
    widget = ListWidget(prefix_label=False)
    option_widget = CheckboxInput()


class NotificationSettingsForm(FlaskForm):
    # SelectChoice, not tuples (WTForms 3.3 deprecates them); choices are checked by the service (422 naming the field), not by WTForms
    kinds = CheckboxesField("Kinds", choices=[SelectChoice(k, label) for k, label in KINDS.items()], validate_choice=False,
                            description="What you are told about. Kinds meant for a role above yours never reach you.")
    min_severity = SelectField("Minimum severity", choices=[SelectChoice(s.value) for s in EventSeverity],
                               validate_choice=False, default=EventSeverity.info.value,
                               description="Less severe notifications are left out.")
    email = BooleanField("E-mail me as well")
    email_mode = RadioField("How", choices=[SelectChoice(EmailMode.digest.value, "A daily digest of what is unread"),
                                            SelectChoice(EmailMode.immediate.value, "One e-mail per notification, at once")],
                            validate_choice=False, default=EmailMode.digest.value)
    submit = SubmitField("Save")
