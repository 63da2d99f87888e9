"""The invoice lexicon: loading, checking and compiling the business-term vocabulary.

The words invoices use live in `lexicon.yaml` (shipped with the package), keyed by business
term (EN 16931 `BT-`/`BG-` numbers, and named groups for what the standard does not number),
then by language. Extra lexicon files, named in the environment variable
`BASTION_LEXICON_FILES` (paths separated by the platform's path separator), are merged over it:
a file may add terms to a language or a new language to any key. Adding a language is adding
data.

A term is plain text unless it starts with `re:` (then it is a regular expression, used as is).
Plain text, matched case-insensitively:

- a space is any whitespace, or none ("invoice date" matches "InvoiceDate");
- `-` is an optional hyphen with optional whitespace around it ("re-nr" matches "Re.-Nr");
- `.` is an optional dot ("inv. no." matches "Inv No");
- `:` is a colon, possibly after whitespace;
- `(a|b)` is one of the alternatives, `[x]` is optional;
- an accented letter also matches its base letter ("échéance" matches "echeance"), `°` and `º`
  also match `o`, an apostrophe also matches a typographic one;
- a term ends where a word ends, unless it ends with `*` (a stem: "netto*" matches
  "Nettobetrag"), and starts where a word starts, unless it starts with `*` (it may end a
  compound: "*rechnung" matches "Schlussrechnung");
- `\\` makes the next character literal.

A key with `case: exact` (the legal forms) is matched with the case of its terms; there a `.`
is a required dot and terms carry no word-end test.
"""

from __future__ import annotations

import os
import re
import unicodedata
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from functools import cache, lru_cache
from importlib import resources
from pathlib import Path
from typing import Any

import yaml

__all__ = [
    "ENV_FILES",
    "Lexicon",
    "LexiconError",
    "compile_term",
    "lexicon",
    "load_lexicon",
]

ENV_FILES = "BASTION_LEXICON_FILES"
SHIPPED = "lexicon.yaml"

_LETTER = r"[^\W\d_]"
_WORD_END = r"(?![^\W\d_])"
_WORD_START = r"(?<![^\W\d_])"
_LANGUAGE = re.compile(r"^(?:[a-z]{2,3}|any)$")
_SETTINGS = {"name": str, "note": str, "case": str}
_SPECIAL = set("\\.^$*+?{}[]|()")
_REGEX_ONLY = set("?+{}^$>")
_SLOTS = {"days"}  # <days>: a number of days, one to three digits
_FOLD_EXTRA = {"ł": "l", "ø": "o", "đ": "d"}
_LOADER = getattr(yaml, "CSafeLoader", yaml.SafeLoader)  # the C one when PyYAML has it
_SAME = {"°": "°ºo", "º": "°ºo", "'": "'\u2019", "\u2019": "'\u2019"}


class LexiconError(ValueError):
    """A lexicon file that cannot be used: the message names the file, key, language and term."""


@dataclass(frozen=True)
class Group:
    """One key of the lexicon: its terms by language, in file order."""

    key: str
    name: str
    exact: bool
    terms: dict[str, list[str]]

    def all_terms(self) -> list[str]:
        return [t for terms in self.terms.values() for t in terms]


@dataclass(frozen=True)
class Lexicon:
    groups: dict[str, Group]
    sources: tuple[str, ...]

    def body(self, key: str, *, compounds: bool = True) -> str:
        """The alternation of `key`'s terms, every language, each once.

        By default the caller matches from a word start, where a leading `*` lets a term begin
        earlier. With `compounds=False` the pattern is searched anywhere: then a term without
        a leading `*` is tested to start a word, one with it is not. The terms that share that
        test or that letter run are grouped under one (where the first of them stands), so
        that the regex engine runs it once per place, not once per term."""
        group = self.groups.get(key)
        if group is None:
            raise KeyError(f"the lexicon has no key {key!r} ({', '.join(self.sources)})")
        prefix = _LETTER + "*" if compounds else _WORD_START
        parts: list[str | list[str]] = []  # sources, and the one list of prefixed ones
        shared: list[str] = []
        for term in group.all_terms():
            compound, source = _compile(term, group.exact)
            if compound == compounds and not term.startswith("re:"):
                if not shared:
                    parts.append(shared)
                if source not in shared:
                    shared.append(source)
            elif source not in parts:
                parts.append(source)
        if len(shared) == 1:
            shared[0] = prefix + shared[0]
        elif shared:
            shared[:] = [f"{prefix}(?:{'|'.join(shared)})"]
        return "|".join(p if isinstance(p, str) else p[0] for p in parts)


