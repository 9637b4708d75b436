"""Every signature purpose and AEAD label of the messaging adapter, in one place."""

ENVELOPE = "keystead/v2/messaging/envelope"
"""Purpose of the core signed envelope a message travels in (message format 2; format 1
signed ``keystead/v1/messaging/envelope`` over its own wrapper)."""

BODY_AD = b"keystead/v1/messaging/body"
"""Associated-data prefix of a message body (AEAD under the message key)."""

STORE_AD = b"keystead/v1/messaging/store"
"""Associated-data prefix of a record in this device's local message store."""

REPLAY_TAG = b"keystead/v1/messaging/replay-tag"
"""Keyed hash of (sender, message id) kept to refuse replays without storing who wrote."""

CHANNEL = "messages"
"""The spool channel and collection direct messages are sealed to."""

GROUP_PREFIX = "messages/group/"
"""Group keys are shared keys of their owner named ``messages/group/ID`` (ID: 32 hex digits,
opaque; the group's name is in the owner's encrypted name record only)."""

GROUP_NAMES = "messaging.groups"
"""Record namespace at the owner's service: per group id, the group's name as a sealed-key
record sealed to the group key (members open it through their grant; the service cannot)."""
