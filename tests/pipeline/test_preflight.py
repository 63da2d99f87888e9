"""Preflight: each hostile input is refused with the right reason, quickly; hostile text is not."""

from __future__ import annotations

import time
import zlib
from collections.abc import Callable

import pytest

from bastion.pipeline.extract.preflight import (
    RATIO_FREE_BYTES,
    PreflightReport,
    preflight,
)
from bastion.pipeline.extract.text import open_document, pdfium_lock
from bastion.pipeline.model import REASON_CODES, ExtractionError
from tests.pipeline import hostile

LIMITS = {
    "max_bytes": 50 * 1024 * 1024,
    "max_pages": 200,
    "max_inflate_ratio": 200.0,
    "max_inflated_bytes": 256 * 1024 * 1024,
}


def pdfium_open(data: bytes) -> None:
    """PDFium's own verdict on `data` (the step preflight ends with)."""
    with pdfium_lock, open_document(data, 200):
        pass


def check(data: bytes, **overrides: float) -> PreflightReport:
    limits: dict[str, float] = {**LIMITS, **overrides}
    return preflight(
        data,
        max_bytes=int(limits["max_bytes"]),
        max_pages=int(limits["max_pages"]),
        max_inflate_ratio=float(limits["max_inflate_ratio"]),
        max_inflated_bytes=int(limits["max_inflated_bytes"]),
    )


def refused(data: bytes, **overrides: float) -> ExtractionError:
    with pytest.raises(ExtractionError) as caught:
        check(data, **overrides)
    assert caught.value.reason in REASON_CODES
    return caught.value


def _objstm_pdf(body: bytes, filters: bytes) -> bytes:
    return hostile.build_pdf(
        [
            b"<< /Type /Catalog /Pages 2 0 R /OpenAction 6 0 R >>",
            b"<< /Type /Pages /Kids [3 0 R] /Count 1 >>",
            b"<< /Type /Page /Parent 2 0 R /MediaBox [0 0 595 842] >>",
            hostile.stream(body, b" /Type /ObjStm /N 1 /First 4 /Filter " + filters),
        ],
        version=b"1.5",
    )


_ACTION = b"6 0 << /S /JavaScript /JS (app.alert(1)) >>"


def _js_hidden_in_stream_span() -> bytes:
    """A plain JS object inside the byte range of a stream whose /Length swallows it."""
    hidden = b"\nendstream\nendobj\n6 0 obj\n<< /S /JavaScript /JS (app.alert(1)) >>\nendobj\n"
    return hostile.build_pdf(
        [
            b"<< /Type /Catalog /Pages 2 0 R >>",
            b"<< /Type /Pages /Kids [3 0 R] /Count 1 >>",
            b"<< /Type /Page /Parent 2 0 R /MediaBox [0 0 595 842] /Contents 4 0 R >>",
            hostile.stream(b"q Q" + hidden + b"x"),
        ]
    )


def _run_length_bomb() -> bytes:
    runs = b"\x81\x00" * (1 << 19)  # each pair decodes to 128 zero bytes: 64 MiB in all
    return hostile.build_pdf(
        [
            b"<< /Type /Catalog /Pages 2 0 R >>",
            b"<< /Type /Pages /Kids [3 0 R] /Count 1 >>",
            b"<< /Type /Page /Parent 2 0 R /MediaBox [0 0 595 842] /Contents 4 0 R >>",
            hostile.stream(zlib.compress(runs, 9), b" /Filter [/Fl /RL]"),
        ]
    )


HOSTILE: list[tuple[str, Callable[[], bytes], str]] = [
    ("png renamed", hostile.png_renamed, "not_pdf"),
    ("text renamed", hostile.text_renamed, "not_pdf"),
    ("zip polyglot", hostile.zip_with_pdf_header, "not_pdf"),
    ("html", lambda: b"<!DOCTYPE html><html>%PDF-1.4</html>", "not_pdf"),
    ("header past 1024", lambda: b" " * 1100 + hostile.normal_pdf(), "not_pdf"),
    ("empty", hostile.empty, "empty"),
    ("whitespace", lambda: b" \n\r\n\t", "empty"),
    ("zero pages", lambda: hostile.build_pdf([
        b"<< /Type /Catalog /Pages 2 0 R >>", b"<< /Type /Pages /Kids [] /Count 0 >>"]), "empty"),
    ("truncated", hostile.truncated, "truncated"),
    ("no startxref", lambda: hostile.normal_pdf().replace(b"startxref", b"startxrex"), "truncated"),
    ("garbage", lambda: b"%PDF-1.4\n" + bytes(range(256)) * 8 + b"\nstartxref\n0\n%%EOF\n",
     "truncated"),
    ("encrypt in trailer", hostile.encrypted_by_trailer, "encrypted"),
    ("encrypt escaped", lambda: hostile.encrypted_by_trailer().replace(
        b"/Encrypt 4", b"/Encr#79pt 4"), "encrypted"),
    ("5000 pages", hostile.many_pages, "too_many_pages"),
    ("3000 distinct pages", hostile.many_distinct_pages, "too_many_pages"),
    ("bomb, 2 x Flate", hostile.decompression_bomb, "decompression_limit"),
    ("bomb, 1 x Flate", hostile.single_layer_bomb, "decompression_limit"),
    ("bomb, Flate + RunLength", _run_length_bomb, "decompression_limit"),
    ("js open action", hostile.javascript_open_action, "javascript"),
    ("js escaped names", hostile.javascript_escaped_name, "javascript"),
    ("js names tree", hostile.javascript_in_names_tree, "javascript"),
    ("js object stream", hostile.javascript_in_object_stream, "javascript"),
    ("js object stream, A85 + Flate", lambda: _objstm_pdf(
        __import__("base64").a85encode(zlib.compress(_ACTION)) + b"~>",
        b"[/ASCII85Decode /FlateDecode]"), "javascript"),
    ("js object stream, hex", lambda: _objstm_pdf(_ACTION.hex().encode() + b">",
                                                  b"/ASCIIHexDecode"), "javascript"),
    ("js object stream, raw", lambda: _objstm_pdf(_ACTION, b"[]"), "javascript"),
    ("js hidden in stream span", _js_hidden_in_stream_span, "javascript"),
]  # fmt: skip


