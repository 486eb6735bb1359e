"""Logs an operator can search (issue 24): a request id on every request, and JSON lines on demand.

- **Request id.** Each request gets one: the `X-Request-ID` header when it is a plausible id (the
  shipped nginx sets its `$request_id`, ingress-nginx does the same), else a new random one. It is
  echoed in the response's `X-Request-ID` and put on every log line written while the request is
  served, so one id ties the proxy's log, gunicorn's access line and the app's own lines together.
- **`LOG_FORMAT=json`** (the process environment, read by gunicorn.conf.py and by the app, like
  `PORT`): one JSON object per line, for the app's logs (`init_app`) and gunicorn's error and access
  logs (`GunicornJsonLogger`, gunicorn.conf.py's `logger_class`). Anything else: the plain text lines.

What a client sent never reaches a log whole: every argument of a log message and every field of an
access line taken from the request (path, query, user agent, referer, request id) is cut to
`QUOTE_LIMIT` (100) characters; bodies (images) are never logged.
"""

from __future__ import annotations

import json
import logging
import os
import re
import time
import traceback
import uuid

from .security import QUOTE_LIMIT

REQUEST_ID_HEADER = "X-Request-ID"
# nginx's $request_id is 32 hex digits; UUIDs, ULIDs and most tracing ids fit this too.
_ID_OK = re.compile(r"[A-Za-z0-9][A-Za-z0-9._:@+=/-]{0,63}")
_NO_REQUEST = "-"


def log_format(app=None) -> str:
    """ "json" or "text": the app's LOG_FORMAT setting, else the LOG_FORMAT variable."""
    value = (app.config.get("LOG_FORMAT") if app is not None else None) or os.environ.get("LOG_FORMAT") or "text"
    return "json" if str(value).strip().lower() == "json" else "text"


def clean_request_id(value) -> str | None:
    """A client's or proxy's request id if it is a plausible one (1-64 characters of letters, digits
    and `._:@+=/-`), else None (a new id is made): an id goes into every log line, so it may not
    carry spaces, quotes, newlines or a long text."""
    if not isinstance(value, str):
        return None
    value = value.strip()
    return value if _ID_OK.fullmatch(value) else None


def new_request_id() -> str:
    return uuid.uuid4().hex


def cut(value, limit: int = QUOTE_LIMIT):
    """A string or bytes cut to `limit` characters (with "..." after); bytes are never logged whole."""
    if isinstance(value, (bytes, bytearray, memoryview)):
        return f"<{len(value)} bytes>"
    if isinstance(value, str) and len(value) > limit:
        return value[:limit] + "..."
    return value


def current_request_id() -> str:
    """The request id of the request this thread serves, or "-"."""
    try:
        from flask import g, has_request_context

        if has_request_context():
            return g.get("request_id") or _NO_REQUEST
    except Exception:  # pragma: no cover
        pass
    return _NO_REQUEST


class RequestContextFilter(logging.Filter):
    """Adds `request_id` to every record and cuts its arguments to QUOTE_LIMIT characters."""

    def filter(self, record: logging.LogRecord) -> bool:
        if not hasattr(record, "request_id"):
            record.request_id = current_request_id()
        if isinstance(record.args, tuple):
            record.args = tuple(cut(a) for a in record.args)
        elif isinstance(record.args, dict):
            record.args = {k: cut(v) for k, v in record.args.items()}
        return True


def _iso(created: float) -> str:
    return time.strftime("%Y-%m-%dT%H:%M:%S", time.gmtime(created)) + f".{int(created % 1 * 1000):03d}Z"


class JsonFormatter(logging.Formatter):
    """One JSON object per record: ts (UTC), level, logger, pid, request_id, msg, and exc (the
    traceback) when there is one; a record's `fields` dict (access lines) is merged in."""

    def format(self, record: logging.LogRecord) -> str:
        out = {
            "ts": _iso(record.created),
            "level": record.levelname.lower(),
            "logger": record.name,
            "pid": record.process,
            "request_id": getattr(record, "request_id", None) or current_request_id(),
        }
        fields = getattr(record, "fields", None)
        if isinstance(fields, dict):
            out.update(fields)
        else:
            try:
                out["msg"] = record.getMessage()
            except Exception:  # a bad format string still gives a line
                out["msg"] = str(record.msg)
        if record.exc_info:
            out["exc"] = "".join(traceback.format_exception(*record.exc_info))[-4000:]
        return json.dumps(out, ensure_ascii=False, default=str)


