"""A deterministic detector of prompt-injection and jailbreak phrasing in document text.

`detect(text)` returns the phrases it finds, in five families, in English, German and French:

- `instruction_override`: "ignore all previous instructions", "vergiss alle bisherigen
  Anweisungen", "ne tenez pas compte des consignes précédentes";
- `prompt_exfiltration`: "reveal your system prompt", "wie lautet dein Systemprompt";
- `role_hijack`: "you are now DAN", "act as an unrestricted AI", "bypass your safety filters";
- `tool_command`: "call the archive tool", "send the API keys to https://...";
- `hidden_marker`: chat-template tokens (`[INST]`, `<|im_start|>`, `<<SYS>>`), "### system" header
  lines, and text spelled in invisible Unicode tag characters.

Each phrasing has a fixed confidence: about 0.9 for wording that business text practically never
uses, less than `WARNING_CONFIDENCE` for wording an ordinary letter may use too ("please
disregard the above", "from now on, you will ...").

How it stays fast and linear on megabytes of text: the text is folded (`normalize.fold`:
invisible characters, look-alike letters and accents do not hide a phrase) and its set of words
is taken once; every phrasing starts with a lead word, and only the phrasings whose lead word
occurs are tried, each as a compiled expression anchored at that word's occurrences, with bounded
quantifiers only. Markers that are not words are looked for the same way, by a literal needle.
"""

from __future__ import annotations

import re
from collections import defaultdict
from dataclasses import dataclass
from functools import cache
from itertools import islice
from typing import Literal

from bastion.guardrails.normalize import fold

__all__ = ["FAMILIES", "WARNING_CONFIDENCE", "Detection", "Family", "detect"]

Family = Literal[
    "instruction_override", "prompt_exfiltration", "role_hijack", "tool_command", "hidden_marker"
]
FAMILIES: dict[Family, str] = {
    "instruction_override": "instruction override",
    "prompt_exfiltration": "system prompt exfiltration",
    "role_hijack": "role hijack / jailbreak",
    "tool_command": "tool or exfiltration command",
    "hidden_marker": "hidden instruction marker",
}
# Detections at or above this confidence are worth a reviewer's look; those below are kept for a
# later, context-aware stage.
WARNING_CONFIDENCE = 0.7


@dataclass(frozen=True, slots=True)
class Detection:
    """A phrase in the input text: its span (offsets into the input), family and confidence."""

    start: int
    end: int
    family: Family
    confidence: float


# In the phrasings a plain space stands for `_GAP`: whitespace (line breaks too) or the joiners
# used to defeat naive matching (ignore_all-previous), at most six characters; a space followed
# by "?" is an optional gap ("system ?prompt" is also "systemprompt"), and "'" is either
# apostrophe. Lead words are lowercase ASCII, separated by "|".
_GAP = r"[\s_*~-]{1,6}"
_URL = r"(?:(?:https?|ftp)://|www\.)[^\s<>\"]{1,200}"
_TARGET = rf"(?:{_URL}|[\w.+-]{{1,64}}@[\w-]{{1,63}}(?:\.[\w-]{{1,63}}){{1,4}})"

