"""Tools for the instructors of autodiff-course: authoring and building the
nbgrader course in ``course/`` (``autodiff-course --help``)."""


def skip_iri_formats():
    """Spare this process the parsers of jsonschema's "iri" string formats.

    jsonschema (which nbformat imports) builds rfc3987_syntax's parsers when
    it is imported: about 2 s of one core in every process that reads a
    notebook (jsonschema issue #1428). No schema of nbformat or nbgrader uses
    those formats; without the parsers they go unchecked, like any format
    jsonschema has no checker for. Call it before anything imports nbformat:
    the command line, the grading processes and the nbgrader commands the
    package runs (``jupyter.nbgrader``) do."""
    import sys

    sys.modules.setdefault("rfc3987_syntax", None)
