"""Data regions: where a workspace's data is processed and which region a person may work on."""

from django.db import models


class DataRegion(models.TextChoices):
    EU = "EU", "European Union"
    US = "US", "United States"
