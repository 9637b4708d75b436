"""The service's tables (SQLAlchemy 2 ORM). Rows never leave ``keystead.core.service``.

The Alembic migrations in ``migrations/versions`` create exactly these tables;
``tests/unit/core/test_migrations.py`` checks the two agree.
"""

from __future__ import annotations

from sqlalchemy import (
    BigInteger,
    Boolean,
    Index,
    Integer,
    LargeBinary,
    String,
    Text,
    UniqueConstraint,
)
from sqlalchemy.orm import DeclarativeBase, Mapped, mapped_column


class Base(DeclarativeBase):
    pass


class Account(Base):
    __tablename__ = "accounts"
    name: Mapped[str] = mapped_column(String(64), primary_key=True)
    created: Mapped[int] = mapped_column(BigInteger)
    item_seq: Mapped[int] = mapped_column(BigInteger, default=0)
    recovery_blob: Mapped[bytes | None] = mapped_column(LargeBinary, nullable=True)


class ChainEntryRow(Base):
    __tablename__ = "chain_entries"
    account: Mapped[str] = mapped_column(String(64), primary_key=True)
    seq: Mapped[int] = mapped_column(Integer, primary_key=True)
    entry: Mapped[bytes] = mapped_column(LargeBinary)
    sig: Mapped[bytes] = mapped_column(LargeBinary)
    device_sig: Mapped[bytes | None] = mapped_column(LargeBinary, nullable=True)
    new_key_sig: Mapped[bytes | None] = mapped_column(LargeBinary, nullable=True)


class DeviceRow(Base):
    """Derived from the chain on every append, for fast request authentication."""

    __tablename__ = "devices"
    account: Mapped[str] = mapped_column(String(64), primary_key=True)
    device_id: Mapped[str] = mapped_column(String(32), primary_key=True)
    name: Mapped[str] = mapped_column(String(64))
    role: Mapped[str] = mapped_column(String(16))
    scopes: Mapped[str] = mapped_column(Text)
    signing_key: Mapped[bytes] = mapped_column(LargeBinary)
    live: Mapped[bool] = mapped_column(Boolean)


class ItemRow(Base):
    __tablename__ = "items"
    account: Mapped[str] = mapped_column(String(64), primary_key=True)
    collection: Mapped[str] = mapped_column(String(128), primary_key=True)
    item_id: Mapped[str] = mapped_column(String(128), primary_key=True)
    version: Mapped[int] = mapped_column(Integer)
    epoch: Mapped[int] = mapped_column(Integer)
    ciphertext: Mapped[bytes] = mapped_column(LargeBinary)
    deleted: Mapped[bool] = mapped_column(Boolean)
    seq: Mapped[int] = mapped_column(BigInteger)
    writer: Mapped[str] = mapped_column(String(16))
    signature: Mapped[bytes] = mapped_column(LargeBinary)
    proof: Mapped[bytes] = mapped_column(LargeBinary)
    __table_args__ = (Index("ix_items_changes", "account", "collection", "seq"),)


class GrantRow(Base):
    __tablename__ = "grants"
    id: Mapped[int] = mapped_column(Integer, primary_key=True, autoincrement=True)
    account: Mapped[str] = mapped_column(String(64))
    key: Mapped[str] = mapped_column(String(128))
    epoch: Mapped[int] = mapped_column(Integer)
    target_kind: Mapped[str] = mapped_column(String(16))
    target: Mapped[str] = mapped_column(String(320))
    target_generation: Mapped[int] = mapped_column(Integer)
    kfrag: Mapped[bytes] = mapped_column(LargeBinary)
    expires: Mapped[int | None] = mapped_column(BigInteger, nullable=True)
    created: Mapped[int] = mapped_column(BigInteger)
    __table_args__ = (UniqueConstraint("account", "key", "epoch", "target_kind", "target"),)


class NonceRow(Base):
    __tablename__ = "nonces"
    device: Mapped[str] = mapped_column(String(128), primary_key=True)
    nonce: Mapped[str] = mapped_column(String(32), primary_key=True)
    time: Mapped[int] = mapped_column(BigInteger, index=True)


class PairingRow(Base):
    __tablename__ = "pairings"
    code: Mapped[str] = mapped_column(String(32), primary_key=True)
    account: Mapped[str] = mapped_column(String(64), index=True)
    request: Mapped[bytes] = mapped_column(LargeBinary)
    poll_token: Mapped[str] = mapped_column(String(64))
    created: Mapped[int] = mapped_column(BigInteger)
    expires: Mapped[int] = mapped_column(BigInteger)
    status: Mapped[str] = mapped_column(String(16))


