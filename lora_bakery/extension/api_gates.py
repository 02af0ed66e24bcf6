"""The gates every ``/bakery/v1`` request passes: credentials, network exposure, allowed folders, names.

At least as strict as the webui (A1111 1.10.1): under ``--api-auth`` every route needs the same
HTTP Basic credentials (401 with ``WWW-Authenticate: Basic`` otherwise, passwords compared in
constant time); when the server is reachable beyond loopback (``--listen``, ``--share``,
``--ngrok``, a non-loopback ``--server-name``; ``bakery app --listen``/``--share``) and no
credentials are set, routes that write or start jobs answer 403 naming the flag that allows them
(read-only routes still answer); every path in a request must resolve inside an allowed folder
(403 naming the setting) and every name that becomes a file name must stay one component (400).
Which route is which, and which fields are paths, is the table in ``api_access``.
"""

from __future__ import annotations

import base64
import binascii
import ipaddress
import logging
import secrets
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any

from lora_bakery.extension.allowed_folders import (
    AllowList,
    BadName,
    PathNotAllowed,
    check_name,
    split_folders,
)
from lora_bakery.extension.api_access import ROUTES

if TYPE_CHECKING:
    from lora_bakery.extension.host.base import ServerFacts

logger = logging.getLogger(__name__)

WEBUI_SETTING = "Settings → LoRA Bakery → \"Folders the HTTP API may use\""
WEBUI_ALLOW_HINT = f"add it to {WEBUI_SETTING}, or open it in a LoRA Bakery tab first"
APP_ALLOW_HINT = "start `bakery app` with --allow DIR, or open it in a LoRA Bakery tab first"


def parse_api_auth(text: str | None) -> dict[str, str]:
    """``"u1:p1,u2:p2"`` → ``{"u1": "p1", "u2": "p2"}``, as A1111's ``Api`` reads ``--api-auth``.

    An entry without ``:`` is skipped with a warning (A1111 itself fails to start on one).
    """
    creds: dict[str, str] = {}
    for entry in (text or "").split(","):
        if not entry:
            continue
        user, sep, password = entry.partition(":")
        if not sep:
            logger.warning("LoRA Bakery: API credential entry without ':' ignored")
            continue
        creds[user] = password
    return creds


def read_auth_file(path: str | Path) -> dict[str, str]:
    """Credentials from a file in A1111's ``--gradio-auth-path`` form: ``u:p`` entries, comma- or line-separated.

    Raises:
        ValueError: the file cannot be read, or holds no ``user:password`` entry.
    """
    try:
        text = Path(path).read_text(encoding="utf-8")
    except OSError as exc:
        raise ValueError(f"cannot read the credentials file {str(path)!r}: {exc.strerror or exc}") from None
    creds = {}
    for line in text.splitlines():
        for entry in line.strip().split(","):
            user, sep, password = entry.strip().partition(":")
            if sep and user:
                creds[user] = password
    if not creds:
        raise ValueError(f"no user:password entry in {str(path)!r}")
    return creds


def check_basic(header: str | None, credentials: Mapping[str, str]) -> bool:
    """``header`` (an ``Authorization`` value) carries one of ``credentials``; constant-time per entry."""
    scheme, _, token = (header or "").partition(" ")
    if scheme.lower() != "basic" or not token:
        return False
    try:
        user, sep, password = base64.b64decode(token.strip(), validate=True).decode("utf-8").partition(":")
    except (binascii.Error, UnicodeDecodeError, ValueError):
        return False
    if not sep:
        return False
    ok = False
    for known_user, known_password in credentials.items():
        same_user = secrets.compare_digest(user.encode(), known_user.encode())
        same_password = secrets.compare_digest(password.encode(), known_password.encode())
        ok |= same_user and same_password
    return ok


def is_loopback(host: str) -> bool:
    """``localhost``, ``127.x.x.x`` or ``::1``; any other name or address counts as reachable."""
    name = host.strip().strip("[]").lower()
    if name == "localhost" or name.endswith(".localhost"):
        return True
    try:
        return ipaddress.ip_address(name).is_loopback
    except ValueError:
        return False


def exposure(facts: ServerFacts) -> str | None:
    """The flag that makes the server reachable beyond this machine (``--listen`` …), or ``None``."""
    for flag, on in (("--share", facts.share), ("--listen", facts.listen), ("--ngrok", facts.ngrok)):
        if on:
            return flag
    if facts.server_name and not is_loopback(facts.server_name):
        return f"--server-name {facts.server_name}"
    return None


