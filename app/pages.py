"""The page: GET / renders templates/index.html (the template and its static files live at the repo root)."""
from __future__ import annotations

from flask import Blueprint, render_template
from jinja2 import TemplateNotFound

from .assistant import DISPLAY_NAMES, LABELS, LANGUAGES, SPLIT_NAMES
from .errors import error_response
from .emotion import get_models

bp = Blueprint("pages", __name__)


@bp.get("/")
def index():
    registry = get_models()
    try:
        return render_template(
            "index.html",
            default_model=registry.default,
            models=[card.summary() for card in registry.cards.values()],
            languages=LANGUAGES,
            labels=LABELS,
            display_names=DISPLAY_NAMES,
            split_names=SPLIT_NAMES,
        )
    except TemplateNotFound:
        return error_response(503, "page_missing", "templates/index.html is not there yet; the API works")
