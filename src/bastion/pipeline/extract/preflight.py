"""Preflight: the cheap checks that turn hostile uploads away before any full parse.

`preflight()` looks at the raw bytes first (type sniffing, end-of-file markers, the trailer),
then walks the streams, inflating every FlateDecode stream incrementally with a hard output cap
(so the check itself cannot be bombed), and only then opens the file with PDFium (the extractor's
own `open_document`) to learn whether it needs a password and how many pages it has. Each refusal
is an `ExtractionError` whose reason is a code from `bastion.pipeline.model.REASON_CODES`; the
DLQ entry or the 4xx at upload shows it.

Policy decisions:

- JavaScript: a PDF with a JavaScript action (`/JS`, `/JavaScript`, in plain objects or inside
  compressed object streams, names spelled with `#xx` escapes included) is refused with reason
  `javascript`. Nothing in the pipeline runs JavaScript, but a document that carries it is
  hostile or at least unfit for automated processing, so it ends in the DLQ with that status.
- Encryption: any `/Encrypt` entry in a trailer (or a cross-reference stream) is refused with
  `encrypted`, even when the user password is empty and the file would open.
- Decompression: the total inflated size of all streams is capped at `max_inflated_bytes`, and
  past `RATIO_FREE_BYTES` it must also stay under `max_inflate_ratio` times the file size (small
  legitimate streams compress far better than any fixed ratio, large ones do not).
- Prompt-injection text, very long lines and other hostile *text* are not refused here: they are
  ordinary PDFs and are processed; the guardrails further down the pipeline handle the text.
- End of file: `%%EOF` must end within the last 1024 bytes (trailing whitespace aside) and
  follow a `startxref`; a file cut short, or with more than 1 KB of junk appended, is `truncated`.
- A file over `max_bytes` is refused with `extract_failed` (REASON_CODES has no size code; the
  upload endpoint is expected to have refused it with 413 already).

Not inflated: LZWDecode (noted as a warning) and image codecs (DCT, JPX, JBIG2, CCITT), which
PDFium decodes under its own limits, and in the sandbox under the worker's memory limit.
PDFium is not thread-safe: the PDFium step holds the extractor's `pdfium_lock`.
"""

from __future__ import annotations

import base64
import binascii
import re
import struct
import zlib
from collections.abc import Iterable, Iterator
from dataclasses import dataclass, field

from bastion.pipeline.model import ExtractionError

DEFAULT_MAX_BYTES = 50 * 1024 * 1024
DEFAULT_MAX_PAGES = 200
DEFAULT_MAX_INFLATE_RATIO = 200.0
DEFAULT_MAX_INFLATED_BYTES = 256 * 1024 * 1024
# Below this many inflated bytes in total the ratio limit does not apply.
RATIO_FREE_BYTES = 16 * 1024 * 1024

_HEADER_WINDOW = 1024  # %PDF- must start within the first 1024 bytes
_EOF_WINDOW = 1024  # %%EOF must end within the last 1024 bytes (trailing whitespace aside)
_IN_CHUNK = 64 * 1024  # compressed bytes fed to a decoder at a time
_OUT_CHUNK = 256 * 1024  # most bytes a decoder may return per call
_NAME_OVERLAP = 256  # bytes kept between decoded pieces so no name is cut in two
_MAX_WARNINGS = 32

# Leading bytes of other file types, checked before the %PDF- header (so polyglots are refused).
_OTHER_TYPES: tuple[tuple[bytes, str], ...] = (
    (b"\x89PNG\r\n\x1a\n", "PNG image"),
    (b"\xff\xd8\xff", "JPEG image"),
    (b"GIF87a", "GIF image"),
    (b"GIF89a", "GIF image"),
    (b"II*\x00", "TIFF image"),
    (b"MM\x00*", "TIFF image"),
    (b"RIFF", "RIFF container"),
    (b"PK\x03\x04", "ZIP archive (or Office document)"),
    (b"PK\x05\x06", "ZIP archive"),
    (b"PK\x07\x08", "ZIP archive"),
    (b"\x1f\x8b", "gzip archive"),
    (b"BZh", "bzip2 archive"),
    (b"\xfd7zXZ\x00", "xz archive"),
    (b"7z\xbc\xaf\x27\x1c", "7-Zip archive"),
    (b"Rar!\x1a\x07", "RAR archive"),
    (b"\xd0\xcf\x11\xe0\xa1\xb1\x1a\xe1", "OLE2 (legacy Office) document"),
    (b"\x7fELF", "ELF executable"),
    (b"MZ", "Windows executable"),
    (b"{\\rtf", "RTF document"),
    (b"%!PS", "PostScript document"),
)
_MARKUP = re.compile(rb"\A(?:\xef\xbb\xbf)?\s*<(?:\?xml|!doctype|html|svg)", re.IGNORECASE)
_FTYP = re.compile(rb"\A....ftyp", re.DOTALL)

