"""Webhook delivery (SPEC section 14), a job of ``usage``: the endpoints' services and the SSRF
guard, the fan-out of ``licenses.OutboxEvent`` rows to deliveries, signed delivery with
retries, and the coalesced ``devices.refused`` events.

- ``models``: WebhookDelivery and WebhookAttempt (registered through ``usage.models``)
- ``guard``: the SSRF guard; resolves a host once and connects to the checked addresses
- ``endpoints``: create, change and show endpoints and deliveries; redeliver
- ``delivery``: signing (``standardwebhooks``), claiming, attempts, backoff, disabling
- ``dispatch``: fan-out, ``devices.refused`` windows, and ``run_webhooks`` (the periodic step,
  Celery task ``usage.deliver_webhooks``)

Deliveries follow the Standard Webhooks specification and are signed with its reference package
(``standardwebhooks``): ``webhook-id`` is the event id (the same on every retry),
``webhook-timestamp`` the attempt's Unix seconds, ``webhook-signature`` one ``v1,<base64>`` per
secret (two for 24 h after a rotation). A worker claims a delivery by setting ``lease_until``;
a worker killed mid-delivery leaves the lease to lapse and the next run picks it again, so every
event is delivered at least once (receivers deduplicate by ``webhook-id``).

Services take ``now`` (``deliver_due`` also a ``clock`` for the signing time of each attempt);
the Celery task reads the clock. This package imports nothing at its top so that
``usage.models`` can import ``usage.webhooks.models``."""
