"""Page text with its layout: opening the PDF, the fast pypdfium2 path, the pdfplumber fallback.

pypdfium2 reports each run of text (a text object on one line) as a rectangle; those runs are
grouped into visual rows, top to bottom, and the runs of a row into cells, left to right, split
where the horizontal gap is wide. A row's text joins its cells with a tab, so "label<TAB>value"
and table columns survive whatever order the PDF drew them in. Pages drawn glyph by glyph (one
run per letter) are read character by character instead, and a run laid out in columns with
spaces (a monospace text dump) is split at its wide gaps. Words the PDF set letter by letter or
broke with a hyphen are made whole as the rows are built. pdfplumber (much slower) is used only
on demand, for one page, when a line-item table could not be read from the fast path.
"""

from __future__ import annotations

import ctypes
import io
import re
import threading
from codecs import utf_16_le_decode
from collections.abc import Callable, Iterable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from typing import Any

import pypdfium2 as pdfium
import pypdfium2.raw as pdfium_c

from bastion.pipeline.model import ExtractionError

__all__ = [
    "Cell",
    "Hit",
    "Page",
    "Row",
    "build_rows",
    "find_labels",
    "open_document",
    "pdfium_lock",
    "plumber_page",
    "read_page",
    "read_pages",
    "reset_pdfium_error",
    "values_near",
]

# PDFium is not thread-safe: every call into it goes through this lock.
pdfium_lock = threading.RLock()

_MAX_RECTS = 20000  # runs on one page past which the layout is skipped (plain text only)
# Rotated text (a filing or print line up the margin) is left out of the rows: a run far
# taller than wide (points), or a glyph turned by more than about 20 degrees (radians).
_ROTATED_RATIO = 2.5
_ROTATED_MIN = 24.0
_ROTATED_ANGLE = 0.35
_TWO_PI = 6.283185307179586
_WS_RE = re.compile(r"[\s\u00a0\u202f\u2009\u200b\ufeff]+")
_CONTROL_RE = re.compile(r"[\x00-\x08\x0b-\x1f\x7f\ufffe\uffff]")


@dataclass(slots=True)
class Cell:
    """A run of text on one line. Coordinates in points, y measured down from the page top."""

    text: str
    x0: float
    x1: float
    top: float
    bottom: float
    space: bool = True  # a word break follows (PDFium put a space after the run)

    @property
    def height(self) -> float:
        return self.bottom - self.top


@dataclass(slots=True)
class Row:
    """One visual line of a page: its cells, left to right."""

    cells: list[Cell]
    top: float
    bottom: float
    text: str = ""
    height: float = 0.0  # the tallest cell's height: a proxy for the font size

    @property
    def x0(self) -> float:
        return self.cells[0].x0 if self.cells else 0.0


@dataclass(slots=True)
class Page:
    number: int  # 1-based
    width: float
    height: float
    rows: list[Row] = field(default_factory=list)
    text: str = ""


def _clean(text: str) -> str:
    if text.isascii() and text.isprintable():
        return " ".join(text.split())
    return _WS_RE.sub(" ", _CONTROL_RE.sub("", text)).strip()


def _group(cells: Iterable[Cell]) -> list[list[Cell]]:
    """Cells grouped into visual lines (vertical overlap), each line sorted left to right."""
    ordered = sorted(cells, key=_center)
    rows: list[list[Cell]] = []
    current: list[Cell] = []
    band_top = band_bottom = 0.0
    for cell in ordered:
        top, bottom = cell.top, cell.bottom
        if current:
            overlap = (band_bottom if band_bottom < bottom else bottom) - (
                band_top if band_top > top else top
            )
            band = band_bottom - band_top
            height = bottom - top
            smaller = band if band < height else height
            same_line = overlap >= 0.5 * smaller if smaller > 0 else overlap >= 0
            if not same_line and height < 0.3 * band:
                # A flat glyph just under the line: an underscore, a low dash.
                same_line = top < band_bottom + 0.35 * band and bottom > band_top
            # Two runs that overlap horizontally are on different lines (a tall title can
            # span two lines of small text beside it); runs that just touch are not.
            if same_line and not _covers_any(current, cell):
                current.append(cell)
                if top < band_top:
                    band_top = top
                if bottom > band_bottom:
                    band_bottom = bottom
                continue
        current = [cell]
        rows.append(current)
        band_top, band_bottom = top, bottom
    for members in rows:
        if len(members) > 1:
            members.sort(key=_left)
    return rows


