"""French stays complete: every string the portal marks for translation (Python,
templates, the email templates, the scripts' messages) has a French translation
that is not fuzzy, and the libraries' French catalogues we rely on are complete."""

from __future__ import annotations

import shutil
import subprocess
import tempfile
from pathlib import Path

import pytest
from django.utils.translation import template as template_i18n

ROOT = Path(__file__).resolve().parents[2]
LOCALE = ROOT / "locale" / "fr" / "LC_MESSAGES"
KEYWORDS = [
    "--keyword=gettext_noop", "--keyword=gettext_lazy", "--keyword=ngettext_lazy:1,2",
    "--keyword=pgettext:1c,2", "--keyword=npgettext:1c,2,3", "--keyword=pgettext_lazy:1c,2",
    "--keyword=npgettext_lazy:1c,2,3", "--keyword=_", "--keyword=gettext",
    "--keyword=ngettext:1,2",
]  # fmt: skip

pytestmark = pytest.mark.skipif(shutil.which("xgettext") is None, reason="gettext not installed")


def _catalogue(name: str) -> dict[str, tuple[str, bool]]:
    """msgid -> (msgstr, fuzzy), read with the same tools gettext uses."""
    import re

    text = (LOCALE / name).read_text(encoding="utf-8")
    entries: dict[str, tuple[str, bool]] = {}
    for block in re.split(r"\n\s*\n", text):
        lines = [line for line in block.splitlines() if not line.startswith("#~")]
        fuzzy = any(line.startswith("#,") and "fuzzy" in line for line in lines)
        body = "\n".join(line for line in lines if not line.startswith("#")) + "\n"
        msgid = re.search(r'^msgid ((?:".*"\n)+)', body, re.MULTILINE)
        if not msgid:
            continue
        key = "".join(re.findall(r'"(.*)"', msgid.group(1)))
        strs = re.findall(r'^msgstr(?:\[\d\])? ((?:".*"\n)+)', body, re.MULTILINE)
        value = "".join(re.findall(r'"(.*)"', strs[0])) if strs else ""
        if key:
            entries[key] = (value, fuzzy)
    return entries


def _extract(paths: list[Path], language: str) -> set[str]:
    if not paths:
        return set()
    with tempfile.TemporaryDirectory() as tmp:
        out = Path(tmp) / "messages.pot"
        subprocess.run(
            ["xgettext", f"--language={language}", "--from-code=UTF-8", "--no-location",
             "--output", str(out), *KEYWORDS, *map(str, paths)],
            check=True, capture_output=True,
        )  # fmt: skip
        if not out.exists():
            return set()
        return _catalogue_from(out)


def _catalogue_from(path: Path) -> set[str]:
    import re

    text = path.read_text(encoding="utf-8")
    found = set()
    for block in re.split(r"\n\s*\n", text):
        body = "\n".join(line for line in block.splitlines() if not line.startswith("#")) + "\n"
        msgid = re.search(r'^msgid ((?:".*"\n)+)', body, re.MULTILINE)
        if msgid:
            key = "".join(re.findall(r'"(.*)"', msgid.group(1)))
            if key:
                found.add(key)
    return found


def _source_messages() -> set[str]:
    python = [p for p in ROOT.glob("accounts/**/*.py") if "migrations" not in p.parts] + list(
        ROOT.glob("portal/*.py")
    )
    messages = _extract(python, "Python")
    with tempfile.TemporaryDirectory() as tmp:
        converted = []
        for i, template in enumerate(
            sorted(ROOT.glob("templates/**/*.html")) + sorted(ROOT.glob("templates/**/*.txt"))
        ):
            target = Path(tmp) / f"t{i}.py"
            target.write_text(
                template_i18n.templatize(template.read_text(encoding="utf-8")), encoding="utf-8"
            )
            converted.append(target)
        messages |= _extract(converted, "Python")
    return messages


def test_every_portal_string_has_a_french_translation() -> None:
    catalogue = _catalogue("django.po")
    used = _source_messages()
    assert len(used) > 300
    missing = sorted(m for m in used if m not in catalogue)
    untranslated = sorted(m for m in used if m in catalogue and not catalogue[m][0])
    fuzzy = sorted(m for m in used if m in catalogue and catalogue[m][1])
    assert not missing, f"not in the French catalogue (run make messages): {missing}"
    assert not untranslated, f"untranslated: {untranslated}"
    assert not fuzzy, f"fuzzy: {fuzzy}"


def test_script_messages_have_a_french_translation() -> None:
    catalogue = _catalogue("djangojs.po")
    used = _extract(sorted(ROOT.glob("accounts/i18n/*.js")), "JavaScript")
    assert used
    assert all(m in catalogue and catalogue[m][0] and not catalogue[m][1] for m in used)


def test_compiled_catalogues_are_present() -> None:
    for name in ("django.mo", "djangojs.mo"):
        assert (LOCALE / name).stat().st_size > 1000


@pytest.mark.parametrize("package", ["allauth"])
def test_library_french_catalogues_are_complete(package: str) -> None:
    import importlib

    module = importlib.import_module(package)
    po = Path(module.__file__).parent / "locale" / "fr" / "LC_MESSAGES" / "django.po"
    result = subprocess.run(
        ["msgfmt", "--statistics", "-o", "/dev/null", str(po)], capture_output=True, text=True
    )
    assert "untranslated" not in result.stderr, result.stderr
    assert "fuzzy" not in result.stderr, result.stderr