_DELIM = rb"\x00\t\n\x0c\r /<>\[\](){}%"
_WS = rb"[\x00\t\n\x0c\r ]"
_HEADER = re.compile(rb"%PDF-(\d\.\d)")
_STREAM = re.compile(rb">>" + _WS + rb"*stream(?:\r\n|\n|\r)")
_LENGTH = re.compile(rb"/Length" + _WS + rb"+(\d+)(?!" + _WS + rb"+\d+" + _WS + rb"+R)")
_ENDSTREAM = re.compile(_WS + rb"*endstream")
_FILTER = re.compile(rb"/Filter" + _WS + rb"*(\[[^\]]*\]|/[^" + _DELIM + rb"]+)")
_FILTER_REF = re.compile(rb"/Filter" + _WS + rb"+\d+" + _WS + rb"+\d+" + _WS + rb"+R")
_NAME = re.compile(rb"/([^" + _DELIM + rb"]+)")
_ESCAPE = re.compile(rb"#([0-9A-Fa-f]{2})")
_TRAILER = re.compile(rb"trailer" + _WS + rb"*<<")
# Names that may spell JS / JavaScript: they start with J, or with the escape #4A / #4a.
_JS_NAME = re.compile(rb"/(?:J|#4[Aa])[^" + _DELIM + rb"]*")
# What a /JS key followed by its value looks like (used inside undecoded stream bytes).
_JS_VALUE = re.compile(_WS + rb"*(?:[(<]|\d+" + _WS + rb"+\d+" + _WS + rb"+R)")
_ENCRYPT_NAME = re.compile(rb"/(?:E|#45)[^" + _DELIM + rb"]*")

_FILTER_ALIASES = {
    b"Fl": b"FlateDecode",
    b"AHx": b"ASCIIHexDecode",
    b"A85": b"ASCII85Decode",
    b"RL": b"RunLengthDecode",
    b"LZW": b"LZWDecode",
}


@dataclass(frozen=True)
class PreflightReport:
    """What preflight learned about a PDF it let through."""

    pages: int | None  # None when preflight did not open the file (open_pdf=False)
    version: str
    size: int
    streams: int = 0
    inflated_bytes: int = 0
    warnings: tuple[str, ...] = field(default_factory=tuple)


def preflight(
    data: bytes,
    *,
    max_bytes: int = DEFAULT_MAX_BYTES,
    max_pages: int = DEFAULT_MAX_PAGES,
    max_inflate_ratio: float = DEFAULT_MAX_INFLATE_RATIO,
    max_inflated_bytes: int = DEFAULT_MAX_INFLATED_BYTES,
    open_pdf: bool = True,
) -> PreflightReport:
    """Check `data` before any full parse; raise ExtractionError(reason) if it must be refused.

    The last step opens the file with PDFium (password, page count). A caller that opens it
    next anyway (the extractor, through the same `open_document`) passes `open_pdf=False`.
    """
    warnings: list[str] = []
    size = len(data)
    if not data.strip(b"\x00\t\n\x0c\r "):
        raise ExtractionError("empty")
    if size > max_bytes:
        raise ExtractionError("extract_failed", f"the file is {size} bytes, over {max_bytes}")
    version, offset = _sniff(data)
    if offset:
        warnings.append("header_offset")
    _check_end(data)
    _check_trailer_encryption(data)

    spans = _find_streams(data, warnings)
    _check_encrypted_xref_streams(spans)
    _check_javascript_raw(data, spans)
    budget = min(max_inflated_bytes, max(int(max_inflate_ratio * size), RATIO_FREE_BYTES))
    inflated = _inflate_streams(data, spans, budget, warnings)
    for marker, warning in ((b"/Launch", "launch_action"), (b"/XFA", "xfa_form")):
        if marker in data:
            warnings.append(warning)

    pages = _count_pages(data, max_pages) if open_pdf else None
    return PreflightReport(
        pages=pages,
        version=version,
        size=size,
        streams=len(spans),
        inflated_bytes=inflated,
        warnings=tuple(dict.fromkeys(warnings[:_MAX_WARNINGS])),
    )


# --- raw checks ------------------------------------------------------------------------------


def _sniff(data: bytes) -> tuple[str, int]:
    """The header's version and offset; ExtractionError('not_pdf') for anything else."""
    for magic, kind in _OTHER_TYPES:
        if data.startswith(magic):
            raise ExtractionError("not_pdf", f"the file is a {kind}")
    if _MARKUP.match(data):
        raise ExtractionError("not_pdf", "the file is markup (XML/HTML/SVG)")
    if _FTYP.match(data):
        raise ExtractionError("not_pdf", "the file is an ISO media file")
    match = _HEADER.search(data, 0, _HEADER_WINDOW + 8)
    if match is None or match.start() >= _HEADER_WINDOW:
        raise ExtractionError("not_pdf", "no %PDF- header in the first 1024 bytes")
    return match.group(1).decode("ascii"), match.start()


