# Copyright: (c) 2026, ledgerguard contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""Masking of secrets in free text (journal lines, process lists, mount tables, environment values).

Command lines are masked by the collection's existing ``writers.mask_cmdline`` (argv in, argv out: the freeze's
writer evidence uses it); ``mask_secrets(text)`` applies that same function to the words of a line and then masks
what only free text holds, so there is one set of rules. It replaces the value of anything that looks like a
credential with ``***`` and keeps the rest of the text readable (a process list or a journal stays useful evidence):

* credentials in URLs: ``scheme://user:secret@host`` -> ``scheme://user:***@host``;
* options and assignments whose name says secret: ``--password=x``, ``--password x``, ``-p`` is *not* guessed,
  ``PGPASSWORD=x``, ``MYSQL_PWD=x``, ``token=x``, ``api_key: x``, ``Authorization: Bearer x``,
  ``"secret": "x"`` (JSON);
* AWS access key ids (``AKIA...``/``ASIA...``).

It runs on managed hosts (module_utils) and in the controller-side CLI, so it is pure Python with no imports beyond
the standard library.
"""

from __future__ import annotations

import re

MASK = "***"

# A name that says "this holds a secret". Matched case-insensitively inside option / variable names.
NAME_WORDS = (
    r"passw(?:or)?d|passwd|pass|pwd|secret|token|api[_-]?key|apikey|access[_-]?key|account[_-]?key|private[_-]?key"
    r"|client[_-]?secret|credentials?|auth|signature|session[_-]?key"
)
_NAME = rf"[A-Za-z0-9_.-]*(?:{NAME_WORDS})[A-Za-z0-9_.-]*"

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


# Names that only point at a secret (``--password-file=/run/pw``) are not secrets (as writers.mask_cmdline says).
_NOT_SECRET_NAME = re.compile(r"[-_](?:file|path|dir|command|cmd)[\"']?\s*[=:]?\s*$", re.I)


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
    """``writers.mask_cmdline`` over the whitespace-separated words of ``text`` (the whitespace is kept)."""
    from ansible_collections.ledgerguard.recovery.plugins.module_utils.writers import mask_cmdline

    parts = re.split(r"(\s+)", text)
    words = mask_cmdline(parts[0::2])
    parts[0::2] = words
    return "".join(parts)


def mask_argv(argv: list[str]) -> list[str]:
    """A command line (argv) with its secrets masked: ``writers.mask_cmdline``, then the free-text rules per word."""
    from ansible_collections.ledgerguard.recovery.plugins.module_utils.writers import mask_cmdline

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
