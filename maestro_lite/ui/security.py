"""What keeps the dashboard safe: who may look, which requests may act, what is never shown.

- **Binding.** Loopback by default; any other address needs a token
  (``MAESTRO_UI_TOKEN``), and :func:`check_bind` refuses to start without one.
- **Token.** When set, every request carries it: ``?token=`` once (answered with a cookie
  and a redirect that drops it from the address), the cookie, or ``Authorization: Bearer``.
- **Host.** On loopback only ``127.0.0.1``, ``localhost`` and ``[::1]`` are accepted as the
  ``Host``, so a web page whose domain resolves to 127.0.0.1 (DNS rebinding) reads nothing.
- **Actions** are ``POST`` forms carrying a CSRF token only the dashboard's own pages know;
  a request another site sends (``Origin`` of another site, ``Sec-Fetch-Site: cross-site``)
  is refused before its form is read.
- **Secrets** are masked in everything rendered (:class:`Redactor`): the values of
  environment variables named like keys, tokens and passwords, and ``sk-...`` API keys.
"""

from __future__ import annotations

import hmac
import ipaddress
import os
import re
import secrets
from collections.abc import Mapping

from ..errors import UserError

__all__ = ["LOOPBACK_NAMES", "Guard", "Redactor", "check_bind", "is_loopback"]

LOOPBACK_NAMES = frozenset({"127.0.0.1", "localhost", "::1", "[::1]"})
COOKIE = "maestro_ui_token"
_SECRET_NAME = re.compile(r"(KEY|TOKEN|SECRET|PASSWORD|PASSWD|CREDENTIAL)", re.IGNORECASE)
_KEY_SHAPES = re.compile(r"\b(sk-[A-Za-z0-9_-]{12,}|Bearer\s+[A-Za-z0-9._~+/=-]{12,})")
MASK = "[redacted]"


def is_loopback(host: str) -> bool:
    """Whether ``host`` (a name or address) is this machine only."""
    if host in LOOPBACK_NAMES:
        return True
    try:
        return ipaddress.ip_address(host.strip("[]")).is_loopback
    except ValueError:
        return False


def check_bind(host: str, token: str | None) -> None:
    """Refuse to serve on a non-loopback address without a token.

    Raises:
        UserError: ``host`` is reachable from other machines and ``token`` is empty.
    """
    if not is_loopback(host) and not token:
        raise UserError(
            f"refusing to serve the dashboard on {host} without a token: anyone who can "
            "reach that address could read every run and act on them",
            hint="Set MAESTRO_UI_TOKEN to a long random value (or serve on 127.0.0.1).",
        )


class Redactor:
    """Masks secrets in text: the values of secret-looking environment variables (and any
    extra values given), and strings shaped like API keys or bearer tokens."""

    def __init__(self, environ: Mapping[str, str] | None = None, extra: tuple[str, ...] = ()):
        env = os.environ if environ is None else environ
        values = {v for k, v in env.items() if _SECRET_NAME.search(k) and len(v) >= 8}
        values |= {v for v in extra if v and len(v) >= 4}
        # Longest first, so a secret containing another is masked whole.
        self._values = sorted(values, key=len, reverse=True)

    def __call__(self, text: str) -> str:
        for value in self._values:
            if value in text:
                text = text.replace(value, MASK)
        return _KEY_SHAPES.sub(MASK, text)


class Guard:
    """The dashboard's access rules (see the module documentation).

    Args:
        token: The token every request must carry; ``None`` on loopback without one.
        host: The address served (its ``Host`` names are checked on loopback).
    """

    def __init__(self, *, token: str | None, host: str) -> None:
        self.token = token or None
        self.loopback = is_loopback(host)
        # Per server process: a form rendered by another process (or site) never matches.
        self.csrf = secrets.token_urlsafe(32)

    def host_allowed(self, host_header: str) -> bool:
        """Whether a request's ``Host`` header names this server."""
        if not self.loopback:
            return True  # reached from elsewhere: the token is the guard
        name = host_header.rsplit(":", 1)[0] if not host_header.endswith("]") else host_header
        return name in LOOPBACK_NAMES

    def token_ok(self, given: str | None) -> bool:
        """Whether ``given`` is the token (always true when none is set)."""
        if self.token is None:
            return True
        return given is not None and hmac.compare_digest(given.encode(), self.token.encode())

    def csrf_ok(self, given: str | None) -> bool:
        return given is not None and hmac.compare_digest(given.encode(), self.csrf.encode())

    @staticmethod
    def same_site(origin: str | None, fetch_site: str | None, host_header: str) -> bool:
        """Whether an unsafe request comes from the dashboard's own pages (or a tool such as
        curl, which sends neither ``Origin`` nor ``Sec-Fetch-Site``)."""
        if fetch_site is not None and fetch_site not in ("same-origin", "none"):
            return False
        if origin is not None:
            if origin == "null":
                return False
            return origin.split("://", 1)[-1] == host_header
        return True
