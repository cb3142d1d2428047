"""Regenerate and verify the course: ``autodiff-course build``.

From the one edited source, ``course/notebooks/<assignment>/*.py``:

1. write the nbgrader source notebooks ``course/source/<assignment>/*.ipynb``;
2. ``nbgrader generate_assignment``: the student versions in ``course/release/``;
3. ``nbgrader generate_solution``: the solutions, without hidden tests, in
   ``course/solution/``;
4. the translated editions (``editions.py``): for each language of
   ``course/translations/``, ``release/<a>/<nb>.<lang>.ipynb`` and
   ``solution/<a>/<nb>.<lang>.ipynb`` from the English ones through the
   catalogs, and the notation card's translation; the test cells' messages
   (``messages.py``): ``translations/<lang>/messages/<a>.po`` merged and
   checked, the visible tests' ``release/<a>/messages.<lang>.po``; a missing,
   stale or broken translation is a problem;
5. verify: no solution code or hidden test in a student version, no hidden
   test in a solution; every English solution, graded as a submission
   (answers in the sandboxed kernel, every test, hidden ones included, on
   the grader's trusted side), scores full marks with no cell raising; every
   translated solution runs clean in a fresh kernel and scores full marks,
   without a missing glyph in a figure; every autograded test cell fails on the English
   student version (a test that passes on an empty answer gives free
   points); the editions have the same cells, code, tests, grade ids and
   points, so a translated student version's tests fail with the English.
"""

from __future__ import annotations

import multiprocessing
import re
import shutil
import sys
import time
from concurrent.futures import ProcessPoolExecutor, as_completed
from dataclasses import dataclass, field
from pathlib import Path

import nbformat

from . import editions, messages
from .authoring import to_notebook, write_notebook
from .course import assignments
from .jupyter import NotebookRunner, grade_id, is_grade, nbgrader
from .translation import language_tag, languages

# Workers are started fresh, not forked: forking a process that runs threads
# (a test runner, ZeroMQ) can leave the child waiting on a lock forever.
_SPAWN = multiprocessing.get_context("spawn")


def write_sources(course, assignment):
    """Step 1: the ``.py`` sources of one assignment -> ``source/`` notebooks."""
    src_dir = Path(course) / "notebooks" / assignment
    out_dir = Path(course) / "source" / assignment
    if out_dir.exists():
        shutil.rmtree(out_dir)
    written = []
    for py in sorted(src_dir.glob("*.py")):
        target = out_dir / (py.stem + ".ipynb")
        write_notebook(to_notebook(py), target)
        written.append(target)
    for extra in sorted(src_dir.iterdir()):  # data files shipped with the assignment
        if extra.suffix != ".py" and extra.is_file():
            shutil.copy2(extra, out_dir / extra.name)
    return written


# ------------------------------------------------------------ verification


@dataclass
class Run:
    """The graded cells of one executed notebook."""

    path: str
    scores: dict = field(default_factory=dict)  # grade_id -> (score, max_score)
    errors: list = field(default_factory=list)  # ids/indices of cells that raised
    messages: dict = field(default_factory=dict)  # grade_id -> last error line
    font_warnings: list = field(default_factory=list)  # matplotlib could not draw a glyph
    seconds: float = 0.0  # how long the run took

    @property
    def total(self):
        return sum(s for s, _ in self.scores.values())

    @property
    def max_total(self):
        return sum(m for _, m in self.scores.values())


def execute(path, timeout=120):
    """Run a notebook top to bottom in a fresh kernel, continuing past errors,
    and score its autograded cells the way nbgrader does."""
    started = time.perf_counter()
    nb = NotebookRunner(nbformat.read(path, as_version=4), Path(path).parent,
                        timeout=timeout).run_all()
    return _scored(nb, path, started)


def grade_solution(path):
    """An English solution notebook graded as a submission would be: its
    answers in the sandboxed kernel (without the reference engine where the
    exercise forbids it; sandboxed only where bubblewrap works here), every
    test, hidden part included, on the grader's trusted side. The outputs of
    the cells whose outputs cannot depend on the answers are kept for the
    grader (``template.save_outputs``)."""
    from .grading import sandbox
    from .grading.submission import CELL_TIMEOUT, grade_notebook
    from .grading.template import save_outputs, templates

    path, started = Path(path), time.perf_counter()
    template = templates(path.parents[2], path.parent.name)[path.name]
    template.outputs = {}  # computed here, for the grader to keep
    nb, _, _, _, _, fault = grade_notebook(template, nbformat.read(path, as_version=4), [],
                                           sandbox.available() is None, CELL_TIMEOUT)
    run = _scored(nb, path, started)
    if not run.errors and not fault:
        save_outputs(path.parents[2], path.parent.name, template, nb)
    if fault:
        run.errors.append(f"grading stopped: {fault}")
    return run


def _scored(nb, path, started):
    """A ``Run`` of an executed notebook: nbgrader's score of each graded cell."""
    from nbgrader.utils import determine_grade

    run = Run(str(path), seconds=time.perf_counter() - started)
    for index, cell in enumerate(nb.cells):
        if cell.cell_type != "code":
            continue
        for out in cell.outputs:
            if out.output_type == "stream":
                run.font_warnings += [f"cell {index}: {found.group(0)}"
                                      for line in out.text.splitlines()
                                      if (found := _FONT_WARNING.search(line))]
        failed = [o for o in cell.outputs if o.output_type == "error"]
        if failed:
            run.errors.append(grade_id(cell) or index)
        if is_grade(cell):
            run.scores[grade_id(cell)] = determine_grade(cell)
            if failed:
                run.messages[grade_id(cell)] = f"{failed[0].ename}: {failed[0].evalue}"
    return run


