"""`flask cards`: list the model cards the app would serve (and check them)."""

from __future__ import annotations

import click
from flask import current_app

from model_core.card import CardError, load_cards

from .emotion import get_models


def init_app(app) -> None:
    @app.cli.command("cards")
    @click.option("--strict/--no-strict", default=True, help="fail on the first bad card")
    def cards_command(strict: bool):
        """Validate and list the model cards in MODELS_DIR."""
        try:
            cards = load_cards(current_app.config["MODELS_DIR"], strict=strict)
        except CardError as exc:
            raise click.ClickException(str(exc)) from exc
        default = get_models().default
        for card in cards.values():
            acc = {s: round(m["accuracy"], 4) for s, m in card.metrics.items()}
            mark = "*" if card.name == default else " "
            click.echo(f"{mark} {card.name:<20} {card.kind:<8} {len(card.classes)} classes  {acc}")
        if not cards:
            click.echo("no model cards")
