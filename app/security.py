"""The security headers every response carries, in a module with no imports: the app (app/errors.py)
and gunicorn's own error pages (app/serving.py, loaded by gunicorn.conf.py in the master) share them,
and deploy/nginx/emotion.conf.template repeats them for nginx's (tests/app/test_server.py checks that
the three agree)."""

# The page loads its scripts and styles from /static only (no inline script); images and audio may
# come from data:/blob: URLs the page makes itself (webcam snapshots, annotated canvas, audio).
CONTENT_SECURITY_POLICY = "; ".join([
    "default-src 'self'",
    "img-src 'self' data: blob:",
    "media-src 'self' blob:",
    "connect-src 'self'",
    "frame-ancestors 'none'",
    "object-src 'none'",
    "base-uri 'self'",
    "form-action 'self'",
])
SECURITY_HEADERS = {
    "Content-Security-Policy": CONTENT_SECURITY_POLICY,
    "X-Content-Type-Options": "nosniff",
    "Referrer-Policy": "no-referrer",
    "X-Frame-Options": "DENY",
    "Permissions-Policy": "camera=(self), microphone=(), geolocation=()",
}