class PairingFailureRow(Base):
    __tablename__ = "pairing_failures"
    id: Mapped[int] = mapped_column(Integer, primary_key=True, autoincrement=True)
    account: Mapped[str] = mapped_column(String(64), index=True)
    time: Mapped[int] = mapped_column(BigInteger)


class SpoolRow(Base):
    __tablename__ = "spool"
    id: Mapped[int] = mapped_column(Integer, primary_key=True, autoincrement=True)
    account: Mapped[str] = mapped_column(String(64))
    channel: Mapped[str] = mapped_column(String(64))
    sender: Mapped[str] = mapped_column(String(320))
    body: Mapped[bytes] = mapped_column(LargeBinary)
    created: Mapped[int] = mapped_column(BigInteger)
    expires: Mapped[int | None] = mapped_column(BigInteger, nullable=True)
    # AUTOINCREMENT: SQLite would otherwise reuse the id of a deleted newest message, and a
    # reader waiting "after" that id would never see the new one.
    __table_args__ = (
        Index("ix_spool_channel", "account", "channel", "id"),
        {"sqlite_autoincrement": True},
    )


class AuditRow(Base):
    __tablename__ = "audit"
    __table_args__ = {"sqlite_autoincrement": True}
    id: Mapped[int] = mapped_column(Integer, primary_key=True, autoincrement=True)
    account: Mapped[str] = mapped_column(String(64), index=True)
    key: Mapped[str] = mapped_column(String(128))
    grantee_account: Mapped[str] = mapped_column(String(320))
    grantee_device: Mapped[str] = mapped_column(String(64))
    context: Mapped[str] = mapped_column(String(256))
    allowed: Mapped[bool] = mapped_column(Boolean)
    reason: Mapped[str] = mapped_column(String(128))
    time: Mapped[int] = mapped_column(BigInteger)
    # Refusals of requesters without a grant are counted into one row per hour, not one each.
    count: Mapped[int] = mapped_column(Integer, server_default="1")
    # SHA-256 (hex) of the capsules re-encrypted: what was opened, whatever context says.
    capsule: Mapped[str] = mapped_column(String(64), server_default="")


class RecordRow(Base):
    """Small per-account records adapters keep at the service (tokens, answers)."""

    __tablename__ = "records"
    account: Mapped[str] = mapped_column(String(64), primary_key=True)
    namespace: Mapped[str] = mapped_column(String(64), primary_key=True)
    key: Mapped[str] = mapped_column(String(256), primary_key=True)
    value: Mapped[bytes] = mapped_column(LargeBinary)
    created: Mapped[int] = mapped_column(BigInteger)


class CollectionSeqRow(Base):
    """The newest change number of one collection: numbers are unique and gap-free per
    collection because a write takes them while holding this row (or SQLite's write lock)."""

    __tablename__ = "collection_seqs"
    account: Mapped[str] = mapped_column(String(64), primary_key=True)
    collection: Mapped[str] = mapped_column(String(128), primary_key=True)
    seq: Mapped[int] = mapped_column(BigInteger)
    items: Mapped[int] = mapped_column(BigInteger, default=0)
    """How many items the collection holds, and their ciphertext bytes: the quota check
    reads these few rows instead of scanning every item of the account on every write."""
    bytes: Mapped[int] = mapped_column(BigInteger, default=0)


class CounterRow(Base):
    """Rate-limit counters shared by every service process: hits of ``key`` in ``window``."""

    __tablename__ = "counters"
    key: Mapped[str] = mapped_column(String(200), primary_key=True)
    window: Mapped[int] = mapped_column(BigInteger, primary_key=True)
    count: Mapped[int] = mapped_column(BigInteger)


class ServiceKeyRow(Base):
    """Keys the service itself holds, shared by every process (the VAPID key of Web Push)."""

    __tablename__ = "service_keys"
    name: Mapped[str] = mapped_column(String(64), primary_key=True)
    value: Mapped[bytes] = mapped_column(LargeBinary)
    created: Mapped[int] = mapped_column(BigInteger)


class PushSubscriptionRow(Base):
    """One device's Web Push subscription (RFC 8030): where to send its wake-ups."""

    __tablename__ = "push_subscriptions"
    account: Mapped[str] = mapped_column(String(64), primary_key=True)
    device_id: Mapped[str] = mapped_column(String(32), primary_key=True)
    endpoint: Mapped[str] = mapped_column(Text)
    p256dh: Mapped[bytes] = mapped_column(LargeBinary)
    auth: Mapped[bytes] = mapped_column(LargeBinary)
    created: Mapped[int] = mapped_column(BigInteger)