# what matplotlib prints when a figure's text lacks a font for some character
_FONT_WARNING = re.compile(r"Glyph \d+ .*missing from.*|findfont: Font family .* not found.*")


def check_text(course, assignment):
    """Students never see solutions or hidden tests; solutions hide no hidden tests."""
    problems = []
    for folder, forbidden in (("release", ("BEGIN SOLUTION", "END SOLUTION", "HIDDEN TESTS")),
                              ("solution", ("HIDDEN TESTS",))):
        for nb_path in sorted((Path(course) / folder / assignment).glob("*.ipynb")):
            nb = nbformat.read(nb_path, as_version=4)
            for i, cell in enumerate(nb.cells):
                for word in forbidden:
                    if word in cell.source:
                        problems.append(f"{nb_path}: cell {i} contains {word!r}")
    return problems


def run_notebooks(paths, jobs=2, how=None):
    """``execute`` each notebook (or ``how[i](path)``) in a pool of ``jobs``
    processes, in order, with a progress bar on a terminal."""
    from tqdm import tqdm

    runs = [None] * len(paths)
    with ProcessPoolExecutor(max_workers=jobs, mp_context=_SPAWN) as pool, \
            tqdm(total=len(paths), desc="verifying", unit="notebook", disable=None,
                 file=sys.stderr, dynamic_ncols=True) as bar:
        futures = {pool.submit(how[i] if how else execute, p): i for i, p in enumerate(paths)}
        for future in as_completed(futures):
            runs[futures[future]] = future.result()
            bar.update()
    return runs


def verify(course, names, jobs=2, log=print):
    """Grade every English solution as the grader would (``grade_solution``),
    run every translated solution and English student notebook; return a
    list of problems."""
    course = Path(course)
    langs = languages(course)
    problems = []
    for a in names:
        problems += check_text(course, a)
        for lang in langs:
            problems += editions.compare_assignment(course, a, lang)
    solutions = [p for a in names for p in sorted((course / "solution" / a).glob("*.ipynb"))]
    sources = [p for p in solutions if not editions.is_edition(p)]
    how = [grade_solution] * len(sources)
    sources += [p for p in solutions if editions.is_edition(p)]
    # the English student versions only: a translated one has the same answer
    # stubs and byte-identical tests (``compare_assignment``), so its tests fail
    # exactly when the English ones do, and its translated cells ran above
    releases = [p for a in names for p in sorted((course / "release" / a).glob("*.ipynb"))
                if not editions.is_edition(p)]
    how += [execute] * (len(sources) + len(releases) - len(how))
    runs = run_notebooks(sources + releases, jobs, how)
    for run in runs[:len(sources)]:
        if run.errors or run.total != run.max_total:
            problems.append(f"{run.path}: the solution scores {run.total}/{run.max_total}; "
                            f"cells that raised: {run.errors} {run.messages}")
        else:
            log(f"  ok  {run.path}: full marks {run.total}/{run.max_total}, no errors "
                f"({run.seconds:.0f} s)")
    for run in runs[len(sources):]:
        passing = [g for g, (s, m) in run.scores.items() if s > 0]
        if passing:
            problems.append(f"{run.path}: test cell(s) {passing} pass on the student version")
        else:
            log(f"  ok  {run.path}: every one of {len(run.scores)} test cells fails "
                f"on the student version ({run.seconds:.0f} s)")
    translated = sum(r.seconds for r in runs if editions.is_edition(r.path))
    if translated:
        log(f"  the translated editions took {translated:.0f} s of "
            f"{sum(r.seconds for r in runs):.0f} s of notebook runs")
    for run in runs:
        if run.font_warnings:
            problems.append(f"{run.path}: a figure lacks a font for some characters (install "
                            "Debian's fonts-noto-cjk; if it is installed, delete matplotlib's "
                            "font cache, ~/.cache/matplotlib, which predates it): "
                            + "; ".join(run.font_warnings[:3]))
    return problems


def build(course, names=None, do_verify=True, jobs=2, log=print):
    course = Path(course)
    names = names or assignments(course)
    langs = languages(course)
    started = time.perf_counter()
    for a in names:
        written = write_sources(course, a)
        log(f"source   {a}: {', '.join(p.name for p in written)}")
    problems = []
    for page in sorted((course / "notebooks").glob("*.md")):  # pages every notebook links to
        for folder in ("source", "release"):
            (course / folder).mkdir(exist_ok=True)
            shutil.copy2(page, course / folder / page.name)
    for lang in langs:
        problems += editions.write_pages(course, lang)
    for a in names:
        nbgrader(course, "generate_assignment", a, "--force")
        nbgrader(course, "generate_solution", a, "--force")
        log(f"release  {a}, solution {a}")
        for lang in langs:
            found = editions.write_editions(course, a, lang)
            # the test cells' messages: the instructor's catalog merged and
            # checked, the visible tests' beside the release notebooks
            found += messages.build_messages(course, a, language_tag(lang))
            problems += found
            log(f"{lang:8} {a}: " + (f"{len(found)} translation problem(s)" if found
                                      else "release and solution, test messages"))
    if do_verify:
        problems += verify(course, names, jobs, log)
    else:
        problems += [p for a in names for p in check_text(course, a)]
        problems += [p for a in names for lang in langs
                     for p in editions.compare_assignment(course, a, lang)]
    log(f"built {len(names)} assignment(s) in {time.perf_counter() - started:.1f} s")
    return problems