# ------------------------------------------------------------------------------- term syntax


def _fold(ch: str) -> str:
    """A letter as a regex matching it and, when accented, its base letter."""
    if ch in _SAME:
        return "[" + _SAME[ch] + "]"
    base = _FOLD_EXTRA.get(ch) or unicodedata.normalize("NFD", ch)[0]
    if base != ch and base.isascii() and base.isalpha():
        return f"[{ch}{base}]"
    return _escape(ch)


@dataclass
class _Alt:
    """A group of the term syntax: `(a|b)`, or `[a]` when optional."""

    options: list[list[Any]]
    optional: bool


def _parse(term: str) -> list[Any]:
    """The items of a plain term: characters (str) and groups (_Alt)."""
    stack: list[tuple[_Alt, str]] = []
    current: list[Any] = []
    root = current
    i = 0
    while i < len(term):
        ch = term[i]
        if ch == "\\":
            if i + 1 >= len(term):
                raise ValueError("a '\\' at the end escapes nothing")
            current.append("\\" + term[i + 1])
            i += 2
            continue
        if ch == "<":
            close = term.find(">", i)
            if close < 0 or term[i + 1 : close] not in _SLOTS:
                raise ValueError(f"'<' opens a slot: one of {', '.join(sorted(_SLOTS))}, in <>")
            current.append(term[i : close + 1])
            i = close + 1
            continue
        if ch in "([":
            alt = _Alt([[]], optional=ch == "[")
            current.append(alt)
            stack.append((alt, ")" if ch == "(" else "]"))
            current = alt.options[0]
        elif ch == "|":
            if not stack:
                raise ValueError("'|' outside '(...)' or '[...]'; use one term per alternative")
            alt = stack[-1][0]
            alt.options.append([])
            current = alt.options[-1]
        elif ch in ")]":
            if not stack or stack[-1][1] != ch:
                raise ValueError(f"unbalanced {ch!r}")
            stack.pop()
            current = _innermost(root, stack)
        elif ch == "*":
            raise ValueError("'*' marks a stem only at the start or the end of a term")
        elif ch in _REGEX_ONLY:
            raise ValueError(f"{ch!r} is regex syntax: write the term as 're: ...'")
        else:
            current.append(ch)
        i += 1
    if stack:
        raise ValueError(f"{stack[-1][1]!r} missing")
    return root


def _innermost(root: list[Any], stack: list[tuple[_Alt, str]]) -> list[Any]:
    return stack[-1][0].options[-1] if stack else root


def _last(items: list[Any]) -> int:
    """Index of the last item that is not an optional dot (-1 when there is none)."""
    k = len(items) - 1
    while k >= 0 and items[k] == ".":
        k -= 1
    return k


def _letter_end(items: list[Any]) -> bool:
    """Whether `items` can end with a letter (optional dots aside)."""
    k = _last(items)
    if k < 0:
        return False
    item = items[k]
    if isinstance(item, _Alt):
        ends = any(_letter_end(o) if o else _letter_end(items[:k]) for o in item.options)
        return ends or (item.optional and _letter_end(items[:k]))
    return _is_letter(item)