# --- instruction override --------------------------------------------------------------------
_EN_IGNORE = "ignore|disregard|forget|override|bypass|discard|abandon"
_EN_ALL = r"(?:(?:all|any|each|every) (?:of )?)?"
_EN_EARLIER = (
    r"(?:previous|prior|preceding|above|earlier|former|foregoing|original|initial|old|system|"
    r"developer|hidden)"
)
# Said of a model's instructions; "disregard the previous / my earlier / old instructions" is
# also how a letter corrects itself.
_EN_UPSTREAM = r"(?:previous|prior|preceding|above|foregoing|system|developer|hidden)"
_EN_THE_UPSTREAM = r"(?:the|these|those) (?:above|preceding|foregoing|system|developer|hidden)"
_EN_MINE = (
    r"(?:(?:the|these|those|this|that|its|their|such|my|our) )?(?:previous|prior|earlier|"
    r"former|original|initial|old) "
)
_EN_RULES = (
    r"(?:instructions?|prompts?|directives?|guidelines|guidance|commands|rules|constraints|"
    r"restrictions|programming|context|system prompt|training)"
)
# Addressed as "du" (no business letter does) or as "Sie" (a letter correcting itself may).
_DE_IGNORE_DU = (
    "ignoriere|ignorier|ignoriert|vergiss|vergesst|missachte|missachtet|verwirf|ubergehe|ubergeh|"
    "umgehe|umgeh"
)
_DE_IGNORE_SIE = "ignorieren|vergessen|missachten|verwerfen|ubergehen|umgehen"
_DE_ALL = r"(?:alle|samtliche|jegliche)"
_DE_EARLIER_WORDS = (
    "vorherigen|vorigen|bisherigen|obigen|fruheren|vorangegangenen|vorstehenden|"
    "vorhergehenden|alten|ursprunglichen|gegebenen|bestehenden|aktuellen"
)
_DE_EARLIER = f"(?:{_DE_EARLIER_WORDS})"
_DE_RULES = (
    r"(?:anweisungen|instruktionen|befehle|regeln|vorgaben|richtlinien|anordnungen|prompts?|"
    r"systemanweisungen|systemprompts?|einschrankungen|beschrankungen)"
)
_DE_DROP = r"(?:zu )?(?:ignorieren|vergessen|missachten)\b"
# Addressed as "tu" (no business letter does) or as "vous" (a letter correcting itself may).
_FR_IGNORE_TU = (
    "ignore|ignores|oublie|oublies|neglige|contourne|outrepasse|ne tiens pas compte|"
    "ne tiens plus compte|fais abstraction|passe outre"
)
_FR_IGNORE_VOUS = (
    "ignorer|ignorez|oublier|oubliez|negliger|negligez|contourner|contournez|outrepasser|"
    "outrepassez|ne tenez pas compte|ne tenez plus compte|faites abstraction|passez outre"
)
_FR_RULES = (
    r"(?:instructions?|consignes?|directives?|regles|ordres|prompts?|commandes|indications|"
    r"contraintes|restrictions)"
)
_FR_EARLIER = (
    r"(?:precedentes?|anterieures?|ci dessus|d'avant|d'origine|initiales?|originales?|"
    r"du systeme|systeme|donnees|recues)"
)
_FR_ALL = r"(?:de |des |du |d')?tou(?:te)?s "
_FR_THE = r"(?:(?:de |des |du |d')?(?:les|tes|vos|ces|des) )?"
_FR_OBJECT = rf"(?:{_FR_RULES} {_FR_EARLIER}|(?:precedentes|anciennes) {_FR_RULES})\b"

# --- system prompt exfiltration ----------------------------------------------------------------
_EN_SHOW = (
    "reveal|show|print|display|output|repeat|recite|dump|leak|disclose|expose|share|tell|give|"
    "write|type|spell|paste|send|copy|return"
)
_EN_TO_ME = r"(?: (?:me|us))?(?: out)?"
_EN_WHOLE = r"(?:(?:full|entire|complete|exact|verbatim) )?"
_DE_SHOW = (
    "zeig|zeige|zeigen|gib|geben|nenne|nennen|verrate|verraten|wiederhole|wiederholen|drucke|"
    "schreibe|schreib"
)
_DE_SYSTEM_PROMPT = (
    r"(?:(?:vollstandigen|kompletten|genauen|ganzen) )?(?:system ?prompt|system ?nachricht|"
    r"system ?anweisungen|anfangsanweisungen|(?:ursprunglichen|geheimen|versteckten|initialen) "
    r"anweisungen)\b"
)
_FR_SHOW = (
    "revele|revelez|montre|montrez|affiche|affichez|donne|donnez|repete|repetez|ecris|ecrivez|"
    "imprime|imprimez|divulgue|divulguez|communique|communiquez|recite|recitez|partage|partagez"
)
_FR_YOUR = r"(?:ton|ta|tes|votre|vos|le|la|les)"
_FR_SYSTEM_PROMPT = (
    r"(?:prompt|invite|message|instructions?|consignes) (?:systeme|initiales?|d'origine|"
    r"originales?|cachees?|secretes?)\b"
)

# --- role hijack -----------------------------------------------------------------------------
_UNBOUND = (
    r"(?:unrestricted|unfiltered|uncensored|jailbroken|unchained|unaligned|unethical|amoral|"
    r"evil|rogue|lawless)"
)
_AI = r"(?:ai|assistant|model|chatbot|bot|llm|language model|version|persona|entity|gpt)\b"
_EN_BECOME = (
    "you are|you're|you will be|act as|acting as|pretend to be|pretend you are|roleplay as|"
    "role-play as|behave like|become"
)
_EN_NOW = r" (?:now |henceforth |from now on )?"
_DE_NOW = r" (?:jetzt|nun|ab jetzt|ab sofort|von nun an) "
_FR_NOW = r" (?:maintenant|desormais|a present|dorenavant) "

