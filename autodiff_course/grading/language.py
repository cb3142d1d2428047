"""Grading a class that works in two languages (the Chinese edition).

An assignment's release folder holds each notebook twice, ``<nb>.ipynb``
(English) and ``<nb>.zh-CN.ipynb`` (Chinese, the same answer and test cells,
translated prose). A student may submit either or both. This module is the
grader's one place for languages:

* ``choose_editions`` (before phase 1): per notebook, the edition the student
  worked in, the one whose answer cells differ from its release; with both
  edited, the one with more answers written (English on a tie), and the
  outcome says so. Its bytes go on under the English name, so the rest of the
  pipeline (rebuild from the instructor's English templates, the sandbox
  run, the gradebook) is the same for everyone: the same answers get the same
  score by construction.
* ``localize`` (after phase 1): the test outputs of a Chinese submission put
  into Chinese outside the student's kernel (``autodiff_ref.i18n.translate``
  with the engine's catalog and the assignment's test messages, the hidden
  tests' included), and ``metadata.autodiff.language`` set on the notebook,
  which phase 2 keeps (``record.configure``) and feedback reads.
* ``translate_feedback`` (``nbgrader generate_feedback``): the locked prose
  of a Chinese submission's feedback back in Chinese through the
  assignment's catalog (``course/translations/zh_CN/<assignment>.po``).
"""

from __future__ import annotations

from pathlib import Path

from ..editions import EDITIONS, ENGLISH, edition_name


def _folder(language):
    """``zh-CN`` -> ``zh_CN``, the folder of its catalogs under course/translations/."""
    return language.replace("-", "_")


def message_catalog_path(course, assignment, language):
    return Path(course) / "translations" / _folder(language) / "messages" / f"{assignment}.po"


def prose_catalog_path(course, assignment, language):
    return Path(course) / "translations" / _folder(language) / f"{assignment}.po"


def load_editions(course, assignment, name):
    """``({language: release notebook}, {language: test messages})`` of the
    other editions of notebook ``name`` (what ``Template`` carries)."""
    import nbformat
    from autodiff_ref.i18n import load_po

    releases, messages = {}, {}
    for language in EDITIONS:
        path = Path(course) / "release" / assignment / edition_name(name, language)
        if path.exists():
            releases[language] = nbformat.read(path, as_version=4)
            messages[language] = load_po(message_catalog_path(course, assignment, language))
    return releases, messages


# ------------------------------------------------------ before phase 1


def _answers(nb):
    from ..jupyter import grade_id, is_solution

    return {grade_id(c): (c.source if isinstance(c.source, str) else "".join(c.source))
            for c in nb.cells if is_solution(c)}


def _written(data, release):
    """How many answer cells of the notebook (bytes) differ from ``release``;
    None if it cannot be read."""
    import nbformat

    try:
        nb = nbformat.reads(data.decode("utf-8"), as_version=4)
        mine = _answers(nb)
    except Exception:  # noqa: BLE001  (find_notebooks reports unreadable files)
        return None
    stubs = _answers(release)
    return sum(1 for gid, source in mine.items() if gid in stubs and source != stubs[gid])


def choose_editions(files, assignment_templates):
    """Returns ``(files, languages, notes)``: the submission's files with each
    notebook's chosen edition under its English name (the other edition
    dropped), ``{notebook name: language}`` and sentences for the outcome."""
    files, languages, notes = dict(files), {}, []
    for name, template in assignment_templates.items():
        languages[name] = ENGLISH
        for language, release in (template.editions or {}).items():
            other = edition_name(name, language)
            if other not in files:
                continue
            data = files.pop(other)
            if name not in files:
                files[name], languages[name] = data, language
                continue
            english = _written(files[name], template.release)
            translated = _written(data, release)
            if (translated or 0) > (english or 0) or english is None and translated is not None:
                files[name], languages[name] = data, language
            if english and translated:
                notes.append(f"{name}: answers in both editions ({english} in English, "
                             f"{translated} in {language}); graded the "
                             f"{'English' if languages[name] == ENGLISH else language} one")
    return files, languages, notes


# ------------------------------------------------------- after phase 1


def localize(nb, language, template):
    """Put the test outputs of a graded notebook into ``language`` and mark
    the notebook with it (in place). English notebooks are left as they are."""
    from autodiff_ref.i18n import Catalog, engine_catalog, translate, translate_lines

    from ..jupyter import is_test

    if language == ENGLISH:
        return nb
    catalog = Catalog(engine_catalog(language), (template.messages or {}).get(language, {}))
    for cell in nb.cells:
        if cell.cell_type != "code" or not is_test(cell):
            continue
        for out in cell.get("outputs", []):
            if out.get("output_type") == "error":
                out["evalue"] = translate(out.get("evalue", ""), language, catalog)
                out["traceback"] = [f"{out.get('ename')}: {out['evalue']}"]
            elif out.get("output_type") == "stream":
                out["text"] = translate_lines(out.get("text", ""), language, catalog)
    from nbformat import NotebookNode

    nb.metadata.setdefault("autodiff", NotebookNode())["language"] = language
    return nb


def language_of(nb):
    return (nb.metadata.get("autodiff") or {}).get("language", ENGLISH)


# ------------------------------------------------------------ feedback


def translate_feedback(nb, course, assignment):
    """The locked prose of a graded notebook in its student's language
    (markdown and the comments and prose strings of locked code cells);
    answer cells are the student's and test cells stay as they are. A text
    the catalog lacks stays English. Returns the language."""
    from ..jupyter import is_solution
    from ..translation import load_catalog, translate_source, units

    language = language_of(nb)
    if language == ENGLISH:
        return language
    path = prose_catalog_path(course, assignment, language)
    catalog = load_catalog(path) if path.exists() else {}
    for cell in nb.cells:
        if is_solution(cell):
            continue
        pieces = units(cell)
        if pieces:
            cell.source = translate_source(cell.source, pieces,
                                           lambda unit: catalog.get(unit.text, unit.text))
    return language


FEEDBACK_WORDS = {"zh-CN": {"Exercise {name}": "练习{name}",
                            "A figure the notebook drew": "笔记本绘制的图"}}


def feedback_word(text, language, **fields):
    """A word of the feedback page (``FEEDBACK_WORDS``) in ``language``."""
    return FEEDBACK_WORDS.get(language, {}).get(text, text).format(**fields)