def _check_end(data: bytes) -> None:
    end = len(data.rstrip(b"\x00\t\n\x0c\r "))
    eof = data.rfind(b"%%EOF", max(0, end - _EOF_WINDOW - 5), end)
    if eof < 0:
        raise ExtractionError("truncated", "no %%EOF marker at the end of the file")
    if data.rfind(b"startxref", 0, eof) < 0:
        raise ExtractionError("truncated", "no startxref before %%EOF")


def _normalise(raw: bytes) -> bytes:
    """Undo #xx escapes in names (`/J#53` is `/JS`)."""
    if b"#" not in raw:
        return raw
    return _ESCAPE.sub(lambda m: bytes([int(m.group(1), 16)]), raw)


def _has_encrypt(raw: bytes) -> bool:
    return any(_normalise(m.group()) == b"/Encrypt" for m in _ENCRYPT_NAME.finditer(raw))


def _check_trailer_encryption(data: bytes) -> None:
    for match in _TRAILER.finditer(data):
        stop = data.find(b"startxref", match.end(), match.end() + 65536)
        window = data[match.end() : stop if stop > 0 else match.end() + 4096]
        if _has_encrypt(window):
            raise ExtractionError("encrypted", "the trailer names an /Encrypt dictionary")


@dataclass(frozen=True)
class _Stream:
    dictionary: bytes  # normalised (#xx escapes undone)
    start: int
    end: int


def _find_streams(data: bytes, warnings: list[str]) -> list[_Stream]:
    spans: list[_Stream] = []
    position = 0
    while True:
        match = _STREAM.search(data, position)
        if match is None:
            return spans
        head = data.rfind(b"obj", max(0, match.start() - 65536), match.start())
        dictionary = _normalise(data[max(head, match.start() - 65536, 0) : match.start() + 2])
        start = match.end()
        end = -1
        length = _LENGTH.search(dictionary)
        if length is not None:
            candidate = start + int(length.group(1))
            if candidate <= len(data) and _ENDSTREAM.match(data, candidate):
                end = candidate
        if end < 0:
            end = data.find(b"endstream", start)
            if end < 0:
                warnings.append("unterminated_stream")
                end = len(data)
        spans.append(_Stream(dictionary, start, end))
        position = end


def _check_encrypted_xref_streams(spans: list[_Stream]) -> None:
    for span in spans:
        if b"/XRef" in span.dictionary and _has_encrypt(span.dictionary):
            raise ExtractionError("encrypted", "the cross-reference stream names /Encrypt")


def _is_js_name(raw: bytes) -> bool:
    return _normalise(raw) in (b"/JS", b"/JavaScript")


def _check_javascript_raw(data: bytes, spans: list[_Stream]) -> None:
    """JS names anywhere outside streams; inside undecoded stream bytes only a /JS key with a
    value or /JavaScript (a plain object hidden in a stream's byte range still looks like that,
    random compressed bytes practically never do)."""
    index = 0
    for match in _JS_NAME.finditer(data):
        name = _normalise(match.group())
        if name not in (b"/JS", b"/JavaScript"):
            continue
        at = match.start()
        while index < len(spans) and spans[index].end <= at:
            index += 1
        inside = index < len(spans) and spans[index].start <= at
        if not inside or name == b"/JavaScript" or _JS_VALUE.match(data, match.end()):
            raise ExtractionError("javascript", "the PDF contains a JavaScript action")


# --- stream decoding -------------------------------------------------------------------------


def _filters(dictionary: bytes, warnings: list[str]) -> list[bytes]:
    match = _FILTER.search(dictionary)
    if match is None:
        if _FILTER_REF.search(dictionary):
            warnings.append("indirect_filter")
        return []
    names = [m.group(1) for m in _NAME.finditer(match.group(1))]
    return [_FILTER_ALIASES.get(name, name) for name in names]


def _inflate_streams(data: bytes, spans: list[_Stream], budget: int, warnings: list[str]) -> int:
    total = 0
    view = memoryview(data)
    for span in spans:
        filters = _filters(span.dictionary, warnings)
        object_stream = b"/ObjStm" in span.dictionary
        pieces: Iterator[bytes] = _chunks(view[span.start : span.end])
        decoded = False
        for name in filters:
            stage = _STAGES.get(name)
            if stage is None:
                if name == b"LZWDecode":
                    warnings.append("unchecked_filter:LZWDecode")
                break
            pieces = stage(pieces)
            decoded = True
        if not decoded and not object_stream:
            continue
        carry = b""
        try:
            for piece in pieces:
                if decoded:
                    total += len(piece)
                    if total > budget:
                        raise ExtractionError(
                            "decompression_limit",
                            f"streams inflate past {budget} bytes (file is {len(data)} bytes)",
                        )
                if object_stream:
                    carry = _scan_object_stream(carry + piece)
            if object_stream and carry:
                _scan_object_stream(carry, final=True)
        except (zlib.error, ValueError, binascii.Error):
            warnings.append("stream_decode_error")
    return total


