from flask import Blueprint

bp = Blueprint("assets", __name__)

from webapp.assets import list_parts, routes, sources, tags  # noqa: E402,F401
