"""An asset's metadata is edited in its form as key/value rows (SPEC §3 `metadata`); values a
scanner reported as lists or numbers stay what they were when other rows change."""

from __future__ import annotations

from werkzeug.datastructures import MultiDict

from tests.factories import make_asset
from tests.web.browser import find_form, form_values
from tests.web.pages import parse
from webapp.models import Asset


def _post(client, url, html, rows):  # type: ignore[no-untyped-def]
    """Post the edit form as a browser would, with these metadata rows (key, value, kind)."""
    data = MultiDict((k, v) for k, v in form_values(html, url).items()
                     if not k.startswith("metadata-") or k == "metadata-rows")
    for key, value, kind in rows:
        data.add("metadata-key", key)
        data.add("metadata-value", value)
        data.add("metadata-kind", kind)
    return client.post(url, data=data)


def test_the_edit_form_shows_metadata_rows_and_keeps_json_values(client, session, login_as):
    asset = make_asset(session, name="ledger",
                       metadata={"team": "payments", "nmap_cpe": ["cpe:/a:postgresql:postgresql:15"]})
    login_as("analyst")
    url = f"/assets/{asset.id}/edit"
    html = client.get(url).get_data(as_text=True)
    form = find_form(html, url)
    keys = [i.get("value") for i in form.find_all("input", name="metadata-key")]
    values = [i.get("value") for i in form.find_all("input", name="metadata-value")]
    assert keys == ["team", "nmap_cpe", ""]
    assert values == ["payments", '["cpe:/a:postgresql:postgresql:15"]', ""]
    labels = {lab.text for lab in parse(html).by_id("metadata").find_all("label")}
    assert "Metadata key 1" in labels and "Metadata value 1" in labels
    response = _post(client, url, html, [("team", "ledger-team", "text"),
                                         ("nmap_cpe", '["cpe:/a:postgresql:postgresql:15"]', "json"),
                                         ("tier", "1", "text")])
    assert response.status_code == 303
    session.expire_all()
    assert session.get(Asset, asset.id).metadata_ == {
        "team": "ledger-team", "nmap_cpe": ["cpe:/a:postgresql:postgresql:15"], "tier": "1"}


def test_a_blank_key_removes_its_row(client, session, login_as):
    asset = make_asset(session, name="ledger", metadata={"team": "payments", "old": "x"})
    login_as("analyst")
    url = f"/assets/{asset.id}/edit"
    html = client.get(url).get_data(as_text=True)
    assert _post(client, url, html, [("team", "payments", "text"), ("", "x", "text")]).status_code == 303
    session.expire_all()
    assert session.get(Asset, asset.id).metadata_ == {"team": "payments"}


def test_bad_json_is_422_and_the_typed_rows_stay(client, session, login_as):
    asset = make_asset(session, name="ledger", metadata={"ports": [5432]})
    login_as("analyst")
    url = f"/assets/{asset.id}/edit"
    html = client.get(url).get_data(as_text=True)
    response = _post(client, url, html, [("ports", "[5432", "json")])
    assert response.status_code == 422
    body = response.get_data(as_text=True)
    assert "The value of “ports” is not valid JSON." in body
    values = [i.get("value") for i in find_form(body, url).find_all("input", name="metadata-value")]
    assert values[0] == "[5432"
    session.expire_all()
    assert session.get(Asset, asset.id).metadata_ == {"ports": [5432]}
