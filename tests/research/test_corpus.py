"""The local corpus: folders of .txt/.md/.pdf files, JSON and JSONL lists, the HotpotQA form;
sentence splitting, deterministic ids, fingerprints and actionable errors."""

from __future__ import annotations

import io
import json
import os
from pathlib import Path

import pytest
from reportlab.lib.pagesizes import A4
from reportlab.pdfgen import canvas

from bastion.research.corpus import (
    CorpusError,
    content_fingerprint,
    hotpotqa_documents,
    load_corpus,
    stat_fingerprint,
)
from bastion.research.text import split_sentences


def pdf_bytes(*lines: str) -> bytes:
    buffer = io.BytesIO()
    page = canvas.Canvas(buffer, pagesize=A4)
    for i, line in enumerate(lines):
        page.drawString(72, 760 - 20 * i, line)
    page.save()
    return buffer.getvalue()


def make_folder(root: Path) -> Path:
    (root / "notes").mkdir(parents=True)
    (root / "notes" / "lighthouse.txt").write_text(
        "The lighthouse stands on Skerry Point. It was built in 1871.", encoding="utf-8"
    )
    (root / "guide.md").write_text(
        "# Harbour guide\n\nBoats leave at dawn. Dr. Mills runs the harbour office.\n",
        encoding="utf-8",
    )
    (root / "report.pdf").write_bytes(pdf_bytes("The ferry carries 40 cars.", "It sails daily."))
    (root / "ignored.csv").write_text("a,b\n", encoding="utf-8")
    return root


def test_folder_of_text_markdown_and_pdf(tmp_path: Path) -> None:
    documents = load_corpus(make_folder(tmp_path / "corpus"))
    assert [d.path for d in documents] == ["guide.md", "notes/lighthouse.txt", "report.pdf"]
    guide, lighthouse, report = documents
    assert guide.title == "Harbour guide"  # the markdown heading, not a sentence of the text
    assert guide.sentences == (
        "Boats leave at dawn.",
        "Dr. Mills runs the harbour office.",
    )
    assert lighthouse.title == "lighthouse"  # the file name
    assert lighthouse.sentences == (
        "The lighthouse stands on Skerry Point.",
        "It was built in 1871.",
    )
    assert report.title == "report"
    assert "ferry carries 40 cars" in report.text
    assert any("sails daily" in s for s in report.sentences)


def test_file_ids_are_stable_hashes_of_the_relative_path(tmp_path: Path) -> None:
    first = load_corpus(make_folder(tmp_path / "one"))
    second = load_corpus(make_folder(tmp_path / "two"))
    assert [d.id for d in first] == [d.id for d in second]
    assert len({d.id for d in first}) == 3
    (tmp_path / "one" / "notes" / "lighthouse.txt").rename(tmp_path / "one" / "beacon.txt")
    moved = {d.path: d.id for d in load_corpus(tmp_path / "one")}
    assert moved["beacon.txt"] not in {d.id for d in first}


def test_json_list_keeps_given_ids_urls_and_sentences(tmp_path: Path) -> None:
    path = tmp_path / "corpus.json"
    path.write_text(
        json.dumps(
            [
                {"id": "doc-7", "title": "Seven", "text": "One. Two!", "url": "https://a.org/7"},
                {"title": "No id", "text": "Alpha beta. Gamma."},
                {"title": "Given", "sentences": ["First as given", " second kept"]},
                {"id": 42, "title": "Numbered", "text": ""},
            ]
        ),
        encoding="utf-8",
    )
    documents = load_corpus(path)
    assert documents[0].id == "doc-7"
    assert documents[0].url == "https://a.org/7"
    assert documents[0].sentences == ("One.", "Two!")
    assert documents[1].id == load_corpus(path)[1].id and len(documents[1].id) == 16
    assert documents[2].sentences == ("First as given", " second kept")  # never re-split
    assert documents[2].text == "First as given  second kept"
    assert documents[3].id == "42" and documents[3].sentences == ()


def test_same_title_without_ids_gets_distinct_ids(tmp_path: Path) -> None:
    path = tmp_path / "c.json"
    path.write_text(json.dumps([{"title": "T", "text": "a"}, {"title": "T", "text": "b"}]))
    first, second = load_corpus(path)
    assert first.id != second.id


def test_jsonl(tmp_path: Path) -> None:
    path = tmp_path / "corpus.jsonl"
    path.write_text(
        '{"id": "x", "title": "X", "text": "Ex. Why."}\n\n{"title": "Y", "text": "Zed."}\n',
        encoding="utf-8",
    )
    documents = load_corpus(path)
    assert [d.title for d in documents] == ["X", "Y"]
    assert documents[0].id == "x"


