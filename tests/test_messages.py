"""The grading helper's explanations in Chinese (autodiff_ref.i18n,
grading.use_language) and the catalogs of the test cells' own messages
(autodiff_course.messages)."""

from __future__ import annotations

import re
import subprocess
import sys
from pathlib import Path

import nbformat
import numpy as np
import polib
import pytest

from autodiff_course import messages
from autodiff_course.authoring import to_notebook
from autodiff_course.grading import language
from autodiff_ref import grading, i18n

REPO = Path(__file__).resolve().parent.parent
COURSE = REPO / "course"
CJK = re.compile(r"[\u4e00-\u9fff]")
ZH = "zh-CN"


@pytest.fixture
def chinese():
    grading.use_language(ZH)
    yield
    grading.use_language("en")


def _raised(call):
    with pytest.raises(grading.GradingError) as info:
        call()
    return info.value


# one failing check per category, each the mistake a student makes
def _upstream_ignored():
    grading.check_vjp(lambda g, x: 2 * x, lambda x: x ** 2, [(3,)])


CASES = {
    "returned_nothing": lambda: grading.assert_close(None, 1.0),
    "not_an_array": lambda: grading.assert_close("abc", 1.0, name="f(1)"),
    "not_finite": lambda: grading.assert_close([1.0, np.nan], [1.0, 2.0]),
    "wrong_shape": lambda: grading.assert_close(np.ones(3), np.ones(4), name="grad_x"),
    "transposed": lambda: grading.assert_close(np.arange(6.0).reshape(2, 3),
                                               np.arange(6.0).reshape(2, 3).T),
    "missing_broadcast_sum": lambda: grading.assert_close(np.ones((4, 3)), 4 * np.ones(3)),
    "needs_reshape": lambda: grading.assert_close(np.arange(6.0), np.arange(6.0).reshape(2, 3)),
    "wrong_sign": lambda: grading.assert_close(-np.arange(1.0, 4.0), np.arange(1.0, 4.0)),
    "ignores_upstream": _upstream_ignored,
    "constant_factor": lambda: grading.assert_close(2 * np.arange(1.0, 4.0), np.arange(1.0, 4.0)),
    "not_exact": lambda: grading.assert_close(1.0 + 1e-7, 1.0, rtol=1e-12),
    "wrong_values": lambda: grading.assert_close([1.0, 5.0, 3.0], [1.0, 2.0, 3.0]),
    "wrong_count": lambda: grading.check_vjp(lambda g, a, b: g, lambda a, b: a * b,
                                             [(2,), (2,)]),
    "out_of_bounds": lambda: grading.assert_less(3.0, 1.0, name="loss", hint="(E'(eps) = 0)"),
    "missing_paths": lambda: grading.assert_sum_of_parts(2.0, {"mul": 2.0, "add": 1.0},
                                                         name="x.grad"),
}


def forward_difference():
    raise NotImplementedError()


def _not_written():
    with grading.exercise(2, "central_difference", needs=[(1, "forward_difference")]):
        forward_difference()


CASES["not_written"] = _not_written
CASES["check_failed"] = lambda: (_ for _ in ()).throw(grading.GradingError("anything"))


def test_every_category_is_exercised():
    assert set(CASES) == set(grading.CATEGORIES)


@pytest.mark.parametrize("category", sorted(set(grading.CATEGORIES) - {"check_failed"}))
def test_every_category_explains_in_chinese_with_the_same_type(category, chinese):
    error = _raised(CASES[category])
    assert error.category == category
    assert type(error) is grading.CATEGORIES[category]
    text = str(error)
    assert CJK.search(text), text
    assert not re.search(r"\b(the|is|should|expected|got)\b", text), text  # no English left


@pytest.mark.parametrize("category", sorted(grading.CATEGORIES))
def test_english_stays_the_default(category):
    text = str(_raised(CASES[category]))
    assert not CJK.search(text)


