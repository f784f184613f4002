"""The demo's month of history (``python manage.py seed_demo_history``, run by ``seed_demo``):
devices authorizing and reporting through the device and usage services, as the device API
would have recorded them. ``history`` drives the services, ``fleet`` is the demo's normal
traffic, ``sharing`` a project whose key is used by others (docs/insight.md, key sharing)."""
