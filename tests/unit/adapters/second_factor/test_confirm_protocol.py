"""Confirmation prompts and answers: each way an answer can be wrong is refused."""

import hashlib
import json
import random

import pytest
from keystead.adapters.second_factor import (
    PURPOSE_ANSWER,
    AnswerReplayed,
    Decision,
    DeviceNotLive,
    InvalidChoice,
    Prompt,
    RelyingParty,
    RequestExpired,
    WrongNumber,
    WrongRelyingParty,
    WrongRequest,
    answer_prompt,
    verify_answer,
)
from keystead.adapters.second_factor._confirm_protocol import OLD_ANSWER_FORMAT
from keystead.core import b64d as b64url_decode
from keystead.core import b64e as b64url_encode
from keystead.core import canonical_json
from keystead.core.crypto import SigningKey
from keystead.core.envelope import SignedEnvelope
from keystead.core.errors import FormatError, InvalidSignature, UnsupportedVersion

NOW = 1_700_000_000
PHONE = SigningKey(b"\x01" * 32)
LAPTOP = SigningKey(b"\x02" * 32)
LIVE = {"phone": PHONE.verify_key, "laptop": LAPTOP.verify_key}
BANK = RelyingParty("bank.example", lifetime=120)


def new_prompt(rp=BANK, message="Log in from Berlin?", seed=1):
    prompt = rp.create_prompt(message, NOW, rng=random.Random(seed))
    return prompt, prompt.to_bytes()


def approve(prompt_bytes, number, key=PHONE, device="phone", at=NOW + 5):
    return answer_prompt(
        prompt_bytes, Decision.APPROVE, number, device_id=device, signing_key=key, now=at
    )


def test_approval_verifies():
    prompt, pb = new_prompt()
    result = verify_answer(approve(pb, prompt.number), pb, "bank.example", NOW + 10, LIVE, set())
    assert result.decision is Decision.APPROVE
    assert (result.request_id, result.device_id) == (prompt.request_id, "phone")
    assert (result.number, result.answered_at) == (prompt.number, NOW + 5)


@pytest.mark.parametrize("report", [False, True])
def test_denials_verify(report):
    _, pb = new_prompt()
    decision = Decision.REPORT if report else Decision.DENY
    answer = answer_prompt(pb, decision, None, device_id="laptop", signing_key=LAPTOP, now=NOW)
    result = verify_answer(answer, pb, "bank.example", NOW + 1, LIVE, set())
    assert result.decision is decision and result.number is None


def test_without_number_matching():
    rp = RelyingParty("shop.example", number_matching=False)
    prompt, pb = new_prompt(rp)
    assert prompt.number is None and prompt.choices == ()
    result = verify_answer(approve(pb, None), pb, "shop.example", NOW, LIVE, set())
    assert result.decision is Decision.APPROVE
    with pytest.raises(InvalidChoice):
        approve(pb, 42)


def test_replay_is_refused():
    prompt, pb = new_prompt()
    answer = approve(pb, prompt.number)
    used: set[str] = set()
    verify_answer(answer, pb, "bank.example", NOW + 10, LIVE, used)
    with pytest.raises(AnswerReplayed):
        verify_answer(answer, pb, "bank.example", NOW + 11, LIVE, used)


def test_a_second_answer_from_another_device_is_refused_too():
    prompt, pb = new_prompt()
    used: set[str] = set()
    verify_answer(approve(pb, prompt.number), pb, "bank.example", NOW, LIVE, used)
    other = approve(pb, prompt.number, key=LAPTOP, device="laptop")
    with pytest.raises(AnswerReplayed):
        verify_answer(other, pb, "bank.example", NOW, LIVE, used)


def test_claim_callback_and_rejections_do_not_burn_the_request():
    prompt, pb = new_prompt()
    claimed: list[str] = []

    def claim(request_id):
        if request_id in claimed:
            return False
        claimed.append(request_id)
        return True

    wrong = prompt.choices[0] if prompt.choices[0] != prompt.number else prompt.choices[1]
    with pytest.raises(WrongNumber):
        verify_answer(approve(pb, wrong), pb, "bank.example", NOW, LIVE, claim)
    assert claimed == []
    verify_answer(approve(pb, prompt.number), pb, "bank.example", NOW, LIVE, claim)
    assert claimed == [prompt.request_id]
    with pytest.raises(AnswerReplayed):
        verify_answer(approve(pb, prompt.number), pb, "bank.example", NOW, LIVE, claim)


