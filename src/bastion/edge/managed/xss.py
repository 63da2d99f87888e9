"""Cross-site scripting detection (CRS 941 family).

Over the decoded (percent, HTML entity, escape) lower-cased variants of a value:

* libinjection's HTML5 tokenizer, which flags tags, attributes and URLs that run script;
* a grammar of the shapes that carry script into a page: script-capable tags (``<script``,
  ``<iframe``, ``<svg``, namespaced ``<x:script`` ...), DOM event-handler attributes
  (``onerror=``, ``onmouseover=`` ...), script URL schemes (``javascript:``, ``vbscript:``,
  ``data:text/html``) even when split by whitespace or control characters, CSS expressions and
  imports, XML entity and namespace tricks, and the JavaScript sinks payloads end in
  (``alert(``, ``document.cookie``, ``window["..."]``, JSFuck bracket soup).
"""

from __future__ import annotations

import re

import libinjection

from bastion.edge.managed._grammar import first_match, rules

__all__ = ["detect"]

_PREFILTER = re.compile(
    r"[<>\[\]`(\xbc\xbe]|\bon\w+\s*=|script|:|@import|expression|\bdocument\b|window|location"
    r"|!entity|formaction|\+!"
)
_SEVEN_BIT = re.compile(r"[\x80-\xff]")
_SPACED_TAG = re.compile(r"<\s*(?:\w\s+){2,}\w")
_JS_COMMENT = re.compile(r"/\*.{0,200}?\*/")
_BRACKET_RUN = re.compile(r"[\[\]()!+]{5,}")
_EVENTS = (
    r"abort|after\w*|animation\w+|auxclick|before\w+|begin|blur|bounce|can\w+|change|click"
    r"|close|context\w*|copy|cue\w*|cut|dbl\w+|drag\w*|drop|duration\w+|emptied|end|ended"
    r"|error|finish|focus\w*|form\w+|fullscreen\w*|gesture\w+|hashchange|input|invalid|key\w+"
    r"|load\w*|lose\w+|message|mouse\w+|move\w*|offline|online|open|page\w+|paste|pause|play"
    r"|playing|pointer\w+|popstate|progress|propertychange|ratechange|readystate\w*|repeat"
    r"|reset|resize|row\w+|scroll\w*|search|seek\w*|select\w*|show|stalled|start|storage"
    r"|submit|suspend|timeupdate|toggle|touch\w+|transition\w+|unload|volume\w+|waiting"
    r"|webkit\w+|wheel|zoom|data\w+|help|filter\w+|moz\w+|ms\w+|beforeunload|content\w+"
)
_GRAMMAR: tuple[tuple[str, re.Pattern[str]], ...] = (
    (
        "script_tag",
        re.compile(
            r"<\??\s*/?\s*(?:[\w-]*:\s*)?(?:script|iframe|frame|frameset|object|embed|applet|svg|math"
            r"|meta|link|style|base|form|dialog|isindex|xml|xss|layer|ilayer|bgsound|marquee"
            r"|template|portal|animate|set|handler|listener|vmlframe)\b|<\??\s*import"
            r"|<\s*(?:img|image|video|audio|source|input|body|table|td|div|a|x|p|iframe|details"
            r"|select|textarea|keygen|button|html|svg|object)\b[^>]{0,300}?[\s/\"'](?:on[a-z]+|src"
            r"|href|data|formaction|action|background|dynsrc|lowsrc|style|poster|xlink:href)"
            r"\s*="
        ),
    ),
    (
        "event_handler",
        re.compile(r"(?:^|[\s\"'`;/0-9=,(<])on(?:" + _EVENTS + r")\s*=|\bformaction\s*=", re.ASCII),
    ),
    (
        "script_url",
        re.compile(
            r"(?:j\W*a\W*v\W*a|v\W*b)\W*s\W*c\W*r\W*i\W*p\W*t\W*:"
            r"|\bdata\s*:\s*(?:text/html|text/xml|image/svg|application/(?:x-)?(?:xhtml|javascript"
            r"|ecmascript)|[^,]{0,100};\s*base64)|\bdata\s*:\s*,\s*<|\blivescript\s*:|\bmocha\s*:"
        ),
    ),
    (
        "css_injection",
        re.compile(
            r"\bexpression\s*\(|-moz-binding|behavio(?:u)?r\s*:\s*url|@import\b|\burl\s*\(\s*"
            r"['\"]?\s*(?:javascript|vbscript)\b|\burl\s*\(\s*['\"]?\s*data\s*:|<\s*style\b"
        ),
    ),
    (
        "markup_injection",
        re.compile(
            r"<!\s*(?:entity|doctype|\[cdata\[)|<\?\s*(?:import|xml-stylesheet)|\bxmlns(?::\w+)?\s*="
            r"|!entity\b|<\s*!--\s*#|http-equiv\s*=|\bsrcdoc\s*="
            r"|<\s*\w+[\s/]+(?:\w+\s*=\s*['\"]?[^>]{0,300})?\bstyle\s*=[^>]{0,300}(?:expression|url\()"
        ),
    ),
    (
        "javascript_sink",
        re.compile(
            r"\b(?:alert|prompt|confirm|eval|settimeout|setinterval|execscript|fromcharcode"
            r"|atob|btoa|unescape)\s*(?:\(|`)|\bdocument\s*(?:\.|\[)\s*['\"]?\s*(?:cookie|write"
            r"|domain|location|body|queryselector\w*|getelementsby\w+|getelementbyid|createelement"
            r"|forms|images|head|documentelement|defaultview)|\bwindow\s*(?:\.|\[)\s*['\"]?\s*(?:location|name|open"
            r"|alert|eval|document|top|parent|opener)\b|\(\s*document\s*\)\s*\["
            r"|\b(?:window|top|self|parent|this|globalthis|frames)\s*\[\s*['\"`]"
            r"|\blocation\s*(?:\.\s*(?:href|hash|search|replace|assign)\b|\s*=\s*['\"]?"
            r"(?:java|data|http))|\.innerhtml\s*=|constructor\s*\(|\bnew\s+function\s*\("
            r"|\breflect\s*\.\s*\w+|\w\.call\s*`"
        ),
    ),
    ("jsfuck", re.compile(r"(?:\[\s*\]|!\s*\[\s*\]|\(\s*!\s*\[\s*\]){3}|\[\]\[\(")),
)
_NEEDS: dict[str, tuple[str, ...]] = {
    "script_tag": ("<",),
    "event_handler": ("=",),
    "script_url": (":",),
    "css_injection": ("(", "-moz-binding", "@import", "<", "behavio"),
    "markup_injection": ("<", "xmlns", "!entity", "http-equiv", "srcdoc"),
    "javascript_sink": (
        "(",
        "`",
        "document",
        "window",
        "location",
        "reflect",
        "innerhtml",
        "self",
        "top",
        "this",
        "parent",
        "frames",
        "globalthis",
    ),
    "jsfuck": ("[",),
}
_RULES = rules(_GRAMMAR, _NEEDS)


