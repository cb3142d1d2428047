"""What nbgrader runs of ours: the only module ``course/nbgrader_config.py``
imports, so that the config does not load the grader.

* Phase 2 of ``autodiff-course grade`` (``configure``, only when
  ``AUTODIFF_COURSE_PHASE=record``): nbgrader's autograde pipeline with
  execution replaced by the outputs phase 1 produced in the sandbox, reading
  the rebuilt notebooks from ``INPUT_DIR`` instead of ``submitted/``.
* Feedback (``configure_feedback``): ``nbgrader generate_feedback`` without
  hidden tests, tracebacks or paths of the grading machine, in the student's
  language (``language.translate_feedback``).
"""

from __future__ import annotations

INPUT_DIR = "autograde-input"
PHASE_VARIABLE = "AUTODIFF_COURSE_PHASE"


def record_preprocessors():
    """(sanitize, autograde) preprocessor lists for ``c.Autograde``."""
    from nbconvert.preprocessors import ClearMetadataPreprocessor, Preprocessor
    from nbgrader.preprocessors import (AssignLatePenalties, DeduplicateIds, LimitOutput,
                                        OverwriteCells, OverwriteKernelspec, SaveAutoGrades)

    class KeepOutputs(Preprocessor):
        """Phase 1 already ran the notebook in the sandbox."""

    # nbgrader's lists without Execute (and ClearOutput, IgnorePattern) and
    # without CheckCellMetadata, which validates every cell's nbgrader metadata
    # against its schema (a sixth of phase 2's time): phase 1 rebuilt each
    # notebook from a copy of the released one (submission.rebuild), so every
    # cell's metadata is the instructor's, validated when `nbgrader
    # generate_assignment` released it; no student's metadata reaches here.
    sanitize = [DeduplicateIds, OverwriteKernelspec, OverwriteCells]
    autograde = [KeepOutputs, ClearMetadataPreprocessor, LimitOutput, SaveAutoGrades,
                 AssignLatePenalties]
    return sanitize, autograde


def configure(c):
    """Switch an nbgrader config ``c`` to phase 2."""
    c.CourseDirectory.submitted_directory = INPUT_DIR
    c.Autograde.sanitize_preprocessors, c.Autograde.autograde_preprocessors = \
        record_preprocessors()
    # the notebook's language (grading/language.py) stays for feedback
    c.ClearMetadataPreprocessor.preserve_nb_metadata_mask = {("language_info", "name"),
                                                             ("autodiff",)}


# ------------------------------------------------------------ feedback


def feedback_exporter(course=None):
    """nbconvert's HTML exporter for ``nbgrader generate_feedback``, made safe
    to hand to students (``c.GenerateFeedback.exporter_class``).

    The hidden tests are removed before it runs (nbgrader's
    ``ClearHiddenTests``, see ``configure_feedback``). It then shows each
    failed test as its exercise name and the explanation (the error's one
    line, never a traceback through hidden code), labels the table of contents
    by exercise, gives every figure alt text and removes absolute paths of the
    grading machine.
    """
    import re

    from nbconvert import HTMLExporter
    from nbgrader.utils import is_grade, is_solution

    path = re.compile(r"(?<![\w:/.\-])/(?:tmp|home|root|work|usr|opt|srv|var|mnt|Users|private)"
                      r"/[^\s\"'<>():,]*")

    def scrub(text):
        return path.sub(lambda m: "\u2026/" + m.group(0).rstrip("/").rsplit("/", 1)[-1], text)

    class FeedbackExporter(HTMLExporter):
        def from_notebook_node(self, nb, resources=None, **kw):
            from .language import feedback_word, translate_feedback

            assignment = ((resources or {}).get("nbgrader") or {}).get("assignment")
            language = translate_feedback(nb, course or ".", assignment) if assignment else "en"
            labels = {}
            for cell in nb.cells:
                if is_grade(cell) and not is_solution(cell) and cell.cell_type == "code":
                    gid = cell.metadata.nbgrader["grade_id"]
                    labels[gid] = exercise_label(gid, language)
                    for out in cell.get("outputs", []):
                        if out.get("output_type") == "error":
                            out["traceback"] = [f"{out.get('ename')}: {out.get('evalue')}"]
                for out in cell.get("outputs", []) if cell.cell_type == "code" else []:
                    for key in ("text", "evalue"):
                        if isinstance(out.get(key), str):
                            out[key] = scrub(out[key])
                    if "traceback" in out:
                        out["traceback"] = [scrub(line) for line in out["traceback"]]
            html, resources = super().from_notebook_node(nb, resources, **kw)
            for gid, label in labels.items():
                html = html.replace(f'<a href="#{gid}">Test cell</a>',
                                    f'<a href="#{gid}">{label}</a>')
            alt = feedback_word("A figure the notebook drew", language)
            html = re.sub(r"<img (?![^>]*\balt=)", f'<img alt="{alt}" ', html)
            if language != "en":
                html = html.replace('<html>', f'<html lang="{language}">', 1)
            return html, resources

    return FeedbackExporter


def exercise_label(test_id, language="en"):
    """``test_central_difference`` -> ``Exercise central_difference``."""
    from .language import feedback_word

    name = test_id[len("test_"):] if test_id.startswith("test_") else test_id
    return feedback_word("Exercise {name}", language, name=name)


def configure_feedback(c):
    """Feedback for students: no hidden tests, explanations, no paths."""
    from nbconvert.preprocessors import CSSHTMLHeaderPreprocessor
    from nbgrader.preprocessors import ClearHiddenTests, GetGrades

    c.GenerateFeedback.preprocessors = [GetGrades, CSSHTMLHeaderPreprocessor, ClearHiddenTests]
    c.GenerateFeedback.exporter_class = feedback_exporter(c.CourseDirectory.root or None)
    c.GenerateFeedback.post_convert_hook = feedback_for_every_edition


def feedback_for_every_edition(assignment, student, notebooks):
    """nbgrader's Assignments panel offers feedback only when *every* notebook
    of a submission has some (``nbgrader.exchange.default.list``), and a
    submission holds both editions of a notebook (``<nb>.ipynb`` and
    ``<nb>.zh-CN.ipynb``, both fetched). The gradebook knows the English
    name only, so the feedback written for it (in the student's language) is
    also written under the name of each other edition the student submitted.
    ``notebooks``: the autograded notebooks of one student's submission
    (``autograded/<student>/<assignment>/<nb>.ipynb``)."""
    import shutil
    from pathlib import Path

    from ..editions import EDITIONS, edition_name

    for path in map(Path, notebooks):
        folder = path.parent  # autograded/<student>/<assignment>
        course, student_id, assignment_id = folder.parent.parent.parent, folder.parent.name, \
            folder.name
        feedback = course / "feedback" / student_id / assignment_id
        html = feedback / f"{path.stem}.html"
        submitted = course / "submitted" / student_id / assignment_id
        for tag in EDITIONS:
            other = Path(edition_name(path.name, tag))
            if html.exists() and (submitted / other.name).exists():
                shutil.copy2(html, feedback / f"{other.stem}.html")
