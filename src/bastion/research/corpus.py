"""The local corpus: the documents under `research.corpus`, read into `CorpusDocument`s.

A corpus is either a folder of `.txt`, `.md` and `.pdf` files (read recursively, in sorted
path order; PDF text through pypdfium2; a file linking out of the folder is refused) or one
`.json` / `.jsonl` file of objects
`{id?, title, text, url?, sentences?}`. A `.json` file may also hold the HotpotQA form, an
object mapping each title to its list of sentences (`hotpotqa_documents` converts it to the list
form). Given sentences are kept as they are, so a sentence index means the same as in the
source data; plain text is split by `text.split_sentences`.

Document ids are deterministic: the document's own `id` when it has one, otherwise a hash of
its path in the folder (files) or of its title (JSON objects). `stat_fingerprint` is the cheap
"did anything change" check (paths, sizes, modification times); `content_fingerprint` hashes
what was read, so a file touched but not changed does not cost a re-index.
"""

from __future__ import annotations

import hashlib
import json
import threading
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pypdfium2 as pdfium

from bastion.research.text import split_sentences

__all__ = [
    "TEXT_SUFFIXES",
    "CorpusDocument",
    "CorpusError",
    "content_fingerprint",
    "hotpotqa_documents",
    "load_corpus",
    "stat_fingerprint",
]

TEXT_SUFFIXES = (".md", ".pdf", ".txt")
_JSON_SUFFIXES = (".json", ".jsonl")

# PDFium is not thread-safe: one document is read at a time in this process.
_pdfium_lock = threading.Lock()


class CorpusError(ValueError):
    """The corpus cannot be read; the message names the file and what to fix."""


@dataclass(frozen=True, slots=True)
class CorpusDocument:
    """One document of the corpus: `sentences` in order (what passages index into), `path` the
    file it came from, relative to the corpus folder (or the JSON file's name)."""

    id: str
    title: str
    text: str
    sentences: tuple[str, ...]
    path: str
    url: str | None = None


def hotpotqa_documents(corpus: Mapping[str, Iterable[str]]) -> list[dict[str, Any]]:
    """The HotpotQA corpus form (title -> sentences) as the JSON list form, in sorted title
    order: `{"title", "text", "sentences"}` objects, the sentences kept as given (stripped), so
    a gold supporting fact (title, sentence index) points at the same sentence."""
    documents: list[dict[str, Any]] = []
    for title in sorted(corpus):
        sentences = [" ".join(s.split()) for s in corpus[title]]
        documents.append({"title": title, "text": " ".join(sentences), "sentences": sentences})
    return documents


def stat_fingerprint(path: Path) -> str:
    """A hash of the corpus files' relative paths, sizes and modification times: changes
    whenever a file is added, removed, resized or written. Raises `CorpusError` when `path`
    is neither a folder nor a supported file."""
    digest = hashlib.sha256()
    for file, name in _corpus_files(path):
        stat = file.stat()
        digest.update(f"{name}\0{stat.st_size}\0{stat.st_mtime_ns}\n".encode())
    return digest.hexdigest()


def content_fingerprint(documents: Iterable[CorpusDocument]) -> str:
    """A hash of everything read: ids, titles, urls and sentences, in order."""
    digest = hashlib.sha256()
    for document in documents:
        record = [document.id, document.title, document.url, document.path, document.sentences]
        digest.update(json.dumps(record, ensure_ascii=False).encode())
        digest.update(b"\n")
    return digest.hexdigest()


def load_corpus(path: Path) -> list[CorpusDocument]:
    """Every document of the corpus at `path` (a folder or a `.json` / `.jsonl` file), in a
    deterministic order. Raises `CorpusError` on a missing path, a bad file or duplicate ids."""
    documents: list[CorpusDocument] = []
    for file, name in _corpus_files(path):
        if file.suffix.lower() in _JSON_SUFFIXES:
            documents.extend(_json_documents(file, name))
        else:
            documents.append(_file_document(file, name))
    seen: dict[str, str] = {}
    for document in documents:
        if document.id in seen:
            raise CorpusError(
                f"corpus {path}: id {document.id!r} is used by both {seen[document.id]!r} and "
                f"{document.title!r}; give each document its own id"
            )
        seen[document.id] = document.title
    return documents


def _corpus_files(path: Path) -> list[tuple[Path, str]]:
    if path.is_dir():
        files = [
            (file, file.relative_to(path).as_posix())
            for file in path.rglob("*")
            if file.is_file() and file.suffix.lower() in TEXT_SUFFIXES
        ]
        root = path.resolve()
        for file, name in files:
            if not file.resolve().is_relative_to(root):
                raise CorpusError(
                    f"corpus file {name} links outside the corpus folder {path}; "
                    "copy the file into the folder instead"
                )
        return sorted(files, key=lambda pair: pair[1])
    if path.is_file() and path.suffix.lower() in _JSON_SUFFIXES:
        return [(path, path.name)]
    if path.exists():
        raise CorpusError(
            f"corpus {path}: not a folder nor a .json / .jsonl file; set research.corpus to a "
            "folder of .txt, .md or .pdf files or to a JSON list of {title, text} objects"
        )
    raise CorpusError(f"corpus {path} does not exist; set research.corpus to an existing path")