TEXT_FORMAT = "%(asctime)s %(levelname)s %(name)s [%(request_id)s]: %(message)s"


def init_app(app) -> None:
    """Request ids on every request, and the root logger's handlers in the chosen format."""
    from flask import g, request

    fmt = log_format(app)
    formatter = JsonFormatter() if fmt == "json" else logging.Formatter(TEXT_FORMAT)
    root = logging.getLogger()
    for handler in root.handlers:
        if not any(isinstance(f, RequestContextFilter) for f in handler.filters):
            handler.addFilter(RequestContextFilter())
        if getattr(handler, "_emotion_format", None) != fmt and not _is_test_handler(handler):
            handler.setFormatter(formatter)
            setattr(handler, "_emotion_format", fmt)  # noqa: B010  (a mark on a handler we do not own)
    app.config["LOG_FORMAT"] = fmt

    @app.before_request
    def _request_id():
        g.request_id = clean_request_id(request.headers.get(REQUEST_ID_HEADER)) or new_request_id()

    @app.after_request
    def _echo_request_id(response):
        rid = g.get("request_id")
        if rid:
            response.headers[REQUEST_ID_HEADER] = rid
        return response


def _is_test_handler(handler: logging.Handler) -> bool:
    # pytest's capture handlers keep their own format
    return type(handler).__module__.startswith("_pytest")


# ---- gunicorn --------------------------------------------------------------------------------------


def gunicorn_json_logger():
    """gunicorn's Logger, writing its error log and access log as JSON lines (gunicorn.conf.py sets it
    as `logger_class` when LOG_FORMAT=json). Imported lazily: the app runs without gunicorn too."""
    from gunicorn.glogging import Logger

    class GunicornJsonLogger(Logger):
        def setup(self, cfg):
            super().setup(cfg)
            for log in (self.error_log, self.access_log):
                for handler in log.handlers:
                    handler.setFormatter(JsonFormatter())
                    if not any(isinstance(f, RequestContextFilter) for f in handler.filters):
                        handler.addFilter(RequestContextFilter())

        def access(self, resp, req, environ, request_time):
            if not self.access_log_enabled:
                return
            try:
                self.access_log.info(
                    "access",
                    extra={
                        "fields": access_fields(resp, req, environ, request_time),
                        "request_id": _response_request_id(resp, environ),
                    },
                )
            except Exception:
                self.error(traceback.format_exc())

    return GunicornJsonLogger


def _response_request_id(resp, environ) -> str:
    headers = resp.headers.items() if hasattr(resp.headers, "items") else resp.headers
    for name, value in headers or ():
        if name.lower() == "x-request-id":
            return clean_request_id(value) or _NO_REQUEST
    # gunicorn answered before the app (a malformed request): the proxy's id, if any
    return clean_request_id(environ.get("HTTP_X_REQUEST_ID")) or _NO_REQUEST


def access_fields(resp, req, environ, request_time) -> dict:
    """One access line's fields; everything the client chose is cut to QUOTE_LIMIT characters."""
    status = resp.status
    if isinstance(status, str):
        status = status.split(None, 1)[0]
    try:
        status = int(status)
    except (TypeError, ValueError):
        pass
    seconds = request_time.seconds + request_time.microseconds / 1e6
    return {
        "msg": "access",
        "remote": environ.get("REMOTE_ADDR", "-"),
        "method": cut(environ.get("REQUEST_METHOD", "-"), 20),
        "path": cut(environ.get("PATH_INFO", "")),
        "query": cut(environ.get("QUERY_STRING", "")),
        "status": status,
        "bytes": getattr(resp, "sent", None),
        "duration_ms": round(seconds * 1000, 1),
        "protocol": cut(environ.get("SERVER_PROTOCOL", "-"), 20),
        "user_agent": cut(environ.get("HTTP_USER_AGENT", "")),
        "referer": cut(environ.get("HTTP_REFERER", "")),
    }