def _center(cell: Cell) -> float:
    return cell.top + cell.bottom


def _left(cell: Cell) -> float:
    return cell.x0


def _covers_any(members: list[Cell], b: Cell) -> bool:
    bx0, bx1 = b.x0, b.x1
    for a in members:
        overlap = (a.x1 if a.x1 < bx1 else bx1) - (a.x0 if a.x0 > bx0 else bx0)
        if overlap > 0.5:
            wa, wb = a.x1 - a.x0, bx1 - bx0
            if overlap > 0.3 * (wa if wa < wb else wb):
                return True
    return False


_SIGNS = frozenset("-\u2212\u2013")


def _attach_signs(rows: list[list[Cell]]) -> list[list[Cell]]:
    """A line holding nothing but a minus sign, set off the baseline of the amount it belongs
    to (just above or below it, right before its first digit): the sign joins the amount."""
    drop: set[int] = set()
    for i, members in enumerate(rows):
        if len(members) != 1 or members[0].text not in _SIGNS:
            continue
        sign = members[0]
        for j in (i + 1, i - 1):
            if not 0 <= j < len(rows) or j in drop:
                continue
            em = max(c.bottom - c.top for c in rows[j]) if rows[j] else 0.0
            near = rows[j] and min(abs(rows[j][0].top - sign.bottom),
                                   abs(sign.top - rows[j][0].bottom)) < 0.6 * em  # fmt: skip
            target = next(
                (c for c in rows[j] if c.text[:1].isdigit() and -1.0 < c.x0 - sign.x1 < em),
                None,
            ) if near else None  # fmt: skip
            if target is not None:
                target.text = "-" + target.text
                target.x0 = sign.x0
                drop.add(i)
                break
    return [m for i, m in enumerate(rows) if i not in drop] if drop else rows


def _merge(rows: list[list[Cell]]) -> list[Row]:
    """Join neighbours in a line whose gap is narrower than about one em into one cell."""
    out: list[Row] = []
    rows = _attach_signs(rows)
    for members in rows:
        members = [c for c in members if c.text]
        if not members:
            continue
        if len(members) == 1:  # most lines of a page: nothing to merge
            only = members[0]
            out.append(Row(members, only.top, only.bottom, only.text, only.bottom - only.top))
            continue
        em = max([c.bottom - c.top for c in members]) or 1.0
        merged: list[Cell] = [members[0]]
        for cell in members[1:]:
            prev = merged[-1]
            gap = cell.x0 - prev.x1
            if gap < 0.9 * em:
                # Runs drawn glyph by glyph: PDFium's own word spacing decides, then the gap.
                joiner = " " if gap < -0.5 or prev.space or gap > 0.4 * em else ""
                merged[-1] = Cell(
                    prev.text + joiner + cell.text,
                    prev.x0,
                    max(prev.x1, cell.x1),
                    min(prev.top, cell.top),
                    max(prev.bottom, cell.bottom),
                    cell.space,
                )
            else:
                merged.append(cell)
        if len(merged) < len(members):
            for cell in merged:
                if "  " in cell.text:
                    cell.text = _WS_RE.sub(" ", cell.text)
        top = min([c.top for c in merged])
        bottom = max([c.bottom for c in merged])
        text = "\t".join([c.text for c in merged])
        out.append(Row(merged, top, bottom, text, max([c.bottom - c.top for c in merged])))
    return _mend(out)


# ------------------------------------------------------------------ words set apart or broken
# Words are made whole again before anything reads them: a word set letter by letter
# ("R E C H N U N G"), a word broken by a hyphen inside a cell ("Rech- nung") or at the end of
# a line ("Rechnungs-" above "betrag"). A cell keeps the box of the glyphs it holds.

