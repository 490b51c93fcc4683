"""nbgrader configuration of the distlab course.

nbgrader reads this file whenever one of its commands runs from the repository root
(`nbgrader generate_assignment`, `autograde`, `generate_feedback`, ...). The `distlab`
command (`distlab release`, `check`, `grade`, `grade-all`) loads the same file, so a
class graded by hand with nbgrader and a submission graded by `distlab grade` get the
same settings.

Layout:
    solutions/<exercise>/<notebook>.ipynb     instructor version (solutions, hidden tests)
    exercises/<exercise>/<notebook>.ipynb     student version, generated and committed
    _grading/                                 everything produced while grading (ignored by git)
"""

import contextlib
import os

from nbconvert.preprocessors import ClearMetadataPreprocessor, CSSHTMLHeaderPreprocessor
from nbgrader.preprocessors import (
    AssignLatePenalties,
    CheckCellMetadata,
    ClearHiddenTests,
    GetGrades,
    IgnorePattern,
    LimitOutput,
    SaveAutoGrades,
)

from distlab.course.grading import BudgetedExecute, HideHiddenTestTracebacks, HideStudentOutputs

c = get_config()  # type: ignore[name-defined]  # noqa: F821  (injected by traitlets)

# Names the course in the gradebook and in the exchange (nbgrader release/collect).
c.CourseDirectory.course_id = "distlab"

# The instructor versions live in solutions/ and the student versions in exercises/:
# the folder names say what a learner finds in them (nbgrader's defaults, source/ and
# release/, mean nothing to a student who opens the repository).
c.CourseDirectory.source_directory = "solutions"
c.CourseDirectory.release_directory = "exercises"

# Everything grading produces stays under one ignored folder, so student work and
# grades can never be committed by accident and `make clean` removes all of it.
# The gradebook path is absolute (relative to this file): an SQLite URL is otherwise
# relative to the current directory, and SQLite does not create missing folders.
# A read-only course folder (a shared copy students check against) is fine: only the
# course gradebook needs the folder, and `distlab check`/`grade` never use it.
_grading = os.path.join(os.path.dirname(os.path.abspath(__file__)), "_grading")
with contextlib.suppress(OSError):
    os.makedirs(_grading, exist_ok=True)
c.CourseDirectory.db_url = "sqlite:///" + os.path.join(_grading, "gradebook.db")
c.CourseDirectory.submitted_directory = "_grading/submitted"
c.CourseDirectory.autograded_directory = "_grading/autograded"
c.CourseDirectory.feedback_directory = "_grading/feedback"
c.CourseDirectory.solution_directory = "_grading/solution"

# Every honest test runs in well under a second: clocks are injected and nothing
# sleeps. Five seconds per cell is generous for them, yet an infinite loop in a
# submission costs seconds, not nbgrader's default 30 s per cell.
c.Execute.timeout = 5
# A submission that loops forever would still pay the timeout once per test cell.
# BudgetedExecute (nbgrader's Execute plus two limits) fixes that: once a cell has
# timed out, the submission is known to hang, so later cells get 2 s each (honest
# tests need milliseconds); and a whole notebook gets at most 40 s of execution,
# after which the remaining cells are not run and score 0 (their output says why).
# It also restarts a kernel that a submission killed (os._exit) and carries on.
c.BudgetedExecute.timeout_after_timeout = 2
c.BudgetedExecute.notebook_budget = 40
# At most 1 MiB of output per notebook (errors are kept, shortened): a submission that
# floods its output costs neither the grader's memory nor megabytes of notebook.
c.BudgetedExecute.output_limit_kb = 1024

# nbgrader's own autograde pipeline, with the budgeted executor instead of Execute.
c.Autograde.autograde_preprocessors = [
    BudgetedExecute,
    IgnorePattern,
    ClearMetadataPreprocessor,
    LimitOutput,
    SaveAutoGrades,
    AssignLatePenalties,
    CheckCellMetadata,
]

# Printing megabytes in a cell must not produce megabytes of feedback.
c.LimitOutput.max_lines = 200
c.LimitOutput.max_traceback = 50

# Feedback must not reveal hidden tests. nbgrader's default feedback shows the
# autograded notebook as graded, hidden tests included. ClearHiddenTests removes the
# hidden regions from the source; HideHiddenTestTracebacks first replaces the
# traceback of a failed hidden test (which quotes the failing line) by its message.
# Student code ran in the same kernel as the hidden tests and could have printed them
# (a pre_run_cell hook sees every cell): HideStudentOutputs drops every output from
# the first hidden test on except the tests' error messages, drops the outputs of
# cells the student added, and takes nbgrader's markers out of the student's cells
# (which would otherwise make ClearHiddenTests fail or cut the student's code).
c.GenerateFeedback.preprocessors = [
    HideStudentOutputs,
    GetGrades,
    HideHiddenTestTracebacks,
    ClearHiddenTests,
    CSSHTMLHeaderPreprocessor,
]

# Student code runs in a throwaway sandbox per notebook (distlab.course.sandbox): its
# own user, no network, a private /tmp and home, read-only Python, nothing of the
# course folder, and these limits. `nbgrader autograde` uses it too (through
# BudgetedExecute); where no sandbox can be made, grading refuses to run student code
# unless `c.Sandbox.enabled = False` here (or `distlab grade --unsandboxed`).
c.Sandbox.memory_mb = 512  # all its processes together, its /tmp and home included
c.Sandbox.processes = 128  # processes and threads at once
c.Sandbox.cpu_seconds = 60  # per process; the notebook's 40 s budget comes first
c.Sandbox.cores = 1  # CPU cores for all its processes together (cgroup quota)
c.Sandbox.file_size_mb = 64
c.Sandbox.open_files = 256
# The reference implementations an exercise asks students to write are hidden while
# that exercise is graded: importing one raises ImportError. Add your exercise here:
#     "exercise slug": ["distlab.patterns.<module>", ...],
c.Sandbox.hidden_modules = {
    "circuit_breaker": ["distlab.patterns.breaker"],
    # the consumer's error handling is QueueTrigger's; the idempotent store is the
    # example function's and lesson 10's
    "serverless_pipeline": [
        "distlab.services.serverless.runtime",
        "distlab.services.serverless.example",
        "distlab.lessons.serverless",
    ],
    "bulkhead": ["distlab.patterns.bulkhead"],
    "service_discovery": ["distlab.patterns.discovery"],
    # nothing to hide: the course has no reference sender or receiver, and the tests run
    # on the harness in distlab.exercises.reliable_messaging, which must stay importable
    "reliable_messaging": [],
    # the orders service is what students write; lesson 05 shows its saga
    "ecommerce": [
        "distlab.services.ecommerce.orders",
        "distlab.services.ecommerce.remote",
        "distlab.services.ecommerce.inprocess",
        "distlab.lessons.microservices",
    ],
}
