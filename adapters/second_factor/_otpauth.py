"""The ``otpauth://`` Key URI format: strict parsing and canonical formatting.

Reference: Google Authenticator's "Key Uri Format". We parse strictly because a
URI that is silently misread gives codes that never match, which a person only
discovers when locked out. Every parameter is either honoured or refused by
name: ``secret``, ``issuer``, ``algorithm``, ``digits``, ``period``, ``counter``,
``encoder=steam`` (KeePassXC's and Aegis's Steam Guard codes) and ``image``
(kept and written back, never fetched). Bitwarden's ``steam://SECRET`` is read
as the same Steam credential.
"""

from __future__ import annotations

import base64
import binascii
import re
from dataclasses import dataclass
from typing import Literal
from urllib.parse import parse_qsl, quote, unquote, urlsplit

from keystead.core.errors import FormatError

__all__ = [
    "ALGORITHMS",
    "STEAM_DIGITS",
    "MIN_SECRET_BYTES",
    "OtpAuth",
    "OtpAuthError",
    "decode_secret",
    "encode_secret",
]

Kind = Literal["totp", "hotp"]
Algorithm = Literal["SHA1", "SHA256", "SHA512"]
Encoder = Literal["steam"]

ALGORITHMS: tuple[Algorithm, ...] = ("SHA1", "SHA256", "SHA512")
MIN_SECRET_BYTES = 10  # 80 bits: what real services issue (RFC 4226 asks for 128, tolerates 80)
MAX_SECRET_BYTES = 128
MAX_LABEL_CHARS = 256
MAX_PERIOD = 86400
MAX_IMAGE_CHARS = 2048
STEAM_DIGITS = 5
_PARAMS = {"secret", "issuer", "algorithm", "digits", "period", "counter", "encoder", "image"}
_BASE32 = re.compile(r"[A-Z2-7]+=*")
_CONTROL = re.compile(r"[\x00-\x1f\x7f]")


class OtpAuthError(FormatError):
    """An ``otpauth://`` URI or one of its parts is not acceptable."""


def decode_secret(text: str) -> bytes:
    """Decode a base32 secret: case-insensitive, spaces and padding optional, nothing else."""
    s = text.replace(" ", "").upper()
    if not s or not _BASE32.fullmatch(s):
        raise OtpAuthError("the secret is not base32")
    s = s.rstrip("=")
    if len(s) % 8 in (1, 3, 6):
        raise OtpAuthError("the secret has an impossible base32 length")
    try:
        raw = base64.b32decode(s + "=" * (-len(s) % 8))
    except binascii.Error as e:
        raise OtpAuthError("the secret is not base32") from e
    if encode_secret(raw) != s:  # non-zero trailing bits: two spellings of one secret
        raise OtpAuthError("the secret is not canonical base32")
    if not MIN_SECRET_BYTES <= len(raw) <= MAX_SECRET_BYTES:
        raise OtpAuthError(
            f"the secret must be {MIN_SECRET_BYTES * 8} to {MAX_SECRET_BYTES * 8} bits"
        )
    return raw


def encode_secret(raw: bytes) -> str:
    """Base32 without padding, as authenticator apps expect in a URI."""
    return base64.b32encode(raw).decode().rstrip("=")


def _int_param(name: str, value: str, low: int, high: int) -> int:
    if not value.isascii() or not value.isdigit() or (len(value) > 1 and value[0] == "0"):
        raise OtpAuthError(f"{name} must be a decimal number")
    n = int(value)
    if not low <= n <= high:
        raise OtpAuthError(f"{name} must be between {low} and {high}")
    return n


def _check_text(what: str, text: str) -> str:
    if _CONTROL.search(text) or ":" in text:
        raise OtpAuthError(f"the {what} may not contain a colon or control characters")
    if len(text) > MAX_LABEL_CHARS:
        raise OtpAuthError(f"the {what} is too long")
    return text


