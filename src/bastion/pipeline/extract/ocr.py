"""OCR of scanned pages: pages without a text layer read by Tesseract into the same rows and cells.

A page is a scan when it has (nearly) no text and images cover a good part of it. Each scan page
is rendered to a grayscale image (300 DPI, fewer pixels on a huge page), sent to the `tesseract`
program on its standard input, and its TSV word boxes come back as `Cell`s in points, y down from
the page top, grouped by `build_rows`: the invoice, contract and report extractors read a scan
as they read text. Tesseract runs once per page with the configured languages it has installed
(`tesseract --list-langs`), one thread (OMP_THREAD_LIMIT=1), killed when the process that asked
dies (it is a child of the sandbox worker, whose memory limit it inherits) and when the time
budget runs out.

What OCR did is told in findings: `ocr` (info) names the pages read and their mean word
confidence; `no_text_layer` (warning) names the scan pages that were not read and why (OCR off,
Tesseract or its languages missing, out of time, Tesseract failed), with what to do about it.
The validator's `no_text_layer` rule sends such a document to review. Fields read from an OCR
page have their confidence multiplied by the lower of 0.85 and the page's mean word confidence,
so the low-confidence rule sends a poor scan to review.
"""

from __future__ import annotations

import contextlib
import ctypes
import json
import math
import os
import re
import signal
import subprocess
import sys
import time
from collections.abc import Callable
from dataclasses import asdict, dataclass, field
from functools import cache
from typing import Any

import pypdfium2 as pdfium
import pypdfium2.raw as pdfium_c

from bastion.pipeline.extract.text import Cell, Page, build_rows
from bastion.pipeline.model import ExtractedField, Finding

__all__ = ["DEFAULT_OCR", "OcrOptions", "OcrReport", "read_scans"]

# A page with fewer non-space characters than this has no text layer worth reading ...
_MAX_TEXT_CHARS = 40
# ... and is a scan when its images cover at least this share of it.
_MIN_IMAGE_SHARE = 0.25
_MAX_OBJECTS = 5000  # page objects looked at for images, nested forms included
_MAX_PIXELS = 40_000_000  # a rendered page (A3 at 300 DPI is 35 million); larger pages get less
_MIN_WORD_CONFIDENCE = 25.0  # Tesseract's 0-100; below it a "word" is mostly noise
# Tesseract's page segmentation 4, "one column of text of variable sizes": its automatic mode
# (3) drops a lone character in a table column (a quantity "1"). Rows are rebuilt from the word
# boxes, so Tesseract's own line and block order does not matter.
_PAGE_SEGMENTATION = "4"
_CONFIDENCE_FACTOR = 0.85  # the most an OCR page's field keeps of its confidence
_NO_BUDGET = 24 * 3600.0  # seconds: "no time budget" (a subprocess needs a finite timeout)
_LANGUAGE_RE = re.compile(r"^[A-Za-z0-9_]{1,32}$")
_INSTALL = (
    "install Tesseract with its German and French data (Debian: apt-get install tesseract-ocr "
    "tesseract-ocr-deu tesseract-ocr-fra)"
)


@dataclass(frozen=True, slots=True)
class OcrOptions:
    """How scan pages are read. `command` is the Tesseract program (a name on PATH or a path);
    `languages` are used as far as they are installed; `time_budget_seconds` bounds the OCR of
    one document (None: no bound)."""

    enabled: bool = True
    languages: tuple[str, ...] = ("deu", "fra", "eng")
    command: str = "tesseract"
    dpi: int = 300
    time_budget_seconds: float | None = None

    def __post_init__(self) -> None:
        bad = [name for name in self.languages if not _LANGUAGE_RE.match(name)]
        if bad or not self.languages:
            raise ValueError(f"OCR languages must be Tesseract language names, not {bad}")
        if not 50 <= self.dpi <= 600:
            raise ValueError("the OCR resolution must be between 50 and 600 DPI")

    def to_json(self) -> str:
        return json.dumps(asdict(self))

    @classmethod
    def from_json(cls, text: str) -> OcrOptions:
        data: dict[str, Any] = json.loads(text)
        data["languages"] = tuple(data.get("languages", ()))
        return cls(**data)


DEFAULT_OCR = OcrOptions()