# Four or more letters, each standing alone, one space apart.
_SPACED_RE = re.compile(r"(?<!\S)(?:[^\W\d_] ){3,}[^\W\d_](?!\S)")
# A hyphen after two letters, a space, and the lower-case rest of the word.
_BROKEN_RE = re.compile(r"(?<=[^\W\d_]{2})- (?=([^\W\d_]+))")
# A hyphen that stands for the second half of a compound ("Rechnungs- und Lieferadresse").
_CONJUNCTIONS = frozenset({"und", "oder", "bzw", "sowie", "and", "or", "et", "ou", "y", "o"})


def _unbreak(m: re.Match[str]) -> str:
    rest = m.group(1)
    return "" if rest[0].islower() and rest not in _CONJUNCTIONS else m.group(0)


def _mend_text(text: str) -> str:
    if text[1:2] == " ":
        text = _SPACED_RE.sub(lambda m: m.group(0).replace(" ", ""), text)
    if "- " in text:
        text = _BROKEN_RE.sub(_unbreak, text)
    return text


def _mend(rows: list[Row]) -> list[Row]:
    """`rows` with their words made whole (see above): cells and rows rebuilt where changed."""
    changed = False
    for row in rows:
        for cell in row.cells:
            text = cell.text
            if text[1:2] == " " or "- " in text:
                mended = _mend_text(text)
                if mended != text:
                    cell.text = mended
                    changed = True
            if text[-1:] == "-":
                changed = True
    if not changed:
        return rows
    for k in range(len(rows) - 1):
        _join_lines(rows[k], rows[k + 1])
    out = [row for row in rows if row.cells]
    for row in out:
        row.text = "\t".join([c.text for c in row.cells])
    return out


def _join_lines(upper: Row, lower: Row) -> None:
    """Join a word broken by a hyphen at the end of a cell of `upper` with its rest, the first
    word of the cell of `lower` under it: into the row that holds more (the value beside a
    wrapped label), the other row losing that part."""
    if lower.top - upper.bottom > max(upper.height, 1.0):
        return
    for ci, cell in enumerate(upper.cells):
        text = cell.text
        if not (text[-1:] == "-" and text[-3:-1].isalpha()):
            continue
        under = next((c for c in lower.cells if c.x0 < cell.x1 and c.x1 > cell.x0), None)
        if under is None:
            continue
        rest, _, tail = under.text.partition(" ")
        if not (rest[:1].islower() and rest.isalpha()) or rest in _CONJUNCTIONS:
            continue
        head, _, fragment = text[:-1].rpartition(" ")
        if len(lower.cells) > len(upper.cells):
            # The row below holds more (the value beside a wrapped label): join downwards.
            per_char = (cell.x1 - cell.x0) / len(text)
            start = cell.x0 + per_char * (len(head) + 1) if head else cell.x0
            under.text = fragment + under.text
            under.x0, under.x1 = min(under.x0, start), max(under.x1, cell.x1)
            if head:
                cell.text, cell.x1 = head, start - per_char
            else:
                del upper.cells[ci]
            return
        per_char = (under.x1 - under.x0) / len(under.text)
        cell.text = text[:-1] + rest
        cell.x1 = max(cell.x1, under.x0 + per_char * len(rest))
        if tail:
            under.text = tail
            under.x0 += per_char * (len(rest) + 1)
        else:
            lower.cells.remove(under)
        return


def build_rows(cells: Iterable[Cell]) -> list[Row]:
    """Group cells into rows (vertical overlap) and merge close neighbours within a row."""
    return _merge(_group(cells))


