"""Helpers between WTForms and the service layer's ValidationFailed."""

from __future__ import annotations

from flask_wtf import FlaskForm

from webapp.services.errors import ValidationFailed


def apply_errors(form: FlaskForm, exc: ValidationFailed) -> None:
    """Attach a service's per-field messages to the form's fields (or the form itself)."""
    for field, message in exc.errors.items():
        target = getattr(form, field, None)
        if target is not None and hasattr(target, "errors"):
            errors = list(target.errors)
            errors.append(message)
            target.errors = errors
        else:
            form.form_errors.append(f"{field}: {message}")
