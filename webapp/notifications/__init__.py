"""Notifications (SPEC §13): the header's bell, `/notifications` and `/account/notifications`."""

from flask import Blueprint

bp = Blueprint("notifications", __name__)

from webapp.notifications import routes  # noqa: E402,F401
