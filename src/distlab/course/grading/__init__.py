"""Release, check and grade the course's nbgrader exercises through nbgrader itself.

Everything here drives nbgrader's own Python classes (``GenerateAssignment``,
``Autograde``, the ``Gradebook``) with the settings in the repository's
``nbgrader_config.py``; nothing imitates them. One module per idea:

    course    the course folder and its configuration; release() writes exercises/
    execute   the preprocessors nbgrader_config.py plugs in (BudgetedExecute, ...)
    grader    Grader: autograde submissions, gradebook cache, kernels started ahead
    batch     grade_all(): a class in parallel, the course gradebook written here only
    integrity the checks that flag a forged result (static scan, canary, gradebook)
    edition   student_edition(): the course without its answers, for students
    check     check_notebook(): the student's run of the visible tests
    reports   TestResult, GradeReport, CheckReport, Integrity

Student code runs in sandboxes: :mod:`distlab.course.sandbox` (beside this package, so
that the command line can start a kernel before nbgrader is imported).
"""

from distlab.course.grading.batch import Graded, default_workers, grade_all
from distlab.course.grading.check import CHECK_ENV, check_notebook
from distlab.course.grading.course import (
    CONFIG_FILE,
    Course,
    find_course_root,
    read_notebook,
    release,
)
from distlab.course.grading.edition import student_edition
from distlab.course.grading.execute import (
    BudgetedExecute,
    HideHiddenTestTracebacks,
    HideStudentOutputs,
    kernels_from,
    pop_integrity,
)
from distlab.course.grading.grader import (
    DEFAULT_STUDENT,
    Grader,
    autograde_kernel_pool,
    submissions,
)
from distlab.course.grading.reports import CheckReport, GradeReport, Integrity, TestResult
from distlab.course.kernelpool import KernelPool
from distlab.course.sandbox import Sandbox

__all__ = [
    "CHECK_ENV",
    "CONFIG_FILE",
    "DEFAULT_STUDENT",
    "BudgetedExecute",
    "CheckReport",
    "Course",
    "GradeReport",
    "Graded",
    "Grader",
    "HideHiddenTestTracebacks",
    "HideStudentOutputs",
    "Integrity",
    "KernelPool",
    "Sandbox",
    "TestResult",
    "autograde_kernel_pool",
    "check_notebook",
    "default_workers",
    "find_course_root",
    "grade_all",
    "kernels_from",
    "pop_integrity",
    "read_notebook",
    "release",
    "student_edition",
    "submissions",
]
