"""Who may read what over HTTP: a customer reads their own order with its lookup secret; whole-bank listings
and every order need the service token.

Order ids are guessable (`YU7-000042`), so an order's page and JSON answer only to the secret that the maker
hands the customer in the order confirmation: `lookup_secret(key, order_id)`, an HMAC-SHA256 of the order id
under the server's lookup key (ORDERBANK_WEB_LOOKUP_KEY), 26 base32 characters. Operators and other services
send `Authorization: Bearer <ORDERBANK_WEB_SERVICE_TOKEN>`. Both are compared in constant time. With no lookup
key configured no customer secret is valid; with no service token the listings are off.
"""

from __future__ import annotations

import base64
import hashlib
import hmac
from collections.abc import Mapping
from dataclasses import dataclass
from enum import Enum

SECRET_PARAM = "secret"
"""The query parameter (or `X-Orderbank-Secret` header) that carries an order's lookup secret."""
SECRET_HEADER = "X-Orderbank-Secret"
MAX_CREDENTIAL = 256


def lookup_secret(key: str, order_id: str) -> str:
    """The secret that lets one customer look up one order (what the order confirmation hands out)."""
    digest = hmac.new(key.encode(), order_id.encode(), hashlib.sha256).digest()
    return base64.b32encode(digest[:16]).decode().rstrip("=").lower()


class Grant(Enum):
    """What a request's credentials allow."""

    NONE = "none"
    ORDER = "order"  # this one order
    SERVICE = "service"  # everything


@dataclass(frozen=True)
class Access:
    lookup_key: str | None
    service_token: str | None

    def bearer(self, headers: Mapping[str, str]) -> Grant:
        """SERVICE for the right service token in `Authorization: Bearer ...`, else NONE."""
        scheme, _, token = headers.get("Authorization", "").partition(" ")
        if self.service_token and scheme.lower() == "bearer" and _same(token.strip(), self.service_token):
            return Grant.SERVICE
        return Grant.NONE

    def order(self, order_id: str, headers: Mapping[str, str], query: Mapping[str, str]) -> Grant:
        """SERVICE for the service token, ORDER for this order's lookup secret, else NONE."""
        if self.bearer(headers) is Grant.SERVICE:
            return Grant.SERVICE
        given = query.get(SECRET_PARAM) or headers.get(SECRET_HEADER) or ""
        if self.lookup_key and _same(given, lookup_secret(self.lookup_key, order_id)):
            return Grant.ORDER
        return Grant.NONE


def _same(given: str, expected: str) -> bool:
    if len(given) > MAX_CREDENTIAL:
        return False
    return hmac.compare_digest(given.encode(), expected.encode())
