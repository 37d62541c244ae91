from flask import Blueprint

bp = Blueprint("assets", __name__)

from webapp.assets import routes  # noqa: E402,F401