def _is_letter(item: str) -> bool:
    """A letter, or a sign that also matches one ("°" matches "o")."""
    return len(item) == 1 and (item.isalpha() or (item in _SAME and "o" in _SAME[item]))


def _token(item: str, exact: bool) -> str:
    if item.startswith("\\"):
        return _escape(item[1:])
    if item == " ":
        return r"\s*"
    if item == "-" and not exact:
        return r"\s*-?\s*"
    if item == ".":
        return r"\." if exact else r"\.?"
    if item == ":":
        return r"\s*:"
    if item.startswith("<"):
        return rf"(?P<{item[1:-1]}>\d{{1,3}})(?!\d)"
    return _fold(item)


def _escape(ch: str) -> str:
    return "\\" + ch if ch in _SPECIAL else ch


_SINGLE = re.compile(r"^(?:\\.|\[[^\]]+\]|[^\\()\[\]])$")


def _render(items: list[Any], exact: bool, at_end: bool) -> str:
    """The regex of `items`; `at_end`: they end the term, which then ends at a word end after
    a letter (each way through a group deciding for itself)."""
    out: list[str] = []
    last = _last(items) if at_end and not exact else -2
    for k, item in enumerate(items):
        if isinstance(item, _Alt):
            ends = k == last
            if item.optional and item.options == [[":"]]:
                # "[:]": an optional colon, and the whitespace before it.
                letter = ends and _letter_end(items[:k])
                out.append((_WORD_END if letter else "") + r"\s*:?")
                continue
            options = [_render(o, exact, ends) for o in item.options]
            if ends and (item.optional or not all(item.options)) and _letter_end(items[:k]):
                # Leaving the group out ends the term after the letter before it.
                options = [o for o in options if o] + [_WORD_END]
                out.append(f"(?:{'|'.join(options)})")
            elif item.optional and len(options) == 1 and _SINGLE.match(options[0]):
                out.append(options[0] + "?")
            else:
                out.append(f"(?:{'|'.join(options)})" + ("?" if item.optional else ""))
            continue
        piece = _token(item, exact)
        if piece == r"\s*" and out and out[-1].endswith(r"\s*"):
            continue
        out.append(piece)
        if k == last and _is_letter(item):
            out.append(_WORD_END)
    return "".join(out)


@cache
def _compile(term: str, exact: bool) -> tuple[bool, str]:
    """Whether `term` may begin inside a word (a leading `*`), and its regex source without
    the test of where it begins."""
    if term.startswith("re:"):
        return False, _regex_term(term[3:].strip(), exact)
    text = term if exact else term.lower()
    head = text.startswith("*")
    tail = text.endswith("*") and not text.endswith("\\*")
    core = text[1 if head else 0 : len(text) - 1 if tail else len(text)]
    if not core.strip():
        raise ValueError("the term is empty")
    source = _render(_parse(core), exact, at_end=not tail)
    re.compile(source)
    return head, source


def compile_term(term: str, *, exact: bool = False, compounds: bool = True) -> str:
    """The regex source of one lexicon term (see the module's docstring for the syntax); with
    `compounds=False`, for a pattern searched anywhere (see `Lexicon.body`)."""
    head, source = _compile(term, exact)
    if term.startswith("re:"):
        return source
    if head and compounds:
        return _LETTER + "*" + source
    if not head and not compounds:
        return _WORD_START + source
    return source


def _regex_term(source: str, exact: bool) -> str:
    """A `re:` term, checked: it compiles, captures nothing but a `<days>` slot and, unless the
    key matches with case, is in lower case (the text it is matched against is)."""
    compiled = re.compile(source)
    if set(compiled.groupindex) - _SLOTS or compiled.groups > len(compiled.groupindex):
        raise ValueError("a re: term must not capture: write (?:...) for a group")
    if not exact and re.search(r"[A-Z]", re.sub(r"\\.", "", source)):
        raise ValueError("write a re: term in lower case: it is matched against lower-cased text")
    return source


