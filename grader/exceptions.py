"""Every error the grader itself raises, under one base class.

``HW4GradeError`` is the base. Its two branches tell the command line what to do:

* ``BadInput``: what the user gave cannot be used (a path, a rubric, a data set, a
  manual-scores file, a cluster setting). ``hw4grade`` prints its message on one line and
  exits 2; the message names what is wrong and where.
* every other ``HW4GradeError``: the grader or its environment failed. Outside a
  submission's grading it is a bug; ``hw4grade`` exits 3 and says where the log is.

Each class also keeps the built-in exception it was before (``ValueError``,
``RuntimeError``, ...), so code that catches those still works. What a submission does
is never an exception of the grader's: it becomes part of its result.
"""

from __future__ import annotations

from collections.abc import Sequence


class HW4GradeError(Exception):
    """The base of every error the grader raises."""


class BadInput(HW4GradeError):
    """Input the user gave cannot be used; the message says what and where (exit 2)."""


class UsageError(BadInput, ValueError):
    """A command-line argument is wrong: a missing path, an ``--out`` that is a file, ..."""


class RubricError(BadInput, ValueError):
    """The rubric file is missing, unreadable or invalid; the message says where."""


class MnistError(BadInput, RuntimeError):
    """MNIST could not be read from a source that was asked for explicitly."""


class ManualScoreError(BadInput, ValueError):
    """Hand-graded scores could not be merged; ``problems`` lists every mistake found."""

    def __init__(self, problems: Sequence[str]) -> None:
        self.problems = list(problems)
        super().__init__("\n".join(self.problems))


class ClusterError(BadInput):
    """The cluster cannot be used as asked; the message says what is wrong and where."""


class ReleaseError(BadInput):
    """A bundle cannot be built (the message says why and what to do)."""


class TemplateError(BadInput, ValueError):
    """The solution notebook's markers are unbalanced or malformed."""


class SandboxUnavailable(BadInput, RuntimeError):
    """Bubblewrap is missing or cannot create its namespaces here; the message says which."""


class SubmissionError(HW4GradeError, ValueError):
    """The submission is not a notebook the grader can run; the message says why.

    Raised inside a grading, where it becomes the submission's result (score 0, reason).
    """


class MixedFrameworks(SubmissionError):
    """A notebook uses two libraries (TensorFlow and PyTorch) so strongly that which edition
    of the homework it answers cannot be told; ``--profile`` decides."""

    def __init__(self, evidence: dict[str, Sequence[str]]) -> None:
        self.evidence = {library: list(found) for library, found in evidence.items()}
        uses = "; ".join(f"{library}: {', '.join(found)}"
                         for library, found in self.evidence.items())
        super().__init__(f"the notebook mixes frameworks ({uses}); grade it with --profile "
                         "naming the edition it answers")


class FrameworkNotInstalled(SubmissionError):
    """The submission is written for a framework whose library this install lacks; the
    message names the extra to install. Other submissions of the batch are unaffected.
    ``profile``, ``excluded`` and ``by_hand`` (item id: sentence) are the framework's, set
    where it was chosen, so the refusal is scored out of that framework's maximum, its
    derivations left to a person as when it is graded."""

    def __init__(self, message: str) -> None:
        super().__init__(message)
        self.profile = ""
        self.excluded: dict[str, str] = {}
        self.by_hand: dict[str, str] = {}


class KernelNotPrepared(HW4GradeError, RuntimeError):
    """A kernel's set-up (the prelude, its framework's set-up), which runs before any of the
    notebook's code, failed: the grading machine's fault, never the submission's (a GPU the
    grade gave that the library finds none of, for one). The message says what failed."""


class UnreadableResponse(HW4GradeError, ValueError):
    """What a kernel wrote back is not a response to the request it was given."""


class GraderMismatch(HW4GradeError, RuntimeError):
    """A Dask worker's grader or rubric is not the driver's: it refuses to grade."""


class PublicCheckMissing(HW4GradeError, LookupError):
    """The public checks have no answer for this question (another seed, rubric or grader)."""


class RecordingError(HW4GradeError, RuntimeError):
    """A recording of public checks could not be made faithfully (see the message)."""


class EvaluatorDataError(HW4GradeError, RuntimeError):
    """The evaluator's weights, statistics or manifest are missing or do not match."""


class RosterError(BadInput, ValueError):
    """The class roster or the deadline of ``hw4grade collect`` cannot be used (file, row,
    column and what is wrong)."""


class GitError(HW4GradeError, RuntimeError):
    """A git command on a student's repository failed; the message is git's one-line reason.

    Raised inside a collection, where it becomes that student's status (never a crash).
    """


class LmsExportError(BadInput, ValueError):
    """An LMS gradebook export (Canvas, Moodle) cannot be read or lacks a column it needs."""


class RepositoryTooLarge(GitError):
    """A student's repository is over a size or file-count limit of ``hw4grade collect``."""


class WeightLayoutError(HW4GradeError, ValueError):
    """Weights do not line up with the layers of a specified network (a PyTorch state
    against the Keras layout, or back): the message names the first layer that differs."""
