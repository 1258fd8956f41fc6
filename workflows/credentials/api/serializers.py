"""Input and output serializers of the credentials API: values are write-only."""

from __future__ import annotations

from rest_framework import serializers


class CredentialOutput(serializers.Serializer):
    """What the API shows of a credential: never its value."""

    id = serializers.UUIDField()
    name = serializers.CharField()
    integration = serializers.IntegerField(source="integration_id")
    workspace = serializers.IntegerField(source="workspace_id")
    rotation_required = serializers.BooleanField()
    fingerprint = serializers.SerializerMethodField()
    last_rotation = serializers.SerializerMethodField()
    versions = serializers.SerializerMethodField()

    def _versions(self, obj):
        if not hasattr(obj, "_shown_versions"):
            obj._shown_versions = list(obj.versions.using("secrets").defer("value").order_by("-number"))
        return obj._shown_versions

    def _active(self, obj):
        return next((v for v in self._versions(obj) if v.status == "active"), None)

    def get_fingerprint(self, obj) -> str | None:
        active = self._active(obj)
        return active.fingerprint if active else None

    def get_last_rotation(self, obj) -> str | None:
        active = self._active(obj)
        return active.promoted_at.isoformat() if active and active.promoted_at else None

    def get_versions(self, obj) -> list[dict]:
        return [
            {
                "number": v.number,
                "status": v.status,
                "fingerprint": v.fingerprint,
                "created_at": v.created_at,
                "promoted_at": v.promoted_at,
                "grace_until": v.grace_until,
                "revoked_at": v.revoked_at,
                "test_ok": v.test_ok,
            }
            for v in self._versions(obj)
        ]


class CredentialInput(serializers.Serializer):
    integration = serializers.IntegerField()
    name = serializers.CharField(max_length=120)
    value = serializers.CharField(
        write_only=True, trim_whitespace=False, max_length=16 * 1024, style={"input_type": "password"}
    )


class CredentialVersionInput(serializers.Serializer):
    value = serializers.CharField(
        write_only=True, trim_whitespace=False, max_length=16 * 1024, style={"input_type": "password"}
    )
    promote = serializers.BooleanField(default=False)
