"""Every language the app speaks: one module per language in this package, found by name.

A module `<code>.py` (the language's two- or three-letter code, lower case) holds everything about it:

- `NAME`: the language's name in itself, for the page's menu;
- `VOICE`: the espeak-ng voice that reads it (app/speech.py; the online voice is asked for the code);
- `DISPLAY_NAMES`: every label's name (model_core.labels.LABELS);
- `SPLIT_NAMES`: the test splits' names, in model_core.labels.SPLITS order;
- `REPLIES` and `HEDGED`: the assistant's replies and its unsure ones, entry n of a label translating
  entry n of every other language (a reply's id names the same sentence in all of them);
- `UI`: the page's texts (the page reads them from the server, `static/js/strings.js`).

Adding a language is adding its module (tests/app/test_languages.py checks it is complete); app.assistant,
app.speech, the page's language menu and its texts all read from here. English (`DEFAULT`) comes first;
the others follow in the order of their codes.
"""

from __future__ import annotations

import importlib
import pkgutil
import re
from collections.abc import Mapping
from dataclasses import dataclass
from types import MappingProxyType

DEFAULT = "en"
CODE = re.compile(r"^[a-z]{2,3}$")  # what app.speech's audio keys and the API's `lang` accept


@dataclass(frozen=True)
class Language:
    code: str
    name: str
    voice: str
    display_names: Mapping[str, str]
    split_names: Mapping[str, str]
    replies: Mapping[str, tuple[str, ...]]
    hedged: Mapping[str, tuple[str, ...]]
    ui: Mapping[str, object]


def _load(name: str) -> Language:
    m = importlib.import_module(f"{__name__}.{name}")
    if getattr(m, "CODE", name) != name or not CODE.match(name):
        raise ImportError(
            f"app/languages/{name}.py: a language module is named by its code ([a-z]{{2,3}}) "
            f"and its CODE says the same, got CODE={getattr(m, 'CODE', None)!r}"
        )
    return Language(name, m.NAME, m.VOICE, m.DISPLAY_NAMES, m.SPLIT_NAMES, m.REPLIES, m.HEDGED, m.UI)


def _discover() -> Mapping[str, Language]:
    names = sorted(info.name for info in pkgutil.iter_modules(__path__) if not info.name.startswith("_"))
    if DEFAULT not in names:
        raise ImportError(f"app/languages/ has no {DEFAULT}.py, the default language")
    return MappingProxyType({n: _load(n) for n in [DEFAULT] + [n for n in names if n != DEFAULT]})


LANGUAGES: Mapping[str, Language] = _discover()
