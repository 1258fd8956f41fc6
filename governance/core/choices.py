"""Choices shared by every app, so that one word means one thing everywhere."""

from django.db import models


class ReviewDecision(models.TextChoices):
    """What a reviewer decides on anything waiting for review: a workflow change, an integration
    request, a policy change."""

    APPROVE = "approve", "Approve"
    REJECT = "reject", "Reject"
