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
# Threads: most of a request's time is spent waiting on PostgreSQL, so a few threads per
# process serve more requests than processes alone, at less memory.
workers = int(os.environ.get("GUNICORN_WORKERS", multiprocessing.cpu_count() * 2 + 1))
threads = int(os.environ.get("GUNICORN_THREADS", 4))
worker_class = "gthread" if threads > 1 else "sync"
timeout = int(os.environ.get("GUNICORN_TIMEOUT", 30))
graceful_timeout = int(os.environ.get("GUNICORN_GRACEFUL_TIMEOUT", 30))
keepalive = int(os.environ.get("GUNICORN_KEEPALIVE", 5))
# Recycle workers now and then so a slow leak cannot grow without bound; jitter staggers them.
max_requests = int(os.environ.get("GUNICORN_MAX_REQUESTS", 10000))
max_requests_jitter = int(os.environ.get("GUNICORN_MAX_REQUESTS_JITTER", 1000))
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
