"""Reading tables out of console pages in tests: each cell's text and its first link."""

from __future__ import annotations

from dataclasses import dataclass, field
from html.parser import HTMLParser


@dataclass
class Cell:
    text: str = ""
    href: str | None = None


@dataclass
class _Table:
    rows: list[list[Cell]] = field(default_factory=list)


class _TableParser(HTMLParser):
    def __init__(self, table_id: str) -> None:
        super().__init__()
        self.table_id = table_id
        self.depth = 0  # > 0 inside the table (nested tables count)
        self.in_body = False
        self.table = _Table()
        self.cell: Cell | None = None
        self.found = False

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        values = dict(attrs)
        if tag == "table":
            if self.depth or values.get("id") == self.table_id:
                self.depth += 1
                self.found = True
            return
        if not self.depth:
            return
        if tag == "tbody":
            self.in_body = True
        elif tag == "tr" and self.in_body:
            self.table.rows.append([])
        elif tag in ("td", "th") and self.in_body:
            self.cell = Cell()
            self.table.rows[-1].append(self.cell)
        elif tag == "a" and self.cell is not None and self.cell.href is None:
            self.cell.href = values.get("href")

    def handle_endtag(self, tag: str) -> None:
        if not self.depth:
            return
        if tag == "table":
            self.depth -= 1
        elif tag == "tbody":
            self.in_body = False
        elif tag in ("td", "th"):
            self.cell = None

    def handle_data(self, data: str) -> None:
        if self.cell is not None:
            self.cell.text = " ".join((self.cell.text + data).split())


def table_rows(page: str, table_id: str) -> list[list[Cell]]:
    """The body rows of the table `table_id` in `page`; AssertionError when it is missing."""
    parser = _TableParser(table_id)
    parser.feed(page)
    assert parser.found, f"no table #{table_id} on the page"
    return parser.table.rows
