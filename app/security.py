"""The security headers every response carries, and how much of a client's input an error message may
quote (`quote`), in a module with no imports: the app (app/errors.py)
and gunicorn's own error pages (app/serving.py, loaded by gunicorn.conf.py in the master) share them,
and deploy/nginx/emotion.conf.template repeats them for nginx's (tests/app/test_server.py checks that
the three agree)."""

# The page loads its scripts and styles from /static only (no inline script); images and audio may
# come from data:/blob: URLs the page makes itself (webcam snapshots, annotated canvas, audio).
CONTENT_SECURITY_POLICY = "; ".join(
    [
        "default-src 'self'",
        # private mode runs onnxruntime-web: compiling WebAssembly needs 'wasm-unsafe-eval' (not 'unsafe-eval')
        "script-src 'self' 'wasm-unsafe-eval'",
        "worker-src 'self' blob:",
        "img-src 'self' data: blob:",
        "media-src 'self' blob:",
        "connect-src 'self'",
        "frame-ancestors 'none'",
        "object-src 'none'",
        "base-uri 'self'",
        "form-action 'self'",
    ]
)
SECURITY_HEADERS = {
    "Content-Security-Policy": CONTENT_SECURITY_POLICY,
    "X-Content-Type-Options": "nosniff",
    "Referrer-Policy": "no-referrer",
    "X-Frame-Options": "DENY",
    "Permissions-Policy": "camera=(self), microphone=(), geolocation=()",
    # Cross-origin isolation: lets private mode run onnxruntime-web on several threads
    # (SharedArrayBuffer); the page loads nothing from another origin anyway.
    "Cross-Origin-Opener-Policy": "same-origin",
    "Cross-Origin-Embedder-Policy": "require-corp",
    "Cross-Origin-Resource-Policy": "same-origin",
}

# An error message quotes at most this many characters of what the client sent (issue 16: a form with
# 999 long field names came back whole in a 400's message).
QUOTE_LIMIT = 100


def quote(value, limit: int = QUOTE_LIMIT) -> str:
    """`repr` of the first `limit` characters of `str(value)`, with "..." after when cut."""
    text = str(value)
    return repr(text[:limit]) + ("..." if len(text) > limit else "")
