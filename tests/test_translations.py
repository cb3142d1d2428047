"""The Chinese edition: catalogs, glossary, the build's translation checks
(through the CLI, in a copy of the course, as an instructor runs them) and the
built editions side by side."""

from __future__ import annotations

import re
import sys
from pathlib import Path

import nbformat
import polib
import pytest

from autodiff_course import editions, translation
from course_helpers import COURSE, copy_course, run

LANG, TAG = "zh_CN", "zh-CN"
CATALOGS = COURSE / "translations" / LANG
SCRIPT = str(Path(sys.executable).parent / "autodiff-course")


def _entries():
    """(catalog name, entry) of every current translation."""
    for path in sorted(CATALOGS.glob("*.po")):
        for entry in polib.pofile(str(path)):
            if not entry.obsolete and entry.msgstr and "fuzzy" not in entry.flags:
                yield path.stem, entry


def _cell(entry):
    return entry.occurrences[0][1] if entry.occurrences else "?"


# ------------------------------------------------------------ glossary

# Forms of a term the glossary's notes sanction besides its main column.
ALTERNATIVES = {
    "topological order": {"拓扑序"},  # note: "also 拓扑序 in running text"
    "tangent": {"切线"},  # note: the tangent line of a plot is 切线
    "intermediate": {"中间"},  # note: 中间节点 for a node; 中间张量/中间数组 likewise
    "Jacobian": {"雅可比"},  # inside compounds: 向量-雅可比积, 雅可比-向量积
    "Hessian": {"海森"},  # inside 海森-向量积
    "derivative": {"求导"},  # "the derivative rule/of ..." reads 求导法则, 对...求导
}
# Entries whose English holds a term in another sense, or as a name from the
# code: (catalog, cell, term) -> why the Chinese term is not expected.
ALLOWED = {
    ("04_reverse_mode", "20", "adjoint"): "the argument name in "
    "node.function.backward(node.ctx, adjoint), code in a docstring",
    ("07_custom_functions", "35", "cell"): "a cell of the quantisation grid (格子), "
    "not a notebook cell",
    ("08_own_engine", "26", "memory"): "'not from memory': recollection (凭记忆), not RAM",
    ("05_matrix_calculus", "62", "forward pass"): "前向计算: the computation of one "
    "fused operation, not a pass through a network",
    ("05_matrix_calculus", "65", "forward pass"): "前向计算: layer_norm's own computation",
    ("06_network", "34", "bias"): "'biases: a list of L arrays': the parameter's name "
    "in a docstring, kept",
    ("07_custom_functions", "15", "gradient"): "one message split over two string "
    "literals; the Chinese says 梯度 in the second",
}


def _prose(text):
    """English text without what is never translated: code, math, link
    targets, placeholders."""
    for pattern in (translation.CODE_BLOCK, translation.CODE_SPAN, translation.MATH):
        text = pattern.sub(" ", text)
    text = re.sub(r"\]\([^)]*\)", "]", text)
    return re.sub(r"\{[^{}]*\}", " ", text)


def _term_pattern(english):
    # a word of its own: not part of an identifier (node_to_grad, node.next,
    # biases[l], numerical_jacobian(...)); plurals count
    return re.compile(r"(?<![\w.])" + re.escape(english) + r"(?:s|es)?(?!\w|\.\w|[(\[])",
                      re.I)


def test_glossary_is_well_formed():
    terms = translation.glossary(COURSE, LANG)
    assert len(terms) >= 40
    english = [t.english.lower() for t in terms]
    assert len(english) == len(set(english)), "a term is listed twice"
    for term in terms:
        assert term.chinese and term.chinese not in term.forbidden, term
        assert not set(term.chinese) & translation.traditional_only(), term
    for needed in ("自动微分", "前向模式", "反向模式", "伴随", "计算图", "拓扑排序", "雅可比矩阵",
                   "分子布局", "向量-雅可比积", "广播", "叶子节点", "梯度累加", "截断误差",
                   "舍入误差", "机器精度", "中心差分", "对偶数", "海森-向量积"):
        assert needed in {t.chinese for t in terms}, needed


def test_no_forbidden_variant_or_traditional_character():
    forbidden = translation.forbidden_variants(translation.glossary(COURSE, LANG))
    traditional = translation.traditional_only()
    found = []
    for name, entry in _entries():
        for variant, term in forbidden:
            if variant in entry.msgstr:
                found.append(f"{name} cell {_cell(entry)}: {variant!r} (write {term!r})")
        if set(entry.msgstr) & traditional:
            found.append(f"{name} cell {_cell(entry)}: traditional "
                         f"{''.join(sorted(set(entry.msgstr) & traditional))}")
    assert found == []


