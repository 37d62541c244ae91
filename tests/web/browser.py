"""What a browser does with a page that the test client does not: submit a form with every
field it holds, as it is shown."""

from __future__ import annotations

from typing import Any

from sqlalchemy import func, select

from tests.web.pages import Element, parse
from webapp.models import Asset, AuditEvent

HTMX = {"HX-Request": "true"}


def _raw_text(el: Element) -> str:
    parts: list[str] = []
    for child in el.children:
        parts.append(child if isinstance(child, str) else _raw_text(child))
    return "".join(parts)


def find_form(html: str | bytes, action: str) -> Element:
    """The `<form>` whose action is `action` (the path, without a query string)."""
    page = parse(html)
    for form in page.find_all("form"):
        if (form.get("action") or "").split("?")[0] == action:
            return form
    raise AssertionError(f"no form posts to {action!r}")


def form_values(html: str | bytes, action: str) -> dict[str, str]:
    """The data a browser would send when the form posting to `action` is submitted unchanged."""
    form = find_form(html, action)
    data: dict[str, str] = {}
    for el in form.iter():
        name = el.get("name")
        if not name or el.get("disabled") is not None:
            continue
        if el.tag == "input":
            kind = (el.get("type") or "text").lower()
            if kind in ("submit", "button", "reset", "image", "file"):
                continue
            if kind in ("checkbox", "radio"):
                if el.get("checked") is not None:
                    data[name] = el.get("value") or "on"
                continue
            data[name] = el.get("value") or ""
        elif el.tag == "select":
            options = el.find_all("option")
            chosen = [o for o in options if o.get("selected") is not None] or options[:1]
            data[name] = (chosen[0].get("value") if chosen[0].get("value") is not None
                          else chosen[0].text) if chosen else ""
        elif el.tag == "textarea":
            text = _raw_text(el)
            # HTML drops one newline right after <textarea> (WTForms writes "\r\n" there)
            if text.startswith("\r\n"):
                text = text[2:]
            elif text.startswith("\n"):
                text = text[1:]
            data[name] = text
    return data


def field_value(html: str | bytes, field_id: str) -> str:
    """The value a form control currently shows (input value, selected option, textarea text)."""
    el = parse(html).by_id(field_id)
    assert el is not None, f"no element with id {field_id!r}"
    if el.tag == "select":
        chosen = [o for o in el.find_all("option") if o.get("selected") is not None]
        return (chosen[0].get("value") or "") if chosen else ""
    if el.tag == "textarea":
        return _raw_text(el).lstrip("\r\n")
    return el.get("value") or ""


def row_counts(session: Any) -> tuple[int, int]:
    """(assets, audit events) as the database holds them now."""
    session.expire_all()
    return (
        session.scalar(select(func.count()).select_from(Asset)),
        session.scalar(select(func.count()).select_from(AuditEvent)),
    )
