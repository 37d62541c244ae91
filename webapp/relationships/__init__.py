from flask import Blueprint

bp = Blueprint("relationships", __name__)

from webapp.relationships import routes  # noqa: E402,F401