def _stable_id(kind: str, key: str) -> str:
    return hashlib.sha256(f"{kind}\0{key}".encode()).hexdigest()[:16]


def _file_document(file: Path, name: str) -> CorpusDocument:
    text = _pdf_text(file) if file.suffix.lower() == ".pdf" else _read_text(file)
    title = _markdown_title(text) if file.suffix.lower() == ".md" else None
    if title is not None:  # the heading is the title, not the first sentence of the text
        text = _without_heading(text)
    return CorpusDocument(
        id=_stable_id("file", name),
        title=title or file.stem,
        text=text,
        sentences=tuple(split_sentences(text)),
        path=name,
    )


def _read_text(file: Path) -> str:
    try:
        return file.read_text(encoding="utf-8")
    except UnicodeDecodeError as exc:
        raise CorpusError(
            f"corpus file {file} is not UTF-8 text ({exc.reason}); convert it to UTF-8"
        ) from None


def _markdown_title(text: str) -> str | None:
    for line in text.splitlines():
        if line.startswith("# "):
            return line[2:].strip() or None
    return None


def _without_heading(text: str) -> str:
    lines = text.splitlines()
    first = next(i for i, line in enumerate(lines) if line.startswith("# "))
    return "\n".join(lines[:first] + lines[first + 1 :]).strip()


def _pdf_text(file: Path) -> str:
    with _pdfium_lock:
        try:
            pdf = pdfium.PdfDocument(file)
        except pdfium.PdfiumError as exc:
            raise CorpusError(
                f"corpus file {file} is not a readable PDF ({exc}); repair or remove it"
            ) from None
        try:
            pages: list[str] = []
            for index in range(len(pdf)):
                page = pdf[index]
                textpage = page.get_textpage()
                pages.append(textpage.get_text_bounded())
                textpage.close()
                page.close()
        finally:
            pdf.close()
    return "\n\n".join(text.replace("\r\n", "\n").replace("\r", "\n") for text in pages)


def _json_documents(file: Path, name: str) -> list[CorpusDocument]:
    raw = _read_text(file)
    try:
        if file.suffix.lower() == ".jsonl":
            items: list[Any] = [json.loads(line) for line in raw.splitlines() if line.strip()]
        else:
            loaded = json.loads(raw)
            items = hotpotqa_documents(loaded) if _is_hotpotqa(loaded) else loaded
    except json.JSONDecodeError as exc:
        raise CorpusError(
            f"corpus file {file}: invalid JSON at line {exc.lineno}: {exc.msg}"
        ) from None
    if not isinstance(items, list):
        raise CorpusError(
            f"corpus file {file}: expected a list of {{title, text}} objects "
            "(or a HotpotQA object of title -> sentences)"
        )
    titles: dict[str, int] = {}
    documents = []
    for number, item in enumerate(items, start=1):
        documents.append(_json_document(item, file, name, number, titles))
    return documents


def _is_hotpotqa(loaded: Any) -> bool:
    return isinstance(loaded, dict) and all(
        isinstance(value, list) and all(isinstance(s, str) for s in value)
        for value in loaded.values()
    )


def _json_document(
    item: Any, file: Path, name: str, number: int, titles: dict[str, int]
) -> CorpusDocument:
    where = f"corpus file {file}, document {number}"
    if not isinstance(item, dict):
        raise CorpusError(f"{where}: expected an object {{id?, title, text, url?}}")
    title, text, url, given_id = (item.get(k) for k in ("title", "text", "url", "id"))
    sentences = item.get("sentences")
    if not isinstance(title, str) or not title.strip():
        raise CorpusError(f"{where}: `title` must be a non-empty string")
    if sentences is not None and not (
        isinstance(sentences, list) and all(isinstance(s, str) for s in sentences)
    ):
        raise CorpusError(f"{where}: `sentences` must be a list of strings")
    if text is None and sentences is not None:
        text = " ".join(sentences)
    if not isinstance(text, str):
        raise CorpusError(f"{where}: `text` must be a string")
    if url is not None and not isinstance(url, str):
        raise CorpusError(f"{where}: `url` must be a string")
    if given_id is not None and not isinstance(given_id, str | int):
        raise CorpusError(f"{where}: `id` must be a string or a number")
    # Same title twice without ids: the second gets its occurrence number in the hash.
    occurrence = titles.get(title, 0)
    titles[title] = occurrence + 1
    key = title if occurrence == 0 else f"{title}\0{occurrence}"
    return CorpusDocument(
        id=str(given_id) if given_id is not None else _stable_id("title", key),
        title=title.strip(),
        text=text,
        sentences=tuple(sentences) if sentences is not None else tuple(split_sentences(text)),
        path=name,
        url=url,
    )
