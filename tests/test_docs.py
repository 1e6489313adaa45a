"""The documentation stays true to the code it describes.

README.md's configuration table lists exactly the settings `stir config` shows: every field of
every section in `stir.settings.SECTIONS`, by its environment variable. A new setting without a
README row fails here, and so does a row for a setting that no longer exists.
"""

from __future__ import annotations

import re
from pathlib import Path

from stir.settings import SECTIONS

README = Path(__file__).resolve().parent.parent / "README.md"
START, END = "<!-- settings:start -->", "<!-- settings:end -->"
ROW = re.compile(r"^\|\s*`(STIR_[A-Z0-9_]+)`\s*\|([^|]*)\|(.*)\|\s*$")


def _readme_rows() -> list[tuple[str, str, str]]:
    text = README.read_text()
    assert START in text, f"README.md lost its {START} marker"
    assert END in text, f"README.md lost its {END} marker"
    block = text.split(START, 1)[1].split(END, 1)[0]
    lines = [line for line in block.splitlines() if line.startswith("|")]
    header, separator, *body = lines
    assert header.lower().startswith("| variable"), header
    assert set(separator) <= set("|-: "), separator
    rows = []
    for line in body:
        match = ROW.match(line)
        assert match, f"not a `| `STIR_...` | default | what |` row in README.md: {line}"
        rows.append((match[1], match[2].strip(), match[3].strip()))
    return rows


def _settings_shown_by_stir_config() -> list[str]:
    # `stir config` prints `describe(get_settings())`: one row per field of each section, named
    # by `env_name`. Read from the classes, so the test does not depend on the environment.
    return [cls.env_name(field) for cls in SECTIONS.values() for field in cls.model_fields]


def test_the_readme_configuration_table_lists_exactly_the_settings() -> None:
    documented = [env for env, _, _ in _readme_rows()]
    settings = _settings_shown_by_stir_config()
    duplicates = sorted({env for env in documented if documented.count(env) > 1})
    missing = [env for env in settings if env not in documented]
    unknown = [env for env in documented if env not in settings]
    problems = {"add a row for": missing, "remove": unknown, "listed twice": duplicates}
    problems = {what: names for what, names in problems.items() if names}
    assert not problems, (
        "README.md's configuration table must list exactly the settings `stir config` shows "
        f"(stir/settings.py): {problems}"
    )


def test_every_configuration_row_says_what_the_setting_does() -> None:
    vague = [env for env, _, what in _readme_rows() if not what]
    assert not vague, f"README.md's configuration rows without a description: {vague}"
