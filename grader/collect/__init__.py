"""Collecting a class's submissions from the students' git repositories (``hw4grade collect``).

* ``roster``: the class roster CSV and the deadline;
* ``git``: every git command, hardened for hostile repositories (no hooks, no submodules,
  no prompts, a protocol allow-list, time and size limits);
* ``choose``: pure decisions: which commit (the last at or before the deadline, with its
  dates checked), which notebook, which files beside it;
* ``manifest``: the closed set of statuses and ``SUBMISSIONS/collect.json``;
* ``collect``: one student end to end, and the whole class in parallel and resumable;
* ``progress``: the progress bar.
"""
