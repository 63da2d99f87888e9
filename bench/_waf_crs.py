"""The OWASP CRS baseline for bench/waf.py: libmodsecurity 3 with the Core Rule Set at PL1.

`crs_baseline(crs_dir)` returns a callable that says whether ModSecurity + CRS blocks a request,
or a reason string when the baseline cannot run here: the Python binding (PyPI package
`libmodsecurity`, which bundles libmodsecurity 3.0.x) is not installed, or no CRS checkout was
given (`--crs DIR`: a coreruleset checkout with `crs-setup.conf.example` and `rules/`).

The configuration is ModSecurity's recommended request-side settings (rule engine on, request
bodies read, JSON and XML body processors) followed by `crs-setup.conf.example` (anomaly
scoring, paranoia level 1), an API policy (PUT, PATCH and DELETE and text/plain bodies allowed,
which CRS refuses by default) and every `rules/REQUEST-*.conf`.
"""

from __future__ import annotations

import importlib.util
from collections.abc import Callable
from pathlib import Path
from typing import Any

__all__ = ["crs_baseline"]

_ENGINE = """
SecRuleEngine On
SecRequestBodyAccess On
SecRequestBodyLimit 13107200
SecRequestBodyNoFilesLimit 131072
SecRequestBodyLimitAction Reject
SecRule REQUEST_HEADERS:Content-Type "^(?:application(?:/soap\\+|/)|text/)xml" \
    "id:200000,phase:1,t:none,t:lowercase,pass,nolog,ctl:requestBodyProcessor=XML"
SecRule REQUEST_HEADERS:Content-Type "^application/json" \
    "id:200001,phase:1,t:none,t:lowercase,pass,nolog,ctl:requestBodyProcessor=JSON"
SecRule REQBODY_ERROR "!@eq 0" \
    "id:200002,phase:2,t:none,log,deny,status:400,msg:'Failed to parse request body.'"
SecAuditEngine Off
SecDebugLogLevel 0
"""
# An API's policy, set before CRS initialises its defaults: the methods and body types the
# benign corpus uses (CRS's defaults refuse PUT, PATCH, DELETE and text/plain outright).
_API_POLICY = """
SecAction "id:900200,phase:1,pass,t:none,nolog,\
    setvar:'tx.allowed_methods=GET HEAD POST OPTIONS PUT PATCH DELETE'"
SecAction "id:900220,phase:1,pass,t:none,nolog,\
    setvar:'tx.allowed_request_content_type=|application/x-www-form-urlencoded| \
|multipart/form-data| |multipart/related| |text/xml| |application/xml| |application/soap+xml| \
|application/json| |application/cloudevents+json| |application/cloudevents-batch+json| \
|text/plain|'"
"""

Raw = tuple[str, str, list[tuple[str, str]], bytes]


def crs_baseline(crs_dir: Path | None) -> Callable[[Raw], bool] | str:
    """A `blocked(raw)` function backed by ModSecurity + CRS, or why there is none."""
    if importlib.util.find_spec("libmodsecurity") is None:
        return "libmodsecurity not installed (pip install libmodsecurity)"
    if crs_dir is None:
        return "no CRS rules given (--crs DIR, a coreruleset checkout)"
    setup = crs_dir / "crs-setup.conf.example"
    rule_files = sorted((crs_dir / "rules").glob("REQUEST-*.conf"))
    if not setup.is_file() or not rule_files:
        return f"no crs-setup.conf.example and rules/REQUEST-*.conf under {crs_dir}"
    import libmodsecurity

    modsec: Any = libmodsecurity.ModSecurity()
    modsec.set_log_callback(_discard)  # rule messages would otherwise go to stderr
    rules: Any = libmodsecurity.RulesSet()
    loads = [rules.load(_ENGINE), rules.load_from_uri(str(setup)), rules.load(_API_POLICY)]
    for loaded in (*loads, *(rules.load_from_uri(str(f)) for f in rule_files)):
        if loaded < 0:
            return f"CRS did not load: {rules.get_parser_error()}"

    def blocked(raw: Raw) -> bool:
        method, uri, headers, body = raw
        tx: Any = libmodsecurity.Transaction(modsec, rules)
        tx.process_connection("127.0.0.1", 40000, "127.0.0.1", 80)
        tx.process_uri(uri, method, "1.1")
        for name, value in headers:
            tx.add_request_header(name, value)
        if body and not any(name.lower() == "content-length" for name, _ in headers):
            tx.add_request_header("Content-Length", str(len(body)))
        tx.process_request_headers()
        if not _disrupted(tx):
            tx.append_request_body(body)
            tx.process_request_body()
        return _disrupted(tx)

    return blocked


def _discard(_message: str) -> None:
    return None


def _disrupted(tx: Any) -> bool:
    intervention = tx.intervention()
    return intervention is not None and bool(intervention.disruptive)