def test_the_same_mistake_in_both_languages_keeps_its_numbers(chinese):
    zh = str(_raised(lambda: grading.assert_close(np.ones((3, 2)), np.ones((2, 3)),
                                                  name="matmul_backward(g, a, b)")))
    grading.use_language("en")
    en = str(_raised(lambda: grading.assert_close(np.ones((3, 2)), np.ones((2, 3)),
                                                  name="matmul_backward(g, a, b)")))
    assert "transposed" in en and "转置" in zh
    for fact in ("matmul_backward(g, a, b)", "(2, 3)", "(3, 2)"):
        assert fact in en and fact in zh


def test_passed_and_exercise_lines(chinese, capsys):
    grading.passed("central_difference")
    assert capsys.readouterr().out.strip() == "✓ central_difference通过了可见测试"
    text = str(_raised(_not_written))
    assert "练习2" in text and "`forward_difference`" in text and "练习1" in text


def test_chinese_lines_wrap_by_display_width(chinese):
    text = str(_raised(CASES["missing_broadcast_sum"]))
    lines = text.split("\n")
    assert len(lines) > 1
    assert all(grading._width(line) <= grading.WIDTH for line in lines), lines
    assert "(4, 3)" in text and "(3,)" in text  # shapes never broken


def test_the_language_is_the_notebooks_choice_not_the_locale(tmp_path):
    code = ("from autodiff_ref import grading\n"
            "try:\n    grading.assert_close(None, 1.0)\nexcept AssertionError as e:\n"
            "    print(e)\n")
    env = {"LANG": "zh_CN.UTF-8", "LC_ALL": "zh_CN.UTF-8", "LANGUAGE": "zh_CN",
           "PATH": "/usr/bin:/bin"}
    out = subprocess.run([sys.executable, "-c", code], env=env, capture_output=True,
                         text=True, cwd=tmp_path).stdout
    assert "returned nothing" in out and not CJK.search(out)
    out = subprocess.run([sys.executable, "-c", code.replace(
        "grading\n", "grading\ngrading.use_language('zh-CN')\n", 1)],
        env={"PATH": "/usr/bin:/bin", "LANG": "C"}, capture_output=True, text=True,
        cwd=tmp_path).stdout
    assert "什么也没有返回" in out


def test_an_unknown_language_is_refused():
    with pytest.raises(ValueError, match="xx"):
        grading.use_language("xx")


# ------------------------------------------------------- the engine's catalog


def test_the_engine_catalog_translates_every_template_of_grading_py():
    po = polib.pofile(str(i18n.catalog_file(ZH)))
    glossary = messages.read_glossary(COURSE / "translations" / "zh_CN" / "glossary.tsv")
    assert messages.check_messages(po, glossary) == []
    catalog = {e.msgid: e.msgstr for e in po if not e.obsolete}
    templates = messages.engine_templates()
    assert len(templates) > 30
    missing = [t for t in templates if t not in catalog]
    assert missing == []
    assert set(catalog) == set(templates)  # nothing stale either


def test_the_engine_catalog_ships_with_the_package():
    import importlib.resources

    assert (importlib.resources.files("autodiff_ref") / "locale" / "zh_CN.po").is_file()
    text = (REPO / "pyproject.toml").read_text()
    assert '"locale/*.po"' in text and "polib" in text


# ----------------------------------------------------------- the matching


CATALOG = {
    "{name} is wrong: expected {expected}, got {got}.": "{name} 不对：应为 {expected}，实际为 {got}。",
    "gradient_descent on sum_i a_i theta_i^2, n={_n}, eta={_eta}, {_steps} steps":
        "gradient_descent 作用于 sum_i a_i theta_i^2，n={_n}，eta={_eta}，共 {_steps} 步",
    "the error of {call} at {x} (twice {x})": "{call} 在 {x} 处的误差（两次 {x}）",
    "a plain sentence.": "一个普通的句子。",
    "uses {{braces}} literally": "按字面使用 {{braces}}",
}


def test_an_f_string_template_is_filled_with_the_formatted_values():
    english = "gradient_descent on sum_i a_i theta_i^2, n=3, eta=0.125, 7 steps"
    assert i18n.translate(english, ZH, CATALOG) == \
        "gradient_descent 作用于 sum_i a_i theta_i^2，n=3，eta=0.125，共 7 步"


