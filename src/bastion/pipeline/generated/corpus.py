"""One generated invoice from (family, language, seed), the corpus of them, and writing it out.

`generate(family, language, seed)` returns the PDF bytes and the truth; the same arguments
always give the same bytes (the random source is seeded from all three, reportlab runs in
invariant mode). `corpus(seeds)` walks every family in every one of its languages for each
seed; `write_corpus(directory, ...)` stores it as `<family>_<language>_<seed>.pdf` next to a
`.json` holding the truth plus the family, language, seed and whether the family is held out.
"""

from __future__ import annotations

import json
import random
from collections.abc import Callable, Iterable, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from bastion.pipeline.generated.blocks import Ctx
from bastion.pipeline.generated.content import Invoice, make_invoice
from bastion.pipeline.generated.drawing import Sheet
from bastion.pipeline.generated.families import FAMILIES, HELD_OUT_FAMILIES
from bastion.pipeline.generated.formats import Formats
from bastion.pipeline.generated.vocabulary import LANGUAGES

__all__ = ["GeneratedInvoice", "corpus", "generate", "render", "write_corpus"]


@dataclass(frozen=True)
class GeneratedInvoice:
    family: str
    language: str
    seed: int
    pdf: bytes
    truth: dict[str, Any]
    invoice: Invoice
    formats: Formats

    @property
    def held_out(self) -> bool:
        return self.family in HELD_OUT_FAMILIES

    @property
    def name(self) -> str:
        return f"{self.family}_{self.language}_{self.seed}"


def render(family: str, language: str, seed: int) -> GeneratedInvoice:
    """One document with everything known about it (content, formats, truth)."""
    spec = FAMILIES.get(family)
    if spec is None:
        raise ValueError(f"unknown family {family!r}; families: {', '.join(FAMILIES)}")
    if language not in spec.languages:
        raise ValueError(f"family {family!r} is not drawn in {language!r}: {spec.languages}")
    lang = LANGUAGES[language]
    rng = random.Random(f"{family}/{language}/{seed}")  # noqa: S311 (test data, not security)
    invoice = make_invoice(lang, rng, spec.options)
    formats = Formats(lang, invoice.currency, rng.choice(spec.dates), rng.choice(spec.money),
                      spec.minus)  # fmt: skip
    title = lang.labels["credit_note" if invoice.credit_note else "invoice"][0]
    sheet = Sheet(title.title(), "", font=rng.choice(spec.fonts))
    spec.render(Ctx(sheet, invoice, formats, rng))
    return GeneratedInvoice(family, language, seed, sheet.finish(), invoice.truth(), invoice,
                            formats)  # fmt: skip


def generate(family: str, language: str, seed: int) -> tuple[bytes, dict[str, Any]]:
    """The PDF bytes and the truth (the extractor's field names) of one generated invoice."""
    doc = render(family, language, seed)
    return doc.pdf, doc.truth


def corpus(
    seeds: Iterable[int] = range(2),
    families: Iterable[str] | None = None,
    languages: Iterable[str] | None = None,
) -> Iterator[GeneratedInvoice]:
    """Every family in each of its languages (or the ones named) for each seed."""
    wanted = set(languages) if languages is not None else None
    for family in families if families is not None else FAMILIES:
        for language in FAMILIES[family].languages:
            if wanted is None or language in wanted:
                for seed in seeds:
                    yield render(family, language, seed)


def write_corpus(
    directory: Path,
    documents: Iterable[GeneratedInvoice],
    progress: Callable[[int, GeneratedInvoice], None] | None = None,
) -> int:
    """Write each document as PDF + JSON into `directory` (created); returns how many."""
    directory.mkdir(parents=True, exist_ok=True)
    count = 0
    for count, doc in enumerate(documents, start=1):
        (directory / f"{doc.name}.pdf").write_bytes(doc.pdf)
        meta = {"family": doc.family, "language": doc.language, "seed": doc.seed,
                "held_out": doc.held_out}  # fmt: skip
        text = json.dumps({**doc.truth, **meta}, ensure_ascii=False, indent=2)
        (directory / f"{doc.name}.json").write_text(text + "\n", encoding="utf-8")
        if progress is not None:
            progress(count, doc)
    return count