def test_each_glossary_term_is_translated_as_the_glossary_says():
    """An entry whose English uses a glossary term uses its Chinese term (or
    a form the glossary's note sanctions), unless ALLOWED says why not."""
    terms = translation.glossary(COURSE, LANG)
    patterns = [(t, _term_pattern(t.english)) for t in terms]
    wrong, used = [], set()
    for name, entry in _entries():
        if entry.msgstr == entry.msgid:  # kept English on purpose (not prose)
            continue
        english = _prose(entry.msgid)
        chinese = re.sub(r"\s+", "", entry.msgstr)  # a docstring may wrap inside a word
        for term, pattern in patterns:
            match = pattern.search(english)
            if not match:
                continue
            accepted = {term.chinese} | ALTERNATIVES.get(term.english, set())
            if any(a in chinese for a in accepted):
                continue
            word = match.group(0)
            name_kept = word[:len(term.english)]  # without a plural ending
            if word[0].isupper() and name_kept in entry.msgstr:  # a class name: Tensor, Node
                continue
            key = (name, _cell(entry), term.english)
            if key in ALLOWED:
                used.add(key)
                continue
            wrong.append(f"{name} cell {key[1]}: {word!r} without {term.chinese!r}: "
                         f"{entry.msgstr[:80]!r}")
    assert wrong == []
    assert used == set(ALLOWED), f"allow-list entries no longer needed: {set(ALLOWED) - used}"


def test_catalogs_are_complete_and_current():
    """What the build checks, without building: every English text of the
    course has a current translation that keeps math, code and placeholders."""
    assert translation.check(COURSE, LANG) == []


def test_readme_zh_is_linked_and_names_no_mirror():
    readme = (COURSE.parent / "README.md").read_text()
    assert "(README.zh-CN.md)" in readme
    zh = (COURSE.parent / "README.zh-CN.md").read_text(encoding="utf-8")
    for needed in ("autodiff-course build", "autodiff-course translations update",
                   "autodiff-course grade", "pip install -e", "--index-url", "conda env create",
                   "docs/translating.md", "nbgrader 的面板"):
        assert needed in zh, needed
    assert set(re.findall(r"https?://([^/\s)`>]+)", zh)) <= {"mybinder.org"}


# ------------------------------------------------------------ the checks themselves


@pytest.mark.parametrize("msgid, msgstr, kind, complaint", [
    ("the slope $f'(x)$ at $x$", "在$x$处的斜率$f(x)$", "markdown", "math"),
    ("call `grad(f)` first", "先调用`grad(g)`", "markdown", "code span"),
    ("see the [card](../notation.md)", "见[卡片](notation.md)", "markdown", "link target"),
    ("error {err:.3g} at step {k}", "第k步的误差为{err:.3g}", "string", "placeholder"),
    ("the forward mode", "正向模式", "markdown", "forbids"),
    ("automatic differentiation", "自動微分", "markdown", "traditional"),
    ("a block\n\n```python\nx = 1\n```", "一段\n\n```python\nx = 2\n```", "markdown",
     "code block"),
])
def test_a_broken_translation_is_named(msgid, msgstr, kind, complaint):
    forbidden = translation.forbidden_variants(translation.glossary(COURSE, LANG))
    problems = translation.entry_problems(msgid, msgstr, kind, forbidden)
    assert problems and complaint in " ".join(problems), problems


def test_math_may_wrap_differently_but_not_change():
    assert translation.entry_problems("with $\\theta_1\n\\theta_2$ here",
                                      "这里是$\\theta_1 \\theta_2$", "markdown") == []
    assert translation.entry_problems("with $a$ and $b$", "有$a$和$c$", "markdown")


@pytest.mark.parametrize("translated, complaint", [
    ('plt.title("一个“好”图")\nx = 1  # 注释', None),
    ('plt.title("一个"好"图")\nx = 1', "no longer parses"),
    ('plt.title("图")\nx = 2  # 注释', "differs from the English"),
    ('plt.title("图", fontsize=9)\nx = 1', "differs from the English"),
])
def test_translated_code_must_keep_its_tokens(translated, complaint):
    problem = editions.code_problem('plt.title("A figure")\nx = 1  # a comment', translated)
    if complaint is None:
        assert problem is None
    else:
        assert problem and complaint in problem


