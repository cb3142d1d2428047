"""Mutation test of the autograder: the tests of every exercise must reject
every small change to its solution that changes behaviour. Survivors that
do not change behaviour are listed, with the reason, in course/mutants/.

The suite runs a fixed sample (the same mutants every time: per exercise the
PER_EXERCISE whose keys hash lowest, plus every documented equivalent), so
that it stays within CI's time; `AUTODIFF_ALL_MUTANTS=1` runs all of them,
as `autodiff-course mutate` does.
"""

import os
from functools import partial

import pytest

from autodiff_course.course import assignments
from autodiff_course.mutation import equivalent_mutants, run_notebook, sample
from course_helpers import COURSE

pytestmark = pytest.mark.slow
PER_EXERCISE = 8


@pytest.mark.parametrize("assignment", assignments(COURSE))
def test_tests_kill_every_mutant_that_changes_behaviour(built_course, assignment):
    course, problems = built_course
    assert problems == []
    equivalent = equivalent_mutants(COURSE, assignment)
    for notebook in sorted((course / "source" / assignment).glob("*.ipynb")):
        everything = os.environ.get("AUTODIFF_ALL_MUTANTS") == "1"
        choose = None if everything else partial(sample, per_exercise=PER_EXERCISE,
                                                 always=set(equivalent))
        report = run_notebook(notebook, choose=choose)
        assert len(report.mutants) >= 20, "too few mutants: is the solution region marked?"
        survivors = {m.key for m in report.survivors}
        unexplained = survivors - set(equivalent)
        assert not unexplained, f"tests too weak; these mutants survive: {sorted(unexplained)}"
        stale = {k for k in equivalent if k.split(" | ")[0] in
                 {m.exercise for m in report.mutants}} - survivors
        assert not stale, f"listed as equivalent but now killed or gone: {sorted(stale)}"
        rate = len(report.killed) / len(report.mutants)
        print(f"{notebook.name}: {len(report.killed)}/{len(report.mutants)} mutants killed "
              f"({rate:.1%}); {len(survivors)} equivalent survivor(s)")