# ------------------------------------------------------------------------------ the files


def _read(path: str | Path, text: str) -> dict[str, Any]:
    try:
        data = yaml.load(text, Loader=_LOADER)  # noqa: S506 (a safe loader)
    except yaml.YAMLError as exc:
        raise LexiconError(f"{path}: not valid YAML: {exc}") from None
    if not isinstance(data, dict) or not isinstance(data.get("terms"), dict):
        raise LexiconError(f"{path}: expected a mapping with a 'terms' mapping at the top")
    terms: dict[str, Any] = data["terms"]
    return terms


def _group(path: str | Path, key: str, raw: Any, known: Group | None) -> Group:
    where = f"{path}: {key}"
    if not isinstance(raw, Mapping):
        raise LexiconError(f"{where}: expected a mapping of languages to lists of terms")
    settings = {k: v for k, v in raw.items() if k in _SETTINGS}
    for name, value in settings.items():
        if not isinstance(value, _SETTINGS[name]):
            raise LexiconError(f"{where}: '{name}' must be a {_SETTINGS[name].__name__}")
    case = settings.get("case", "exact" if known and known.exact else "ignore")
    if case not in ("exact", "ignore"):
        raise LexiconError(f"{where}: 'case' is 'exact' or 'ignore', not {case!r}")
    exact = case == "exact"
    if known and exact != known.exact:
        raise LexiconError(f"{where}: 'case' is set by {SHIPPED}; an extra file keeps it")
    terms = {lang: list(ts) for lang, ts in known.terms.items()} if known else {}
    for lang, values in raw.items():
        if lang in _SETTINGS:
            continue
        if not isinstance(lang, str) or not _LANGUAGE.match(lang):
            raise LexiconError(
                f"{where}: {lang!r} is not a language code (two or three lower-case letters, "
                "or 'any') nor a setting (name, note, case)"
            )
        if not isinstance(values, list) or not values:
            raise LexiconError(f"{where}, {lang}: expected a non-empty list of terms")
        for n, term in enumerate(values, 1):
            if not isinstance(term, str) or not term.strip():
                raise LexiconError(f"{where}, {lang}, term {n}: expected a non-empty string")
            try:
                compile_term(term, exact=exact)
            except (ValueError, re.error) as exc:
                raise LexiconError(f"{where}, {lang}, term {n} {term!r}: {exc}") from None
        terms.setdefault(lang, []).extend(values)
    name = str(settings.get("name", known.name if known else key))
    return Group(key, name, exact, terms)


def load_lexicon(extra: Iterable[str | Path] = ()) -> Lexicon:
    """The shipped lexicon with `extra` files merged over it, in order, checked."""
    shipped = resources.files(__package__).joinpath(SHIPPED)
    groups: dict[str, Group] = {}
    for key, raw in _read(SHIPPED, shipped.read_text(encoding="utf-8")).items():
        groups[str(key)] = _group(SHIPPED, str(key), raw, None)
    sources = [SHIPPED]
    for path in extra:
        try:
            text = Path(path).read_text(encoding="utf-8")
        except OSError as exc:
            raise LexiconError(f"{path}: cannot read the lexicon file ({exc.strerror})") from None
        for key, raw in _read(path, text).items():
            if key not in groups:
                raise LexiconError(
                    f"{path}: unknown key {key!r}: an extra file adds terms to the keys of "
                    f"{SHIPPED} ({', '.join(groups)})"
                )
            groups[key] = _group(path, key, raw, groups[key])
        sources.append(str(path))
    return Lexicon(groups, tuple(sources))


def extra_files() -> list[str]:
    """The extra lexicon files named in the environment."""
    return [p for p in os.environ.get(ENV_FILES, "").split(os.pathsep) if p.strip()]


@lru_cache(maxsize=1)
def lexicon() -> Lexicon:
    """The process's lexicon (loaded once): the shipped file and the extra files."""
    return load_lexicon(extra_files())
