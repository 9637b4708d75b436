"""Every signature purpose and AEAD label of the messaging adapter, in one place."""

ENVELOPE = "keystead/v1/messaging/envelope"
"""The sender device's signature over an envelope's exact bytes."""

BODY_AD = b"keystead/v1/messaging/body"
"""Associated-data prefix of a message body (AEAD under the message key)."""

STORE_AD = b"keystead/v1/messaging/store"
"""Associated-data prefix of a record in this device's local message store."""

REPLAY_TAG = b"keystead/v1/messaging/replay-tag"
"""Keyed hash of (sender, message id) kept to refuse replays without storing who wrote."""

CHANNEL = "messages"
"""The spool channel and collection direct messages are sealed to."""

GROUP_PREFIX = "messages/group/"
"""Group keys are shared keys of their owner named ``messages/group/NAME``."""
