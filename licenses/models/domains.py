"""The multi-tenant registrable domains of the per_domain unit (SPEC section 4; ``licenses.domains``)."""

from __future__ import annotations

from django.db import models


class MultiTenantDomain(models.Model):
    """Registrable domains shared by a platform's tenants (e.g. force.com): the per_domain unit
    is one label deeper for these. Staff edit the list in the admin."""

    domain = models.CharField(max_length=255, unique=True)

    class Meta:
        ordering = ["domain"]

    def __str__(self) -> str:
        return self.domain

    def save(self, *args, **kwargs) -> None:
        self.domain = self.domain.strip().strip(".").lower()
        super().save(*args, **kwargs)
