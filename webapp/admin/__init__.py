from flask import Blueprint

bp = Blueprint("admin", __name__, url_prefix="/admin")

from webapp.admin import approval, routes, tasks, webhooks  # noqa: E402,F401