@dataclass
class ApiGates:
    """What a request must satisfy; built once when the routes are mounted.

    Attributes:
        credentials (`dict[str, str]`): user → password; empty means no credentials.
        auth_required (`bool`): refuse requests without valid credentials (set whenever credentials
            were configured, even if none parsed: a malformed ``--api-auth`` locks, never opens).
        exposed_by (`str`, *optional*): the flag that makes the server reachable beyond loopback.
        writes_allowed_exposed (`bool`): A1111's ``--enable-insecure-extension-access``.
        write_hint (`str`): what a refused write says to do.
        allow (`AllowList`): the folders requests may name.
    """

    credentials: dict[str, str] = field(default_factory=dict)
    auth_required: bool = False
    exposed_by: str | None = None
    writes_allowed_exposed: bool = False
    write_hint: str = "start the server with API credentials"
    allow: AllowList = field(default_factory=AllowList)

    @classmethod
    def for_webui(cls, facts: ServerFacts, settings: Mapping[str, Any] | None = None) -> ApiGates:
        """The gates of an A1111/Forge webui from its ``ServerFacts`` and our (live) settings.

        Allowed folders: the webui's data folders, the folders in the ``api_allowed_folders``
        setting, our ``output_dir`` and presets file settings, the LoRA Bakery cache, and the
        folders opened in the tabs.
        """
        from lora_bakery.trainer.tiny import default_cache_root

        def configured() -> list[str]:
            if settings is None:
                return []
            extra = [settings.get("output_dir"), settings.get("compare_presets_file")]
            return split_folders(settings.get("api_allowed_folders")) + [str(e) for e in extra if e]

        return cls(credentials=parse_api_auth(facts.api_auth), auth_required=bool(facts.api_auth),
                   exposed_by=exposure(facts), writes_allowed_exposed=facts.insecure_extension_access,
                   write_hint="start the webui with --api-auth USER:PASS (or --enable-insecure-extension-access "
                              "to allow it without credentials)",
                   allow=AllowList([*facts.data_folders, str(default_cache_root())], configured,
                                   hint=WEBUI_ALLOW_HINT))

    @classmethod
    def for_app(cls, credentials: Mapping[str, str] | None = None, *, listen: bool = False, share: bool = False,
                allow: Iterable[str] = ()) -> ApiGates:
        """The gates of ``bakery app``: ``--auth``/``--auth-file``, ``--listen``/``--share``, ``--allow``."""
        from lora_bakery.trainer.tiny import default_cache_root

        exposed = "--share" if share else "--listen" if listen else None
        return cls(credentials=dict(credentials or {}), auth_required=bool(credentials), exposed_by=exposed,
                   write_hint="start `bakery app` with --auth USER:PASS (or --auth-file FILE)",
                   allow=AllowList([*allow, str(default_cache_root())], hint=APP_ALLOW_HINT))

    def refusal(self, method: str, route: str, data: Mapping[str, Any], authorization: str | None
                ) -> tuple[int, str] | None:
        """Why the request must be refused, as (HTTP status, message); ``None`` lets it through.

        Args:
            method (`str`), route (`str`): the route as registered (path under ``/bakery/v1``).
            data (`Mapping`): the request as sent (JSON body over query parameters).
            authorization (`str`, *optional*): the ``Authorization`` header.
        """
        if self.auth_required and not check_basic(authorization, self.credentials):
            return 401, "Incorrect username or password (this server requires the API credentials)"
        access = ROUTES.get((method, route))
        if access is None:
            return 403, f"{method} {route} is not classified as read-only or writing; refused"
        if access.writes(data) and self.exposed_by and not self.auth_required and not self.writes_allowed_exposed:
            return 403, (f"{method} /bakery/v1{route} changes files or starts a job, and this server is reachable "
                         f"beyond this machine ({self.exposed_by}) without API credentials: {self.write_hint}")
        try:
            for ref in access.refs(data):
                if ref.kind == "name":
                    check_name(ref.value, ref.field)
                else:
                    self.allow.check(ref.value, ref.field, ref.base)
        except BadName as exc:
            return 400, str(exc)
        except PathNotAllowed as exc:
            return 403, str(exc)
        return None

    def require_path(self, value: str, field: str) -> None:
        """For a path a route derives itself (a default output folder): raise 403 when not allowed."""
        from fastapi import HTTPException

        try:
            self.allow.check(value, field)
        except PathNotAllowed as exc:
            raise HTTPException(status_code=403, detail=str(exc)) from None