@dataclass
class OcrReport:
    """What OCR did to a document: page number -> mean word confidence (0-1) of the pages it
    read; the scan pages it did not read and why."""

    read: dict[int, float] = field(default_factory=dict)
    unread: list[int] = field(default_factory=list)
    problem: str = ""
    languages: str = ""

    def findings(self) -> list[Finding]:
        out: list[Finding] = []
        if self.read:
            quality = ", ".join(f"{n}: {c:.0%}" for n, c in sorted(self.read.items()))
            out.append(
                Finding(
                    rule_id="ocr",
                    severity="info",
                    message=(
                        f"{_pages(list(self.read))} read by OCR (Tesseract, {self.languages}; "
                        f"mean word confidence per page {quality}); their fields' confidence "
                        f"is lowered to match"
                    ),
                )
            )
        if self.unread:
            out.append(
                Finding(
                    rule_id="no_text_layer",
                    severity="warning",
                    message=(
                        f"{_pages(self.unread)} without a text layer (a scan) could not be "
                        f"read: {self.problem}"
                    ),
                )
            )
        return out

    def discount(self, fields: dict[str, ExtractedField]) -> dict[str, ExtractedField]:
        """The fields with the confidence of those read from an OCR page lowered (a field
        without a page counts as from the worst one)."""
        if not self.read:
            return fields
        worst = min(self.read.values())
        out: dict[str, ExtractedField] = {}
        for name, f in fields.items():
            if f.page is None or f.page in self.read:
                quality = worst if f.page is None else self.read[f.page]
                factor = min(_CONFIDENCE_FACTOR, quality)
                f = f.model_copy(update={"confidence": round(f.confidence * factor, 4)})
            out[name] = f
        return out


def _pages(numbers: list[int]) -> str:
    numbers = sorted(numbers)
    return ("page " if len(numbers) == 1 else "pages ") + ", ".join(map(str, numbers))


class _Unavailable(Exception):
    """OCR cannot read any page of this document; the message says why and what to do."""


def read_scans(pdf: pdfium.PdfDocument, pages: list[Page], options: OcrOptions) -> OcrReport:
    """Replace each scan page of `pages` by its OCR reading; report what was done.

    The caller holds `pdfium_lock`. Tesseract's failures never raise: the pages it could not
    read stay as they were (without text) and are reported.
    """
    report = OcrReport()
    scans = [page for page in pages if _is_scan(pdf, page)]
    if not scans:
        return report
    budget = _NO_BUDGET if options.time_budget_seconds is None else options.time_budget_seconds
    deadline = time.monotonic() + budget

    def remaining() -> float:
        left = deadline - time.monotonic()
        if left <= 0:
            raise _Unavailable(
                f"OCR ran out of time ({budget:g} s, part of "
                "pipeline.extraction_timeout_seconds); raise that limit for long scans"
            )
        return left

    try:
        if not options.enabled:
            raise _Unavailable(f"OCR is turned off (pipeline.ocr); turn it on and {_INSTALL}")
        languages = _usable_languages(options, remaining())
        report.languages = languages
        for page in scans:
            read, confidence = _ocr_page(pdf, page, options, languages, remaining())
            pages[page.number - 1] = read
            report.read[page.number] = confidence
    except _Unavailable as problem:
        report.unread = [page.number for page in scans if page.number not in report.read]
        report.problem = str(problem)
    return report


def _is_scan(pdf: pdfium.PdfDocument, page: Page) -> bool:
    if len("".join(page.text.split())) >= _MAX_TEXT_CHARS:
        return False
    area = page.width * page.height
    return area > 0 and _image_area(pdf, page.number - 1) >= _MIN_IMAGE_SHARE * area


def _image_area(pdf: pdfium.PdfDocument, index: int) -> float:
    """The summed area of the page's image objects (nested forms included), in square points."""
    page = pdfium_c.FPDF_LoadPage(pdf.raw, index)
    if not page:
        return 0.0
    left, bottom, right, top = (ctypes.c_float() for _ in range(4))
    refs = (ctypes.byref(left), ctypes.byref(bottom), ctypes.byref(right), ctypes.byref(top))
    total = 0.0
    seen = 0
    try:
        pending: list[tuple[Any, bool]] = [(page, False)]
        while pending and seen < _MAX_OBJECTS:
            parent, is_form = pending.pop()
            if is_form:
                count, get = pdfium_c.FPDFFormObj_CountObjects, pdfium_c.FPDFFormObj_GetObject
            else:
                count, get = pdfium_c.FPDFPage_CountObjects, pdfium_c.FPDFPage_GetObject
            for i in range(min(max(count(parent), 0), _MAX_OBJECTS - seen)):
                seen += 1
                obj = get(parent, i)
                kind = pdfium_c.FPDFPageObj_GetType(obj) if obj else 0
                if kind == pdfium_c.FPDF_PAGEOBJ_FORM:
                    pending.append((obj, True))
                elif kind == pdfium_c.FPDF_PAGEOBJ_IMAGE and pdfium_c.FPDFPageObj_GetBounds(
                    obj, *refs
                ):
                    total += max(right.value - left.value, 0) * max(top.value - bottom.value, 0)
    finally:
        pdfium_c.FPDF_ClosePage(page)
    return total


