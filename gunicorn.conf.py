"""gunicorn settings for the web processes (``gunicorn -c gunicorn.conf.py dls_admin.wsgi``).

Everything comes from the environment (docs/operations.md): GUNICORN_BIND (or PORT),
GUNICORN_WORKERS, GUNICORN_THREADS, GUNICORN_TIMEOUT, FORWARDED_ALLOW_IPS. Access and error logs
go to standard output through the application's LOGGING (JSON lines in production)."""

import multiprocessing
import os

os.environ.setdefault("DJANGO_SETTINGS_MODULE", "dls_admin.settings")

# GUNICORN_BIND wins. A platform that sets PORT (Heroku-style, the Procfile) routes to it from
# outside: listen on every interface. Otherwise 127.0.0.1:8000, and the reverse proxy on the
# host decides what is exposed.
if os.environ.get("GUNICORN_BIND"):
    bind = os.environ["GUNICORN_BIND"]
elif os.environ.get("PORT"):
    bind = f"{os.environ.get('HOST', '0.0.0.0')}:{os.environ['PORT']}"
else:
    bind = f"{os.environ.get('HOST', '127.0.0.1')}:8000"
# Processes x threads: CPUs + 1 processes of 2 threads. The device API is CPU-bound on a web
# host (docs/benchmarks.md, "The web server (gunicorn)"): what counts is CPU per request, and
# it grows with the requests in flight on the host's cores (threads contending for a process's
# GIL, context switches, backends queued on one hot counter row). Measured on 2 cores,
# interleaved, 16 keep-alive connections, load 1.6-18: with 4-6 requests in flight (3 x 2,
# 2 x 2, 3 sync) web CPU per device request was 0.63-0.97 of 5 x 4's (the old 2 x CPUs + 1,
# 4 threads) in 25 of 30 paired runs, 1.0-1.21 in the rest (4 of them in one round with other
# sessions' PostgreSQL at up to 10 ms a request); the trivial endpoint's stayed 0.65-1.17 ms.
# 3 x 2: 0.81-1.02, and the most req/s in its last rounds (326 / 265-270 against 5 x 4's 233-234 /
# 241-258). Threads, not sync workers: keep-alive stays (nginx's upstream keepalive; a sync
# worker closes every connection: 0.08-0.15 ms more client CPU a request). 6 PostgreSQL
# connections a host instead of 20. The access log line is 30 us (text) to 50 us (JSON) of CPU
# per request, about 1 %: it stays on.
workers = int(os.environ.get("GUNICORN_WORKERS", multiprocessing.cpu_count() + 1))
threads = int(os.environ.get("GUNICORN_THREADS", 2))
worker_class = "gthread" if threads > 1 else "sync"
timeout = int(os.environ.get("GUNICORN_TIMEOUT", 30))
graceful_timeout = int(os.environ.get("GUNICORN_GRACEFUL_TIMEOUT", 30))
keepalive = int(os.environ.get("GUNICORN_KEEPALIVE", 5))
# Recycle workers now and then so a slow leak cannot grow without bound; jitter staggers them.
# A worker's boot costs 1.6-1.7 s of CPU on this machine's kind (1.1-1.2 s importing the
# application, 0.5 s its URLconf, dls_admin/wsgi.py), so every 10,000 requests it was about
# 0.17 ms a request, 4 % of a usage report's CPU, and 6-12 boots inside the measured windows
# of `make bench`; every 50,000 it is 0.03 ms. (The application is not preloaded in the master:
# `systemctl reload`, a HUP, must load a new release's code, docs/operations.md "Upgrades".)
max_requests = int(os.environ.get("GUNICORN_MAX_REQUESTS", 50000))
max_requests_jitter = int(os.environ.get("GUNICORN_MAX_REQUESTS_JITTER", 5000))
# Only these proxies' X-Forwarded-Proto is believed (for wsgi.url_scheme): the same proxies as
# the application's TRUSTED_PROXIES unless set apart.
forwarded_allow_ips = os.environ.get("FORWARDED_ALLOW_IPS") or os.environ.get("TRUSTED_PROXIES") or "127.0.0.1"
# Heartbeat files in memory, not on a possibly slow disk (containers).
worker_tmp_dir = "/dev/shm" if os.path.isdir("/dev/shm") else None
proc_name = "dls-web"

# Access log on standard output, one line per request. With LOG_FORMAT=json (production default)
# the JsonFormatter turns the atoms into fields: method, path, status, duration_ms, request_id.
accesslog = os.environ.get("GUNICORN_ACCESS_LOG", "-")
errorlog = "-"
access_log_format = '%(h)s "%(r)s" %(s)s %(B)s %(M)sms %({x-request-id}o)s'


def _logconfig() -> dict:
    from dls_admin.logging import logging_config

    production = os.environ.get("DJANGO_ENV") == "production"
    json_format = os.environ.get("LOG_FORMAT", "json" if production else "text") == "json"
    return logging_config(json_format=json_format, level=os.environ.get("LOG_LEVEL", "INFO"))


logconfig_dict = _logconfig()

# gunicorn's control socket (``gunicornc``) is off: nothing here uses it, and two servers on one
# host would fight over its default path. GUNICORN_CONTROL_SOCKET=path turns it on.
if os.environ.get("GUNICORN_CONTROL_SOCKET"):
    control_socket = os.environ["GUNICORN_CONTROL_SOCKET"]
else:
    control_socket_disable = True
