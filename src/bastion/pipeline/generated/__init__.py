"""Generated invoices in many layout families and languages, with their truth, for testing how
well the extractor generalises.

- `vocabulary`: each language's labels, formats and word pools; `content`: the random invoice
  and its truth; `formats`: how values are printed; `drawing`, `blocks`: the canvas and the
  parts layouts are made of; `families`: the layouts (`FAMILIES`, `HELD_OUT_FAMILIES`);
  `corpus`: `generate`, `corpus`, `write_corpus`.
- `python -m bastion.pipeline.generated DIR [--seeds N]` writes the corpus as PDF + JSON pairs.

`bastion.pipeline.synthetic` stays the one simple layout the throughput benchmarks use.
"""

from __future__ import annotations

from bastion.pipeline.generated.content import CREDIT_NOTE_SIGN
from bastion.pipeline.generated.corpus import (
    GeneratedInvoice,
    corpus,
    generate,
    render,
    write_corpus,
)
from bastion.pipeline.generated.families import FAMILIES, HELD_OUT_FAMILIES, Family
from bastion.pipeline.generated.vocabulary import LANGUAGES

__all__ = [
    "CREDIT_NOTE_SIGN",
    "FAMILIES",
    "HELD_OUT_FAMILIES",
    "LANGUAGES",
    "Family",
    "GeneratedInvoice",
    "corpus",
    "generate",
    "render",
    "write_corpus",
]