def test_answer_for_a_different_prompt_is_refused():
    prompt_a, pa = new_prompt(seed=1)
    prompt_b, pb = new_prompt(seed=2)
    with pytest.raises(WrongRequest):
        verify_answer(approve(pa, prompt_a.number), pb, "bank.example", NOW, LIVE, set())


def test_same_request_id_but_other_prompt_bytes_is_refused():
    prompt, pb = new_prompt()
    forged = Prompt(
        prompt.request_id, prompt.rp, "Pay 10 EUR?", prompt.created, prompt.expires,
        prompt.number, prompt.choices,
    )  # fmt: skip
    answer = approve(forged.to_bytes(), prompt.number)
    with pytest.raises(WrongRequest):
        verify_answer(answer, pb, "bank.example", NOW, LIVE, set())


def test_another_relying_party_is_refused():
    prompt, pb = new_prompt()
    answer = approve(pb, prompt.number)
    with pytest.raises(WrongRelyingParty):
        verify_answer(answer, pb, "evil.example", NOW, LIVE, set())
    evil = RelyingParty("evil.example")
    with pytest.raises(WrongRelyingParty):
        evil.verify(answer, pb, NOW, LIVE, set())


def test_removed_device_is_refused_even_with_a_good_signature():
    prompt, pb = new_prompt()
    answer = approve(pb, prompt.number, key=LAPTOP, device="laptop")
    with pytest.raises(DeviceNotLive):
        verify_answer(answer, pb, "bank.example", NOW, {"phone": PHONE.verify_key}, set())


def test_device_key_must_match_the_named_device():
    prompt, pb = new_prompt()
    answer = approve(pb, prompt.number, key=LAPTOP, device="phone")  # laptop claims to be phone
    with pytest.raises(InvalidSignature):
        verify_answer(answer, pb, "bank.example", NOW, LIVE, set())


def test_expired_request_is_refused():
    prompt, pb = new_prompt()
    answer = approve(pb, prompt.number)
    assert verify_answer(answer, pb, "bank.example", prompt.expires - 1, LIVE, set())
    with pytest.raises(RequestExpired):
        verify_answer(answer, pb, "bank.example", prompt.expires, LIVE, set())
    with pytest.raises(RequestExpired):  # and a device will not answer it either
        approve(pb, prompt.number, at=prompt.expires)


def test_wrong_number_is_refused():
    prompt, pb = new_prompt()
    for choice in prompt.choices:
        if choice == prompt.number:
            continue
        with pytest.raises(WrongNumber):
            verify_answer(approve(pb, choice), pb, "bank.example", NOW, LIVE, set())


def test_device_only_offers_the_choices():
    prompt, pb = new_prompt()
    outside = next(n for n in range(10, 100) if n not in prompt.choices)
    with pytest.raises(InvalidChoice):
        approve(pb, outside)
    with pytest.raises(InvalidChoice):
        approve(pb, None)


def resign(answer_bytes, edit, key=PHONE, signer="phone"):
    """Change the signed body and sign it again with a live key: only semantic checks remain."""
    outer = json.loads(answer_bytes)
    body = json.loads(b64url_decode(outer["body"]))
    edit(body)
    signed = SignedEnvelope.sign(
        key, purpose=PURPOSE_ANSWER, signer=signer, body=canonical_json(body)
    )
    return signed.to_bytes()


def test_resigned_number_for_a_denial_is_format_error():
    prompt, pb = new_prompt()
    denial = answer_prompt(pb, Decision.DENY, None, device_id="phone", signing_key=PHONE, now=NOW)
    bad = resign(denial, lambda b: b.update(number=prompt.number))
    with pytest.raises(FormatError):
        verify_answer(bad, pb, "bank.example", NOW, LIVE, set())


def test_tampered_body_breaks_the_signature():
    prompt, pb = new_prompt()
    answer = json.loads(approve(pb, prompt.number))
    body = json.loads(b64url_decode(answer["body"]))
    body["decision"] = "deny"
    answer["body"] = b64url_encode(canonical_json(body))
    with pytest.raises(InvalidSignature):
        verify_answer(canonical_json(answer), pb, "bank.example", NOW, LIVE, set())


