"""Widget quizzes backed by validated YAML files.

`show("00_start_here")` loads `quizzes/00_start_here.yaml` from the course and
displays it; `predict("00_start_here", "question_id")` displays one of the quiz's
predictions on its own, inside the lesson. Answers persist per user in a JSON results file.

Layers, each usable without the next:

    _schema   Quiz, Question, Option; load_quiz() validates (QuizDataError)
    _store    ResultStore: the per-user results file, atomic writes
    _session  QuizSession: check, score, reset, summary (no widgets)
    _widget   QuizView, PredictionView: ipywidgets over a session; build(), show(), predict()

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
from distlab.course.quiz._session import (
    Answer,
    CheckResult,
    OptionFeedback,
    QuizSession,
    Summary,
    option_feedback,
    read_number,
)
from distlab.course.quiz._store import (
    RESULTS_FILE_NAME,
    ResultStore,
    SavedAnswer,
    default_results_path,
)
from distlab.course.quiz._text import render_inline
from distlab.course.quiz._widget import (
    PredictionView,
    QuestionView,
    QuizView,
    build,
    build_prediction,
    predict,
    show,
)

__all__ = [
    "RESULTS_FILE_NAME",
    "Answer",
    "CheckResult",
    "Option",
    "OptionFeedback",
    "PredictionView",
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
    "build_prediction",
    "course_root",
    "default_results_path",
    "find_quiz",
    "load_quiz",
    "option_feedback",
    "parse_quiz",
    "predict",
    "read_number",
    "render_inline",
    "show",
]
