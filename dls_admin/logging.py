"""Structured logs: one JSON object per line on standard output, with the request id.

``RequestIdMiddleware`` takes the id from an ``X-Request-ID`` header set by the load balancer
(when it looks like an id) or makes one, keeps it in a context variable for the request, and sends
it back in the response header, so gunicorn's access line, the application's own lines and the
proxy's log can be joined on it. ``JsonFormatter`` (python-json-logger's) writes ``time``, ``level``, ``logger``,
``message``, ``request_id`` and, for gunicorn's access log, the request fields."""

from __future__ import annotations

import contextvars
import copy
import logging
import re
import uuid
from datetime import UTC, datetime

from pythonjsonlogger.core import RESERVED_ATTRS
from pythonjsonlogger.json import JsonFormatter as _LibraryJsonFormatter

request_id_var: contextvars.ContextVar[str | None] = contextvars.ContextVar("request_id", default=None)

REQUEST_ID_HEADER = "X-Request-ID"
_VALID_ID = re.compile(r"^[A-Za-z0-9._:-]{8,128}$")

# gunicorn access-log atoms (glogging.Logger.atoms) worth a field of their own.
_ACCESS_FIELDS = {
    "h": "remote_addr",
    "m": "method",
    "U": "path",
    "q": "query",
    "s": "status",
    "B": "bytes",
    "M": "duration_ms",
    "a": "user_agent",
    "{x-request-id}o": "request_id",
}


class RequestIdMiddleware:
    """Gives every request an id (``request.request_id``, the log records, the response header)."""

    def __init__(self, get_response):
        self.get_response = get_response

    def __call__(self, request):
        incoming = request.headers.get(REQUEST_ID_HEADER, "")
        request_id = incoming if _VALID_ID.match(incoming) else uuid.uuid4().hex
        request.request_id = request_id
        token = request_id_var.set(request_id)
        try:
            response = self.get_response(request)
        finally:
            request_id_var.reset(token)
        response[REQUEST_ID_HEADER] = request_id
        return response


class RequestIdFilter(logging.Filter):
    """Adds ``record.request_id`` (None outside a request) for formatters to use."""

    def filter(self, record: logging.LogRecord) -> bool:
        if not hasattr(record, "request_id"):
            record.request_id = request_id_var.get()
        return True


class JsonFormatter(_LibraryJsonFormatter):
    """python-json-logger's formatter with this project's field names: ``time`` (UTC, ISO 8601
    with milliseconds and ``Z``), ``level``, ``logger``, ``message``, ``request_id`` inside a
    request, ``exc_info``, every ``extra=`` field, and gunicorn's access atoms as fields."""

    def __init__(self, *args, **kwargs):
        kwargs.setdefault("rename_fields", {"levelname": "level", "name": "logger"})
        kwargs.setdefault("reserved_attrs", [*RESERVED_ATTRS, "request_id", "taskName"])
        kwargs.setdefault("json_ensure_ascii", False)
        super().__init__("%(levelname)s %(name)s %(message)s", *args, **kwargs)

    def format(self, record: logging.LogRecord) -> str:
        if record.name == "gunicorn.access" and isinstance(record.args, dict):
            # The message is "METHOD PATH STATUS"; the atoms become fields in add_fields.
            atoms = record.args
            record = copy.copy(record)
            record.msg, record.args = f"{atoms.get('m', '-')} {atoms.get('U', '-')} {atoms.get('s', '-')}", None
            record._access_atoms = atoms
        return super().format(record)

    def add_fields(self, log_data: dict, record: logging.LogRecord, message_dict: dict) -> None:
        log_data["time"] = (
            datetime.fromtimestamp(record.created, UTC).isoformat(timespec="milliseconds").replace("+00:00", "Z")
        )
        super().add_fields(log_data, record, message_dict)
        atoms = getattr(record, "_access_atoms", None)
        if atoms:
            for atom, field in _ACCESS_FIELDS.items():
                value = atoms.get(atom)
                if value not in (None, "-", ""):
                    numeric = field in ("status", "bytes", "duration_ms") and str(value).isdigit()
                    log_data[field] = int(value) if numeric else value
        request_id = getattr(record, "request_id", None) or request_id_var.get()
        if request_id and "request_id" not in log_data:
            log_data["request_id"] = request_id


def logging_config(*, json_format: bool, level: str = "INFO") -> dict:
    """The ``LOGGING`` dict of settings.py (and gunicorn's ``logconfig_dict``): everything to
    standard output, JSON lines or plain text."""
    formatter = "json" if json_format else "text"
    return {
        "version": 1,
        "disable_existing_loggers": False,
        "filters": {"request_id": {"()": "dls_admin.logging.RequestIdFilter"}},
        "formatters": {
            "json": {"()": "dls_admin.logging.JsonFormatter"},
            "text": {"format": "%(asctime)s %(levelname)s %(name)s %(message)s"},
        },
        "handlers": {
            "console": {
                "class": "logging.StreamHandler",
                "stream": "ext://sys.stdout",
                "formatter": formatter,
                "filters": ["request_id"],
            },
        },
        "root": {"handlers": ["console"], "level": level},
        "loggers": {
            # Django's own handlers would print a second, unstructured copy.
            "django": {"handlers": ["console"], "level": level, "propagate": False},
            "gunicorn.error": {"handlers": ["console"], "level": level, "propagate": False},
            "gunicorn.access": {"handlers": ["console"], "level": "INFO", "propagate": False},
            "celery": {"handlers": ["console"], "level": level, "propagate": False},
            # django-axes logs every login at INFO; dls_admin.login_throttle logs what matters.
            "axes": {"handlers": ["console"], "level": "WARNING", "propagate": False},
        },
    }