def test_signature_is_purpose_bound():
    prompt, pb = new_prompt()
    other_purpose = json.loads(approve(pb, prompt.number))
    body = b64url_decode(other_purpose["body"])
    signed = b"keystead-envelope/1\nphone\n" + body
    other_purpose["sig"] = b64url_encode(PHONE.sign("keystead/v2/messaging/envelope", signed))
    with pytest.raises(InvalidSignature):
        verify_answer(canonical_json(other_purpose), pb, "bank.example", NOW, LIVE, set())
    # The same body in an envelope of another purpose is refused before any key is used.
    other = SignedEnvelope.sign(
        PHONE, purpose="keystead/v2/messaging/envelope", signer="phone", body=body
    )
    with pytest.raises(FormatError, match="expected 'keystead/v2/confirm/answer'"):
        verify_answer(other.to_bytes(), pb, "bank.example", NOW, LIVE, set())


def test_answer_is_a_core_signed_envelope_signed_by_the_device_id():
    prompt, pb = new_prompt()
    answer = approve(pb, prompt.number)
    outer = json.loads(answer)
    assert set(outer) == {"v", "purpose", "signer", "body", "sig"}
    assert (outer["v"], outer["purpose"], outer["signer"]) == (1, PURPOSE_ANSWER, "phone")
    assert PURPOSE_ANSWER == "keystead/v2/confirm/answer"
    body = SignedEnvelope.from_bytes(answer, purpose=PURPOSE_ANSWER).verify(PHONE.verify_key)
    assert json.loads(body)["v"] == 2
    assert json.loads(body)["type"] == "keystead/v2/confirm/answer-body"


def test_signer_picks_the_key_and_must_be_live():
    # The envelope's signer names the key; a body naming another device than the signer is
    # refused even when the signature is good.
    prompt, pb = new_prompt()
    two_names = resign(approve(pb, prompt.number), lambda b: b.update(device="laptop"))
    with pytest.raises(FormatError, match="two devices"):
        verify_answer(two_names, pb, "bank.example", NOW, LIVE, set())
    unknown = approve(pb, prompt.number, key=LAPTOP, device="tablet")
    with pytest.raises(DeviceNotLive):
        verify_answer(unknown, pb, "bank.example", NOW, LIVE, set())


def old_format_answer(pb, number, key=PHONE, device="phone"):
    """An answer as Keystead made it before the envelope: its own signed object, format 1."""
    prompt = Prompt.from_bytes(pb)
    body = canonical_json(
        {
            "v": 1,
            "type": "keystead/v1/confirm/answer-body",
            "id": prompt.request_id,
            "prompt": b64url_encode(hashlib.sha256(pb).digest()),
            "rp": prompt.rp,
            "decision": "approve",
            "number": number,
            "at": NOW + 5,
            "device": device,
        }
    )
    sig = key.sign("keystead/v1/confirm/answer", body)
    return canonical_json(
        {"v": 1, "device": device, "body": b64url_encode(body), "sig": b64url_encode(sig)}
    )


def test_old_format_answer_is_refused_with_a_clear_line():
    prompt, pb = new_prompt()
    with pytest.raises(UnsupportedVersion) as e:
        verify_answer(old_format_answer(pb, prompt.number), pb, "bank.example", NOW, LIVE, set())
    assert str(e.value) == OLD_ANSWER_FORMAT
    assert "format 1" in OLD_ANSWER_FORMAT and "upgrade" in OLD_ANSWER_FORMAT


def test_body_of_the_old_version_inside_an_envelope_is_refused():
    prompt, pb = new_prompt()
    old_body = resign(approve(pb, prompt.number), lambda b: b.update(v=1))
    with pytest.raises(UnsupportedVersion):
        verify_answer(old_body, pb, "bank.example", NOW, LIVE, set())
    old_type = resign(
        approve(pb, prompt.number), lambda b: b.update(type="keystead/v1/confirm/answer-body")
    )
    with pytest.raises(FormatError):
        verify_answer(old_type, pb, "bank.example", NOW, LIVE, set())


