"""Path traversal and local file inclusion detection (CRS 930 family).

Values: directory traversal (``../``, ``..\\``, ``.../``, Tomcat's ``..;``, hex-spelled
``0x2e0x2e0x2f`` and the overlong/full-width forms the shared decoding folds), and references
to operating-system files that only an attacker asks a web API for (``/etc/passwd``,
``/proc/self/environ``, ``/sys/class``, ``boot.ini``, SSH keys, shell histories, credential
dotfiles, database backups).

The URI path additionally may not reach hidden files or directories (any ``/.name`` segment
except ``/.well-known/``), log and backup files, or dev-server file-system routes
(``/@fs/``, ``/@id/``).
"""

from __future__ import annotations

import re

__all__ = ["detect", "detect_path"]

_HEX_SPELLED = re.compile(r"0x(2e|2f|5c)")
_HEX_CHARS = {"2e": ".", "2f": "/", "5c": "\\"}
_TRAVERSAL = re.compile(
    r"(?:^|[\\/=\s;:\"'`|&<>(,])\.{2,3}(?:[\\/;]|$)|[\\/]\.{2,3}(?:[\\/;]|\s|$)|\.\.;"
)
_SENSITIVE = (
    r"/etc/(?:passwd|shadow|group|gshadow|hosts|sudoers|subuid|subgid|master\.passwd|issue"
    r"|crontab|fstab|mtab|profile|bashrc|environment|ssh/|ssl/|apache2?/|httpd/|nginx/|mysql/"
    r"|security/|pam\.d|resolv\.conf|hostname|motd|os-release|spwd\.db|pwd\.db|aliases"
    r"|inittab|exports|shells|[\w-]+\.conf\b)"
    r"|/proc/(?:self|\d+|version|cpuinfo|meminfo|interrupts|mounts|net/|environ|cmdline"
    r"|sched_debug|kcore|modules|partitions|stat\b)"
    r"|/sys/(?:class|kernel|devices|block|bus|firmware|module|power|fs)\b"
    r"|/var/(?:log|mail|spool|lib/mysql)/|/root/|/usr/local/[\w/.-]*/conf/"
    r"|(?:^|[\\/])(?:boot|win|system)\.ini\b|windows[\\/]+system32|\bhttpd\.conf\b"
    r"|\bweb\.config\b|\bwp-config\.php\b|\.ssh[\\/]|\bid_(?:rsa|dsa|ecdsa|ed25519)\b"
    r"|\bauthorized_keys\b|(?:^|[\\/\s])\.(?:bash_history|zsh_history|history|mysql_history"
    r"|psql_history|netrc|pgpass|git-credentials|npmrc|pypirc|htpasswd|htaccess|env"
    r"|docker|kube|aws|gnupg|bash_profile|bashrc|profile)\b|>\s*/tmp/"
)
_SENSITIVE_RE = re.compile(_SENSITIVE)
_BACKUP_NAME = re.compile(
    r"^[\w.-]*\.(?:sql|bak|backup|dump|sqlite3?|mdb)(?:\.(?:zip|gz|tgz|tar|bz2|7z|rar|xz))?$"
)
_PATH_RULES: tuple[tuple[str, re.Pattern[str]], ...] = (
    ("hidden_path", re.compile(r"/\.(?!well-known(?:/|$))[^/.]")),
    (
        "restricted_file",
        re.compile(
            r"\.(?:log|sql|bak|backup|dump|swp|old|orig|sqlite3?|mdb|ini|conf|cfg|env|pem|key"
            r"|htpasswd|htaccess)(?:\.(?:zip|gz|tgz|tar|bz2|7z|rar|xz))?(?:/|$)"
            r"|/@(?:fs|id)/|__x00__|/(?:proc|sys)/"
        ),
    ),
)


def _unhex(form: str) -> str:
    return _HEX_SPELLED.sub(lambda m: _HEX_CHARS[m.group(1)], form)


def detect(forms: tuple[str, ...]) -> str | None:
    """The name of the traversal/file-access rule that fires on any of `forms`, or None."""
    for form in forms:
        if "0x" in form:
            form = _unhex(form)
        if ".." in form and _TRAVERSAL.search(form):
            return "traversal"
        if ("/" in form or "\\" in form or "." in form) and _SENSITIVE_RE.search(form):
            return "os_file"
        if "." in form and _BACKUP_NAME.search(form):
            return "backup_file"
    return None


def detect_path(forms: tuple[str, ...]) -> str | None:
    """The rule that fires on the URI path: traversal, OS files, hidden or restricted files."""
    found = detect(forms)
    if found is not None:
        return found
    for form in forms:
        for name, pattern in _PATH_RULES:
            if pattern.search(form):
                return name
    return None
