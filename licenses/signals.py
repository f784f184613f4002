def seed_multi_tenant_domains(**kwargs) -> None:
    """The editable multi-tenant platform list starts with force.com (SPEC section 4).

    Done on post_migrate (not a data migration) so it also holds after a test database flush."""
    from .models import MultiTenantDomain

    MultiTenantDomain.objects.get_or_create(domain="force.com")