def test_placeholders_inside_placeholders_are_translated_too():
    name = "gradient_descent on sum_i a_i theta_i^2, n=2, eta=0.300, 1 steps"
    english = f"{name} is wrong: expected 1.5, got 2."
    assert i18n.translate(english, ZH, CATALOG) == \
        "gradient_descent 作用于 sum_i a_i theta_i^2，n=2，eta=0.300，共 1 步 不对：应为 1.5，实际为 2。"


def test_a_repeated_placeholder_must_repeat_its_value():
    assert i18n.translate("the error of f at 2 (twice 2)", ZH, CATALOG) == "f 在 2 处的误差（两次 2）"
    assert i18n.translate("the error of f at 2 (twice 3)", ZH, CATALOG) == \
        "the error of f at 2 (twice 3)"


def test_a_wrapped_message_is_still_recognised():
    wrapped = "x is wrong: expected\n1, got 2."
    assert i18n.translate(wrapped, ZH, CATALOG) == "x 不对：应为 1，实际为 2。"


def test_plain_sentences_and_literal_braces():
    assert i18n.translate("a plain sentence.", ZH, CATALOG) == "一个普通的句子。"
    assert i18n.translate("uses {braces} literally", ZH, CATALOG) == "按字面使用 {braces}"


@pytest.mark.parametrize("message", ["", "Something nobody wrote down.", "x is wrong:", None,
                                     "x was wrong: expected 1, got 2."])
def test_an_unknown_message_falls_back_to_english(message):
    assert i18n.translate(message, ZH, CATALOG) == message


def test_a_broken_translation_never_crashes():
    broken = {"{name} is wrong: expected {expected}, got {got}.": "{名字} 不对 {",
              "odd {0} field": "奇怪 {0}"}
    english = "x is wrong: expected 1, got 2."
    assert i18n.translate(english, ZH, broken) == english
    assert i18n.translate("odd 1 field", ZH, broken) == "odd 1 field"
    assert i18n.translate(english, "en", CATALOG) == english


def test_a_test_message_from_the_notebooks_folder(tmp_path, monkeypatch):
    po = polib.POFile()
    po.append(polib.POEntry(msgid="relative_error(2.0, 1.0) (divide by the larger of the "
                                  "two norms)",
                            msgstr="relative_error(2.0, 1.0)（除以两个范数中较大的那个）"))
    po.save(str(tmp_path / "messages.zh-CN.po"))
    monkeypatch.chdir(tmp_path)
    grading.use_language(ZH)
    try:
        text = str(_raised(lambda: grading.assert_close(
            3.0, 1.0, name="relative_error(2.0, 1.0) (divide by the larger of the two norms)")))
    finally:
        grading.use_language("en")
    assert text.startswith("relative_error(2.0, 1.0)（除以两个范数中较大的那个）差了一个因子3")


# ------------------------------------------------------ the test-cell messages


CELL = '''with grading.exercise(1, "gradient_descent"):
    path = gradient_descent(loss_grad, np.array([2.0, 1.0]), 0.1, 2)
    if bad:
        raise grading.GradingError("gradient_descent stepped uphill: "
                                   "step along minus the gradient.")
    grading.assert_close(path, want, name="gradient_descent(loss_grad, [2.0, 1.0]) (the table)")
grading.passed("gradient_descent")
### BEGIN HIDDEN TESTS
for _ in range(3):
    grading.assert_close(_got, _want, name=f"gradient_descent, n={_n}, eta={_eta:.3f}, "
                         f"{_steps} steps")
    grading.check_vjp(f, g, [(2,)], names=["grad_x " + str(_n) + " of the chain"])
    grading.assert_less(e, 1, name=f"the error of {describe(_f)}", hint="(halve eps)")
### END HIDDEN TESTS
'''


