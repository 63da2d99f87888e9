"""SQL injection detection (CRS 942 family).

Two detectors, both over the decoded, lower-cased variants of a value:

* libinjection's SQL tokenizer and fingerprint set, run on the value and on a form with SQL
  comments stripped (``/**/`` becomes a space, MySQL ``/*!50000 ...*/`` is unwrapped); it is
  only called when the value holds a character or word SQL needs (a quote, a comment, an
  operator, a keyword), because most values hold none;
* a grammar of injection shapes libinjection does not fingerprint: quoted-literal tautologies,
  stacked statements, schema and system-catalog access, time-delay and out-of-band functions,
  PostgreSQL casts and JSON operators, ``SELECT`` lists that only SQL writes, conditional
  functions and NoSQL operator injection in parameter names.
"""

from __future__ import annotations

import re

import libinjection

from bastion.edge.managed._grammar import first_match, rules

__all__ = ["detect", "detect_name"]

_PREFILTER = re.compile(
    r"['\"`;#=()@|&<>*]|--|/\*|\b(?:select|union|or|and|xor|having|order|group|insert|update"
    r"|delete|drop|exec|execute|declare|waitfor|sleep|benchmark|like|from|where|null|case"
    r"|when|into|limit|procedure|information_schema|msys\w+|tempdb|msdb|schema_name)\b|pg_"
    r"|mysql\.|::|\$"
)
_COMMENT = re.compile(r"/\*!?\d*|\*/")
_FUNCS = (
    r"concat(?:_ws)?|group_concat|char|chr|ascii|substring|substr|mid|ord|hex|unhex|extractvalue"
    r"|updatexml|version|database|schema|user|current_user|system_user|session_user|sysdate|now"
    r"|if|iif|elt|make_set|json_build_object|json_object|overlay|floor|rand|count|cast|convert"
    r"|md5|sha1|length|lower|upper|load_file|sleep|benchmark|pg_sleep|exp|row|name_const"
    r"|coalesce|nullif|isnull|ifnull|instr|locate|position|replace|reverse|left|right"
)
# Function names that only SQL uses (no English word among them), called with "(".
_SQL_ONLY_FUNCS = (
    r"benchmark|coalesce|compress|uncompress|uncompressed_length|concat|concat_ws|xmltype|cos"
    r"|cot|sin|tan|acos|asin|atan2?|crc32|curdate|curtime|current_user|db_name|schema_name"
    r"|des_(?:en|de)crypt|aes_(?:en|de)crypt|extractvalue|updatexml|find_in_set|from_base64"
    r"|to_base64|group_concat|string_agg|array_to_string|hex|unhex|ifnull|isnull|nullif|instr"
    r"|lcase|ucase|load_file|lpad|rpad|ltrim|rtrim|make_set|export_set|md5|sha1|sha2|mid"
    r"|name_const|oct|ord|pow|rand|randomblob|regexp_(?:like|substr|replace|instr)|sleep"
    r"|pg_sleep|soundex|strcmp|substr|substring|substring_index|sysdate|system_user"
    r"|session_user|json_(?:extract|object|array|keys|value|query|build_object|agg)"
    r"|jsonb_\w+|sqlite_\w+|lo_(?:get|import|export|open)|pg_\w+|current_setting"
    r"|quote_ident|quote_literal|utl_inaddr\.\w+|sys_context|nvl2?|to_char|to_number"
    r"|char_length|bit_length|octet_length|last_insert_id|row_count|found_rows|connection_id"
    r"|elt|iif|ascii|chr|char|database|decode|encode|user|version|schema|insert"
)
_GRAMMAR: tuple[tuple[str, re.Pattern[str]], ...] = (
    (
        "time_delay",
        re.compile(
            r"\b(?:sleep|benchmark|pg_sleep|randomblob|dbms_lock\.sleep)\s*\(\s*[\d'\"(]"
            r"|waitfor\s+(?:delay|time)\b|dbms_pipe\.receive_message"
        ),
    ),
    ("union_select", re.compile(r"\bunion\b[\s(]*(?:all\b|distinct\b)?[\s(]*\bselect\b")),
    (
        "system_catalog",
        re.compile(
            r"information_schema|sqlite_master|sqlite_schema|msysaccessobjects|msysobjects"
            r"|msysqueries|msysrelationships|pg_catalog|pg_shadow|pg_user|sysobjects|syscolumns"
            r"|xp_cmdshell|xp_dirtree|xp_regread|sp_executesql|sp_oacreate|sp_password"
            r"|\bload_file\s*\(|\binto\s+(?:out|dump)file\b|@@(?:version|datadir|hostname"
            r"|basedir|servername|spid)|\butl_(?:http|inaddr|file)\b|\bdbms_\w+\."
            r"|\bpg_(?:read_file|ls_dir|sleep)\b|\blo_(?:import|export)\b|\bmysql\.user\b"
            r"|\ball_tables\b|\buser_tables\b|\bsys\.(?:user_objects|tables|columns)\b"
        ),
    ),
    (
        "stacked_statement",
        re.compile(
            r";\s*(?:drop\s+(?:table|database|procedure|function|view|user)\b"
            r"|truncate\s+table\b|alter\s+(?:table|user|database)\b|create\s+(?:table|user|function"
            r"|procedure|database|trigger)\b|insert\s+into\b|delete\s+from\b|update\s+\w+\s+set\b"
            r"|exec(?:ute)?\b|declare\s+@|shutdown\b|grant\s+\w+|revoke\s+\w+|select\b|set\s+@)"
        ),
    ),
    (
        "exec",
        re.compile(
            r"\bexec(?:ute)?\s+(?:immediate\b|master\.|xp_|sp_|\(|@)|\bdeclare\s+@\w+"
            r"|\bopenrowset\s*\(|\bopendatasource\s*\("
        ),
    ),
    (
        "quote_tautology",
        re.compile(
            r"['\"`]\s*\)*\s*(?:or|and|xor|\|\||&&|div)\s*\(*\s*['\"`]?[\w.-]*['\"`]?\s*"
            r"(?:=|<>|!=|<=>|<|>|\blike\b|\bis\b|\bin\s*\(|\bbetween\b|\bregexp\b|\brlike\b)"
            r"|['\"`]\s*\)*\s*(?:or|and|xor|\|\||&&)\s*\(*\s*['\"`]?\d+['\"`]?\s*(?:$|--|#|/\*|;)"
        ),
    ),
    (
        "numeric_tautology",
        re.compile(
            r"(?:^|[\s)'\"`])(?:or|and|xor|\|\||&&)\s+\(*\s*(\d+|'[^']{0,100}'|\"[^\"]{0,100}\")\s*"
            r"(?:=|<=>|like)\s*\(*\s*\1(?:\W|$)|\bhaving\s+\d+\s*[=<>]\s*\d+"
            r"|\border\s+by\s+\d+\s*(?:--|#|/\*|;|$)"
        ),
    ),
    (
        "quote_comment",
        re.compile(
            r"^[\w.@-]*['\"`]\s*\)*\s*(?:--|#|/\*|;\s*(?:$|--|#|@|[a-z]+\b))"
            r"|^[\w.@-]*['\"`]\s*\)*\s*(?:select|union|insert|update|delete|drop|exec)\b"
            r"|'\w*'\s*(?:=|!=|<>)\s*'\w*|\bin\s*\(\s*select\b"
        ),
    ),
    (
        "select_list",
        re.compile(
            r"\bselect\s+(?:top\s+\d+\s+|distinct\s+)?(?:\*|@@?\w|0x[0-9a-f]+|null\b|\d+\s*[,)]"
            r"|['\"][^'\"]{0,100}['\"]\s*(?:,|from\b)|(?:" + _FUNCS + r")\s*\()"
            r"|\bselect\b[^;]{0,200}?\bfrom\s+(?:dual|`\w+`|\w+\.\w+|\w+\s+where\s+\w+\s*[=<>])"
            r"|\bselect\s+[\w.]+\s+from\s+[\w.]+\s*(?:--|#|/\*|;|$)"
            r"|\bselect\s+char\s*\("
        ),
    ),
    (
        "conditional",
        re.compile(
            r"\b(?:if|iif|elt|case\s+when|nullif|ifnull)\s*\(?\s*\(*[^,()]{0,60}(?:=|<|>|\blike\b)"
            r"[^,()]{0,60},|\bcase\s+when\b[^;]{0,80}\bthen\b"
            r"|\b(?:" + _FUNCS + r")\s*\([^)]{0,200}\b(?:password|passwd|pass|pwd|table_name"
            r"|column_name|schema_name|user|version)\b"
        ),
    ),
    (
        "postgres_cast",
        re.compile(
            r"['\")\w]\s*::\s*(?:int|integer|bigint|smallint|text|varchar|char|numeric|json|jsonb"
            r"|bool|boolean|regclass|oid)\b|::\s*jsonb?\s*(?:\?\||\?&|@>|<@|#>>?|#-|->>?|\?)"
        ),
    ),
    (
        "function_injection",
        re.compile(
            r"(?:^|['\"`(,;]|\s)(?:"
            + _FUNCS
            + r")\s*\(\s*(?:['\"`]|\d|\(|select\b|@|0x)[^)]{0,200}"
            r"\)\s*(?:['\"`]|::|\)|--|#|;|\|\||\+|\.|$|\s+(?:or|and|from|union)\b)"
        ),
    ),
    ("concat_injection", re.compile(r"['\"`]\s*(?:\|\||\+|\.)\s*(?:" + _FUNCS + r")\s*\(")),
    ("comment_evasion", re.compile(r"\w/\*.{0,40}?\*/\w|/\*!\d{0,5}\s*\w")),
    (
        "sql_function",
        re.compile(
            r"(?<![\w.$])(?:"
            + _SQL_ONLY_FUNCS
            + r")\((?!\))|(?<![\w.$])(?:"
            + _SQL_ONLY_FUNCS.rsplit("|elt|", 1)[0]
            + r")\s+\(|\bdiv\s*\(\s*[\d.]+\s*,"
        ),
    ),
    (
        "schema_object",
        re.compile(
            r"\b(?:tempdb|msdb|mysql\.db|schema_name|table_name|column_name|sysdatabases"
            r"|systables|pg_tables|all_tab_columns)\b|\bprocedure\s+analyse\b"
        ),
    ),
    (
        "ddl_statement",
        re.compile(
            r"\b(?:alter|create)\s+table\s+[`\"\w]|\bdrop\s+table\s+(?:if\s+exists\s+)?[`\"\w]"
            r"|^\s*['\"`]?\s*;\s*(?:update|insert|delete|drop|select|truncate|alter|create|exec"
            r"|declare|shutdown)\b|;\s*truncate\b|=\s*\(\s*select\b"
        ),
    ),
    (
        "alias_from",
        re.compile(
            r"`\s*as\s+[`\"]?\w+[`\"]?\s*from\b|(?<!\d)\d+\s+as\s*[\"`][^\"`]{0,100}[\"`]?\s*from\b"
            r"|[`'\"]\s*(?:not\s+)?(?:regexp|rlike|sounds\s+like)\s"
        ),
    ),
    (
        "json_operator",
        re.compile(r"'\s*[\[{].{0,500}?[\]}]\s*'\s*(?:->>?|#>>?|#-|@>|<@|\?[|&]?|::|<|>|=)"),
    ),
    (
        "boolean_function",
        re.compile(
            r"['\"`]\s*\)*\s*(?:or|and|xor|\|\||&&)\s+(?:not\s+)?\w+\s*\("
            r"|^\s*(?:and|or)\s+\w+\s*(?:=|<|>|\blike\b)\s*['\"]"
            r"|\bif\s*\(\s*\d+\s*[=<>]|\)\s*like\s*\(|\bhaving\s+(?:count|sum|avg|min|max)\s*\("
            r"|\b\d+\.e(?:\(|\.\w)|\b2\.2250738585072011e-308\b"
        ),
    ),
)
_QUOTE_CHARS = ("'", '"', "`")
_NEEDS: dict[str, tuple[str, ...]] = {
    "time_delay": ("sleep", "benchmark", "waitfor", "dbms_", "randomblob"),
    "union_select": ("union",),
    "system_catalog": (
        "information_schema",
        "sqlite_",
        "msys",
        "pg_",
        "sysobjects",
        "syscolumns",
        "xp_",
        "sp_",
        "load_file",
        "into",
        "@@",
        "utl_",
        "dbms_",
        "lo_",
        "mysql.",
        "all_tables",
        "user_tables",
        "sys.",
    ),
    "stacked_statement": (";",),
    "exec": ("exec", "declare", "openrowset", "opendatasource"),
    "quote_tautology": _QUOTE_CHARS,
    "numeric_tautology": ("=", "like", "having", "order"),
    "quote_comment": _QUOTE_CHARS,
    "select_list": ("select",),
    "conditional": ("(", "case"),
    "postgres_cast": ("::",),
    "function_injection": ("(",),
    "concat_injection": ("(",),
    "comment_evasion": ("/*",),
    "sql_function": ("(",),
    "schema_object": (
        "tempdb",
        "msdb",
        "mysql.db",
        "schema_name",
        "table_name",
        "column_name",
        "sysdatabases",
        "systables",
        "pg_tables",
        "all_tab_columns",
        "procedure",
    ),
    "ddl_statement": ("table", ";", "="),
    "alias_from": ("as", "regexp", "rlike", "sounds"),
    "json_operator": ("'",),
    "boolean_function": ("(", "'", '"', "`", ".e.", "2.2250738585072011e-308"),
}
_RULES = rules(_GRAMMAR, _NEEDS)
_NOSQL_OPS = (
    r"\$(?:ne|eq|gt|gte|lt|lte|in|nin|regex|where|exists|or|and|not|nor|expr|function|elemmatch"
    r"|type|mod|text|all|size|accumulator|jsonschema|lookup)"
)
_NOSQL_NAME = re.compile(rf"\[\s*{_NOSQL_OPS}\s*\]|(?:^|\.){_NOSQL_OPS}(?:\.|\[|$)")
_NOSQL_VALUE = re.compile(rf"\[\s*{_NOSQL_OPS}\s*\]")
_QUOTE_LIKE = str.maketrans(
    {"\u2018": "'", "\u2019": "'", "\u02bc": "'", "\u201c": '"', "\u201d": '"'}
)


def detect(forms: tuple[str, ...]) -> str | None:
    """The name of the SQL injection rule that fires on any of `forms`, or None."""
    for form in forms:
        if not form.isascii():
            form = form.translate(_QUOTE_LIKE)
        if "$" in form and _NOSQL_VALUE.search(form):
            return "nosql_operator"
        if not _PREFILTER.search(form):
            continue
        stripped = _COMMENT.sub(" ", form) if "/*" in form else form
        found = first_match(_RULES, stripped)
        if found is None and stripped is not form:
            found = first_match(_RULES, form)
        if found is not None:
            return found
        if libinjection.is_sql_injection(form)["is_sqli"]:
            return "libinjection"
        if stripped is not form and libinjection.is_sql_injection(stripped)["is_sqli"]:
            return "libinjection"
    return None


def detect_name(forms: tuple[str, ...]) -> str | None:
    """The rule that fires on a parameter NAME: NoSQL operators, then the value rules."""
    for form in forms:
        if "$" in form and _NOSQL_NAME.search(form):
            return "nosql_operator"
    return detect(forms)