def test_body_naming_another_device_is_refused():
    prompt, pb = new_prompt()
    bad = resign(approve(pb, prompt.number), lambda b: b.update(device="laptop"))
    with pytest.raises(FormatError):
        verify_answer(bad, pb, "bank.example", NOW, LIVE, set())


def test_answer_is_bound_to_the_prompt_digest():
    prompt, pb = new_prompt()
    body = json.loads(b64url_decode(json.loads(approve(pb, prompt.number))["body"]))
    assert b64url_decode(body["prompt"]) == hashlib.sha256(pb).digest()
    assert body["rp"] == "bank.example" and body["id"] == prompt.request_id


# --- formats ---


def test_prompt_round_trip_and_canonical_bytes():
    prompt, pb = new_prompt(message="Zahlung über 10 €\nbestätigen?")
    assert Prompt.from_bytes(pb) == prompt
    assert json.loads(pb)["v"] == 1
    assert prompt.number in prompt.choices and len(prompt.choices) == 9


def test_prompts_are_random():
    a = BANK.create_prompt("x", NOW)
    b = BANK.create_prompt("x", NOW)
    assert a.request_id != b.request_id
    assert len(bytes.fromhex(a.request_id)) == 16 and a.request_id == a.request_id.lower()


def reencoded(pb, **changes):
    obj = json.loads(pb)
    obj.update(changes)
    return canonical_json(obj)


@pytest.mark.parametrize(
    "mutate",
    [
        lambda pb: pb + b" ",
        lambda pb: json.dumps(json.loads(pb), indent=1).encode(),
        lambda pb: pb.replace(b'"v":1', b'"v":1.0'),
        lambda pb: pb[:-1] + b',"v":1}',
        lambda pb: reencoded(pb, extra=1),
        lambda pb: reencoded(pb, type="keystead/v1/confirm/answer-body"),
        lambda pb: reencoded(pb, id="short"),
        lambda pb: reencoded(pb, rp=""),
        lambda pb: reencoded(pb, msg="Approve\u202egnp.exe"),
        lambda pb: reencoded(pb, msg="x" * 1001),
        lambda pb: reencoded(pb, expires=NOW),
        lambda pb: reencoded(pb, expires=NOW + 3601),
        lambda pb: reencoded(pb, number=5),
        lambda pb: reencoded(pb, number=True),
        lambda pb: reencoded(pb, choices=[11, 11, 12]),
        lambda pb: reencoded(pb, number=None),
        lambda pb: b"\xff",
        lambda pb: b"[]",
    ],
)
def test_malformed_prompts_are_format_errors(mutate):
    _, pb = new_prompt()
    with pytest.raises(FormatError):
        Prompt.from_bytes(mutate(pb))


def test_unknown_version_is_refused():
    _, pb = new_prompt()
    with pytest.raises(UnsupportedVersion):
        Prompt.from_bytes(reencoded(pb, v=2))
    answer = approve(pb, new_prompt()[0].number)
    with pytest.raises(UnsupportedVersion):
        verify_answer(reencoded(answer, v=2), pb, "bank.example", NOW, LIVE, set())


@pytest.mark.parametrize(
    "answer",
    [b"", b"{}", b'{"v":1}', b"\x00" * 64, b'{"body":"!!","device":"phone","sig":"","v":1}'],
)
def test_malformed_answers_are_format_errors(answer):
    _, pb = new_prompt()
    with pytest.raises(FormatError):
        verify_answer(answer, pb, "bank.example", NOW, LIVE, set())


def test_relying_party_parameters_are_checked():
    with pytest.raises(ValueError):
        RelyingParty("bank", lifetime=0)
    with pytest.raises(ValueError):
        RelyingParty("bank", choices=1)
    with pytest.raises(FormatError):
        RelyingParty("bank\x00")


def test_number_matching_offers_at_least_nine_choices():
    # A blind tap wins at most 1 time in 9: fewer choices are refused on both sides.
    with pytest.raises(ValueError):
        RelyingParty("bank", choices=8)
    prompt, _ = new_prompt()
    assert len(prompt.choices) >= 9
    three = (prompt.number, *[c for c in prompt.choices if c != prompt.number][:2])
    with pytest.raises(FormatError):
        Prompt(
            prompt.request_id,
            prompt.rp,
            prompt.message,
            prompt.created,
            prompt.expires,
            prompt.number,
            three,
        )