def _graded_pair():
    """A tiny English notebook (setup, answer, test) and its translation."""
    def cell(source, **role):
        c = nbformat.v4.new_code_cell(source)
        c.metadata["nbgrader"] = {"grade": False, "solution": False, "locked": True,
                                  "schema_version": 3, "grade_id": role.pop("id"), **role}
        return c

    english = nbformat.v4.new_notebook(cells=[
        cell("import matplotlib.pyplot as plt\nfrom autodiff_ref import grading", id="setup"),
        cell('def f(x):\n    """Twice x."""\n    raise NotImplementedError()', id="f",
             solution=True, locked=False),
        cell("assert f(2) == 4", id="test_f", grade=True, points=1)])
    chinese = nbformat.from_dict(nbformat.reads(nbformat.writes(english), as_version=4))
    setup = chinese.cells[0]
    setup.source += "\n" + "\n".join(editions.setup_lines(LANG))
    chinese.cells[1].source = chinese.cells[1].source.replace("Twice x.", "x 的两倍。")
    return english, chinese


def test_the_editions_check_catches_a_changed_test_grade_id_or_points():
    english, chinese = _graded_pair()
    assert editions.compare(english, chinese, LANG, "zh") == []
    for change in ("test", "grade id", "points", "order", "code"):
        _, other = _graded_pair()
        if change == "test":
            other.cells[2].source = "assert f(2) == 4  # 测试"
        elif change == "grade id":
            other.cells[1].metadata.nbgrader["grade_id"] = "g"
        elif change == "points":
            other.cells[2].metadata.nbgrader["points"] = 2
        elif change == "order":
            other.cells[1], other.cells[2] = other.cells[2], other.cells[1]
        else:
            other.cells[1].source = other.cells[1].source.replace("raise", "return 2 * x\n    raise")
        assert editions.compare(english, other, LANG, "zh"), change


def test_translate_sets_up_the_language_links_the_card_and_keeps_checksums_true():
    from nbgrader.utils import compute_checksum

    english, _ = _graded_pair()
    english.cells.insert(0, nbformat.v4.new_markdown_cell("See the [card](../notation.md)."))
    for cell in english.cells:
        cell.metadata.setdefault("nbgrader", {"grade_id": "md", "locked": True,
                                              "grade": False, "solution": False})
        cell.metadata.nbgrader["checksum"] = compute_checksum(cell)
    catalog = {"See the [card](../notation.md).": polib.POEntry(
        msgid="See the [card](../notation.md).", msgstr="见[卡片](../notation.md)。"),
               "Twice x.": polib.POEntry(msgid="Twice x.", msgstr="x 的两倍。")}
    out, problems = editions.translate(english, catalog, LANG, "zh", {"notation.md"})
    assert problems == []
    assert out.cells[0].source == "见[卡片](../notation.zh-CN.md)。"
    assert out.cells[1].source.endswith("\n".join(editions.setup_lines(LANG)))
    assert 'grading.use_language("zh-CN")' in out.cells[1].source
    assert '"""x 的两倍。"""' in out.cells[2].source
    assert out.cells[3].source == english.cells[3].source  # the test cell
    for cell in out.cells:
        assert cell.metadata.nbgrader["checksum"] == compute_checksum(cell)
    assert out.metadata["autodiff"]["language"] == "zh-CN"

    catalog["Twice x."].flags.append("fuzzy")
    english.cells[1].source = "import numpy as np"  # no `from autodiff_ref import grading`
    _, problems = editions.translate(english, catalog, LANG, "zh", {"notation.md"})
    assert any("stale translation" in p and "cell 2" in p for p in problems), problems
    assert any("lacks `from autodiff_ref import grading`" in p for p in problems), problems


@pytest.mark.slow
def test_update_marks_changed_english_fuzzy_with_the_previous_english(tmp_path):
    """`translations update` after an English edit: the old translation is
    kept, marked fuzzy, with the old English beside it; `translations check`
    then names it and exits 1."""
    course = copy_course(tmp_path / "course")
    source = course / "notebooks" / "01_derivatives" / "derivatives.py"
    old = "# Training a model means making a loss $L(\\theta)$ small by changing the"
    text = source.read_text()
    assert old in text
    source.write_text(text.replace(old, old.replace("Training a model", "Fitting a model")))
    before = {e.msgid: e.msgstr for e in polib.pofile(str(course / "translations" / LANG /
                                                          "01_derivatives.po"))}
    proc = run([SCRIPT, "translations", "update", "--lang", LANG], course)
    assert "01_derivatives.po: " in proc.stdout and "1 stale (fuzzy)" in proc.stdout
    po = polib.pofile(str(course / "translations" / LANG / "01_derivatives.po"))
    fuzzy = [e for e in po if "fuzzy" in e.flags]
    assert len(fuzzy) == 1 and fuzzy[0].msgid.startswith("# 01 · ")
    assert "Fitting a model" in fuzzy[0].msgid and "Training a model" in fuzzy[0].previous_msgid
    assert fuzzy[0].msgstr == before[fuzzy[0].previous_msgid]  # the old translation kept
    proc = run([SCRIPT, "translations", "check"], course, check=False)
    assert proc.returncode == 1
    assert "01_derivatives/derivatives.py cell 0 (markdown)" in proc.stderr
    assert "stale translation" in proc.stderr and "Training a model" in proc.stderr


