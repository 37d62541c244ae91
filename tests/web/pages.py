"""Read rendered pages the way a person (or a screen reader) would: labels, fields, buttons, text.

A small tree built with the standard library's HTMLParser, so the tests need no extra package.
"""

from __future__ import annotations

import re
from collections.abc import Iterator
from dataclasses import dataclass, field
from html.parser import HTMLParser

VOID = {"area", "base", "br", "col", "embed", "hr", "img", "input", "link", "meta", "source",
        "track", "wbr"}


@dataclass
class Element:
    tag: str
    attrs: dict[str, str]
    children: list[Element | str] = field(default_factory=list)
    parent: Element | None = None

    def get(self, name: str, default: str | None = None) -> str | None:
        return self.attrs.get(name, default)

    @property
    def text(self) -> str:
        parts: list[str] = []
        for child in self.children:
            parts.append(child if isinstance(child, str) else child.text)
        return re.sub(r"\s+", " ", " ".join(parts)).strip()

    def iter(self) -> Iterator[Element]:
        for child in self.children:
            if isinstance(child, Element):
                yield child
                yield from child.iter()

    def find_all(self, tag: str | None = None, **attrs: str) -> list[Element]:
        found = []
        for el in self.iter():
            if tag is not None and el.tag != tag:
                continue
            if all(el.attrs.get(k.rstrip("_").replace("_", "-")) == v for k, v in attrs.items()):
                found.append(el)
        return found

    def find(self, tag: str | None = None, **attrs: str) -> Element | None:
        found = self.find_all(tag, **attrs)
        return found[0] if found else None

    def by_id(self, element_id: str) -> Element | None:
        for el in self.iter():
            if el.attrs.get("id") == element_id:
                return el
        return None


class _TreeBuilder(HTMLParser):
    def __init__(self) -> None:
        super().__init__(convert_charrefs=True)
        self.root = Element("#document", {})
        self.current = self.root

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        el = Element(tag, {k: (v if v is not None else "") for k, v in attrs}, parent=self.current)
        self.current.children.append(el)
        if tag not in VOID:
            self.current = el

    def handle_startendtag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        el = Element(tag, {k: (v if v is not None else "") for k, v in attrs}, parent=self.current)
        self.current.children.append(el)

    def handle_endtag(self, tag: str) -> None:
        node: Element | None = self.current
        while node is not None and node.tag != tag:
            node = node.parent
        if node is not None and node.parent is not None:
            self.current = node.parent

    def handle_data(self, data: str) -> None:
        self.current.children.append(data)


def parse(html: str | bytes) -> Element:
    builder = _TreeBuilder()
    builder.feed(html.decode() if isinstance(html, bytes) else html)
    builder.close()
    return builder.root


def labelled_control(page: Element, label_text: str) -> Element:
    """The form control a `<label for=…>` with exactly this text points at (fails if none)."""
    labels = [lab for lab in page.find_all("label") if lab.text == label_text]
    assert labels, f"no <label> reads {label_text!r}"
    for label in labels:
        target = label.get("for")
        assert target, f"label {label_text!r} has no for= attribute"
        control = page.by_id(target)
        assert control is not None, f"label {label_text!r} points at missing id {target!r}"
        assert control.tag in ("input", "select", "textarea"), control.tag
        return control
    raise AssertionError("unreachable")


def field_messages(page: Element, field_id: str) -> str:
    """The help and error text shown under one form field."""
    help_box = page.by_id(f"{field_id}-help")
    return help_box.text if help_box is not None else ""


def alert_text(page: Element) -> str:
    """The text of the form-level error box(es)."""
    return " ".join(el.text for el in page.find_all(role="alert"))


def meta_csrf_token(html: str | bytes) -> str:
    meta = parse(html).find("meta", name="csrf-token")
    assert meta is not None and meta.get("content"), "page has no <meta name=csrf-token>"
    return meta.get("content") or ""


def form_csrf_token(html: str | bytes) -> str:
    field_ = parse(html).find("input", name="csrf_token")
    assert field_ is not None and field_.get("value"), "form has no csrf_token field"
    return field_.get("value") or ""


def in_app_layout(html: str | bytes) -> bool:
    """The page is rendered inside the app's layout: brand link and main landmark."""
    page = parse(html)
    brand = page.find("a", class_="brand")
    return brand is not None and brand.text == "Asset Inventory" and page.by_id("main") is not None