# --- tool commands ---------------------------------------------------------------------------
_EN_SEND = (
    "send|forward|email|mail|post|upload|transmit|exfiltrate|leak|copy|transfer|submit|share|report"
)
_EN_SECRETS = (
    r"(?:credentials|passwords?|passphrases?|api ?keys?|access ?tokens?|auth(?:entication)? "
    r"?tokens?|session ?tokens?|secrets?|private ?keys?|system ?prompt|login details|"
    r"card ?numbers?|credit ?card(?: numbers?)?|social security numbers?)\b"
)
_EN_THIRD_PARTY = (
    r" (?:(?:the|all|every|each) )?(?:user|customer|client|employee|patient|account holder)"
    r"(?:'s|s'|s)? (?:data|details|information|records|ibans?|bank details|account numbers?|"
    r"addresses|e-?mails|contacts|files)\b[^\n]{0,80}?\b(?:to|at|into|via) "
)


@dataclass(frozen=True, slots=True)
class _Phrasing:
    family: Family
    confidence: float
    leads: tuple[str, ...]  # the words that start it (for a marker: literal needles)
    rest: str  # what follows a lead (for a marker: the whole expression)
    cased: str = ""  # the match ends with this word, in this very case
    marker: bool = False  # searched for where a needle occurs, not at a lead word


def _p(
    family: Family, confidence: float, leads: str, *rests: str, cased: str = ""
) -> list[_Phrasing]:
    """Phrasings made of one of `leads` followed by one of `rests`."""
    words = tuple(leads.split("|"))
    return [_Phrasing(family, confidence, words, rest, cased) for rest in rests]


def _marker(confidence: float, needles: str, pattern: str) -> _Phrasing:
    """A marker that is not a word: searched for where one of `needles` occurs."""
    return _Phrasing("hidden_marker", confidence, tuple(needles.split("|")), pattern, marker=True)