def _extra_forms(form: str) -> list[str]:
    """Spellings a browser or a lax decoder would still read as markup or script."""
    extra = []
    if "\xbc" in form or "\xbe" in form:
        # 7-bit decoders drop the high bit: U+00BC/U+00BE become '<' and '>'.
        extra.append(_SEVEN_BIT.sub(lambda m: chr(ord(m.group(0)) & 0x7F), form))
    if "<" in form and _SPACED_TAG.search(form):
        extra.append(_SPACED_TAG.sub(lambda m: re.sub(r"\s+", "", m.group(0)), form))
    if "/*" in form:
        extra.append(_JS_COMMENT.sub("", form))
    return extra


def _jsfuck(form: str) -> bool:
    """JavaScript written with brackets, parentheses, '!' and '+' only (JSFuck)."""
    return any("[]" in run and ("+" in run or "!!" in run) for run in _BRACKET_RUN.findall(form))


def detect(forms: tuple[str, ...]) -> str | None:
    """The name of the XSS rule that fires on any of `forms`, or None."""
    for original in forms:
        if not _PREFILTER.search(original):
            continue
        for form in (original, *_extra_forms(original)):
            found = first_match(_RULES, form)
            if found is not None:
                return found
        if "[]" in original and _jsfuck(original):
            return "jsfuck"
        if any(c in original for c in "<=`") and libinjection.is_xss(original)["is_xss"]:
            return "libinjection"
    return None
