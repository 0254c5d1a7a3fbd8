# Copyright: (c) 2026, ledgerguard contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""Masking of secrets in free text (journal lines, process lists, mount tables, environment values).

The one place for the masking rules of the collection: ``mask_cmdline(argv)`` masks a command line (argv in, argv
out: the freeze's writer evidence uses it, through ``writers.mask_cmdline``); ``mask_secrets(text)`` applies it to the
words of a line and then masks what only free text holds, from the same names and patterns. It replaces the value of
anything that looks like a credential with ``***`` and keeps the rest of the text readable (a process list or a
journal stays useful evidence):

* credentials in URLs: ``scheme://user:secret@host`` -> ``scheme://user:***@host``;
* options and assignments whose name says secret: ``--password=x``, ``--password x``, ``-p`` is *not* guessed,
  ``PGPASSWORD=x``, ``MYSQL_PWD=x``, ``token=x``, ``api_key: x``, ``Authorization: Bearer x``,
  ``"secret": "x"`` (JSON);
* AWS access key ids (``AKIA...``/``ASIA...``).

It runs on managed hosts (module_utils) and in the controller-side CLI, so it is pure Python with no imports beyond
the standard library.
"""

from __future__ import annotations

import posixpath
import re

MASK = "***"

# A name that says "this holds a secret" (api_key, access_key, client_secret ... included). Matched
# case-insensitively inside option / variable names.
NAME_WORDS = r"pass(?:word|wd|phrase)?|passw(?:or)?d|pwd|secret|token|key|auth|credentials?|signature"
_NAME = rf"[A-Za-z0-9_.-]*(?:{NAME_WORDS})[A-Za-z0-9_.-]*"
# Names that only point at a secret (``--password-file=/run/pw``, ``PASSWORD_FILE``) are not secrets.
_POINTER_SUFFIX = r"[-_](?:file|path|dir|command|cmd)"
_NOT_SECRET_NAME = re.compile(rf"{_POINTER_SUFFIX}[\"']?\s*[=:]?\s*$", re.I)

# scheme://user:secret@host  (any scheme: https, s3:https, postgres, mysql, amqp, ...)
_URL_USERINFO = re.compile(r"(?P<head>[A-Za-z][A-Za-z0-9+.-]*://[^\s/@:'\"]*:)(?P<secret>[^\s/@'\"]+)(?=@)")
# --password=x / --db-password "x y" / --token x
_LONG_OPTION = re.compile(
    rf"(?P<head>(?<![A-Za-z0-9_])--?{_NAME}(?:=|\s+))(?P<secret>\"[^\"]*\"|'[^']*'|[^\s\"'-][^\s]*)", re.I
)
# PGPASSWORD=x, token=x, api_key: x, "secret": "x", secret='x'
_ASSIGN = re.compile(
    rf"(?P<head>(?<![A-Za-z0-9_-])[\"']?{_NAME}[\"']?\s*(?:=|:)\s*)(?P<secret>\"[^\"]*\"|'[^']*'|[^\s,;&\"'}}]+)",
    re.I,
)
# Authorization: Bearer x / Basic x
_BEARER = re.compile(r"(?P<head>\b(?:Bearer|Basic|Token)\s+)(?P<secret>[A-Za-z0-9._~+/=-]{8,})", re.I)
_AWS_KEY_ID = re.compile(r"\b(?:AKIA|ASIA)[A-Z0-9]{12,20}\b")

# One argv word: --password=x, --password (value in the next word), PASSWORD=x
_ARG_OPTION = re.compile(rf"^(-{{1,2}}{_NAME})(?:=(.+))?$", re.I)
_ARG_ASSIGN = re.compile(rf"^((?:[A-Za-z_][A-Za-z0-9_]*)?(?:{NAME_WORDS})[A-Za-z0-9_]*)=(.+)$", re.I)
_ARG_NOT_SECRET = re.compile(rf"{_POINTER_SUFFIX}$", re.I)
_MYSQL_CLIENTS = ("mysql", "mariadb", "mysqldump", "mariadb-dump", "mysqladmin", "mariadb-admin")


def mask_cmdline(argv: list[str]) -> list[str]:
    """The command line with its secrets replaced by ``***``: ``--password=x``, ``--password x``, ``PASSWORD=x``
    (and token, secret, api key ...), ``user:pass@`` in URLs, and the MySQL clients' ``-pSECRET``."""
    out: list[str] = []
    hide_next = False
    prog = posixpath.basename(argv[0]) if argv else ""
    for arg in argv:
        if hide_next:
            out.append(MASK)
            hide_next = False
            continue
        if prog in _MYSQL_CLIENTS and arg.startswith("-p") and len(arg) > 2 and not arg.startswith("--"):
            out.append("-p" + MASK)
            continue
        m = _ARG_OPTION.match(arg) or _ARG_ASSIGN.match(arg)
        if m and not _ARG_NOT_SECRET.search(m.group(1)):
            if m.group(2) is None:
                out.append(arg)
                hide_next = True
            else:
                out.append(f"{m.group(1)}={MASK}")
            continue
        out.append(mask_url_credentials(arg))
    return out


def _keep_quotes(match: re.Match) -> str:
    secret = match.group("secret")
    if secret == MASK or _NOT_SECRET_NAME.search(match.group("head")):
        return match.group(0)
    if len(secret) >= 2 and secret[0] == secret[-1] and secret[0] in "\"'":
        return match.group("head") + secret[0] + MASK + secret[0]
    return match.group("head") + MASK


def mask_url_credentials(text: str) -> str:
    """``scheme://user:secret@host`` -> ``scheme://user:***@host`` anywhere in ``text``."""
    if not text:
        return text
    return _URL_USERINFO.sub(lambda m: m.group("head") + MASK, text)


def mask_words(text: str) -> str:
    """``mask_cmdline`` over the whitespace-separated words of ``text`` (the whitespace is kept)."""
    parts = re.split(r"(\s+)", text)
    words = mask_cmdline(parts[0::2])
    parts[0::2] = words
    return "".join(parts)


def mask_argv(argv: list[str]) -> list[str]:
    """A command line (argv) with its secrets masked: ``mask_cmdline``, then the free-text rules per word."""
    return [mask_secrets(word, words=False) for word in mask_cmdline(list(argv))]


def mask_secrets(text: str, words: bool = True) -> str:
    """``text`` with every credential-looking value replaced by ``***`` (see the module doc for what is matched)."""
    if not text:
        return text
    if words:
        text = mask_words(text)
    text = mask_url_credentials(text)
    text = _BEARER.sub(lambda m: m.group("head") + MASK, text)
    text = _LONG_OPTION.sub(_keep_quotes, text)
    text = _ASSIGN.sub(_keep_quotes, text)
    return _AWS_KEY_ID.sub(MASK, text)


def mask_lines(lines):
    """``mask_secrets`` applied to each line of an iterable of lines."""
    return [mask_secrets(line) for line in lines]
