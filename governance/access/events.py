"""The event codes this app writes to the ledger (registered in its ``AppConfig.ready``)."""

from audit.events import Category, EventCode


class AccessEvent(EventCode):
    """The decision point: per-object grants, attribute-policy changes, on-call overrides."""

    GRANT_ASSIGNED = "grant.assigned", Category.ADMIN
    GRANT_REVOKED = "grant.revoked", Category.ADMIN
    POLICY_CHANGE_PROPOSED = "policy.change_proposed", Category.ADMIN
    POLICY_CHANGE_APPROVED = "policy.change_approved", Category.ADMIN
    POLICY_CHANGE_REJECTED = "policy.change_rejected", Category.ADMIN
    ONCALL_ACTIVATED = "oncall.activated", Category.ACCESS
    ONCALL_ENDED = "oncall.ended", Category.ACCESS
