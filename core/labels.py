"""Every signature purpose and key-derivation label Keystead's core uses, in one place.

A distinct label per purpose means a signature or derived key made for one use
can never be taken for another. Adapters keep their own labels in their own
folder, under ``keystead/v1/<adapter>/``. Protocol version 2 changed the chain,
items, requests and the keystore, so their labels name v2: nothing signed for
version 1 verifies as version 2.
"""

CHAIN_ENTRY = "keystead/v2/chain/entry"
CHAIN_DEVICE_COUNTERSIGN = "keystead/v2/chain/device-countersign"
CHAIN_KEY_ROTATION = "keystead/v2/chain/key-rotation"
EPOCH_PREVIOUS = b"keystead/v2/epoch/previous-secret"
REQUEST = "keystead/v2/request"
ITEM_AD = b"keystead/v2/item"
ITEM_SIGNATURE = "keystead/v2/item/signature"
SEALED_KEY_AD = b"keystead/v2/sealed-key"
BUNDLE = "keystead/v2/bundle"
KEYSTORE_AD = b"keystead/v2/keystore"
RECOVERY_APPEND = "keystead/v2/chain/recovery-append"
RECOVERY_BLOB = b"keystead/v2/recovery-blob"
SAS_LABEL = b"keystead/v2/pairing/sas"
