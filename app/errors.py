"""Every error is JSON `{"error": {"code", "message"}}`, and every response carries the security headers."""

from __future__ import annotations

import logging
import re

from flask import jsonify, request
from werkzeug.exceptions import HTTPException

from .imaging import ImageError
from .security import CONTENT_SECURITY_POLICY, SECURITY_HEADERS  # noqa: F401  (re-exported)

log = logging.getLogger(__name__)


class ApiError(Exception):
    """An error a route raises on purpose: status, a stable code and a message for people."""

    def __init__(self, status: int, code: str, message: str):
        super().__init__(message)
        self.status, self.code, self.message = status, code, message


def error_response(status: int, code: str, message: str):
    response = jsonify({"error": {"code": code, "message": message}})
    response.status_code = status
    return response


def _code_for(exc: HTTPException) -> str:
    return re.sub(r"[^a-z0-9]+", "_", (exc.name or "error").lower()).strip("_")


def init_app(app) -> None:
    @app.errorhandler(ApiError)
    def _api_error(exc: ApiError):
        return error_response(exc.status, exc.code, exc.message)

    @app.errorhandler(ImageError)
    def _image_error(exc: ImageError):
        return error_response(exc.status, exc.code, exc.message)

    @app.errorhandler(HTTPException)
    def _http_error(exc: HTTPException):
        response = error_response(exc.code or 500, _code_for(exc), exc.description or exc.name)
        allowed = getattr(exc, "valid_methods", None)  # MethodNotAllowed's
        if exc.code == 405 and allowed:
            response.headers["Allow"] = ", ".join(allowed)
        return response

    @app.errorhandler(Exception)
    def _unexpected(exc: Exception):
        # Only true bugs get here; the traceback goes to the log, never to the client.
        log.exception("unhandled error on %s %s", request.method, request.path)
        return error_response(500, "internal_error", "the server hit an unexpected error")

    @app.after_request
    def _security_headers(response):
        for name, value in SECURITY_HEADERS.items():
            response.headers.setdefault(name, value)
        return response
