"""The PKCS#11 provider against a real SoftHSM2 token: keys stay inside, wrapping happens there."""

from __future__ import annotations

import pytest
from django.core.exceptions import ValidationError

from governance.crypto import keyring, providers
from governance.crypto.errors import KeyUnavailableError
from governance.crypto.models import DataKey, KeyEncryptionKey
from governance.crypto.services import kek_rotate, workspace_key_configure
from workflows.credentials.models import CredentialVersion
from workflows.credentials.services import credential_create

pytestmark = pytest.mark.django_db(databases=["default", "secrets"])


def test_hsm_keys_are_generated_non_extractable(hsm):
    from pkcs11 import Attribute
    from pkcs11.exceptions import AttributeSensitive

    hsm.create_key("probe-key-1")
    key = hsm._key("probe-key-1")
    assert key[Attribute.EXTRACTABLE] is False
    assert key[Attribute.SENSITIVE] is True
    with pytest.raises(AttributeSensitive):
        _ = key[Attribute.VALUE]
    wrapped = hsm.wrap("probe-key-1", b"k" * 32, b"binding")
    assert hsm.unwrap("probe-key-1", wrapped, b"binding") == b"k" * 32
    with pytest.raises(KeyUnavailableError, match="does not unwrap"):
        hsm.unwrap("probe-key-1", wrapped, b"another binding")


def test_credentials_under_an_hsm_platform_key_and_its_rotation(world, integration, hsm):
    """GIVEN the HSM as provider WHEN a credential is stored and the KEK rotated THEN the KEK is an
    HSM key, the data keys are rewrapped in the HSM and the value still reads back."""
    owner = world.users["workspace_owner"]
    credential = credential_create(
        actor=owner, integration=integration, name="api_key", value="hsm-guarded-1234"
    )
    kek = KeyEncryptionKey.objects.get(status="active")
    assert kek.provider == "pkcs11"
    assert hsm.has_key(kek.key_ref)
    new = kek_rotate(actor=None)
    assert new.provider == "pkcs11"
    assert new.key_ref != kek.key_ref
    assert set(DataKey.objects.values_list("kek_id", flat=True)) == {new.pk}
    keyring.forget_keys()
    assert CredentialVersion.objects.using("secrets").get(credential=credential).value == "hsm-guarded-1234"


def test_byok_names_an_existing_hsm_key(world, integration, hsm):
    owner = world.users["workspace_owner"]
    credential = credential_create(
        actor=owner, integration=integration, name="api_key", value="customer-keyed-99"
    )
    hsm.create_key("acme-own-kek")
    kek = workspace_key_configure(
        actor=owner, workspace=world.ws, provider="pkcs11", key_label="acme-own-kek"
    )
    assert (kek.origin, kek.key_ref) == ("external", "acme-own-kek")
    assert set(DataKey.objects.filter(workspace=world.ws).values_list("kek_id", flat=True)) == {kek.pk}
    keyring.forget_keys()
    assert CredentialVersion.objects.using("secrets").get(credential=credential).value == "customer-keyed-99"


def test_byok_unknown_hsm_label_is_a_field_error(world, hsm):
    with pytest.raises(ValidationError, match="holds no AES key labelled 'nope'"):
        workspace_key_configure(actor=world.users["workspace_owner"], workspace=world.ws, provider="pkcs11",
                                key_label="nope")  # fmt: skip


def test_byok_imported_material_goes_into_the_hsm(world, hsm):
    import base64

    kek = workspace_key_configure(actor=world.users["workspace_owner"], workspace=world.ws, provider="pkcs11",
                                  material_b64=base64.b64encode(bytes(range(32))).decode())  # fmt: skip
    assert kek.origin == "imported"
    assert hsm.has_key(kek.key_ref)


@pytest.mark.parametrize(
    ("overrides", "message"),
    [
        ({"CRYPTO_PKCS11_PIN": "000000"}, "check the PIN"),
        ({"CRYPTO_PKCS11_TOKEN_LABEL": "no-such-token"}, "not reachable"),
        ({"CRYPTO_PKCS11_MODULE": "/nonexistent/libpkcs11.so"}, "does not exist"),
    ],
)
def test_unreachable_hsm_is_a_clear_start_up_and_request_error(
    world, integration, hsm, settings, overrides, message
):
    from governance.crypto.checks import key_provider_check

    for name, value in overrides.items():
        setattr(settings, name, value)
    providers.forget_providers()
    errors = key_provider_check()
    assert len(errors) == 1
    assert message in errors[0].msg
    assert "000000" not in errors[0].msg
    with pytest.raises(KeyUnavailableError, match=message):
        credential_create(
            actor=world.users["workspace_owner"], integration=integration, name="k", value="v" * 12
        )
    assert not CredentialVersion.objects.using("secrets").exists()
