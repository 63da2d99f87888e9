"""Remote command execution detection (CRS 932 family).

Values are inspected twice: as decoded, and as a shell would read them after quote and
escape removal (``c'a't``, ``c\\at``, ``c${x}at`` and ``$IFS`` all become ``cat``/spaces).
The grammar recognises:

* a command after a command separator (``;``, ``|``, ``&&``, a newline, a backtick, ``$(``),
  or at the start of a value, by tier (see `_commands`): names that are not English words
  fire on their own, tool names and English words only with shell-looking arguments (flags,
  paths, redirections, pipes, hosts) or behind a command prefix (``time``, ``nohup`` ...);
* shell syntax that ordinary text does not use: command and process substitution, arithmetic
  and parameter expansion, here-strings, descriptor redirection, ``/dev/tcp``, brace and tilde
  expansion, history expansion, function definitions (Shellshock), aliases, glob-spelled
  paths (``/???/??t``, ``/etc/pa[s]swd``) and binary paths (``/bin/sh``, ``bin/ansible``);
* Windows: ``cmd /c``, batch ``FOR``/``IF`` grammar, PowerShell cmdlets, system paths and
  environment variables;
* server-side includes and SMTP/IMAP command injection after a line break.

`detect_filename` flags uploads of server configuration or executable files by name.
"""

from __future__ import annotations

import re

from bastion.edge.managed._commands import PREFIXES, TOOLS, UNIQUE, WORDS
from bastion.edge.managed._grammar import Rule, first_match, rules

__all__ = ["detect", "detect_filename"]