# fmt: off
_PHRASINGS: list[_Phrasing] = [
    # --- instruction override ----------------------------------------------------------------
    *_p("instruction_override", 0.9, _EN_IGNORE,
        rf" (?:all|any|each|every) (?:of )?(?:(?:the|your) )?{_EN_EARLIER} (?:{_EN_EARLIER} )?"
        rf"{_EN_RULES}\b",
        rf" (?:your (?:{_EN_EARLIER} )?|{_EN_THE_UPSTREAM} |{_EN_UPSTREAM} (?:{_EN_EARLIER} )?)"
        rf"{_EN_RULES}\b"),
    *_p("instruction_override", 0.9, "do not|don't|stop|cease",
        rf" (?:follow|following|obey|obeying) {_EN_ALL}(?:the {_EN_EARLIER}|your(?: "
        rf"{_EN_EARLIER})?) {_EN_RULES}\b"),
    *_p("instruction_override", 0.9, _DE_IGNORE_DU,
        rf" (?:(?:du|bitte) )?(?:{_DE_ALL} )?(?:(?:die|deine|eure|den|der|diese) )?"
        rf"{_DE_EARLIER} {_DE_RULES}\b"),
    *_p("instruction_override", 0.9, _DE_IGNORE_SIE,
        rf"(?: sie)?(?: bitte)? {_DE_ALL} (?:(?:die|ihre|diese) )?{_DE_EARLIER} {_DE_RULES}\b"),
    *_p("instruction_override", 0.9, "alle|samtliche|deine|eure",
        rf"(?: (?:deine|eure|die))?(?: {_DE_EARLIER})? {_DE_RULES} {_DE_DROP}"),
    *_p("instruction_override", 0.9, "befolge|befolgen|folge|folgen",
        rf"(?: sie)? (?:nicht mehr|keine|nicht) (?:(?:den|die) {_DE_EARLIER}|(?:deine|ihre)"
        rf"(?: {_DE_EARLIER})?) {_DE_RULES}\b"),
    *_p("instruction_override", 0.9, _FR_IGNORE_TU, rf" (?:{_FR_ALL})?{_FR_THE}{_FR_OBJECT}"),
    *_p("instruction_override", 0.9, _FR_IGNORE_VOUS, rf" {_FR_ALL}{_FR_THE}{_FR_OBJECT}"),
    *_p("instruction_override", 0.8, _EN_IGNORE,
        r" (?:all|everything) (?:(?:that|which) )?(?:you (?:were|have been) (?:told|given|"
        r"taught)|(?:was|has been|is) (?:said|written|stated|given) (?:above|before|previously|"
        r"earlier|so far)|you know)\b"),
    *_p("instruction_override", 0.8, "your",
        r" (?:real|actual|true) (?:instructions|task|orders) (?:are|is)\b"),
    *_p("instruction_override", 0.8, "vergiss|vergesst|vergessen",
        r"(?: sie)? alles,? (?:was|bisherige|vorherige|obige|zuvor|bisher)\b"),
    *_p("instruction_override", 0.8, "oublie|oublier|oubliez", r" tout ce (?:que|qu|qui)\b"),
    # an ordinary letter says these too
    *_p("instruction_override", 0.6, _EN_IGNORE, rf" {_EN_MINE}{_EN_RULES}\b"),
    *_p("instruction_override", 0.6, _DE_IGNORE_SIE,
        rf"(?: sie)?(?: bitte)? (?:(?:die|ihre|den|der|diese) )?{_DE_EARLIER} {_DE_RULES}\b"),
    *_p("instruction_override", 0.6, _DE_EARLIER_WORDS, rf" {_DE_RULES} {_DE_DROP}"),
    *_p("instruction_override", 0.6, _FR_IGNORE_VOUS, rf" {_FR_THE}{_FR_OBJECT}"),
    *_p("instruction_override", 0.5, _EN_IGNORE,
        r" (?:(?:all|everything) (?:of )?)?(?:the )?(?:above|before)\b"),
    *_p("instruction_override", 0.5, "your", r" new (?:instructions|task|orders) (?:are|is)\b"),
    *_p("instruction_override", 0.5, "new", r" instructions ?:"),
    # --- system prompt exfiltration ----------------------------------------------------------
    *_p("prompt_exfiltration", 0.9, _EN_SHOW,
        rf"{_EN_TO_ME} (?:your|the|its) {_EN_WHOLE}(?:system ?prompt|pre ?prompt|(?:developer|"
        r"hidden|secret|internal) (?:prompt|instructions))\b"),
    *_p("prompt_exfiltration", 0.9, _DE_SHOW,
        r"(?: (?:mir|uns))?(?: sie)?(?: (?:mir|uns))? (?:deinen|deine|dein|ihren|ihre|ihr|den|"
        rf"die|das) {_DE_SYSTEM_PROMPT}"),
    *_p("prompt_exfiltration", 0.9, _FR_SHOW,
        rf"(?: (?:moi|nous))? {_FR_YOUR} {_FR_SYSTEM_PROMPT}"),
    *_p("prompt_exfiltration", 0.85, "what|which",
        r" (?:is|are|was|were) (?:your|the) (?:system prompt|system message|(?:initial|original|"
        r"hidden|secret|system) instructions)\b"),
    *_p("prompt_exfiltration", 0.85, _EN_SHOW,
        rf"{_EN_TO_ME} your {_EN_WHOLE}(?:system|initial|original) (?:message|instructions)\b",
        rf"{_EN_TO_ME} (?:the|your) {_EN_WHOLE}(?:prompt|instructions) (?:that )?you (?:were|"
        r"have been) (?:given|told|programmed with)\b"),
    *_p("prompt_exfiltration", 0.85, "wie lautet|was ist|was sind|was steht in",
        rf" (?:dein|deine|ihr|ihre|der|die) {_DE_SYSTEM_PROMPT}"),
    *_p("prompt_exfiltration", 0.85, "quel|quelle|quels|quelles",
        rf" (?:est|sont) {_FR_YOUR} {_FR_SYSTEM_PROMPT}"),
    *_p("prompt_exfiltration", 0.85, "repeat|print|output|recite|copy",
        r" (?:all |everything |the (?:full |entire )?(?:text|words|content|conversation) )"
        r"(?:above|before|so far)[^\n]{0,40}?\b(?:verbatim|word for word|starting with|"
        r"in a code block)\b"),
    *_p("prompt_exfiltration", 0.6, _EN_SHOW,
        r"(?: (?:me|us))? your (?:instructions|prompt|rules|guidelines|configuration)\b"),
    # --- role hijack -------------------------------------------------------------------------
    *_p("role_hijack", 0.9, _EN_BECOME, rf"{_EN_NOW}(?:(?:a|an|the) )?{_UNBOUND} {_AI}"),
    *_p("role_hijack", 0.9, _EN_BECOME, rf"{_EN_NOW}dan\b", cased="DAN"),
    *_p("role_hijack", 0.9, "you are",
        rf" now (?:in )?(?:god|jailbreak|jailbroken|dan|{_UNBOUND}) mode\b"),
    *_p("role_hijack", 0.9, "du bist",
        rf"{_DE_NOW}(?:(?:ein|eine|der|die) )?(?:uneingeschrankte?r?|ungefilterte?r?|"
        r"unzensierte?r?|im (?:entwickler|wartungs|debug|gott|admin|jailbreak)modus)\b"),
    *_p("role_hijack", 0.9, "du bist", rf"{_DE_NOW}dan\b", cased="DAN"),
    *_p("role_hijack", 0.9, "tu es|vous etes",
        rf"{_FR_NOW}(?:(?:un|une|le|la|en) )?(?:(?:ia|assistant|modele|chatbot) (?:sans "
        r"(?:restrictions?|limites?|filtres?|censure)|non censure|libere)|mode (?:developpeur|"
        r"maintenance|debogage|dieu|jailbreak|admin))\b"),
    *_p("role_hijack", 0.9, "tu es|vous etes", rf"{_FR_NOW}dan\b", cased="DAN"),
    *_p("role_hijack", 0.85, "enable|activate|enter|switch to|turn on",
        rf" (?:the )?(?:god|jailbreak|dan|{_UNBOUND}) mode\b"),
    *_p("role_hijack", 0.85, "you are|you're",
        r" no longer (?:an ai|a language model|an assistant|(?:bound|restricted|limited|"
        r"constrained) by (?:any |your |the )?(?:guidelines|content polic(?:y|ies)|safety|ethics|"
        r"ethical|filters|programming|training|openai|anthropic))\b"),
    *_p("role_hijack", 0.85, "handle|verhalte dich|agiere|tu so",
        r" (?:als|wie) (?:ob du )?(?:(?:ein|eine) )?(?:uneingeschrankte|ungefilterte|unzensierte|"
        r"bose) (?:ki|assistent|modell|version)\b"),
    *_p("role_hijack", 0.85, "jailbreakmodus|danmodus|gottmodus",
        r" (?:aktiviert|an|eingeschaltet)\b"),
    *_p("role_hijack", 0.85, "agis|agissez|comporte toi|comportez vous|fais comme si tu etais",
        r" (?:comme|en tant que) (?:(?:un|une) )?(?:ia|assistant|modele|chatbot) (?:sans "
        r"(?:restrictions|limites|filtres|censure)|non censure)\b"),
    *_p("role_hijack", 0.75, "you are",
        r" now (?:in )?(?:developer|dev|debug|maintenance|admin|sudo|root) mode\b"),
    *_p("role_hijack", 0.75, "bypass|disable|ignore|circumvent|turn off|deactivate|remove",
        r"(?: all)? your (?:(?:safety|content|ethical) (?:filters|guidelines|restrictions|"
        r"safeguards)|guardrails|programming|alignment|content polic(?:y|ies))\b"),
    *_p("role_hijack", 0.6, "without|with no|free of|free from|no",
        r"(?: any)? (?:ethical|moral) (?:restrictions|guidelines|constraints|limits|limitations|"
        r"filters|boundaries)\b"),
    *_p("role_hijack", 0.6, "ohne|keine",
        r"(?: (?:jegliche|alle))? (?:ethischen|moralischen) (?:einschrankungen|grenzen|regeln|"
        r"richtlinien|filter)\b"),
    *_p("role_hijack", 0.6, "sans",
        r"(?: (?:aucune|aucun))? (?:restrictions?|limites?|filtres?|contraintes?) "
        r"(?:ethiques?|morales?)\b"),
    *_p("role_hijack", 0.75, "do anything now", r"\b"),
    # an ordinary letter says these too
    *_p("role_hijack", 0.5, "from now on", r",? you (?:are|will|must|shall)\b"),
    *_p("role_hijack", 0.5, "you have no",
        r" (?:restrictions|limits|limitations|rules|guidelines|filters|boundaries)\b"),
    *_p("role_hijack", 0.5, "developer mode", r" (?:enabled|activated|on)\b"),
    # --- tool commands -----------------------------------------------------------------------
    *_p("tool_command", 0.85, _EN_SEND,
        r" (?:(?:all|the|this|these|your|their|its|any) )?(?:(?:full|complete|entire|private|"
        rf"personal|confidential|sensitive|secret|raw) )?{_EN_SECRETS}[^\n]{{0,80}}?\b(?:to|at|"
        rf"into|via) {_TARGET}"),
    *_p("tool_command", 0.85,
        "sende|senden|schicke|schick|schicken|ubermittle|ubermitteln|leite|leiten|lade|laden",
        r"(?: sie)? (?:(?:alle|die|den|das|deine|ihre) )?(?:(?:kunden|benutzer|nutzer|personen)"
        r"daten|zugangsdaten|passw(?:o|oe)rt(?:er)?|kennw(?:o|oe)rt(?:er)?|api ?schlussel|"
        rf"tokens?|systemprompt|gesprachsverlauf)\b[^\n]{{0,80}}?\b(?:an|nach|zu|auf) {_TARGET}"),
    *_p("tool_command", 0.85,
        "envoie|envoyez|envoyer|transmets|transmettez|transmettre|transfere|transferez|"
        "transferer|partage|partagez|partager|exporte|exportez|exporter",
        r" (?:(?:toutes|tous) )?(?:(?:les|tes|vos|la|le) )?(?:mots de passe|identifiants|"
        r"cles api|jetons|secrets?|donnees (?:des )?clients?|donnees personnelles|iban des "
        r"clients|prompt systeme|historique de (?:la )?conversation)\b[^\n]{0,80}?\b(?:a|vers|"
        rf"sur|au) {_TARGET}"),
    *_p("tool_command", 0.8, "call|invoke|trigger",
        r" (?:the |your )?[\w-]{1,40} (?:tool|plugin|function call)\b"),
    *_p("tool_command", 0.8, "rufe|ruf|rufen",
        r"(?: sie)? (?:das |den |die )?[\w-]{1,40}(?: )?(?:tool|werkzeug|plugin) auf\b"),
    *_p("tool_command", 0.8, "appelle|appelez|appeler|invoque|invoquez|declenche|declenchez",
        r" l'outil\b"),
    # an ordinary letter may say these too
    *_p("tool_command", 0.6, _EN_SEND, _EN_THIRD_PARTY + _TARGET),
    *_p("tool_command", 0.6, "call|invoke", r" [\w.]{1,40}\("),
    *_p("tool_command", 0.6, "curl|wget", r" (?:-{1,2}[\w-]{1,20} ){0,4}https?://"),
    # --- hidden instruction markers ----------------------------------------------------------
    _marker(0.95, "<|",
            r"<\|(?:im_start|im_end|im_sep|system|user|assistant|endoftext|eot_id|"
            r"start_header_id|end_header_id|begin_of_text|end_of_text)\|>"),
    _marker(0.95, "inst]", r"\[/?inst\]"),
    _marker(0.95, "sys>>", r"<</?sys>>"),
    _marker(0.8, "<|", r"<\|[a-z_]{2,30}\|>"),
    _marker(0.8, "##",  # a header line of its own, "### System"
            r"##(?<![^\n\t\x20]##)#{0,2}[\t\x20]{0,4}(?:system|instructions?|assistant|user|"
            r"human|new\x20instructions|system\x20prompt|response)[\t\x20]{0,4}:?[\t\x20]{0,8}"
            r"(?=\n|$)"),
    _marker(0.8, "](",  # a markdown image whose address carries data out
            r"!\[[^\]\n]{0,100}\]\(https?://[^)\s]{1,300}[?&][\w-]{1,40}="),
    _marker(0.7, "system>|sys>", r"</?(?:system|system_prompt|sys)>"),
    _marker(0.6, "instruction>|instructions>", r"</?instructions?>"),
    *_p("hidden_marker", 0.8, "system|assistant",
        r"[\t\x20]{0,4}:[\t\x20]{0,4}(?:you\x20are|ignore|new\x20instructions|override)\b"),
    *_p("hidden_marker", 0.8, "begin|start|end",
        r" (?:of )?(?:the )?(?:system|hidden|secret|new) (?:prompt|instructions|message)\b"),
]
# fmt: on