def test_extract_finds_the_messages_of_a_test_cell_and_their_part():
    found = {t: hidden for t, hidden, _ in messages.extract(CELL)}
    assert found == {
        "gradient_descent stepped uphill: step along minus the gradient.": False,
        "gradient_descent(loss_grad, [2.0, 1.0]) (the table)": False,
        "gradient_descent, n={_n}, eta={_eta}, {_steps} steps": True,
        "grad_x {v1} of the chain": True,
        "the error of {v1}": True,
        "(halve eps)": True,
    }


def test_a_formatted_f_string_matches_its_extracted_template():
    template = "gradient_descent, n={_n}, eta={_eta}, {_steps} steps"
    chinese = "gradient_descent，n={_n}，eta={_eta}，共 {_steps} 步"
    _n, _eta, _steps = 4, 0.123456, 2
    formatted = f"gradient_descent, n={_n}, eta={_eta:.3f}, {_steps} steps"
    assert i18n.translate(formatted, ZH, {template: chinese}) == \
        "gradient_descent，n=4，eta=0.123，共 2 步"


def test_code_only_names_need_no_translation():
    assert not messages.is_prose("relative_error([3.0, 4.0], [3.0, 4.5])")
    assert not messages.is_prose("gradient_descent")
    assert messages.is_prose("relative_error of two equal vectors")


def _catalog_problems(assignment, tmp_path):
    """The build's check on a copy of the course's catalog of ``assignment``."""
    course = tmp_path / "course"
    (course / "translations" / "zh_CN" / "messages").mkdir(parents=True)
    (course / "translations" / "zh_CN" / "glossary.tsv").write_bytes(
        (COURSE / "translations" / "zh_CN" / "glossary.tsv").read_bytes())
    source = messages.course_catalog_path(COURSE, assignment)
    target = messages.course_catalog_path(course, assignment)
    target.write_bytes(source.read_bytes())
    folder = course / "source" / assignment
    folder.mkdir(parents=True)
    for py in sorted((COURSE / "notebooks" / assignment).glob("*.py")):
        nbformat.write(to_notebook(py), folder / f"{py.stem}.ipynb")
    return course, messages.build_messages(course, assignment)


ASSIGNMENTS = sorted(p.name for p in (COURSE / "notebooks").iterdir() if p.is_dir())


@pytest.mark.parametrize("assignment", ASSIGNMENTS)
def test_every_test_message_has_a_current_chinese_translation(assignment, tmp_path):
    course, problems = _catalog_problems(assignment, tmp_path)
    assert problems == []
    # the committed catalog is the one the build writes (nothing to merge)
    assert messages.course_catalog_path(course, assignment).read_bytes() == \
        messages.course_catalog_path(COURSE, assignment).read_bytes()
    po = polib.pofile(str(messages.course_catalog_path(course, assignment)))
    assert [e.msgid for e in po if e.obsolete] == []  # nothing stale kept around
    hidden = {e.msgid for e in po if messages.HIDDEN_FLAG in e.flags}
    public = polib.pofile(str(course / "release" / assignment / "messages.zh-CN.po"))
    assert {e.msgid for e in public} == {e.msgid for e in po} - hidden
    # the student's catalog holds no word of a hidden test
    text = (course / "release" / assignment / "messages.zh-CN.po").read_text()
    assert not any(msgid in text for msgid in hidden)


def test_a_changed_or_new_message_fails_the_build(tmp_path):
    course, problems = _catalog_problems("01_derivatives", tmp_path)
    assert problems == []
    source = course / "source" / "01_derivatives" / "derivatives.ipynb"
    nb = nbformat.read(source, as_version=4)
    cell = next(c for c in nb.cells if "gradient_descent stepped uphill" in c.source)
    cell.source = cell.source.replace("stepped uphill", "went uphill")
    cell.source += '\nraise grading.GradingError("a brand new message.")\n'
    nbformat.write(nb, source)
    problems = messages.build_messages(course, "01_derivatives")
    assert any("went uphill" in p and "fuzzy" in p for p in problems), problems
    assert any("a brand new message." in p and "no translation" in p for p in problems)