@contextmanager
def open_document(data: bytes, max_pages: int) -> Iterator[pdfium.PdfDocument]:
    """Open `data` as a PDF, or raise ExtractionError with a reason code.

    The one place a PDF is opened: preflight's PDFium step and the extractor share its reasons
    ("empty", "not_pdf", "encrypted", "truncated", "too_many_pages"). The caller holds
    `pdfium_lock` for as long as it uses the document.
    """
    if not data:
        raise ExtractionError("empty", "the file has no bytes")
    if b"%PDF-" not in data[:1024]:
        raise ExtractionError("not_pdf", "no %PDF- header in the first 1024 bytes")
    reset_pdfium_error()
    try:
        pdf = pdfium.PdfDocument(data)
    except pdfium.PdfiumError as exc:
        code = exc.err_code
        if code in (pdfium_c.FPDF_ERR_PASSWORD, pdfium_c.FPDF_ERR_SECURITY):
            raise ExtractionError("encrypted", "a password is needed to open it") from None
        if code in (pdfium_c.FPDF_ERR_FILE, pdfium_c.FPDF_ERR_SUCCESS):
            raise ExtractionError("empty", "the PDF has no pages") from None
        tail = "no %%EOF marker" if b"%%EOF" not in data[-4096:] else "damaged structure"
        raise ExtractionError("truncated", f"{tail} ({exc})") from None
    try:
        n = len(pdf)
        if n == 0:
            raise ExtractionError("empty", "the PDF has no pages")
        if n > max_pages:
            raise ExtractionError("too_many_pages", f"{n} pages, the limit is {max_pages}")
        yield pdf
    finally:
        pdf.close()


def reset_pdfium_error() -> None:
    """Make PDFium's last-error code tell whether the next load from memory set one.

    The code is process-wide and never cleared, and some failed loads (a document without a page
    tree) set none: read after them, it is an earlier document's. Opening a file with an empty
    name sets FPDF_ERR_FILE, which a load from memory never does; after this call a failed load
    reports its own code, or FPDF_ERR_FILE when it set none. Call it holding `pdfium_lock`.
    """
    document = pdfium_c.FPDF_LoadDocument(b"", None)
    if document:  # an empty file name never opens; close it all the same
        pdfium_c.FPDF_CloseDocument(document)


# Above this many characters a page is read as plain lines: the layout path asks pdfium for
# each run's text, and every such call scans the whole page (a 1 MB line would take minutes).
_MAX_LAYOUT_CHARS = 100_000


def read_page(pdf: pdfium.PdfDocument, index: int) -> Page:
    """Rows and text of page `index` (0-based) through PDFium.

    The page and its text page are raw PDFium handles, closed here: pypdfium2's wrappers (a
    finalizer and a parent link each) cost more than the work on a short page.
    """
    page = pdfium_c.FPDF_LoadPage(pdf.raw, index)
    if not page:
        raise pdfium.PdfiumError(f"PDFium cannot load page {index + 1}")
    try:
        width = pdfium_c.FPDF_GetPageWidthF(page)
        height = pdfium_c.FPDF_GetPageHeightF(page)
        textpage = pdfium_c.FPDFText_LoadPage(page)
        if not textpage:
            raise pdfium.PdfiumError(f"PDFium cannot read the text of page {index + 1}")
        try:
            n = pdfium_c.FPDFText_CountRects(textpage, 0, -1)
            chars = pdfium_c.FPDFText_CountChars(textpage)
            cells: list[Cell] = []
            if n > _MAX_RECTS or chars > _MAX_LAYOUT_CHARS:
                for i, line in enumerate(_page_text(textpage, chars).splitlines()):
                    text = _clean(line)
                    if text:
                        cells.append(Cell(text, 0.0, width, i * 10.0, i * 10.0 + 8.0))
                rows = build_rows(cells)
            elif n > 150 and n > 0.3 * chars:
                # Text drawn glyph by glyph: reading each run costs a pass over the page;
                # reading the characters once is much cheaper.
                cells = _char_cells(textpage, chars, height)
                rows = _merge(_group(cells))
            else:
                # The raw calls with reused buffers: this loop runs for every run of text.
                get_rect = pdfium_c.FPDFText_GetRect
                left, top, right, bottom = (ctypes.c_double() for _ in range(4))
                refs = (ctypes.byref(left), ctypes.byref(top), ctypes.byref(right),
                        ctypes.byref(bottom))  # fmt: skip
                for i in range(n):
                    if get_rect(textpage, i, *refs):
                        x0, x1 = left.value, right.value
                        y0, y1 = height - top.value, height - bottom.value
                        if y1 - y0 > _ROTATED_RATIO * (x1 - x0) and y1 - y0 > _ROTATED_MIN:
                            continue  # rotated text (a margin line): not part of any row
                        cells.append(Cell("", x0, x1, y0, y1))
                lines = _group(cells)
                _read_texts(textpage, lines, height)
                rows = _merge(lines)
        finally:
            pdfium_c.FPDFText_ClosePage(textpage)
    finally:
        pdfium_c.FPDF_ClosePage(page)
    return Page(index + 1, width, height, rows, "\n".join(r.text for r in rows))


