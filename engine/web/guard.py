"""What keeps the pages safe to expose: security headers on every answer, the operations dashboard's
credentials, limits on what a request may carry, and error pages that say what was wrong and nothing of how
the server is built.

- Customers: an order's page answers to its lookup secret (orderbank.engine.access), and says the same
  "we could not find this order" for an order that does not exist and for a wrong secret.
- Operations: free when the server listens on loopback only (nobody else can reach it); otherwise the
  service token (ORDERBANK_WEB_SERVICE_TOKEN) as `Authorization: Bearer ...`, or as the password of HTTP
  basic authentication, which a browser asks for (any user name). With no token configured, it is off.
"""

from __future__ import annotations

import base64
import binascii
import ipaddress
from collections.abc import Mapping

from aiohttp import web

from orderbank.engine.access import Access, Grant
from orderbank.engine.web import render

MAX_QUERY = 1024  # a secret is 26 characters; nothing a page takes comes near
MAX_PATH = 256
CSP = ("default-src 'none'; script-src 'self'; style-src 'self'; img-src 'self' data:; connect-src 'self'; "
       "base-uri 'none'; form-action 'none'; frame-ancestors 'none'")
REPORT_CSP = "default-src 'none'; style-src 'unsafe-inline'; img-src data:; base-uri 'none'; frame-ancestors 'none'"
HEADERS = {"Content-Security-Policy": CSP, "X-Frame-Options": "DENY", "X-Content-Type-Options": "nosniff",
           "Referrer-Policy": "no-referrer", "Cross-Origin-Opener-Policy": "same-origin",
           "Cross-Origin-Resource-Policy": "same-origin", "Permissions-Policy": "interest-cohort=()"}
PRIVATE = {"Cache-Control": "no-store"}
HTML = "text/html"
REALM = 'Basic realm="orderbank operations", charset="UTF-8"'


def loopback(host: str) -> bool:
    """Whether a bind address reaches this machine only."""
    if host == "localhost":
        return True
    try:
        return ipaddress.ip_address(host).is_loopback
    except ValueError:
        return False


def wants_html(headers: Mapping[str, str]) -> bool:
    """A browser asks for text/html before JSON; API clients ask for JSON or anything."""
    accept = headers.get("Accept", "")
    html, json = accept.find(HTML), accept.find("application/json")
    return html >= 0 and (json < 0 or html < json)


def html_page(body: str, status: int = 200, private: bool = False, csp: str = CSP) -> web.Response:
    headers = {**HEADERS, "Content-Security-Policy": csp, **(PRIVATE if private else {})}
    return web.Response(text=body, status=status, content_type=HTML, charset="utf-8", headers=headers)


def message(status: int, heading: str, text: str, hint: str = "", headers: Mapping[str, str] | None = None,
            ) -> web.Response:
    """An error page: what was wrong and what to do, nothing else."""
    response = html_page(render.page("message", {"heading": heading, "message": text, "hint": hint}), status,
                         private=True)
    response.headers.update(headers or {})
    return response


NOT_FOUND_ORDER = ("We could not find this order",
                   "There is no order with this number and link. Check the link in your order confirmation, "
                   "or ask customer service for a new one.")
BAD_ORDER_ID = ("This is not an order number",
                "Order numbers are 1 to 64 letters, digits and . _ : - and start with a letter or digit, "
                "for example YU7-000042.")


def unknown_order() -> web.Response:
    return message(404, *NOT_FOUND_ORDER)


def bad_order_id() -> web.Response:
    return message(400, *BAD_ORDER_ID)


def too_long() -> web.Response:
    return message(414, "This address is too long", "Open the link from your order confirmation as it is.")


def order_grant(access: Access, order_id: str, request: web.Request) -> Grant:
    return access.order(order_id, request.headers, request.query)


def operator(access: Access, open_on_loopback: bool, request: web.Request) -> web.Response | None:
    """None when the request may see the operations pages, else the answer that says why not."""
    if open_on_loopback:
        return None
    if not access.service_token:
        return message(403, "The operations pages are off",
                       "This server listens beyond this machine and no service token is configured "
                       "(ORDERBANK_WEB_SERVICE_TOKEN).")
    if access.bearer(request.headers) is Grant.SERVICE:
        return None
    password = _basic_password(request.headers.get("Authorization", ""))
    if password is not None and access.bearer({"Authorization": f"Bearer {password}"}) is Grant.SERVICE:
        return None
    return message(401, "Sign in to see operations", "Use the service token as the password (any user name).",
                   headers={"WWW-Authenticate": REALM})


def _basic_password(header: str) -> str | None:
    scheme, _, encoded = header.partition(" ")
    if scheme.lower() != "basic" or len(encoded) > 1024:
        return None
    try:
        _, sep, password = base64.b64decode(encoded.strip(), validate=True).decode().partition(":")
    except (binascii.Error, UnicodeDecodeError):
        return None
    return password if sep else None
