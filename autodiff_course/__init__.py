"""Tools for the instructors of autodiff-course: authoring and building the
nbgrader course in ``course/`` (``autodiff-course --help``)."""