def _usable_languages(options: OcrOptions, timeout: float) -> str:
    """The configured languages Tesseract has, joined for `-l` (asked per document: 20 ms)."""
    out = _run([options.command, "--list-langs"], b"", min(timeout, 30.0))
    lines = out.decode("utf-8", "replace").splitlines()[1:]  # after "List of available ..."
    installed = {line.strip() for line in lines if line.strip()}
    usable = [name for name in options.languages if name in installed]
    if not usable:
        raise _Unavailable(
            f"Tesseract has none of the languages {', '.join(options.languages)} "
            f"(it has {', '.join(sorted(installed)) or 'none'}); {_INSTALL}"
        )
    return "+".join(usable)


def _ocr_page(
    pdf: pdfium.PdfDocument, page: Page, options: OcrOptions, languages: str, timeout: float
) -> tuple[Page, float]:
    """The page read by Tesseract and its mean word confidence (0-1)."""
    image, scale = _render(pdf, page, options.dpi)
    dpi = str(max(round(scale * 72), 1))
    command = [options.command, "stdin", "stdout", "--dpi", dpi, "--psm", _PAGE_SEGMENTATION]
    command += ["-l", languages, "tsv"]
    tsv = _run(command, image, timeout)
    del image
    cells, confidence = _cells(tsv.decode("utf-8", "replace"), scale)
    rows = build_rows(cells)
    text = "\n".join(r.text for r in rows)
    return Page(page.number, page.width, page.height, rows, text), confidence


def _render(pdf: pdfium.PdfDocument, page: Page, dpi: int) -> tuple[bytes, float]:
    """The page as a binary PGM image and its scale (pixels per point)."""
    scale = dpi / 72
    pixels = page.width * page.height * scale * scale
    if pixels > _MAX_PIXELS:
        scale *= math.sqrt(_MAX_PIXELS / pixels)
    handle = pdf[page.number - 1]
    try:
        bitmap = handle.render(
            scale=scale, grayscale=True, force_bitmap_format=pdfium_c.FPDFBitmap_Gray
        )
        try:
            width, height, stride = bitmap.width, bitmap.height, bitmap.stride
            raw = memoryview(bitmap.buffer).cast("B")
            if stride == width:
                body = bytes(raw[: width * height])
            else:
                body = b"".join(raw[r * stride : r * stride + width] for r in range(height))
        finally:
            bitmap.close()
    finally:
        handle.close()
    return b"P5\n%d %d\n255\n" % (width, height) + body, scale


def _cells(tsv: str, scale: float) -> tuple[list[Cell], float]:
    """Tesseract's words (TSV level 5) as cells in points, and their mean confidence (0-1)."""
    cells: list[Cell] = []
    confidences: list[float] = []
    for line in tsv.splitlines()[1:]:
        parts = line.split("\t")
        if len(parts) != 12 or parts[0] != "5":
            continue
        text = " ".join(parts[11].split())
        try:
            left, top, width, height = (float(v) for v in parts[6:10])
            confidence = float(parts[10])
        except ValueError:
            continue
        if not text or confidence < _MIN_WORD_CONFIDENCE:
            continue
        confidences.append(confidence)
        cells.append(
            Cell(text, left / scale, (left + width) / scale, top / scale, (top + height) / scale)
        )
    mean = sum(confidences) / len(confidences) / 100 if confidences else 0.0
    return cells, mean


def _run(command: list[str], data: bytes, timeout: float) -> bytes:
    """Run Tesseract; its standard output, or _Unavailable with the reason."""
    timeout = min(timeout, _NO_BUDGET)
    env = {**os.environ, "OMP_THREAD_LIMIT": "1"}
    try:
        done = subprocess.run(  # noqa: S603 - the configured program, arguments as a list
            command,
            input=data,
            capture_output=True,
            timeout=timeout,
            env=env,
            check=False,
            preexec_fn=_die_with_parent(),
        )
    except (FileNotFoundError, PermissionError, NotADirectoryError) as exc:
        raise _Unavailable(
            f"Tesseract cannot be run ({command[0]!r}: {exc.strerror or exc}); {_INSTALL}, or "
            "set pipeline.tesseract_command to the program"
        ) from None
    except subprocess.TimeoutExpired:
        raise _Unavailable(
            f"OCR ran out of time (Tesseract stopped after {timeout:.1f} s; the budget is part "
            "of pipeline.extraction_timeout_seconds); raise that limit for long scans"
        ) from None
    if done.returncode != 0:
        lines = done.stderr.decode("utf-8", "replace").strip().splitlines()
        last = lines[-1][:200] if lines else "no message"
        raise _Unavailable(f"Tesseract failed (exit status {done.returncode}: {last})")
    return done.stdout


@cache
def _die_with_parent() -> Callable[[], None] | None:
    """On Linux, a function that makes the child get SIGKILL when its parent dies (a sandbox
    worker killed at its time limit takes its Tesseract with it)."""
    if not sys.platform.startswith("linux"):
        return None
    libc = ctypes.CDLL(None, use_errno=True)

    def prepare() -> None:
        with contextlib.suppress(Exception):
            libc.prctl(1, signal.SIGKILL)  # PR_SET_PDEATHSIG

    return prepare
