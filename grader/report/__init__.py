"""Every report the grader writes, each one a rendering of a single ``SubmissionResult``.

Import the module you need; this package re-exports nothing.

* ``store``: the output folder (``results/``, ``feedback/``), file names, atomic writes,
  the result JSON files.
* ``gradebook``: the gradebook CSV.
* ``manual``: hand-graded scores, their record and template, merged into results.
* ``markdown`` and ``html``: the student's feedback page; ``feedback`` writes both.
* ``gradescope`` and ``classroom``: Gradescope's ``results.json``, GitHub Classroom's payload.
* ``text``: the terminal's report and one-line verdict.
* ``common``: what several of them show alike (items, labels, cells, images).
* ``progress``: the progress bar of ``hw4grade grade``.
"""
