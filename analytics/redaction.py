"""Hiding credentials in everything the tool writes: error lines, log lines, stored run messages
and report files. One module, so every path applies the same rules (docs/security.md#redaction):

* **URL userinfo**: ``scheme://user:secret@host`` becomes ``scheme://user:***@host`` and
  ``scheme://token@host`` becomes ``scheme://***@host``. The *last* ``@`` before the host ends the
  credentials, so a password that contains ``@`` is hidden whole.
* **Query-string secrets**: the value of ``token=``, ``access_token=``, ``private_token=``,
  ``job_token=``, ``sig=``, ``signature=``, ``password=``, ``secret=``, ``key=``, ``api_key=``,
  ``X-Amz-Credential=`` and any other parameter whose name ends in ``token``, ``secret``,
  ``password`` or ``signature``.
* **Headers**: the value of ``Authorization:``, ``Proxy-Authorization:``, ``PRIVATE-TOKEN:``,
  ``JOB-TOKEN:``, ``X-Gitlab-Token:``, ``X-Api-Key:``, ``X-Auth-Token:`` and ``Cookie:``, up to
  the end of the line or a closing quote (so a dict's repr is covered too).
* **Assignments** such as ``password=...``, ``"token": "..."``, ``api_key: ...``.
* **Token shapes** wherever they appear: GitHub ``ghp_ gho_ ghu_ ghs_ ghr_ github_pat_``, GitLab
  ``glpat- gldt- glrt- glcbt- glptt- glft- glimt- gloas- glsoat- glffct- glagent-``, Slack
  ``xox?-`` and AWS access key ids (``AKIA...``).
* **Known secret values**: the values of the environment variables that hold credentials
  (``GITHUB_TOKEN``, ``GITLAB_TOKEN``, ``GITOPS_DORA_DB_PASSWORD``, ``PGPASSWORD``, the receiver's
  secrets, ``AWS_SECRET_ACCESS_KEY``, ``AWS_SESSION_TOKEN`` and any ``*_TOKEN``, ``*_SECRET``,
  ``*_PASSWORD`` variable) and every value handed to :func:`register_secret` (tokens read from a
  file, passwords seen in a URL on the command line), in plain and URL-encoded form.

Redaction is idempotent and never raises; the mask is :data:`MASK`.
"""

from __future__ import annotations

import os
import re
import threading
from urllib.parse import quote, unquote

MASK = "***"
_MIN_SECRET = 6  # registered values: shorter ones would mask ordinary words
_MIN_ENV_SECRET = 8  # environment values: only long ones, so a variable never masks everyday words

_ENV_NAMES = (
    "GITHUB_TOKEN", "GITLAB_TOKEN", "GH_TOKEN", "GITOPS_DORA_DB_PASSWORD", "PGPASSWORD",
    "GITOPS_DORA_GITHUB_SECRET", "GITOPS_DORA_GITLAB_TOKEN", "AWS_SECRET_ACCESS_KEY", "AWS_SESSION_TOKEN",
)
_ENV_SUFFIX = re.compile(r"(?:TOKEN|SECRET|PASSWORD|PASSWD|_API_KEY|_SECRET_KEY|_ACCESS_KEY)$", re.IGNORECASE)

# scheme://authority: the authority runs to the first / ? # or whitespace/quote
_URL_AUTHORITY = re.compile(r"(?P<scheme>\b[A-Za-z][A-Za-z0-9+.\-]*://)(?P<authority>[^\s/?#\"'<>\\`]+)")
_HEADER = re.compile(
    r"(?P<name>\b(?:proxy-)?authorization|\bprivate-token|\bjob-token|\bx-gitlab-token|\bx-api-key"
    r"|\bx-auth-token|\bcookie)"
    r"(?P<sep>[\"']?[ \t]*[:=][ \t]*[\"']?)"
    r"(?P<value>[^\r\n\"']+)",
    re.IGNORECASE,
)
_QUERY = re.compile(
    r"(?<![^\s?&;])(?P<key>(?:[A-Za-z0-9_.\-]*(?:token|secret|password|passwd|signature)|sig|key|api[_\-]?key"
    r"|access[_\-]?key|pwd|auth|x-amz-credential)=)(?P<value>[^&#\s\"'<>]+)",
    re.IGNORECASE,
)
_ASSIGNMENT = re.compile(
    r"(?P<key>\b(?:[A-Za-z0-9]+[_\-])*(?:token|password|passwd|secret|api[_\-]?key)[\"']?)"
    r"(?P<sep>[ \t]*[:=][ \t]*[\"']?)"
    r"(?P<value>[^\s\"',;&}\]\)]+)",
    re.IGNORECASE,
)
_TOKEN_SHAPES = re.compile(
    r"\b(?:gh[pousr]_[A-Za-z0-9]{8,}|github_pat_[A-Za-z0-9_]{8,}"
    r"|(?:glpat|gldt|glrt|glcbt|glptt|glft|glimt|gloas|glsoat|glffct|glagent)-[A-Za-z0-9_.\-]{8,}"
    r"|xox[abposr]-[A-Za-z0-9\-]{8,}|AKIA[0-9A-Z]{16})"
)

_registered: set[str] = set()
_lock = threading.Lock()


