from flask import Blueprint

bp = Blueprint("compliance", __name__)

from webapp.compliance import routes  # noqa: E402,F401