# Text written in Unicode tag characters is invisible on the page but read by a language model.
_TAG_RUN = re.compile("[\U000e0020-\U000e007e]{4,}")
_TAG_CONFIDENCE = 0.9
# Lowercase ASCII letters and digits stay, every other byte becomes a space.
_WORD_BYTES = bytes(c if chr(c).isascii() and chr(c).isalnum() else 32 for c in range(256))


def _expression(pattern: str) -> bytes:
    """A phrasing as a bytes expression over the folded text in lowercase ASCII, where every
    other character is "?" (so the apostrophe class takes the typographic one as "?")."""
    spaced = pattern.replace(" ?", f"(?:{_GAP})?").replace(" ", _GAP).replace("'", "['?]")
    return spaced.encode("ascii")


def _lead_word(lead: str) -> bytes:
    return re.split(r"[^a-z0-9]", lead)[0].encode()


@cache
def _index() -> tuple[dict[bytes, tuple[int, ...]], tuple[int, ...]]:
    """Lead word -> the phrasings that start with it (strongest first); and the markers."""
    by_word: defaultdict[bytes, list[int]] = defaultdict(list)
    markers: list[int] = []
    for number, phrasing in enumerate(_PHRASINGS):
        if phrasing.marker:
            markers.append(number)
            continue
        for word in dict.fromkeys(_lead_word(lead) for lead in phrasing.leads):
            by_word[word].append(number)
    rank = {number: -p.confidence for number, p in enumerate(_PHRASINGS)}
    return {w: tuple(sorted(n, key=rank.__getitem__)) for w, n in by_word.items()}, tuple(markers)


