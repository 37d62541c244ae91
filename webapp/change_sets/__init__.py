from flask import Blueprint

bp = Blueprint("change_sets", __name__)

from webapp.change_sets import routes  # noqa: E402,F401
