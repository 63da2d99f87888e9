"""Document classification: invoice, contract, report or other, with a confidence.

Deterministic weighted evidence: keywords and structures in English, German and French (and
some Spanish, Italian, Dutch, Polish), counted once per distinct cue, with a higher weight for
a cue in the document's head (its first lines, where the title is). The class scores go
through a softmax against a fixed score for "other", so a document with little evidence for
anything comes out as "other", and a close call gets a low confidence.
"""

from __future__ import annotations

import math
import re
from collections import defaultdict
from dataclasses import dataclass
from typing import cast

from bastion.pipeline.extract.alternation import named_alternation
from bastion.pipeline.model import DocumentType

__all__ = ["Classification", "classify"]

_I = re.IGNORECASE


@dataclass(frozen=True, slots=True)
class _Cue:
    source: str
    pattern: re.Pattern[str]
    weight: float  # per distinct match in the body
    head_weight: float = 0.0  # instead, when found in the head
    cap: int = 1  # distinct matches counted at most

    @property
    def word_start(self) -> bool:
        return not self.source.startswith("(?:^")


# Cues that start a word test that once, before their alternation: the scan is much faster.
_WORD_START = r"(?<![^\W\d_])(?=[^\W\d_])"


def _cue(pattern: str, weight: float, head: float = 0.0, cap: int = 1) -> _Cue:
    compiled = re.compile(
        pattern if pattern.startswith("(?:^") else f"{_WORD_START}(?:{pattern})", _I
    )
    return _Cue(pattern, compiled, weight, head, cap)


_INVOICE = (
    _cue(r"\b(?:tax\s+|commercial\s+|pro[\s-]?forma\s+)?invoice\b|\brechnung\b|\bfacture\b|"
         r"\bfactura\b|\bfattura\b|\bfaktura\b|\bfactuur\b", 1.5, 4.0),
    _cue(r"\binvoice\s*(?:no|nr|number|#|id|date)|rechnungs\s*-?\s*(?:nummer|nr|datum)|"
         r"rechnungsnr|n[°ºo]\.?\s*(?:de\s+)?(?:la\s+)?factur|num[ée]ro\s+de\s+facture|"
         r"date\s+de\s+(?:la\s+)?facture|numer\s+faktury|factuurnummer|numero\s+fattura", 3.0),
    _cue(r"\b(?:sub-?\s?total|total\s+due|amount\s+due|balance\s+due|grand\s+total|"
         r"total\s+amount|zwischensumme|gesamtbetrag|rechnungsbetrag|endbetrag|"
         r"total\s+ttc|total\s+ht|net\s+[àa]\s+payer|montant\s+ttc|importe\s+total|"
         r"do\s+zap[łl]aty|te\s+betalen|totale\s+fattura)\b", 1.5, cap=3),
    _cue(r"\b(?:vat|mwst|ust|tva|iva|gst|btw|sales\s+tax|umsatzsteuer|mehrwertsteuer)\b", 1.0),
    _cue(r"\biban\b|\bbic\b|\bswift\b|bank\s+details|bankverbindung|coordonn[ée]es\s+bancaires",
         1.0),
    _cue(r"\bdue\s+date\b|payment\s+terms|zahlbar|f[äa]llig|zahlungsziel|[ée]ch[ée]ance|"
         r"conditions\s+de\s+(?:paiement|r[èe]glement)|vencimiento|termin\s+p[łl]atno", 1.0),
    _cue(r"\b(?:qty|quantity|menge|anzahl|qt[ée]|quantit[ée]|cantidad|ilo[śs][ćc]|aantal)\b|"
         r"unit\s+price|einzelpreis|prix\s+unitaire|precio\s+unitario", 1.0),
    _cue(r"\b(?:bill(?:ed)?\s+to|sold\s+to|invoice\s+to|rechnungsempf[äa]nger|"
         r"factur[ée]\s+[àa]|nabywca|sprzedawca)\b", 1.0),
    _cue(r"\bcredit\s+note\b|\bgutschrift\b|\bavoir\b|\breceipt\b|\bquittung\b|\breçu\b|"
         r"\bnota\s+(?:di\s+)?credito\b|\bnota\s+de\s+(?:cr[ée]dito|abono)\b|\bfactura\s+"
         r"rectificativa\b|\bcredit(?:nota|factuur)\b|\bfaktura\s+korygująca\b", 1.0, 2.0),
)  # fmt: skip

