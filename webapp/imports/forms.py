"""The upload form. The service checks the file's format and the source for every entry point."""

from __future__ import annotations

from flask_wtf import FlaskForm
from flask_wtf.file import FileField
from wtforms import BooleanField, StringField, SubmitField


class UploadForm(FlaskForm):
    file = FileField(
        "Discovery file",
        description="Inventory JSON, CSV, nmap XML (-sV), AWS RDS, GCP Cloud SQL or Azure JSON. "
        "The format is detected from the content.",
    )
    source = StringField(
        "Source", description="Who or what produced the file, e.g. nmap-dc1. Defaults to the format."
    )
    dry_run = BooleanField("Dry run", description="Show what would change, and write nothing.")
    submit = SubmitField("Upload")