def test_a_translation_that_drops_a_placeholder_or_code_is_reported():
    assert messages.check_translation("n={_n} in `f`", "n= 在 `f` 中")
    assert messages.check_translation("n={_n} in `f`", "n={_n} 在 f 中")
    assert messages.check_translation("n={_n} in `f`", "n={_n} 在 `f` 中") == []
    glossary = [{"chinese": "雅可比矩阵", "forbidden": "雅克比|雅各比"}]
    assert messages.check_translation("the Jacobian", "雅克比", glossary)
    assert messages.check_translation("the gradient", "梯度") == []
    assert messages.check_translation("the derivative", "導數")  # traditional


# ------------------------------------------------------ the grader's side


def _release_with_answer(source):
    nb = nbformat.v4.new_notebook()
    cell = nbformat.v4.new_code_cell(source)
    cell.metadata["nbgrader"] = {"grade": False, "solution": True, "locked": False,
                                 "grade_id": "answer", "schema_version": 3}
    nb.cells.append(cell)
    return nb


def _template(english_stub, chinese_stub):
    from autodiff_course.grading.template import Template

    return Template("nb.ipynb", _release_with_answer(english_stub), {}, {},
                    {ZH: _release_with_answer(chinese_stub)}, {ZH: {}})


def _bytes(source):
    return nbformat.writes(_release_with_answer(source)).encode()


def test_the_edition_the_student_worked_in_is_graded():
    tmpl = {"nb.ipynb": _template("# the stub\nraise NotImplementedError()",
                                  "# 桩\nraise NotImplementedError()")}
    zh, en = "nb.zh-CN.ipynb", "nb.ipynb"
    untouched_en, untouched_zh = _bytes("# the stub\nraise NotImplementedError()"), \
        _bytes("# 桩\nraise NotImplementedError()")
    written_zh, written_en = _bytes("# 桩\nx = 1"), _bytes("# the stub\nx = 1")

    files, langs, notes = language.choose_editions({en: untouched_en, zh: written_zh}, tmpl)
    assert files == {en: written_zh} and langs == {en: ZH} and notes == []
    files, langs, _ = language.choose_editions({en: written_en, zh: untouched_zh}, tmpl)
    assert files == {en: written_en} and langs == {en: "en"}
    files, langs, _ = language.choose_editions({zh: written_zh, "data.csv": b"1"}, tmpl)
    assert files == {en: written_zh, "data.csv": b"1"} and langs == {en: ZH}
    files, langs, notes = language.choose_editions({en: written_en, zh: written_zh}, tmpl)
    assert langs == {en: "en"} and "both editions" in notes[0]  # a tie: English


def test_localize_translates_test_outputs_and_marks_the_notebook():
    from autodiff_course.grading.template import Template
    from autodiff_course.grading.verdict import error_output

    nb = nbformat.v4.new_notebook()
    test = nbformat.v4.new_code_cell("...")
    test.metadata["nbgrader"] = {"grade": True, "solution": False, "locked": True,
                                 "grade_id": "test_x", "points": 1, "schema_version": 3}
    english = str(_raised(lambda: grading.assert_close(2.0, 1.0, name="hidden name (secret)")))
    test.outputs = [nbformat.v4.new_output("stream", name="stdout",
                                           text="✓ x passes the visible tests\n"),
                    error_output("ConstantFactorError", english)]
    nb.cells.append(test)
    tmpl = Template("nb.ipynb", nb, {}, {}, {}, {ZH: {"hidden name (secret)": "隐藏的名字"}})
    language.localize(nb, ZH, tmpl)
    assert nb.metadata.autodiff.language == ZH
    assert test.outputs[0].text == "✓ x通过了可见测试\n"
    assert test.outputs[1].evalue.startswith("隐藏的名字差了一个因子2")
    assert test.outputs[1].ename == "ConstantFactorError"
    assert test.outputs[1].traceback == [f"ConstantFactorError: {test.outputs[1].evalue}"]


def test_a_short_template_does_not_swallow_other_sentences():
    catalog = i18n.engine_catalog(ZH)
    assert i18n.translate("gradient 1", ZH, catalog) == "梯度1"
    assert i18n.translate("gradient checking failed", ZH, catalog) == "gradient checking failed"
