"""WSGI entry point: `flask run` (from the repo root) and `gunicorn -c gunicorn.conf.py wsgi:app` find `app` here."""

from app import create_app

app = create_app()