# A raw PDFium text page handle (FPDF_TEXTPAGE).
TextPageHandle = Any


def _page_text(textpage: TextPageHandle, count: int) -> str:
    """The text of a page's `count` characters (PDFium writes at most count + 1 units)."""
    if count <= 0:
        return ""
    buffer = (ctypes.c_ushort * (count + 1))()
    written = pdfium_c.FPDFText_GetText(textpage, 0, count, buffer)
    data = ctypes.string_at(ctypes.addressof(buffer), 2 * max(written - 1, 0))
    return data.decode("utf-16-le", "ignore")


def _char_cells(raw: TextPageHandle, count: int, height: float) -> list[Cell]:
    """Runs of words from a page's characters (PDFium's text and each character's box): words
    stay together across a normal word space and part at a wider, column gap."""
    text = _page_text(raw, count)
    if len(text) != count:  # characters and text do not line up: read them one by one
        text = "".join(chr(pdfium_c.FPDFText_GetUnicode(raw, i) or 32) for i in range(count))
    left, right, bottom, top = (ctypes.c_double() for _ in range(4))
    refs = (ctypes.byref(left), ctypes.byref(right), ctypes.byref(bottom), ctypes.byref(top))
    get_box = pdfium_c.FPDFText_GetCharBox
    get_angle: Callable[[TextPageHandle, int], float] | None = getattr(
        pdfium_c, "FPDFText_GetCharAngle", None
    )
    cells: list[Cell] = []
    run: list[str] = []
    x0 = x1 = r_top = r_bottom = 0.0
    space = False  # a space since the last character of the run
    line_end = False

    def flush() -> None:
        if run:
            cells.append(Cell(_clean("".join(run)), x0, x1, r_top, r_bottom, True))
            run.clear()

    for i, ch in enumerate(text):
        if ch in "\r\n":
            line_end = True
            continue
        if ch.isspace() or not get_box(raw, i, *refs) or right.value <= left.value:
            space = True
            continue
        c_top, c_bottom = height - top.value, height - bottom.value
        if get_angle and _ROTATED_ANGLE < get_angle(raw, i) < _TWO_PI - _ROTATED_ANGLE:
            space = True
            continue  # a rotated glyph (a margin line): not part of any row
        if run:
            size = r_bottom - r_top
            # Loosely: a period, comma or underscore sits low, a hyphen in the middle.
            same_line = c_top < r_bottom + 0.35 * size and c_bottom > r_top - 0.2 * size
            gap = left.value - x1
            # A word space is at most about two character advances of the run so far.
            advance = (x1 - x0) / max(len(run), 1)
            limit = max(0.6 * size, 2.2 * advance) if space else 0.6 * size
            if line_end or not same_line or gap > limit or gap < -0.6 * size:
                flush()
            elif space:
                run.append(" ")
        if not run:
            x0, r_top, r_bottom = left.value, c_top, c_bottom
        else:
            r_top, r_bottom = min(r_top, c_top), max(r_bottom, c_bottom)
        run.append(ch)
        x1 = max(x1, right.value) if len(run) > 1 else right.value
        space = line_end = False
    flush()
    return [c for c in cells if c.text]


