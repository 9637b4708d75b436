"""Every signature purpose and key-derivation label Keystead's core uses, in one place.

A distinct label per purpose means a signature or derived key made for one use
can never be taken for another. Adapters keep their own labels in their own
folder, under ``keystead/v1/<adapter>/``.
"""

CHAIN_ENTRY = "keystead/v1/chain/entry"
CHAIN_DEVICE_COUNTERSIGN = "keystead/v1/chain/device-countersign"
REQUEST = "keystead/v1/request"
ITEM_AD = b"keystead/v1/item"
KEYSTORE_AD = b"keystead/v1/keystore"
RECOVERY_APPEND = "keystead/v1/chain/recovery-append"
SAS_LABEL = b"keystead/v1/pairing/sas"
