"""Widget quizzes backed by validated YAML files.

`show("00_start_here")` loads `quizzes/00_start_here.yaml` from the course and
displays it; answers persist per user in a JSON results file.

Layers, each usable without the next:

    _schema   Quiz, Question, Option; load_quiz() validates (QuizDataError)
    _store    ResultStore: the per-user results file, atomic writes
    _session  QuizSession: check, score, reset, summary (no widgets)
    _widget   QuizView: ipywidgets over a session; build(), show()

The data format is documented in `quizzes/README.md`.
"""

from distlab.course.quiz._schema import (
    Option,
    Question,
    QuestionType,
    Quiz,
    available_quizzes,
    course_root,
    find_quiz,
    load_quiz,
    parse_quiz,
)
from distlab.course.quiz._session import Answer, CheckResult, QuizSession, Summary
from distlab.course.quiz._store import (
    RESULTS_FILE_NAME,
    ResultStore,
    SavedAnswer,
    default_results_path,
)
from distlab.course.quiz._text import render_inline
from distlab.course.quiz._widget import QuestionView, QuizView, build, show

__all__ = [
    "RESULTS_FILE_NAME",
    "Answer",
    "CheckResult",
    "Option",
    "Question",
    "QuestionType",
    "QuestionView",
    "Quiz",
    "QuizSession",
    "QuizView",
    "ResultStore",
    "SavedAnswer",
    "Summary",
    "available_quizzes",
    "build",
    "course_root",
    "default_results_path",
    "find_quiz",
    "load_quiz",
    "parse_quiz",
    "render_inline",
    "show",
]