def _scan_object_stream(window: bytes, *, final: bool = False) -> bytes:
    """Refuse JS names in a piece of a decoded object stream; return the overlap to keep."""
    for match in _JS_NAME.finditer(window):
        if match.end() == len(window) and not final:
            break  # the name may continue in the next piece
        if _is_js_name(match.group()):
            raise ExtractionError("javascript", "an object stream contains a JavaScript action")
    return window[-_NAME_OVERLAP:]


def _chunks(view: memoryview) -> Iterator[bytes]:
    for offset in range(0, len(view), _IN_CHUNK):
        yield bytes(view[offset : offset + _IN_CHUNK])


def _flate(pieces: Iterable[bytes]) -> Iterator[bytes]:
    inflater = zlib.decompressobj()
    for piece in pieces:
        pending = piece
        while pending and not inflater.eof:
            out = inflater.decompress(pending, _OUT_CHUNK)
            if out:
                yield out
            pending = inflater.unconsumed_tail
        if inflater.eof:
            return
    rest = inflater.flush()  # all input is consumed: at most a few hundred bytes remain
    if rest:
        yield rest


def _ascii_hex(pieces: Iterable[bytes]) -> Iterator[bytes]:
    carry = b""
    for piece in pieces:
        stop = piece.find(b">")
        digits = carry + bytes(piece if stop < 0 else piece[:stop]).translate(
            None, b" \t\r\n\x0c\x00"
        )
        usable = len(digits) - len(digits) % 2
        carry = digits[usable:]
        if usable:
            yield binascii.unhexlify(digits[:usable])
        if stop >= 0:
            break
    if carry:
        yield binascii.unhexlify(carry + b"0")


def _ascii85(pieces: Iterable[bytes]) -> Iterator[bytes]:
    carry = b""
    for piece in pieces:
        stop = piece.find(b"~")
        text = bytes(piece if stop < 0 else piece[:stop]).translate(None, b" \t\r\n\x0c\x00")
        groups = carry + text.replace(b"z", b"!!!!!")
        usable = len(groups) - len(groups) % 5
        carry = groups[usable:]
        if usable:
            yield _a85_groups(groups[:usable])
        if stop >= 0:
            break
    if carry:
        yield base64.a85decode(carry)


# Each ASCII85 digit's value ("!" is 0, "u" is 84); 255 marks a byte that is not a digit.
_A85_DIGITS = bytes(c - 33 if 33 <= c <= 117 else 255 for c in range(256))


def _a85_groups(groups: bytes) -> bytes:
    """Whole 5-digit ASCII85 groups decoded, a few times faster than `base64.a85decode`."""
    digits = groups.translate(_A85_DIGITS)
    if b"\xff" in digits:
        raise ValueError("a byte that is not an ASCII85 digit")
    values = [
        a * 52200625 + b * 614125 + c * 7225 + d * 85 + e
        for a, b, c, d, e in zip(
            digits[0::5], digits[1::5], digits[2::5], digits[3::5], digits[4::5], strict=True
        )
    ]
    try:
        return struct.pack(f">{len(values)}I", *values)
    except struct.error:
        raise ValueError("an ASCII85 group over 2**32 - 1") from None


def _run_length(pieces: Iterable[bytes]) -> Iterator[bytes]:
    carry = b""
    for piece in pieces:
        buffer = carry + piece
        out = bytearray()
        index = 0
        while index < len(buffer):
            length = buffer[index]
            if length == 128:
                yield bytes(out)
                return
            if length < 128:
                if index + 1 + length + 1 > len(buffer):
                    break
                out += buffer[index + 1 : index + 2 + length]
                index += length + 2
            else:
                if index + 1 >= len(buffer):
                    break
                out += buffer[index + 1 : index + 2] * (257 - length)
                index += 2
            if len(out) >= _OUT_CHUNK:
                yield bytes(out)
                out.clear()
        carry = buffer[index:]
        if out:
            yield bytes(out)


_STAGES = {
    b"FlateDecode": _flate,
    b"ASCIIHexDecode": _ascii_hex,
    b"ASCII85Decode": _ascii85,
    b"RunLengthDecode": _run_length,
}


# --- PDFium ----------------------------------------------------------------------------------


def _count_pages(data: bytes, max_pages: int) -> int:
    from bastion.pipeline.extract.text import open_document, pdfium_lock

    with pdfium_lock, open_document(data, max_pages) as document:
        return len(document)