@pytest.mark.parametrize(("build", "reason"), [(b, r) for _, b, r in HOSTILE],
                         ids=[name for name, _, _ in HOSTILE])  # fmt: skip
def test_hostile_input_is_refused_with_its_reason(build: Callable[[], bytes], reason: str) -> None:
    data = build()
    started = time.process_time()  # CPU time: the cores are shared with other tests' processes
    error = refused(data)
    assert error.reason == reason, error
    assert time.process_time() - started < 1.0


def test_password_protected_pdf_is_encrypted() -> None:
    pytest.importorskip("reportlab")
    data = hostile.encrypted_with_password()
    assert refused(data).reason == "encrypted"
    # PDFium's own answer, for files whose /Encrypt the byte scan would not see.
    with pytest.raises(ExtractionError) as caught:
        pdfium_open(data)
    assert caught.value.reason == "encrypted"


@pytest.mark.parametrize(
    "build", [hostile.normal_pdf, hostile.prompt_injection, hostile.long_single_line]
)
def test_ordinary_and_hostile_text_pass(build: Callable[[], bytes]) -> None:
    report = check(build())
    assert report.pages == 1
    assert report.version == "1.4"
    assert report.warnings == ()


def test_long_line_is_inflated_and_counted() -> None:
    report = check(hostile.long_single_line())
    assert report.inflated_bytes > 1 << 20
    assert report.streams == 1


def test_total_inflated_cap() -> None:
    data = hostile.long_single_line()  # one stream that inflates to just over 1 MiB
    assert refused(data, max_inflated_bytes=1 << 20).reason == "decompression_limit"


def test_ratio_applies_past_the_free_allowance() -> None:
    data = hostile.single_layer_bomb(total=2 * RATIO_FREE_BYTES)  # ratio about 1000
    assert refused(data).reason == "decompression_limit"
    assert check(data, max_inflate_ratio=2000).inflated_bytes == 2 * RATIO_FREE_BYTES
    small = hostile.single_layer_bomb(total=RATIO_FREE_BYTES // 2)  # same ratio, under allowance
    assert check(small).inflated_bytes == RATIO_FREE_BYTES // 2


def test_page_limit_is_the_callers() -> None:
    data = hostile.many_pages(150)
    assert check(data).pages == 150
    error = refused(data, max_pages=100)
    assert error.reason == "too_many_pages"
    assert "150" in error.detail


def test_oversized_file_is_refused() -> None:
    error = refused(hostile.normal_pdf(), max_bytes=100)
    assert error.reason == "extract_failed"
    assert "over 100" in error.detail


def test_header_offset_is_a_warning() -> None:
    data = hostile.build_pdf(
        [
            b"<< /Type /Catalog /Pages 2 0 R >>",
            b"<< /Type /Pages /Kids [3 0 R] /Count 1 >>",
            b"<< /Type /Page /Parent 2 0 R /MediaBox [0 0 595 842] /AA << /O << /S /Launch"
            b" /F (calc.exe) >> >> >>",
        ],
        prefix=b"junk before the header\n",
    )
    report = check(data)
    assert report.warnings == ("header_offset", "launch_action")


def test_undecodable_stream_is_a_warning_not_a_refusal() -> None:
    data = hostile.build_pdf(
        [
            b"<< /Type /Catalog /Pages 2 0 R >>",
            b"<< /Type /Pages /Kids [3 0 R] /Count 1 >>",
            b"<< /Type /Page /Parent 2 0 R /MediaBox [0 0 595 842] /Contents 4 0 R >>",
            hostile.stream(b"this is not zlib data", b" /Filter /FlateDecode"),
        ]
    )
    assert "stream_decode_error" in check(data).warnings


def test_js_words_in_page_text_are_not_javascript() -> None:
    data = hostile.text_pdf(["See /JS (the key) and /JavaScript in the PDF spec."])
    assert check(data).pages == 1


def test_ascii85_groups_decode_like_the_standard_library() -> None:
    import base64
    import os

    from bastion.pipeline.extract.preflight import _a85_groups

    for size in (0, 4, 8, 400, 4096):
        raw = os.urandom(size)
        digits = base64.a85encode(raw).replace(b"z", b"!!!!!")
        assert _a85_groups(digits) == raw
    with pytest.raises(ValueError, match="not an ASCII85 digit"):
        _a85_groups(b"!!!!~")
    with pytest.raises(ValueError, match="over 2"):
        _a85_groups(b"uuuuu")
