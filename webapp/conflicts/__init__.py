from flask import Blueprint

bp = Blueprint("conflicts", __name__)

from webapp.conflicts import proposals, routes  # noqa: E402,F401