_CONTRACT = (
    _cue(r"\b(?:agreement|contract|vertrag|vereinbarung|contrat|convention|contrato|contratto|"
         r"umowa|overeenkomst|memorandum\s+of\s+understanding|lease|addendum|"
         r"terms\s+and\s+conditions|statement\s+of\s+work|\w+vertrag)\b", 0.5, 4.0),
    _cue(r"\bthis\s+(?:agreement|contract)\b|\bdieser\s+vertrag\b|\bdiese\s+vereinbarung\b|"
         r"\ble\s+pr[ée]sent\s+contrat\b|\bla\s+pr[ée]sente\s+convention\b|"
         r"\bel\s+presente\s+contrato\b", 2.5),
    _cue(r"\bby\s+and\s+between\b|\bentered\s+into\b|\bzwischen\b.{0,200}\bund\b|"
         r"\bentre\s+les\s+soussign[ée]s\b|\bentre\b.{0,200}\bet\b", 1.5),
    _cue(r"\bthe\s+parties\b|\beach\s+party\b|\bvertragsparteien\b|\bvertragspartner\b|"
         r"\bles\s+parties\b|\blas\s+partes\b", 1.5),
    _cue(r"\bhereinafter\b|\bnachfolgend\b|\bim\s+folgenden\b|\bci-apr[èe]s\b|"
         r"\ben\s+adelante\b", 1.5),
    _cue(r"\bwhereas\b|\bwitnesseth\b|\bnow,?\s+therefore\b|\bin\s+witness\s+whereof\b|"
         r"\bpr[ée]ambule\b|\bpr[äa]ambel\b", 1.5),
    _cue(r"\bgoverning\s+law\b|\bgoverned\s+by\b|\bgerichtsstand\b|\banwendbares\s+recht\b|"
         r"\bdroit\s+applicable\b|\bloi\s+applicable\b|\bjuridiction\b|\bley\s+aplicable\b", 2.0),
    _cue(r"\bshall\b|\bverpflichtet\s+sich\b|\bs['\u2019]engage\s+[àa]\b", 0.6, cap=5),
    _cue(r"\btermination\b|\bk[üu]ndigung\b|\br[ée]siliation\b|\bconfidentiality\b|"
         r"\bvertraulichkeit\b|\bconfidentialit[ée]\b|\bindemnif|\bliability\b|\bhaftung\b|"
         r"\bresponsabilit[ée]\b|\bterm\s+of\s+this\b|\blaufzeit\b|\bdur[ée]e\b", 0.6, cap=5),
    _cue(r"(?:^|\n)\s*(?:§\s*\d|article\s+\d|art\.\s*\d|section\s+\d|clause\s+\d|artikel\s+\d)",
         1.0, cap=2),
    _cue(r"\bsignature\b|\bunterschrift\b|\bsigned\b|\bfait\s+[àa]\b|\bfirma\b|\bby:\s", 1.0),
)  # fmt: skip

_REPORT = (
    _cue(r"\breport\b|\bbericht\b|\brapport\b|\binforme\b|\brelazione\b|\braport\b|"
         r"\bwhite\s*paper\b|\bstudy\b|\bstudie\b|\b[ée]tude\b|\banalysis\b|\banalyse\b|"
         r"\breview\b|\bsurvey\b|\bassessment\b|\bjahresbericht\b|\bnewsletter\b", 0.4, 3.0),
    _cue(r"\bexecutive\s+summary\b|\bmanagement\s+summary\b|\babstract\b|\bzusammenfassung\b|"
         r"\bsynth[èe]se\b|\br[ée]sum[ée]\b|\bresumen\b", 2.0),
    _cue(r"\btable\s+of\s+contents\b|\binhaltsverzeichnis\b|\btable\s+des\s+mati[èe]res\b|"
         r"\bsommaire\b", 1.5),
    _cue(r"(?:^|\n)\s*(?:\d+(?:\.\d+)*\.?\s+)?(?:introduction|einleitung|einf[üu]hrung|"
         r"background|hintergrund|contexte|methodology|methods|methodik|m[ée]thodologie|"
         r"findings|results|ergebnisse|r[ée]sultats|discussion|diskussion|conclusions?|fazit|"
         r"schlussfolgerung(?:en)?|recommendations|empfehlungen|recommandations|outlook|"
         r"ausblick|perspectives|appendix|anhang|annexe|references|literatur|"
         r"bibliographie)\b", 1.0, cap=6),
    _cue(r"\b(?:figure|fig\.|table|abbildung|abb\.|tabelle|tableau)\s+\d", 0.7, cap=2),
    _cue(r"\bprepared\s+by\b|\bauthors?\b|\bverfasst\s+von\b|\berstellt\s+von\b|\bautor(?:en)?\b|"
         r"\bauteurs?\b|\br[ée]dig[ée]\s+par\b", 1.0),
    _cue(r"\b(?:we|this\s+report|this\s+study)\s+(?:find|found|show|recommend|analy[sz]e)|"
         r"\bin\s+this\s+(?:report|paper|study)\b|\bdieser\s+bericht\b|\bce\s+rapport\b", 1.5),
)  # fmt: skip

