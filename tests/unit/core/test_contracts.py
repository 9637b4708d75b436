"""The layout's contracts, checked on the source (import-linter's contracts, with ast):

- core imports no adapter;
- no adapter imports another adapter (they ask core for named services instead);
- no adapter imports an underscore name of ``keystead.core`` (a ``_module`` or a ``_name``);
- ``__all__`` of ``keystead.core`` and of every adapter package is pinned here.
"""

from __future__ import annotations

import ast
import importlib
from collections.abc import Iterator
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[3]
ADAPTERS = sorted(p.name for p in (ROOT / "adapters").iterdir() if (p / "__init__.py").exists())


def _imports(path: Path, package: str) -> Iterator[tuple[int, str, list[str]]]:
    """(line, absolute module, imported names) for every import in ``path``."""
    tree = ast.parse(path.read_text(), str(path))
    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            for alias in node.names:
                yield node.lineno, alias.name, []
        elif isinstance(node, ast.ImportFrom):
            if node.level:
                base = package.split(".")
                if node.level > 1:
                    base = base[: -(node.level - 1)]
                module = ".".join(base + ([node.module] if node.module else []))
            else:
                module = node.module or ""
            yield node.lineno, module, [a.name for a in node.names]


def _package_of(path: Path, top: str, dotted: str) -> str:
    rel = path.relative_to(ROOT / top).with_suffix("")
    parts = list(rel.parts)
    if parts[-1] == "__init__":
        parts.pop()
    else:
        parts = parts[:-1]
    return ".".join([dotted, *parts])


def _files(top: str) -> list[Path]:
    return sorted((ROOT / top).rglob("*.py"))


def test_core_imports_no_adapter() -> None:
    bad = []
    for path in _files("core"):
        for line, module, names in _imports(path, _package_of(path, "core", "keystead.core")):
            full = [module, *(f"{module}.{n}" for n in names)]
            if any(m == "keystead.adapters" or m.startswith("keystead.adapters.") for m in full):
                bad.append(f"{path.relative_to(ROOT)}:{line} imports {module}")
    assert bad == []


@pytest.mark.parametrize("adapter", ADAPTERS)
def test_an_adapter_imports_no_other_adapter_and_no_private_core_name(adapter: str) -> None:
    bad = []
    own = f"keystead.adapters.{adapter}"
    for path in _files(f"adapters/{adapter}"):
        pkg = _package_of(path, "adapters", "keystead.adapters")
        for line, module, names in _imports(path, pkg):
            where = f"{path.relative_to(ROOT)}:{line}"
            if module.startswith("keystead.adapters") and not (
                module == own or module.startswith(own + ".")
            ):
                if module != "keystead.adapters" or any(n != adapter for n in names):
                    bad.append(f"{where} imports another adapter: {module} {names}")
            if module == "keystead.core" or module.startswith("keystead.core."):
                parts = module.split(".")[2:]
                private = [p for p in parts if p.startswith("_")]
                private += [n for n in names if n.startswith("_")]
                if private:
                    bad.append(f"{where} imports private core names {private} from {module}")
    assert bad == []


def test_the_checker_sees_what_it_must_refuse(tmp_path: Path) -> None:
    """The contract test itself can fail: each forbidden form is caught."""
    sample = tmp_path / "x.py"
    sample.write_text(
        "from keystead.core import _umbral\n"
        "from keystead.core._encoding import b64e\n"
        "from ..ssh import adapter\nimport keystead.adapters.ssh\n"
    )
    found = list(_imports(sample, "keystead.adapters.messaging"))
    assert [m for _, m, _ in found] == [
        "keystead.core",
        "keystead.core._encoding",
        "keystead.adapters.ssh",
        "keystead.adapters.ssh",
    ]
    assert found[0][2] == ["_umbral"]


CORE_ALL = [
    "Adapter",
    "ChainState",
    "Collection",
    "Conflict",
    "DecryptionFailed",
    "Device",
    "DeviceInfo",
    "DeviceRemoved",
    "Forbidden",
    "FormatError",
    "Home",
    "InvalidSignature",
    "KeysteadError",
    "KeystoreLocked",
    "NetworkError",
    "NotFound",
    "RateLimited",
    "Record",
    "RollbackDetected",
    "ServiceError",
    "SigningKey",
    "StorageError",
    "SyncResult",
    "UnsupportedVersion",
    "VerificationError",
    "VerifyKey",
    "atomic_write",
    "audit_log",
    "b64d",
    "b64e",
    "canonical_json",
    "create_shared_key",
    "discover",
    "fingerprint",
    "grant_account",
    "list_grants",
    "open_sealed",
    "open_sealed_to_key",
    "parse_json_object",
    "random_bytes",
    "revoke_account",
    "seal",
    "seal_to_key",
]

ADAPTER_ALL = {
    "ssh": ["adapter"],
    "passwords": ["adapter"],
    "messaging": ["adapter"],
    "phone": ["adapter"],
    "documents": [
        "DATA_KEY_SIZE",
        "DEFAULT_CHUNK_SIZE",
        "DOCUMENT_ID_SIZE",
        "MAGIC_V2",
        "MAX_CHUNK_SIZE",
        "MIN_CHUNK_SIZE",
        "NONCE_PREFIX_SIZE",
        "PAYLOAD_KEY_LABEL",
        "TAG_SIZE",
        "DataKeyProvider",
        "Header",
        "Progress",
        "adapter",
        "open_stream",
        "open_to_path",
        "protect_stream",
        "protect_to_path",
        "read_header",
        "terminal_progress",
    ],
    "second_factor": [
        "AmbiguousName",
        "AnswerRejected",
        "AnswerReplayed",
        "CodeRejected",
        "CodeReplayed",
        "Decision",
        "DeviceNotLive",
        "DevicePromptSource",
        "InMemoryPromptSource",
        "InvalidChoice",
        "OtpAuth",
        "OtpAuthError",
        "Outcome",
        "PURPOSE_ANSWER",
        "PendingPrompt",
        "PendingRequest",
        "PinMismatch",
        "Prompt",
        "PromptSource",
        "RelyingParty",
        "RelyingPartyClient",
        "RequestExpired",
        "TotpVerifier",
        "VerifiedAnswer",
        "WrongNumber",
        "WrongRelyingParty",
        "WrongRequest",
        "answer_prompt",
        "code_at",
        "credential_from_item",
        "credential_to_item",
        "decode_secret",
        "encode_secret",
        "find_credential",
        "hotp",
        "qr_matrix",
        "render_qr",
        "request_confirmation",
        "take_code",
        "time_step",
        "totp",
        "verify_answer",
        "verify_totp",
    ],
}


def test_core_all_is_pinned() -> None:
    core = importlib.import_module("keystead.core")
    assert sorted(core.__all__) == sorted(CORE_ALL)
    for name in core.__all__:
        assert getattr(core, name) is not None, name


@pytest.mark.parametrize("adapter", ADAPTERS)
def test_adapter_all_is_pinned(adapter: str) -> None:
    mod = importlib.import_module(f"keystead.adapters.{adapter}")
    assert sorted(mod.__all__) == sorted(ADAPTER_ALL[adapter])
    for name in mod.__all__:
        assert getattr(mod, name) is not None, name