def _read_texts(raw: TextPageHandle, lines: list[list[Cell]], height: float) -> None:
    """Fill each run's text. Where two runs of a line overlap a little (tight kerning, a label
    touching its value), each is clipped at the other's edge so that neither picks up the
    other's edge glyph."""
    bounded = pdfium_c.FPDFText_GetBoundedText
    size = 2048
    buffer = (ctypes.c_ushort * size)()
    # The buffer's bytes, decoded in place: `bytes.decode("utf-16-le")` goes through the codec
    # registry and a Python-level wrapper, and `ctypes.string_at` copies first.
    raw_bytes = memoryview(buffer).cast("B")
    wide: list[tuple[list[Cell], Cell]] = []
    for line in lines:
        count = len(line)
        prev_right = -1e9
        for k in range(count):
            cell = line[k]
            left, right = cell.x0, cell.x1
            if prev_right > left - 0.01:
                left = prev_right + 0.05
            if k + 1 < count:
                next_left = line[k + 1].x0
                if next_left < right + 0.01:
                    right = next_left - 0.05
            prev_right = cell.x1
            if right <= left:
                left, right = cell.x0, cell.x1
            top, bottom = height - cell.top, height - cell.bottom
            n = bounded(raw, left, top, right, bottom, buffer, size)
            if n >= size:  # a very long run: ask for its exact length
                n = bounded(raw, left, top, right, bottom, None, 0)
                big = (ctypes.c_ushort * n)()
                n = bounded(raw, left, top, right, bottom, big, n)
                data = ctypes.string_at(ctypes.addressof(big), 2 * max(n, 0))
                text = data.decode("utf-16-le", "ignore")
            else:
                if n > 0 and buffer[n - 1] == 0:
                    n -= 1  # the count includes the terminating NUL
                text = utf_16_le_decode(raw_bytes[: 2 * n], "ignore")[0] if n > 0 else ""
            cell.space = text[-1:].isspace()
            cell.text = text = _clean(text)
            # Far wider than its letters: a line laid out in columns with runs of spaces (a
            # monospace text dump), which pdfium reports as one run with single spaces.
            chars = len(text)
            if chars > 3 and cell.x1 - cell.x0 > 1.05 * chars * (cell.bottom - cell.top):
                wide.append((line, cell))
    for line, cell in wide:
        parts = _split_columns(raw, cell, height)
        if len(parts) > 1:
            k = line.index(cell)
            line[k : k + 1] = parts