_PREFILTER = re.compile(
    r"[;&|`$<>{}()\\\n\r~!%/]|bin/|alias|exist|defined|errorlevel|cmdextversion|==|\bif\s"
)
_QUOTES = re.compile(
    r"\$\{ifs[^}]{0,20}\}|\$ifs\b|\$\{[a-z_]\w*\}(?=\w)|(?<=\w)\$[a-z_]\w*|['\"\\]|\$@"
)
_SEP = r"(?:[;&|`\n\r({]|\$\(|<\(|>\()"
_PRE = rf"(?:(?:{PREFIXES})\s+(?:-\w+\s+)*)"
_ANY = rf"(?:{UNIQUE}|{TOOLS}|{WORDS})"
_END = r"(?=[\s<>&|;)`,{}]|$)"
_UNIQUE_END = r"(?=[\s<>&|;)`,{}/]|$)"
_ARG = (
    r"(?:\s+[\w.-]+){0,3}\s+-{1,2}[a-z0-9]|\s+(?:[/~]|\.{1,2}/|\$|`|[<>|;&]|%\w+%|[a-z]:\\)"
    r"|\s*[<>|]|\s+[\w.-]+\s*[|;&<>]"
)
# English command words need stronger evidence: a flag, a path, a variable or a redirection.
_WORD_ARG = (
    r"(?:\s+[\w.-]+){0,3}\s+-{1,2}[a-z0-9]|\s+(?:/|~/|\.{1,2}/|\$|`|%\w+%|[a-z]:\\)"
    r"|\s*[<>]\s*[\w/.$~-]"
)
_HOST_ARG = r"\s+(?:[a-z0-9-]+\.)+[a-z]{2,}\b|\s+\w+://"
_SEPARATORS = (";", "&", "|", "`", "\n", "\r", "$(", "<(", ">(")
_AFTER_SEPARATOR = (
    Rule("unix_command", _SEPARATORS, re.compile(rf"{_SEP}\s*{_PRE}*(?:{UNIQUE}){_UNIQUE_END}")),
    Rule(
        "unix_command",
        _SEPARATORS,
        re.compile(rf"{_SEP}\s*{_PRE}*(?:{TOOLS}){_END}(?:{_ARG}|{_HOST_ARG})"),
    ),
    Rule(
        "unix_command",
        _SEPARATORS,
        re.compile(rf"{_SEP}\s*{_PRE}*(?:{WORDS}){_END}(?:{_WORD_ARG})"),
    ),
    Rule("unix_command", _SEPARATORS, re.compile(rf"^\s*[;&|`]\s*{_PRE}*{_ANY}\s*$")),
)
_SHELL_RULES = (
    Rule(
        "pipe_to_shell",
        ("|", "-e"),
        re.compile(
            r"\|\s*(?:ba|z|k|c|tc|da)?sh\b|\|\s*base(?:32|64)\s+-d"
            r"|\s-e\s+(?:/bin/)?(?:ba|z|k|c|tc|da)?sh\b"
        ),
    ),
    Rule(
        "shell_path", ("bin/",), re.compile(r"(?:^|[\s;|&=<>(`,])/?(?:usr/(?:local/)?)?s?bin/[a-z]")
    ),
)
# A value that starts with a command: checked only when its first word is one.
_FIRST_WORD = re.compile(r"[\s(]*([a-z][\w.+-]*)")
# The separator rules run only when some separator is followed by a command word.
_SEP_WORD = re.compile(rf"{_SEP}\s*{_PRE}*([a-z][\w.+-]*)")
_COMMAND_WORD = re.compile(rf"(?:{_ANY}|{PREFIXES})")
_START_RULES = (
    Rule("unix_command", (), re.compile(rf"^[\s(]*{_PRE}*(?:{UNIQUE}){_END}")),
    Rule("unix_command", (), re.compile(rf"^[\s(]*{_PRE}*(?:{TOOLS}){_END}(?:{_ARG}|{_HOST_ARG})")),
    Rule("unix_command", (), re.compile(rf"^[\s(]*{_PRE}*(?:{WORDS}){_END}(?:{_WORD_ARG})")),
    Rule("unix_command", (), re.compile(rf"^[\s(]*{_PRE}+{_ANY}{_END}")),
)
_SYNTAX: tuple[tuple[str, re.Pattern[str]], ...] = (
    (
        "shell_expansion",
        re.compile(
            r"\$\((?!\d+(?:\.\d+)?\))|\$\[|\$\{[^{}]{0,200}?[#%:/`!@^,~]|\$\{\s*[a-z_]\w*\s*\}"
            r"|<\(\s*[\w$/]|>\(\s*[\w$/]|<<<|>&\s*\d|/dev/(?:tcp|udp)/|\$\{?(?:ifs|shell)\b"
            r"|`\s*(?:" + _PRE + r")*(?:" + _ANY + r")\b|`\s*[/$]"
        ),
    ),
    ("brace_expansion", re.compile(r"\{(?=[\w./,-]*[a-z])[\w./-]*,[\w./,-]*\}")),
    ("tilde_expansion", re.compile(r"(?:^|[\s;|&=])~[+-]\d*(?:[\s/;|&]|$)|(?:^|\W)!-\d")),
    ("function_definition", re.compile(r"\(\s*\)\s*\{|\balias\s+(?:[-+][\w+]+\s+)*['\"]?[^\s=]+=")),
    (
        "glob_path",
        re.compile(
            r"(?:^|[^\w:/.?])(?:/[\w.?*\[\]!-]{0,100}){0,20}/[\w.-]*(?:\*|\?+(?![\w.-]*=)|\[[^\]]*\])"
        ),
    ),
    (
        "windows_command",
        re.compile(
            r"\bcmd(?:\.exe)?\s*/[ck]\b|%(?:comspec|systemroot|windir|programfiles|appdata|temp"
            r"|userprofile|systemdrive)%|\\windows\\(?:system32|syswow64)\\"
            r"|(?:^|[\s;&|=\"'])[a-z]:\\windows\\(?:system32|syswow64|win\.ini|system\.ini)"
        ),
    ),
    (
        "batch_command",
        re.compile(
            r"\bfor\s+(?:/[dflr]\b[^%]{0,100}?)?%{1,2}\S+\s+in\s*\([^)]{0,500}\)\s*do\b"
            r"|\bif\s*(?:/i\s+)?(?:not\s+)?(?:exist|defined|errorlevel|cmdextversion)\b"
            r"|\bif\s*(?:/i\s+)?(?:not\s+)?(?:\"[^\"]{0,200}\"|%\S+%|\(\S+\)|\[[^\]]{0,200}\]|[^\s=]+)\s*==+"
            r"|\bif\s*(?:/i\s+)?(?:not\s+)?(?:\"[^\"]{0,200}\"|\S+)\s+(?:equ|neq|lss|leq|gtr|geq)\s"
        ),
    ),
    (
        "powershell",
        re.compile(
            r"\b(?:invoke-(?:webrequest|expression|command|item|restmethod|wmimethod|shellcode"
            r"|mimikatz)|start-process|downloadstring|downloadfile|frombase64string"
            r"|set-mppreference|get-wmiobject|new-object\s+(?:system\.)?net\.webclient)\b"
            r"|(?:^|[\s;&|(])(?:iex|iwr|iwmi)\s*[(\s]|\s-(?:encodedcommand|enc|executionpolicy"
            r"|windowstyle)\s"
        ),
    ),
    (
        "server_side_include",
        re.compile(r"<!--\s*#\s*(?:exec|include|echo|config|fsize|flastmod|printenv|set|if)\b"),
    ),
    (
        "mail_injection",
        re.compile(
            r"[\r\n]\s*(?:[cs]:\s*)?(?:mail\s+from\s*:|rcpt\s+to\s*:|(?:ehlo|helo)\s+\S|auth\s+(?:login|plain)"
            r"|starttls\b)|[\r\n]\s*[a-z]+\d+\s+(?:append|login|select|fetch|store|copy|uid"
            r"|capability|logout|examine|authenticate)\b"
        ),
    ),
)
_RESTRICTED_FILE = re.compile(
    r"(?:^|[\\/])(?:\.[\w.-]+|wp-config[\w.-]*|(?:settings|config|configuration|local_settings"
    r"|database|parameters|secrets?)\s*\.\s*(?:php\d?|ya?ml|ini|inc|py|rb|xml|conf|env)"
    r"|web\.config|php\.ini|[\w.-]+\.(?:php\d?|phtml|phar|jsp|jspx|asp|aspx|ashx|cgi|pl|sh"
    r"|bash|exe|dll|bat|cmd|ps1|vbs|htaccess|htpasswd))\s*$"
)


