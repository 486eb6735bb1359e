"""The page: GET / renders templates/index.html (the template and its static files live at the repo root)."""

from __future__ import annotations

from flask import Blueprint, render_template
from jinja2 import TemplateNotFound

from .assistant import DEFAULT_LANG, DISPLAY_NAMES, LABELS, LANGUAGE_NAMES, SPLIT_NAMES, UI_STRINGS
from .emotion import get_models
from .errors import error_response

bp = Blueprint("pages", __name__)


@bp.get("/")
def index():
    registry = get_models()
    try:
        return render_template(
            "index.html",
            default_model=registry.default,
            models=[card.summary() for card in registry.cards.values()],
            languages=LANGUAGE_NAMES,  # code -> its own name, the default language first
            labels=LABELS,
            display_names=DISPLAY_NAMES,
            split_names=SPLIT_NAMES,
            strings=UI_STRINGS,  # every language's page texts (static/js/strings.js)
            ui=UI_STRINGS[DEFAULT_LANG],  # the texts the page is rendered with, before its script runs
        )
    except TemplateNotFound:
        return error_response(503, "page_missing", "templates/index.html is not there yet; the API works")