def test_hotpotqa_form_is_read_and_converted_with_sentence_indexes_kept(tmp_path: Path) -> None:
    corpus = {"Zeta": ["Zeta is a letter.", " It follows epsilon."], "Alpha": ["Alpha first."]}
    converted = hotpotqa_documents(corpus)
    assert converted == [
        {"title": "Alpha", "text": "Alpha first.", "sentences": ["Alpha first."]},
        {
            "title": "Zeta",
            "text": "Zeta is a letter. It follows epsilon.",
            "sentences": ["Zeta is a letter.", "It follows epsilon."],
        },
    ]
    raw = tmp_path / "hotpot.json"
    raw.write_text(json.dumps(corpus), encoding="utf-8")
    listed = tmp_path / "listed.json"
    listed.write_text(json.dumps(converted), encoding="utf-8")
    from_raw, from_list = load_corpus(raw), load_corpus(listed)
    assert [(d.id, d.title, d.sentences) for d in from_raw] == [
        (d.id, d.title, d.sentences) for d in from_list
    ]
    assert from_raw[1].sentences[1] == "It follows epsilon."


@pytest.mark.parametrize(
    ("content", "message"),
    [
        ("[{", "invalid JSON at line 1"),
        ('{"a": 1}', "expected a list"),
        ('[{"text": "no title"}]', "document 1: `title` must be a non-empty string"),
        ('[{"title": "T"}]', "document 1: `text` must be a string"),
        ('[{"title": "T", "text": "x", "url": 3}]', "`url` must be a string"),
        (
            '[{"id": "a", "title": "T", "text": ""}, {"id": "a", "title": "U", "text": ""}]',
            "id 'a' is used by both 'T' and 'U'",
        ),
        ('["just text"]', "expected an object"),
    ],
)
def test_bad_json_corpus_says_what_to_fix(tmp_path: Path, content: str, message: str) -> None:
    path = tmp_path / "c.json"
    path.write_text(content, encoding="utf-8")
    with pytest.raises(CorpusError, match=message):
        load_corpus(path)


def test_missing_or_unsupported_path(tmp_path: Path) -> None:
    with pytest.raises(CorpusError, match="does not exist"):
        load_corpus(tmp_path / "nowhere")
    other = tmp_path / "corpus.csv"
    other.write_text("x", encoding="utf-8")
    with pytest.raises(CorpusError, match=r"not a folder nor a \.json"):
        load_corpus(other)


def test_unreadable_files_are_named(tmp_path: Path) -> None:
    (tmp_path / "bad.pdf").write_bytes(b"not a pdf at all")
    with pytest.raises(CorpusError, match=r"bad\.pdf is not a readable PDF"):
        load_corpus(tmp_path)
    (tmp_path / "bad.pdf").unlink()
    (tmp_path / "latin.txt").write_bytes("caf\xe9".encode("latin-1"))
    with pytest.raises(CorpusError, match=r"latin\.txt is not UTF-8"):
        load_corpus(tmp_path)


def test_a_link_out_of_the_folder_is_refused(tmp_path: Path) -> None:
    secret = tmp_path / "secret.txt"
    secret.write_text("Not for the corpus.", encoding="utf-8")
    folder = make_folder(tmp_path / "corpus")
    (folder / "inside.txt").symlink_to(folder / "guide.md")  # a link within is fine
    assert len(load_corpus(folder)) == 4
    (folder / "leak.txt").symlink_to(secret)
    with pytest.raises(CorpusError, match=r"leak\.txt links outside the corpus folder"):
        load_corpus(folder)


def test_split_sentences() -> None:
    assert split_sentences(
        'Dr. Smith met J. R. Tolkien. He said "Hello!" Then? Yes.\n\nA heading\nwraps here'
    ) == [
        "Dr. Smith met J. R. Tolkien.",
        'He said "Hello!"',
        "Then?",
        "Yes.",
        "A heading wraps here",
    ]
    assert split_sentences("   ") == []
    assert split_sentences("version 2.5 is out. 3 cats came.") == [
        "version 2.5 is out.",
        "3 cats came.",
    ]
    assert split_sentences("Built in 1889. [1]") == ["Built in 1889. [1]"]  # a footnote stays


def test_fingerprints_follow_changes(tmp_path: Path) -> None:
    folder = make_folder(tmp_path / "c")
    stat, content = stat_fingerprint(folder), content_fingerprint(load_corpus(folder))
    assert stat_fingerprint(folder) == stat
    note = folder / "notes" / "lighthouse.txt"
    info = note.stat()
    os.utime(note, ns=(info.st_atime_ns, info.st_mtime_ns + 1_000_000_000))
    assert stat_fingerprint(folder) != stat  # touched
    assert content_fingerprint(load_corpus(folder)) == content  # same content
    note.write_text("The lighthouse was rebuilt.", encoding="utf-8")
    assert content_fingerprint(load_corpus(folder)) != content
    (folder / "extra.txt").write_text("More.", encoding="utf-8")
    assert len(load_corpus(folder)) == 4
