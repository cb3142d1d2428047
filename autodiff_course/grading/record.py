"""Phase 2 of ``autodiff-course grade``: nbgrader records what phase 1 found.

The only module ``course/nbgrader_config.py`` imports (and only when
``AUTODIFF_COURSE_PHASE=record``): nbgrader's autograde pipeline with
execution replaced by the outputs phase 1 produced in the sandbox, reading
the rebuilt notebooks from ``INPUT_DIR`` instead of ``submitted/``.
"""

from __future__ import annotations

INPUT_DIR = "autograde-input"
PHASE_VARIABLE = "AUTODIFF_COURSE_PHASE"


def record_preprocessors():
    """(sanitize, autograde) preprocessor lists for ``c.Autograde``."""
    from nbconvert.preprocessors import ClearMetadataPreprocessor, Preprocessor
    from nbgrader.preprocessors import (AssignLatePenalties, CheckCellMetadata,
                                        DeduplicateIds, LimitOutput, OverwriteCells,
                                        OverwriteKernelspec, SaveAutoGrades)

    class KeepOutputs(Preprocessor):
        """Phase 1 already ran the notebook in the sandbox."""

    sanitize = [DeduplicateIds, OverwriteKernelspec, OverwriteCells, CheckCellMetadata]
    autograde = [KeepOutputs, ClearMetadataPreprocessor, LimitOutput, SaveAutoGrades,
                 AssignLatePenalties, CheckCellMetadata]
    return sanitize, autograde


def configure(c):
    """Switch an nbgrader config ``c`` to phase 2."""
    c.CourseDirectory.submitted_directory = INPUT_DIR
    c.Autograde.sanitize_preprocessors, c.Autograde.autograde_preprocessors = \
        record_preprocessors()