_OTHER_SCORE = 3.0
_TEMPERATURE = 1.6
_SENTENCE_RE = re.compile(r"[a-zäöüéèàç]{3,}[.!?](?:\s|$)")
_AMOUNT_RE = re.compile(r"\d[.,]\d{2}(?!\d)")


@dataclass(frozen=True, slots=True)
class Classification:
    document_type: DocumentType
    confidence: float
    scores: dict[str, float]


_CLASSES = (("invoice", _INVOICE), ("contract", _CONTRACT), ("report", _REPORT))
_ALL = [(name, cue) for name, cues in _CLASSES for cue in cues]
# One pass over the text finds every word-start cue: the cues in one alternation, specific ones
# first (a title word such as "invoice" is tried after "invoice number").
_SCANNED = sorted(
    (i for i, (_n, cue) in enumerate(_ALL) if cue.word_start),
    key=lambda i: _ALL[i][1].head_weight > 0,
)


def _lower_source(source: str) -> str:
    # For lower-cased text: no case folding and no word boundary before each alternative (the
    # word-start test comes once, first), so the engine rejects most alternatives at once.
    body = re.sub(r"(^|\||\(\?:)\\b", r"\1", source)
    assert not re.search(r"[A-Z]", re.sub(r"\\.", "", body)), f"upper case in {source!r}"
    return body


_COMBINED = named_alternation(
    _WORD_START, [(str(i), _lower_source(_ALL[i][1].source)) for i in _SCANNED]
)
# Precomputed once: the cues scanned one by one (line-start ones), and the head cues, matched
# case-sensitively on the lower-cased head like the combined scan (a few times faster). A head
# cue is searched without the word-start test in front, dispatched on its first letter (the
# engine would try that test at every position of the head: most of the cost of a search), and
# a place where it matches counts only where a word starts, which is the same.
_LINE_CUES = [
    (i, cue, re.compile(_lower_source(cue.source)))
    for i, (_n, cue) in enumerate(_ALL)
    if not cue.word_start
]
_HEAD_CUES = {
    i: named_alternation("", [(str(i), _lower_source(cue.source))]).pattern
    for i, (_n, cue) in enumerate(_ALL)
    if cue.head_weight and cue.word_start
}
_AT_WORD_START = re.compile(_WORD_START)


def _in_head(cue: re.Pattern[str], lower_head: str) -> bool:
    """Whether the head cue matches where a word starts in `lower_head`."""
    position = 0
    while (m := cue.search(lower_head, position)) is not None:
        if _AT_WORD_START.match(lower_head, m.start()):
            return True
        position = m.start() + 1
    return False


def _scores(head: str, body: str) -> dict[str, float]:
    distinct: dict[int, set[str]] = defaultdict(set)
    lower_body = body.lower()
    for m in _COMBINED.pattern.finditer(lower_body):
        index = _COMBINED.name(m)
        if index is not None:
            distinct[int(index)].add(m.group(0).strip())
    for i, cue, lower in _LINE_CUES:
        for m in lower.finditer(lower_body):
            distinct[i].add(m.group(0).strip())
            if len(distinct[i]) >= cue.cap:
                break
    scores = dict.fromkeys((name for name, _ in _CLASSES), 0.0)
    lower_head = head.lower()
    for i, (name, cue) in enumerate(_ALL):
        if cue.head_weight and (
            _in_head(_HEAD_CUES[i], lower_head) if i in _HEAD_CUES else cue.pattern.search(head)
        ):
            scores[name] += cue.head_weight
        else:
            scores[name] += cue.weight * min(cue.cap, len(distinct.get(i, ())))
    return scores


def classify(text: str, head: str = "") -> Classification:
    """Classify a document from its text; `head` is its first lines (where a title would be)."""
    body = text[:60000]
    head = head or "\n".join(body.splitlines()[:8])
    scores = _scores(head, body)
    amounts = len(_AMOUNT_RE.findall(body))
    scores["invoice"] += min(amounts, 12) * 0.12
    sentences = len(_SENTENCE_RE.findall(body))
    prose = min(sentences, 40) / 40
    scores["contract"] += 1.5 * prose
    scores["report"] += 1.5 * prose
    scores["invoice"] -= 1.0 * prose if amounts < 3 else 0.0
    scores["other"] = _OTHER_SCORE
    top = max(scores, key=lambda k: scores[k])
    exps = {k: math.exp((v - scores[top]) / _TEMPERATURE) for k, v in scores.items()}
    confidence = exps[top] / sum(exps.values())
    return Classification(cast(DocumentType, top), min(0.99, round(confidence, 4)), scores)