_NEEDS: dict[str, tuple[str, ...]] = {
    "shell_expansion": ("$", "<", ">", "`", "/dev/"),
    "brace_expansion": ("{",),
    "tilde_expansion": ("~", "!-"),
    "function_definition": ("(", "alias"),
    "glob_path": ("/",),
    "windows_command": ("cmd", "%", "\\"),
    "batch_command": (
        "%",
        "exist",
        "defined",
        "errorlevel",
        "cmdextversion",
        "==",
        " equ ",
        " neq ",
        " lss ",
        " leq ",
        " gtr ",
        " geq ",
    ),
    "powershell": (
        "invoke-",
        "start-process",
        "download",
        "frombase64",
        "set-mppreference",
        "get-wmiobject",
        "new-object",
        "iex",
        "iwr",
        "iwmi",
        " -enc",
        " -exec",
        " -windowstyle",
    ),
    "server_side_include": ("<!--",),
    "mail_injection": ("\n", "\r"),
}
_SYNTAX_RULES = rules(_SYNTAX, _NEEDS)


def _shell_clean(form: str) -> str:
    if not any(c in form for c in "'\"\\$"):
        return form
    return _QUOTES.sub(lambda m: " " if "ifs" in m.group(0) else "", form)


def detect(forms: tuple[str, ...]) -> str | None:
    """The name of the command-execution rule that fires on any of `forms`, or None."""
    for form in forms:
        if _PREFILTER.search(form):
            found = first_match(_SYNTAX_RULES, form)
            if found is not None:
                return found
        cleaned = _shell_clean(form)
        found = first_match(_SHELL_RULES, cleaned)
        if found is None and any(
            _COMMAND_WORD.fullmatch(m.group(1)) for m in _SEP_WORD.finditer(cleaned)
        ):
            found = first_match(_AFTER_SEPARATOR, cleaned)
        if found is not None:
            return found
        first = _FIRST_WORD.match(cleaned)
        if first is not None and _COMMAND_WORD.fullmatch(first.group(1)):
            found = first_match(_START_RULES, cleaned)
            if found is not None:
                return found
    return None


def detect_filename(forms: tuple[str, ...]) -> str | None:
    """The rule that fires on an uploaded file's name: server configuration or executables."""
    for form in forms:
        if _RESTRICTED_FILE.search(form.strip()):
            return "restricted_upload"
    return None
