"""Request parsing for the API: flask-smorest blueprints whose JSON bodies are strict JSON.

Python's json module accepts NaN and Infinity (not JSON; no database stores them), overflows
1e400 to infinity, keeps unpaired surrogates (which cannot be encoded to UTF-8 for the
database or the audit hash) and recurses without bound. A body with any of these is refused as
invalid JSON (422), before a schema or the database sees it. Text holding NUL is a 422 naming
the field, for every endpoint at once (query strings and forms: webapp/web/request.py).
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

from webapp.services.errors import ValidationFailed
from webapp.services.text import UNSTORABLE_MESSAGE as NUL_MESSAGE

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
    """Depth and text of a decoded document, walked without recursion.

    NUL (which PostgreSQL text and JSONB refuse) is a validation error naming where it is
    (`metadata.k`, `aliases.1`); the other faults make the body invalid JSON.
    """
    stack: list[tuple[Any, int, str]] = [(value, 1, "")]
    nul: dict[str, str] = {}
    while stack:
        item, depth, path = stack.pop()
        if isinstance(item, str):
            if UNPAIRED_SURROGATE.search(item):
                raise _Rejected("text contains an unpaired UTF-16 surrogate")
            if "\x00" in item:
                nul.setdefault(path or "body", NUL_MESSAGE)
        elif isinstance(item, dict | list):
            if depth > MAX_DEPTH:
                raise _Rejected(f"it is nested more than {MAX_DEPTH} levels deep")
            if isinstance(item, dict):
                for k, v in item.items():
                    inner = f"{path}.{k}" if path else str(k)
                    stack.append((k, depth, inner))
                    stack.append((v, depth + 1, inner))
            else:
                stack.extend((v, depth + 1, f"{path}.{i}" if path else str(i))
                             for i, v in enumerate(item))
    if nul:
        raise ValidationFailed({k.replace("\x00", "\\0"): m for k, m in sorted(nul.items())},
                               "Some values hold text that cannot be stored.")


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
