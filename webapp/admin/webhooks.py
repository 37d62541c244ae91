"""Webhooks (SPEC §13), admin only: the list, new and edit forms, the secret shown once, Send test,
and each webhook's deliveries with their attempts and Redeliver."""

from __future__ import annotations

from flask import flash, redirect, request, url_for
from flask_wtf import FlaskForm
from werkzeug.wrappers import Response
from wtforms import (
    BooleanField,
    SelectChoice,
    SelectMultipleField,
    StringField,
    SubmitField,
    URLField,
)
from wtforms.widgets import CheckboxInput, ListWidget

from webapp.admin import bp
from webapp.extensions import db
from webapp.models import DeliveryStatus, Role
from webapp.services import outbox, webhook_history, webhooks
from webapp.services.errors import ValidationFailed
from webapp.web.forms import apply_errors
from webapp.web.htmx import render
from webapp.web.session import current_actor, role_required


class WebhookForm(FlaskForm):
    # limits are the service's (one message for the page and the API)
    name = StringField("Name", description="What people see in lists, e.g. “SIEM” or “#dba-alerts”.")
    url = URLField("URL", description="Where events are POSTed. https, and a public address: private "
                   "and loopback addresses are refused.")
    kinds = SelectMultipleField("Events to send", choices=[SelectChoice(k, label) for k, label in outbox.KINDS.items()],
                                widget=ListWidget(prefix_label=False), option_widget=CheckboxInput(),
                                validate_choice=False)  # the service names an unknown kind
    active = BooleanField("Active", default=True, description="An inactive webhook receives nothing; "
                          "its pending deliveries are dropped.")
    submit = SubmitField("Save webhook")


def _save_fields(form: WebhookForm) -> dict[str, object]:
    return {"name": form.name.data or "", "url": form.url.data or "", "kinds": list(form.kinds.data or []),
            "active": bool(form.active.data)}


@bp.route("/webhooks")
@role_required(Role.admin)
def webhooks_index() -> Response:
    return render("admin/webhooks.html", "content", rows=webhook_history.list_webhooks(db.session))


@bp.route("/webhooks/new", methods=["GET", "POST"])
@role_required(Role.admin)
def new_webhook() -> Response:
    form = WebhookForm()
    status = 200
    if form.validate_on_submit():
        try:
            webhook, secret = webhooks.create(db.session, current_actor(), **_save_fields(form))  # type: ignore[arg-type]
        except ValidationFailed as exc:
            apply_errors(form, exc)
            status = 422
        else:
            # the secret is in this response only: never flashed, stored in the session or logged
            return render("admin/webhook_secret.html", "content", status=201, webhook=webhook,
                          secret=secret, created=True)
    elif request.method == "POST":
        status = 422
    return render("admin/webhook_form.html", "content", status=status, form=form, webhook=None)


@bp.route("/webhooks/<webhook_id>", methods=["GET", "POST"])
@role_required(Role.admin)
def edit_webhook(webhook_id: str) -> Response:
    webhook = webhooks.get(db.session, webhook_id)
    form = WebhookForm(obj=webhook if request.method == "GET" else None)
    status = 200
    if form.validate_on_submit():
        try:
            webhooks.update(db.session, current_actor(), webhook.id, **_save_fields(form))  # type: ignore[arg-type]
        except ValidationFailed as exc:
            db.session.rollback()
            apply_errors(form, exc)
            status = 422
        else:
            flash(f"Webhook “{webhook.name}” saved.", "success")
            return redirect(url_for("admin.webhooks_index"), 303)
    elif request.method == "POST":
        status = 422
    return render("admin/webhook_form.html", "content", status=status, form=form, webhook=webhook)


@bp.route("/webhooks/<webhook_id>/secret", methods=["POST"])
@role_required(Role.admin)
def regenerate_webhook_secret(webhook_id: str) -> Response:
    secret = webhooks.regenerate_secret(db.session, current_actor(), webhook_id)
    return render("admin/webhook_secret.html", "content", webhook=webhooks.get(db.session, webhook_id),
                  secret=secret, created=False)


@bp.route("/webhooks/<webhook_id>/delete", methods=["POST"])
@role_required(Role.admin)
def delete_webhook(webhook_id: str) -> Response:
    name = webhooks.get(db.session, webhook_id).name
    webhooks.delete(db.session, current_actor(), webhook_id)
    flash(f"Webhook “{name}” deleted, with its deliveries.", "success")
    return redirect(url_for("admin.webhooks_index"), 303)


@bp.route("/webhooks/<webhook_id>/test", methods=["POST"])
@role_required(Role.admin)
def test_webhook(webhook_id: str) -> Response:
    delivery = webhooks.send_test(db.session, current_actor(), webhook_id)
    flash("Test delivery queued; its result appears below within seconds.", "success")
    return redirect(url_for("admin.webhook_deliveries", webhook_id=delivery.webhook_id), 303)


@bp.route("/webhooks/<webhook_id>/deliveries")
@role_required(Role.admin)
def webhook_deliveries(webhook_id: str) -> Response:
    webhook = webhooks.get(db.session, webhook_id)
    rows = webhook_history.deliveries(db.session, webhook.id, limit=50)
    # the page refreshes itself while a delivery just queued has not been tried yet
    sending = any(r.delivery.status is DeliveryStatus.pending and r.delivery.attempts == 0 for r in rows)
    return render("admin/webhook_deliveries.html", "deliveries", webhook=webhook, rows=rows, sending=sending)


@bp.route("/webhooks/deliveries/<delivery_id>/redeliver", methods=["POST"])
@role_required(Role.admin)
def redeliver_webhook(delivery_id: str) -> Response:
    delivery = webhooks.redeliver(db.session, current_actor(), delivery_id)
    flash("Delivery queued again, with the same delivery id.", "success")
    return redirect(url_for("admin.webhook_deliveries", webhook_id=delivery.webhook_id), 303)
