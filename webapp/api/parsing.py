"""Request parsing for the API: flask-smorest blueprints whose JSON bodies are strict JSON.

Python's json module accepts NaN and Infinity (not JSON; no database stores them), overflows
1e400 to infinity, keeps unpaired surrogates (which cannot be encoded to UTF-8 for the
database or the audit hash) and recurses without bound. A body with any of these is refused as
invalid JSON (422), before a schema or the database sees it.
"""

from __future__ import annotations

import json
import math
import re
from typing import Any, NoReturn

import flask
from flask_smorest import Blueprint
from webargs import core
from webargs.flaskparser import FlaskParser, abort, is_json_request

MAX_DEPTH = 32
UNPAIRED_SURROGATE = re.compile(r"[\ud800-\udfff]")


class _Rejected(ValueError):
    pass


def _no_constant(name: str) -> NoReturn:
    raise _Rejected(f"{name} is not a JSON number")


def _finite(text: str) -> float:
    value = float(text)
    if not math.isfinite(value):
        raise _Rejected(f"the number {text[:40]} is out of range")
    return value


def _check(value: Any) -> None:
    """Depth and text of a decoded document, walked without recursion."""
    stack: list[tuple[Any, int]] = [(value, 1)]
    while stack:
        item, depth = stack.pop()
        if isinstance(item, str):
            if UNPAIRED_SURROGATE.search(item):
                raise _Rejected("text contains an unpaired UTF-16 surrogate")
        elif isinstance(item, dict | list):
            if depth > MAX_DEPTH:
                raise _Rejected(f"it is nested more than {MAX_DEPTH} levels deep")
            if isinstance(item, dict):
                stack.extend((k, depth) for k in item)
                stack.extend((v, depth + 1) for v in item.values())
            else:
                stack.extend((v, depth + 1) for v in item)


def load_strict_json(text: str) -> Any:
    """Decode `text` as strict JSON; raise json.JSONDecodeError saying what is wrong."""
    try:
        data = json.loads(text, parse_constant=_no_constant, parse_float=_finite)
        _check(data)
    except RecursionError:
        raise json.JSONDecodeError(
            f"it is nested more than {MAX_DEPTH} levels deep", text or " ", 0
        ) from None
    except _Rejected as exc:
        raise json.JSONDecodeError(str(exc), text or " ", 0) from None
    return data


class StrictJsonParser(FlaskParser):
    def _raw_load_json(self, req: flask.Request) -> Any:
        if not is_json_request(req):
            return core.missing
        raw = req.get_data(cache=True)
        return load_strict_json(raw.decode("utf-8"))  # UnicodeDecodeError: handled by webargs

    def _handle_invalid_json_error(self, error: Any, req: flask.Request, *args: Any,
                                   **kwargs: Any) -> NoReturn:
        reason = getattr(error, "msg", None) or getattr(error, "reason", None) or "not JSON"
        abort(400, exc=error, messages={"json": [f"Invalid JSON body: {reason}."]})


class ApiBlueprint(Blueprint):
    """A flask-smorest Blueprint parsing request bodies with StrictJsonParser."""

    ARGUMENTS_PARSER = StrictJsonParser()