def register_secret(value: str | None) -> None:
    """Mask ``value`` (and its URL-encoded forms) wherever it appears from now on in this process."""
    if not value:
        return
    value = value.strip()
    if len(value) < _MIN_SECRET:
        return
    with _lock:
        _registered.update({value, quote(value, safe=""), unquote(value)})


def register_url_secrets(url: str | None) -> None:
    """Register the password (or lone token) of every URL's userinfo in ``url``."""
    if not url:
        return
    for m in _URL_AUTHORITY.finditer(url):
        authority = m.group("authority")
        if "@" not in authority:
            continue
        userinfo = authority.rsplit("@", 1)[0]
        user, colon, password = userinfo.partition(":")
        register_secret(password if colon else user)


def _known_secrets() -> list[str]:
    found = set()
    for name, value in os.environ.items():
        secret = value.strip()
        if len(secret) >= _MIN_ENV_SECRET and (name in _ENV_NAMES or _ENV_SUFFIX.search(name)):
            found.update({secret, quote(secret, safe="")})
    with _lock:
        found |= _registered
    # longest first, so a secret that contains another is masked whole
    return sorted((s for s in found if len(s) >= _MIN_SECRET), key=len, reverse=True)


def _mask_authority(m: re.Match[str], drop: bool) -> str:
    scheme, authority = m.group("scheme"), m.group("authority")
    if "@" not in authority:
        return m.group(0)
    userinfo, host = authority.rsplit("@", 1)
    if drop:
        return f"{scheme}{host}"
    user, colon, _ = userinfo.partition(":")
    if colon and user and user != MASK:
        return f"{scheme}{user}:{MASK}@{host}"
    return f"{scheme}{MASK}@{host}"


def redact(text: str, *, drop_userinfo: bool = False) -> str:
    """``text`` with every credential the rules above recognise replaced by ``***``.

    ``drop_userinfo`` removes URL userinfo entirely instead (``https://host/...``), for URLs that
    are stored and compared, such as a collected repository's.
    """
    if not text:
        return text
    try:
        out = str(text)
        for secret in _known_secrets():
            if secret in out:
                out = out.replace(secret, MASK)
        out = _URL_AUTHORITY.sub(lambda m: _mask_authority(m, drop_userinfo), out)
        out = _HEADER.sub(_header, out)
        out = _QUERY.sub(lambda m: f"{m.group('key')}{MASK}", out)
        out = _TOKEN_SHAPES.sub(MASK, out)
        return _ASSIGNMENT.sub(_assignment, out)
    except Exception:  # noqa: BLE001 - redaction must never be the reason an error is lost
        return MASK


_AUTH_SCHEMES = ("bearer", "basic", "token", "digest", "negotiate", "ntlm", "aws4-hmac-sha256")


def _header(m: re.Match[str]) -> str:
    """Keep the auth scheme word (``Bearer``, ``token``, ``Basic``) so the message stays readable."""
    scheme, space, _ = m.group("value").partition(" ")
    value = f"{scheme} {MASK}" if space and scheme.lower() in _AUTH_SCHEMES else MASK
    return f"{m.group('name')}{m.group('sep')}{value}"


def _assignment(m: re.Match[str]) -> str:
    value = m.group("value")
    if value.startswith((MASK, "$")):  # already masked (a URL's userinfo), or names a variable
        return m.group(0)
    return f"{m.group('key')}{m.group('sep')}{MASK}"


def redact_url(url: str, *, drop_userinfo: bool = False) -> str:
    """A URL (or any text holding URLs) with its credentials hidden; see :func:`redact`."""
    return redact(url, drop_userinfo=drop_userinfo)


# whole escape sequences first (CSI "ESC [ ... m", OSC "ESC ] ... BEL" such as OSC 8 hyperlinks), so
# their parameters do not remain as noise; then any control character left
_ESCAPES = re.compile(
    r"\x1b\[[0-?]*[ -/]*[@-~]|\x1b\][^\x07\x1b]*(?:\x07|\x1b\\)?|\x9b[0-?]*[ -/]*[@-~]|\x1b[@-_]"
)
_CONTROL = re.compile(
    "[\x00-\x08\x0b-\x1f\x7f-\x9f\u061c\u200e\u200f\u202a-\u202e\u2066-\u2069]"
)
_NEWLINES = re.compile(r"\r\n|[\n\r\x0b\x0c\x85\u2028\u2029]")
_ANY = re.compile("[\x00-\x08\x0a-\x1f\x7f-\x9f\u061c\u200e\u200f\u202a-\u202e\u2066-\u2069\u2028\u2029]")


def needs_stripping(text: str) -> bool:
    """Whether :func:`strip_controls` would change ``text`` (one regex scan)."""
    return _ANY.search(text) is not None


def strip_controls(text: str, *, keep_newlines: bool = False) -> str:
    """Text safe to print on a terminal: C0/C1 control characters (ESC, BEL, ...) and bidi overrides
    removed; tab kept; newlines turned into spaces unless ``keep_newlines``."""
    if _ANY.search(text) is None:  # the usual case, one scan
        return text
    text = text.replace("\r\n", "\n").replace("\r", "\n") if keep_newlines else _NEWLINES.sub(" ", text)
    return _CONTROL.sub("", _ESCAPES.sub("", text))


def one_line(text: str) -> str:
    """An error or log message as one redacted, printable line."""
    return strip_controls(redact(text)).strip()