@dataclass(frozen=True)
class OtpAuth:
    """One OTP credential. Build it with :meth:`from_uri` or directly; both are checked."""

    kind: Kind
    secret: bytes
    account: str
    issuer: str | None = None
    algorithm: Algorithm = "SHA1"
    digits: int = 6
    period: int = 30
    counter: int = 0
    encoder: Encoder | None = None  # "steam": 5 characters of Steam's alphabet, not digits
    image: str | None = None  # an icon URL some apps show; kept, never fetched

    def __post_init__(self) -> None:
        if self.kind not in ("totp", "hotp"):
            raise OtpAuthError("the type must be totp or hotp")
        if not MIN_SECRET_BYTES <= len(self.secret) <= MAX_SECRET_BYTES:
            raise OtpAuthError(
                f"the secret must be {MIN_SECRET_BYTES * 8} to {MAX_SECRET_BYTES * 8} bits"
            )
        if not self.account.strip():
            raise OtpAuthError("the account name is empty")
        _check_text("account name", self.account)
        if self.issuer is not None:
            if not self.issuer.strip():
                raise OtpAuthError("the issuer is empty")
            _check_text("issuer", self.issuer)
        if self.algorithm not in ALGORITHMS:
            raise OtpAuthError("the algorithm must be SHA1, SHA256 or SHA512")
        if self.encoder == "steam":
            if self.kind != "totp" or self.algorithm != "SHA1" or self.digits != STEAM_DIGITS:
                raise OtpAuthError("a Steam credential is a SHA1 totp with 5 characters")
        elif self.encoder is not None:
            raise OtpAuthError(f"encoder {self.encoder!r} is not supported")
        elif self.digits not in (6, 7, 8):
            raise OtpAuthError("digits must be 6, 7 or 8")
        if self.image is not None and (
            not self.image or len(self.image) > MAX_IMAGE_CHARS or _CONTROL.search(self.image)
        ):
            raise OtpAuthError("the image parameter must be a short URL on one line")
        if not 1 <= self.period <= MAX_PERIOD:
            raise OtpAuthError(f"the period must be between 1 and {MAX_PERIOD}")
        if not 0 <= self.counter < 2**64:
            raise OtpAuthError("the counter must fit in 64 bits")

    @property
    def name(self) -> str:
        """``issuer:account``, or the account alone: how a person names this credential."""
        return f"{self.issuer}:{self.account}" if self.issuer else self.account

    @classmethod
    def from_uri(cls, uri: str, *, account: str | None = None) -> OtpAuth:
        """Parse an ``otpauth://`` or ``steam://`` URI; any deviation is an
        :class:`OtpAuthError`. ``account`` names a ``steam://`` secret, which has no label
        (default ``Steam``); an ``otpauth://`` URI names itself."""
        if not isinstance(uri, str):
            raise TypeError("uri must be str")
        uri = uri.strip()
        if _CONTROL.search(uri) or len(uri) > 4096:
            raise OtpAuthError("not an otpauth URI")
        if uri[:8].lower() == "steam://":
            return cls("totp", decode_secret(uri[8:]), account or "Steam", "Steam",
                       digits=STEAM_DIGITS, encoder="steam")  # fmt: skip
        if account is not None:
            raise ValueError("an otpauth URI names its own account")
        parts = urlsplit(uri)
        if parts.scheme.lower() != "otpauth" or not uri.lower().startswith("otpauth://"):
            raise OtpAuthError("not an otpauth URI")
        kind = parts.netloc.lower()
        if kind not in ("totp", "hotp") or parts.fragment:
            raise OtpAuthError("the type must be totp or hotp")
        issuer_label, account = cls._parse_label(parts.path)
        try:
            pairs = parse_qsl(
                parts.query, keep_blank_values=True, strict_parsing=True, errors="strict"
            )
        except ValueError as e:
            raise OtpAuthError("the query string is malformed") from e
        params: dict[str, str] = {}
        for key, value in pairs:
            if key.lower() not in _PARAMS:
                raise OtpAuthError(f"the otpauth parameter {key!r} is not supported")
            if key.lower() in params:
                raise OtpAuthError(f"parameter {key} appears twice")
            params[key.lower()] = value
        if "secret" not in params:
            raise OtpAuthError("the secret parameter is missing")
        secret = decode_secret(params["secret"])
        issuer = params.get("issuer")
        if issuer is not None and issuer_label is not None and issuer != issuer_label:
            raise OtpAuthError("the issuer parameter and the label's issuer differ")
        algorithm = params.get("algorithm", "SHA1").upper()
        if algorithm not in ALGORITHMS:
            raise OtpAuthError("the algorithm must be SHA1, SHA256 or SHA512")
        encoder = params.get("encoder")
        if encoder is not None and encoder.lower() != "steam":
            raise OtpAuthError(f"encoder {encoder!r} is not supported (only steam)")
        if encoder is not None:
            if kind != "totp" or algorithm != "SHA1":
                raise OtpAuthError("encoder=steam needs a totp URI with SHA1")
            if params.get("digits", "5") != "5":
                raise OtpAuthError("encoder=steam codes have 5 characters: digits must be 5")
            digits = STEAM_DIGITS
        else:
            digits = _int_param("digits", params.get("digits", "6"), 6, 8)
        if kind == "totp":
            if "counter" in params:
                raise OtpAuthError("a totp URI has no counter")
            period = _int_param("period", params.get("period", "30"), 1, MAX_PERIOD)
            counter = 0
        else:
            if "period" in params:
                raise OtpAuthError("an hotp URI has no period")
            if "counter" not in params:
                raise OtpAuthError("an hotp URI needs a counter")
            period = 30
            counter = _int_param("counter", params["counter"], 0, 2**64 - 1)
        return cls(
            kind="totp" if kind == "totp" else "hotp",
            secret=secret,
            account=account,
            issuer=issuer if issuer is not None else issuer_label,
            algorithm=algorithm,
            digits=digits,
            period=period,
            counter=counter,
            encoder="steam" if encoder is not None else None,
            image=params.get("image"),
        )

    @staticmethod
    def _parse_label(path: str) -> tuple[str | None, str]:
        if not path.startswith("/") or len(path) < 2:
            raise OtpAuthError("the label is missing")
        try:
            label = unquote(path[1:], errors="strict")
        except UnicodeDecodeError as e:
            raise OtpAuthError("the label is not UTF-8") from e
        if label.count(":") > 1:
            raise OtpAuthError("the label has more than one colon")
        if ":" in label:
            issuer, account = label.split(":")
            if not issuer.strip():
                raise OtpAuthError("the label's issuer is empty")
            return issuer, account.lstrip(" ")
        return None, label

    def to_uri(self) -> str:
        """The canonical URI: every parameter explicit, so no app has to guess a default."""
        label = quote(self.account, safe="@")
        query = f"secret={encode_secret(self.secret)}"
        if self.issuer:
            label = quote(self.issuer, safe="@") + ":" + label
            query += "&issuer=" + quote(self.issuer, safe="@")
        query += f"&algorithm={self.algorithm}&digits={self.digits}"
        if self.kind == "totp":
            query += f"&period={self.period}"
        else:
            query += f"&counter={self.counter}"
        if self.encoder is not None:
            query += f"&encoder={self.encoder}"
        if self.image is not None:
            query += "&image=" + quote(self.image, safe="")
        return f"otpauth://{self.kind}/{label}?{query}"

    def __repr__(self) -> str:  # never print the secret
        kind = "steam" if self.encoder == "steam" else self.kind
        return f"OtpAuth({kind}, {self.name!r}, {self.algorithm}, {self.digits} digits)"