@cache
def _word_expression(word: bytes) -> re.Pattern[bytes]:
    """The phrasings that start with `word`, as one expression that starts with the word
    itself (so the regex engine skips from one occurrence to the next); the group `p<number>`
    names the phrasing that matched."""
    branches = []
    for number in _index()[0][word]:
        phrasing = _PHRASINGS[number]
        tails = [lead[len(word) :] for lead in phrasing.leads if _lead_word(lead) == word]
        lead = "(?:" + "|".join(tails) + ")"
        branches.append(b"(?P<p%d>%s%s)" % (number, _expression(lead), _expression(phrasing.rest)))
    boundary = b"(?<![a-z0-9]" + word + b")"  # no letter or digit before the word
    return re.compile(word + boundary + b"(?:" + b"|".join(branches) + b")")


@cache
def _marker_expression(number: int) -> re.Pattern[bytes]:
    return re.compile(b"(?P<p%d>%s)" % (number, _expression(_PHRASINGS[number].rest)))


def detect(text: str, *, limit: int = 1000) -> list[Detection]:
    """The prompt-attack phrases in `text`, in order of their start, at most `limit` of them.

    A phrase lying inside an earlier phrase found with at least its confidence is not repeated.
    """
    folded = fold(text)
    # The folded text in lowercase ASCII, one byte per character ("?" for any other).
    data = folded.text.encode("ascii", "replace").lower()
    by_word, markers = _index()
    words = by_word.keys() & set(data.translate(_WORD_BYTES).split())
    expressions = [_word_expression(word) for word in words] + [
        _marker_expression(n)
        for n in markers
        if any(needle.encode() in data for needle in _PHRASINGS[n].leads)
    ]
    found: list[tuple[int, int, _Phrasing]] = []
    for expression in expressions:
        # Matches come in order: past `limit` of them, none can be among the first `limit`.
        for match in islice(expression.finditer(data), limit):
            phrasing = _PHRASINGS[int((match.lastgroup or "p")[1:])]
            start, end = match.span()
            if phrasing.cased and folded.text[end - len(phrasing.cased) : end] != phrasing.cased:
                continue
            found.append((start, end, phrasing))
    found.sort(key=lambda item: (item[0], -item[2].confidence))
    detections: list[Detection] = []
    last_end, last_confidence = -1, 0.0
    for start, end, phrasing in found:
        if end <= last_end and phrasing.confidence <= last_confidence:
            continue
        last_end, last_confidence = end, phrasing.confidence
        detections.append(Detection(*folded.span(start, end), phrasing.family, phrasing.confidence))
        if len(detections) >= limit:
            break
    if folded.revealed:
        tags = _TAG_RUN.finditer(text)
        detections += [Detection(*m.span(), "hidden_marker", _TAG_CONFIDENCE) for m in tags]
        detections.sort(key=lambda detection: detection.start)
    return detections[:limit]