# ------------------------------------------------------------ the build


@pytest.mark.slow
def test_stale_and_missing_translations_fail_the_build(tmp_path):
    """An instructor edits English prose: the build fails naming the catalog,
    notebook, cell and text, with the fix; after `translations update` it
    fails as stale until a translator has reviewed it."""
    course = copy_course(tmp_path / "my-course")
    source = course / "notebooks" / "01_derivatives" / "derivatives.py"
    text = source.read_text()
    old = "# ## 3. Finite differences"
    assert old in text
    source.write_text(text.replace(old, "# ## 3. Finite differences, once more"))
    build = [SCRIPT, "build", "--no-verify", "01_derivatives"]

    missing = run(build, course, check=False)
    assert missing.returncode == 1
    line = next(l for l in missing.stderr.splitlines() if "Finite differences, once" in l)
    assert line.startswith("PROBLEM translations/zh_CN/01_derivatives.po: "
                           "01_derivatives/derivatives.py cell ")
    assert "no translation" in line and "autodiff-course translations update" in line
    assert not (course / "release" / "01_derivatives" / f"derivatives.{TAG}.ipynb").exists()

    run([SCRIPT, "translations", "update"], course)
    stale = run(build, course, check=False)
    assert stale.returncode == 1
    line = next(l for l in stale.stderr.splitlines() if "Finite differences, once" in l)
    assert "stale translation" in line
    assert re.search(r"it was: .## 3\. Finite differences The derivative", line), line
    assert "clear the fuzzy flag" in line

    # reviewed (fuzzy flag cleared), but another entry emptied by mistake:
    # `translations check` names only that one (what the build would say)
    po_path = course / "translations" / LANG / "01_derivatives.po"
    po = polib.pofile(str(po_path))
    for entry in po:
        if "fuzzy" in entry.flags:
            entry.flags.remove("fuzzy")
            entry.previous_msgid = None
    victim = next(e for e in po if e.comment == "string" and e.msgstr)
    victim.msgstr = ""
    po.save(str(po_path))
    empty = run([SCRIPT, "translations", "check"], course, check=False)
    assert empty.returncode == 1
    assert [l for l in empty.stderr.splitlines() if l.startswith("PROBLEM")] == [
        l for l in empty.stderr.splitlines() if "no translation yet (empty msgstr)" in l]
    assert len([l for l in empty.stderr.splitlines() if l.startswith("PROBLEM")]) >= 1


@pytest.mark.slow
def test_the_editions_share_cells_tests_grade_ids_and_points(built_course):
    course, problems = built_course
    assert problems == []
    names = sorted(p.name for p in (course / "source").iterdir() if p.is_dir())
    assert len(names) == 9
    for a in names:
        for source_path in sorted((course / "source" / a).glob("*.ipynb")):
            assert not editions.is_edition(source_path)  # source/: English only
            english = nbformat.read(course / "release" / a / source_path.name, as_version=4)
            zh_path = course / "release" / a / f"{source_path.stem}.{TAG}.ipynb"
            chinese = nbformat.read(zh_path, as_version=4)
            assert len(english.cells) == len(chinese.cells), zh_path
            graded = 0
            for en, zh in zip(english.cells, chinese.cells):
                a_meta = dict(en.metadata.get("nbgrader", {}))
                b_meta = dict(zh.metadata.get("nbgrader", {}))
                a_meta.pop("checksum", None)
                b_meta.pop("checksum", None)
                assert (en.cell_type, a_meta) == (zh.cell_type, b_meta), zh_path
                if a_meta.get("grade") and not a_meta.get("solution"):  # a test cell
                    assert en.source == zh.source, (zh_path, a_meta["grade_id"])
                    graded += 1
            assert graded
            assert chinese.metadata["autodiff"]["language"] == TAG
            text = "\n".join(c.source for c in chinese.cells if c.cell_type == "markdown")
            assert re.search(r"[\u4e00-\u9fff]{20}", text), zh_path  # Chinese prose
            assert "../notation.zh-CN.md" in text and "../notation.md" not in text
            setup = next(c for c in chinese.cells if c.cell_type == "code")
            assert f'grading.use_language("{TAG}")' in setup.source
            assert "Noto Sans CJK SC" in setup.source
            solution = course / "solution" / a / f"{source_path.stem}.{TAG}.ipynb"
            assert "BEGIN SOLUTION" in solution.read_text(encoding="utf-8")
    card = (course / "release" / "notation.zh-CN.md").read_text(encoding="utf-8")
    assert card.startswith("# 符号约定")
