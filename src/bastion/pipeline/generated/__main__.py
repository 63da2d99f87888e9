"""`python -m bastion.pipeline.generated DIR`: write the generated corpus as PDF + JSON pairs."""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

from bastion.pipeline.generated.corpus import GeneratedInvoice, corpus, write_corpus
from bastion.pipeline.generated.families import FAMILIES
from bastion.pipeline.generated.vocabulary import LANGUAGES


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(
        prog="python -m bastion.pipeline.generated",
        description="Write generated invoices (every family in each of its languages) as "
        "<family>_<language>_<seed>.pdf with a .json of the truth.",
    )
    parser.add_argument("directory", type=Path)
    parser.add_argument("--seeds", type=int, default=2, help="documents per family and language")
    parser.add_argument("--family", action="append", choices=sorted(FAMILIES))
    parser.add_argument("--language", action="append", choices=sorted(LANGUAGES))
    args = parser.parse_args(argv)
    families = args.family or list(FAMILIES)
    languages = args.language or list(LANGUAGES)
    expected = args.seeds * sum(
        len([lang for lang in FAMILIES[f].languages if lang in languages]) for f in families
    )

    def progress(count: int, doc: GeneratedInvoice) -> None:
        if count % 25 == 0 or count == expected:
            print(f"{count}/{expected} written (last: {doc.name})", flush=True)

    documents = corpus(range(args.seeds), families, languages)
    written = write_corpus(args.directory, documents, progress)
    print(f"{written} invoices in {args.directory}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
