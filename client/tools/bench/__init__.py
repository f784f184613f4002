"""The parts of ``make bench`` (docs/benchmarks.md); the management commands ``bench_api`` and
``bench_jobs`` only parse their options and call these.

- ``common``: database URLs, ports, the machine line, raw SQL helpers.
- ``world``: the API and portal data of ``bench_api`` (items, a 100,000-device project in SQL).
- ``server``: gunicorn with the production settings on 127.0.0.1.
- ``load``: the load generator's runs, each beside a run of the trivial endpoint.
- ``cpu``: CPU seconds per process group (gunicorn, PostgreSQL, the load generator, the rest)
  over a measured window, from /proc (Django-free: the load generator takes the snapshots).
- ``waits``: pg_stat_activity sampled during a run: what the active backends wait on.
- ``hotrow``: one hot row alone, pgbench replaying the SQL captured from real requests.
- ``pages``: every portal page and export of the big project, p50/p95, and devices.csv's memory.
- ``report``: the tables, the issue's summary with what bounds each figure, and the
  docs/benchmarks.md writer.
- ``jobs_data``, ``jobs_cases``, ``jobs_run``: ``bench_jobs`` (each job against its bare SQL)."""
