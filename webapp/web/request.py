"""The request class: text the database cannot store is refused where parameters are parsed.

PostgreSQL text and JSONB cannot hold NUL, and a lone UTF-16 surrogate (which arrives in a URL as
`%ED%A0%80`, bytes that are not UTF-8) cannot be encoded for the database or the audit hash.
Werkzeug keeps both: NUL as it is, and invalid bytes still percent-encoded. So every query string,
form and header the app reads goes through here, once, for every page and endpoint; a bad value
raises ValidationFailed naming the parameter (a 422), never reaching a query. JSON bodies are
checked by the API's parser (webapp/api/parsing.py) with the same message.

The parameters are checked on first use, so a page that renders its own filter errors (the asset
list, the review queue) shows this one in the same place. After a refusal the request's args or
form read as empty, so an error page rendering the filters cannot fail a second time.
"""

from __future__ import annotations

from urllib.parse import unquote_to_bytes

from flask import Flask, Request
from werkzeug.datastructures import ImmutableMultiDict, MultiDict
from werkzeug.exceptions import RequestHeaderFieldsTooLarge
from werkzeug.utils import cached_property

from webapp.services.errors import ValidationFailed
from webapp.services.text import UNSTORABLE
from webapp.services.text import UNSTORABLE_MESSAGE as NUL_MESSAGE

NOT_UTF8_MESSAGE = "This text is not valid UTF-8 (a broken character or a lone surrogate)."
MAX_HEADER_BYTES = 8192
# headers the app reads; User-Agent goes into the audit log
READ_HEADERS = ("User-Agent", "Authorization", "If-Match", "X-Request-ID", "HX-Target",
                "HX-Request", "HX-Boosted", "HX-History-Restore-Request")


def unstorable(value: str) -> bool:
    return UNSTORABLE.search(value) is not None


def _decode(raw: bytes, field: str | None) -> str:
    try:
        return unquote_to_bytes(raw.replace(b"+", b" ")).decode("utf-8")
    except UnicodeDecodeError:
        name = field if field is not None else raw.decode("latin-1")[:100]
        raise ValidationFailed({name: NOT_UTF8_MESSAGE}, "A parameter is not valid text.") from None


def parse_query(query_string: bytes) -> list[tuple[str, str]]:
    """`a=1&b=2` as pairs, like Werkzeug, but invalid UTF-8 or NUL is a ValidationFailed."""
    pairs: list[tuple[str, str]] = []
    errors: dict[str, str] = {}
    for part in query_string.split(b"&"):
        if not part:
            continue
        raw_name, _, raw_value = part.partition(b"=")
        try:
            name = _decode(raw_name, None)
            value = _decode(raw_value, name)
        except ValidationFailed as exc:
            errors.update(exc.errors)
            continue
        if unstorable(name) or unstorable(value):
            errors[name.replace("\x00", "\\0")] = NUL_MESSAGE
            continue
        pairs.append((name, value))
    if errors:
        raise ValidationFailed(errors, "Some parameters hold text that cannot be stored.")
    return pairs


def check_form(form: MultiDict[str, str]) -> None:
    errors = {
        name.replace("\x00", "\\0"): NUL_MESSAGE
        for name, value in form.items(multi=True)
        if unstorable(name) or (isinstance(value, str) and unstorable(value))
    }
    if errors:
        raise ValidationFailed(errors, "Some fields hold text that cannot be stored.")


class CheckedRequest(Request):
    """Flask's Request, refusing NUL and invalid Unicode in the query string and the form."""

    @cached_property
    def args(self) -> ImmutableMultiDict[str, str]:  # type: ignore[override]
        try:
            return ImmutableMultiDict(parse_query(self.query_string))
        except ValidationFailed:
            self.__dict__["args"] = ImmutableMultiDict()
            raise

    def _load_form_data(self) -> None:
        super()._load_form_data()
        form = self.__dict__.get("form")
        if form:
            try:
                check_form(form)
            except ValidationFailed:
                self.__dict__["form"] = ImmutableMultiDict()
                raise


def check_headers(request: Request) -> None:
    """No header over MAX_HEADER_BYTES (a 431 in the app's own format: gunicorn is configured to
    pass up to 64 KB, webapp/gunicorn_conf.py); no NUL in the headers the app reads (a
    User-Agent is written to the audit log)."""
    for name, value in request.headers.items():
        if len(name) + len(value) > MAX_HEADER_BYTES:
            raise RequestHeaderFieldsTooLarge(
                f"The {name[:40]} header is larger than this server accepts "
                f"({MAX_HEADER_BYTES // 1024} KB).")
    errors = {
        f"{name} header": NUL_MESSAGE
        for name in READ_HEADERS
        if "\x00" in request.headers.get(name, "")
    }
    if errors:
        raise ValidationFailed(errors, "A request header holds text that cannot be stored.")


def init_app(app: Flask) -> None:
    app.request_class = CheckedRequest

    @app.before_request
    def refuse_bad_headers() -> None:
        from flask import request

        check_headers(request)
