"""The XLSX writer of exports: a workbook in xlsxwriter's constant-memory mode."""

from __future__ import annotations

import json
import os
import tempfile
from collections.abc import Callable, Iterable, Iterator
from typing import Any

import xlsxwriter

from webapp.services.export_columns import COLUMNS, EMPTY_JSON, KINDS, LIST_SEPARATOR, Page

XLSX_MAX_ROWS = 1_048_576  # a worksheet's limit: past it the rows go on to a new sheet
READ_SIZE = 1 << 16


def write_xlsx(pages: Iterable[Page]) -> Iterator[bytes]:
    """A workbook written in xlsxwriter's constant-memory mode (each row flushed to a temporary
    file as it is written). A zip is only complete when closed, so the bytes follow the last row.
    Text is written as text, never as a formula."""
    with tempfile.TemporaryDirectory(prefix="inventory-export-") as tmp:
        path = os.path.join(tmp, "assets.xlsx")
        workbook = xlsxwriter.Workbook(path, {
            "constant_memory": True, "tmpdir": tmp, "remove_timezone": True,
            "strings_to_formulas": False, "strings_to_numbers": False, "strings_to_urls": False,
        })
        header = workbook.add_format({"bold": True})
        moment = workbook.add_format({"num_format": "yyyy-mm-dd hh:mm:ss"})
        cells = [_xlsx_cell(KINDS[name], moment) for name in COLUMNS]
        sheet, row = None, XLSX_MAX_ROWS
        for page in pages:
            for values in page:
                if row == XLSX_MAX_ROWS:
                    sheet = workbook.add_worksheet(f"Assets {len(workbook.worksheets()) + 1}"
                                                   if workbook.worksheets() else "Assets")
                    sheet.freeze_panes(1, 0)
                    sheet.write_row(0, 0, COLUMNS, header)
                    row = 1
                for column, (cell, value) in enumerate(zip(cells, values, strict=True)):
                    if value is not None:
                        cell(sheet, row, column, value)
                row += 1
        if sheet is None:  # no rows: the header alone
            sheet = workbook.add_worksheet("Assets")
            sheet.write_row(0, 0, COLUMNS, header)
        workbook.close()
        with open(path, "rb") as stream:
            while chunk := stream.read(READ_SIZE):
                yield chunk


def _xlsx_cell(kind: str, moment: Any) -> Callable[[Any, int, int, Any], Any]:
    if kind in ("integer", "number"):
        return lambda sheet, r, c, v: sheet.write_number(r, c, v)
    if kind == "boolean":
        return lambda sheet, r, c, v: sheet.write_boolean(r, c, v)
    if kind == "timestamp":
        return lambda sheet, r, c, v: sheet.write_datetime(r, c, v, moment)
    if kind == "tags":
        return lambda sheet, r, c, v: sheet.write_string(r, c, LIST_SEPARATOR.join(v)) if v else None
    if kind == "list":  # JSON text
        return lambda sheet, r, c, v: (
            None if v in EMPTY_JSON else sheet.write_string(r, c, LIST_SEPARATOR.join(json.loads(v)))
        )
    if kind == "mapping":  # JSON text
        return lambda sheet, r, c, v: None if v in EMPTY_JSON else sheet.write_string(r, c, v)
    return lambda sheet, r, c, v: sheet.write_string(r, c, str(v))  # text, choice, id