def _split_columns(raw: TextPageHandle, cell: Cell, height: float) -> list[Cell]:
    """Split a run into cells at wide gaps, from its characters' boxes."""
    mid_y = height - (cell.top + cell.bottom) / 2
    index = pdfium_c.FPDFText_GetCharIndexAtPos(raw, cell.x0 + 0.5, mid_y, 2.0, cell.height)
    if index < 0:
        return [cell]
    count = pdfium_c.FPDFText_CountChars(raw)
    left, right, bottom, top = (ctypes.c_double() for _ in range(4))
    refs = (ctypes.byref(left), ctypes.byref(right), ctypes.byref(bottom), ctypes.byref(top))
    chars: list[tuple[float, float, str]] = []  # spaces have no box: (-1, -1, " ")
    get_box = pdfium_c.FPDFText_GetCharBox
    get_unicode = pdfium_c.FPDFText_GetUnicode
    while index < count and len(chars) < 4000:
        code = get_unicode(raw, index)
        index += 1
        if code in (10, 13):
            break
        if code == 32 or not get_box(raw, index - 1, *refs) or right.value <= left.value:
            chars.append((-1.0, -1.0, " "))
            continue
        if not (height - top.value <= cell.bottom and height - bottom.value >= cell.top):
            break
        if left.value > cell.x1 + 1:
            break
        chars.append((left.value, right.value, chr(code)))
    widths = sorted(r - x for x, r, ch in chars if x >= 0)
    if len(widths) < 2:
        return [cell]
    gap_limit = 1.8 * max(widths[len(widths) // 2], 0.5) + 1.0
    parts: list[Cell] = []
    text = ""
    first_x = last_x = -1.0
    for x, r, ch in chars:
        if x < 0:
            text += " "
            continue
        if last_x >= 0 and x - last_x > gap_limit and text.strip():
            parts.append(Cell(_clean(text), first_x, last_x, cell.top, cell.bottom))
            text, first_x = "", -1.0
        if first_x < 0:
            first_x = x
        text += ch
        last_x = r
    if text.strip():
        parts.append(Cell(_clean(text), first_x, last_x, cell.top, cell.bottom))
    return parts if len(parts) > 1 else [cell]


def read_pages(pdf: pdfium.PdfDocument) -> list[Page]:
    return [read_page(pdf, i) for i in range(len(pdf))]


def plumber_page(data: bytes, number: int) -> Page | None:
    """Page `number` (1-based) read word by word with pdfplumber; None when it fails.

    pdfplumber is slow; callers use it for one page at a time, only for line-item tables.
    """
    try:
        import pdfplumber

        with pdfplumber.open(io.BytesIO(data), pages=[number]) as doc:
            if not doc.pages:
                return None
            pg = doc.pages[0]
            words: list[dict[str, Any]] = pg.extract_words(x_tolerance=1.5, y_tolerance=2)
            cells = [
                Cell(str(w["text"]), float(w["x0"]), float(w["x1"]), float(w["top"]),
                     float(w["bottom"]))
                for w in words
            ]  # fmt: skip
            rows = build_rows(cells)
            return Page(number, float(pg.width), float(pg.height), rows,
                        "\n".join(r.text for r in rows))  # fmt: skip
    except Exception:  # pdfminer raises many kinds of errors on damaged content
        return None


# --------------------------------------------------------------------------- label navigation


@dataclass(frozen=True, slots=True)
class Hit:
    """A label found in a cell: page index (0-based), row, cell and the match's span."""

    page: int
    row: int
    cell: int
    start: int
    end: int


_LEAD_RE = re.compile(r"^[\s:.#\-\u2013\u2014=>|/]*")


def find_labels(pages: list[Page], pattern: re.Pattern[str], *, first: bool = False) -> list[Hit]:
    """Every match of `pattern` in the cells of `pages` (only the first per cell with `first`)."""
    hits: list[Hit] = []
    for pi, page in enumerate(pages):
        for ri, row in enumerate(page.rows):
            if not pattern.search(row.text):
                continue
            for ci, cell in enumerate(row.cells):
                for m in pattern.finditer(cell.text):
                    hits.append(Hit(pi, ri, ci, m.start(), m.end()))
                    if first:
                        break
    return hits


def values_near(
    pages: list[Page], hit: Hit, *, below: int = 2, block: bool = False
) -> Iterator[tuple[str, float, Hit]]:
    """Texts that may hold the value of a label, best placed first, with a placement score.

    The rest of the label's own cell, then the next cells of its row, then the cells under the
    label in the next rows (overlapping it horizontally). With `block` (a label heading an
    address block: "Bill to", "From") the cells below come before the next cells of the row.
    The yielded Hit locates the value.
    """
    page = pages[hit.page]
    row = page.rows[hit.row]
    cell = row.cells[hit.cell]
    rest = cell.text[hit.end :]
    lead = _LEAD_RE.match(rest)
    offset = hit.end + (lead.end() if lead else 0)
    rest = cell.text[offset:]
    if rest.strip():
        yield rest, 1.0, Hit(hit.page, hit.row, hit.cell, offset, len(cell.text))
    if not block:
        yield from _next_cells(row, hit)
    last_bottom = row.bottom
    em = max(row.height, 4.0)
    for k in range(1, below + 1):
        ri = hit.row + k
        if ri >= len(page.rows):
            break
        nxt_row = page.rows[ri]
        if nxt_row.top - last_bottom > 2.5 * em:
            break
        last_bottom = nxt_row.bottom
        for ci, other in enumerate(nxt_row.cells):
            if other.x0 < cell.x1 + 12 and other.x1 > cell.x0 - 12:
                score = (0.95 if block else 0.8) - 0.1 * (k - 1)
                yield other.text, score, Hit(hit.page, ri, ci, 0, len(other.text))
                break
    if block:
        for text, score, where in _next_cells(row, hit):
            yield text, score - 0.3, where


def _next_cells(row: Row, hit: Hit) -> Iterator[tuple[str, float, Hit]]:
    for k, nxt in enumerate(row.cells[hit.cell + 1 : hit.cell + 3]):
        yield nxt.text, 0.95 - 0.15 * k, Hit(hit.page, hit.row, hit.cell + 1 + k, 0, len(nxt.text))
