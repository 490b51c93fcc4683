"""The per-user results file: where it lives, how it is read and written.

Layout of `quiz_results.json`::

    {"format": 1,
     "quizzes": {"<quiz id>": {"answers": {"<question id>": {
         "selected": ["<option text>", ...],   # the latest checked answer
         "correct": true,                      # for humans; recomputed on load
         "attempts": 2,                        # how many times Check graded it
         "checked_at": "2026-11-27T03:55:00+00:00"}}}}}

Writes are atomic (a temporary file in the same folder, then `os.replace`), and
every write reads the file again first, under an exclusive lock on a sidecar file
(`.quiz_results.json.lock`), so two notebooks open at once do not undo each other's
answers. (The lock is `fcntl.flock`; where it does not exist, on Windows, two writes
in the same instant can still lose one answer.) A file that cannot be read as results
is renamed aside with a timestamp suffix and reported through `notices`; a file of a
newer format is left alone and not written to. Nothing here raises on a bad file.
"""

from __future__ import annotations

import json
import os
import sys
import tempfile
from collections.abc import Iterable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import IO

__all__ = ["RESULTS_FILE_NAME", "ResultStore", "SavedAnswer", "default_results_path"]

RESULTS_FILE_NAME = "quiz_results.json"
_FORMAT = 1


def default_results_path() -> Path:
    """Return `$DISTLAB_HOME/quiz_results.json`, or `~/.distlab/quiz_results.json`."""
    home = os.environ.get("DISTLAB_HOME")
    folder = Path(home).expanduser() if home else Path.home() / ".distlab"
    return folder / RESULTS_FILE_NAME


@dataclass(frozen=True)
class SavedAnswer:
    """The latest checked answer to one question, as saved.

    Attributes:
        selected: texts of the selected options.
        correct: whether it was correct when checked.
        attempts: how many times Check graded this question (>= 1).
        checked_at: ISO 8601 time of the latest check, in UTC.
    """

    selected: tuple[str, ...]
    correct: bool
    attempts: int
    checked_at: str


class _CorruptError(Exception):
    """The results file exists but does not hold results."""


class _NewerFormatError(Exception):
    """The results file was written by a newer distlab, in a format this one cannot read."""


def _parse_answer(raw: object) -> SavedAnswer:
    if not isinstance(raw, dict):
        raise _CorruptError("an answer is not an object")
    selected = raw.get("selected")
    correct = raw.get("correct")
    attempts = raw.get("attempts")
    checked_at = raw.get("checked_at")
    if not isinstance(selected, list) or not all(isinstance(s, str) for s in selected):
        raise _CorruptError("'selected' is not a list of strings")
    if not isinstance(correct, bool):
        raise _CorruptError("'correct' is not true or false")
    if not isinstance(attempts, int) or isinstance(attempts, bool) or attempts < 1:
        raise _CorruptError("'attempts' is not a positive integer")
    if not isinstance(checked_at, str):
        raise _CorruptError("'checked_at' is not a string")
    return SavedAnswer(tuple(selected), correct, attempts, checked_at)


def _parse_file(text: str) -> dict[str, dict[str, SavedAnswer]]:
    try:
        data = json.loads(text)
    except json.JSONDecodeError as exc:
        raise _CorruptError(f"not valid JSON ({exc.msg} at line {exc.lineno})") from exc
    if not isinstance(data, dict):
        raise _CorruptError(f"not a distlab results file of format {_FORMAT}")
    version = data.get("format")
    if isinstance(version, int) and not isinstance(version, bool) and version > _FORMAT:
        # Not damaged: moving it aside would hide the answers from the newer version too.
        raise _NewerFormatError(f"format {version}")
    if version != _FORMAT:
        raise _CorruptError(f"not a distlab results file of format {_FORMAT}")
    quizzes = data.get("quizzes")
    if not isinstance(quizzes, dict):
        raise _CorruptError("'quizzes' is not an object")
    result: dict[str, dict[str, SavedAnswer]] = {}
    for quiz_id, entry in quizzes.items():
        if not isinstance(entry, dict) or not isinstance(entry.get("answers"), dict):
            raise _CorruptError(f"quiz {quiz_id!r} has no 'answers' object")
        result[quiz_id] = {qid: _parse_answer(raw) for qid, raw in entry["answers"].items()}
    return result


def _dump(results: dict[str, dict[str, SavedAnswer]]) -> str:
    quizzes = {
        quiz_id: {
            "answers": {
                qid: {
                    "selected": list(answer.selected),
                    "correct": answer.correct,
                    "attempts": answer.attempts,
                    "checked_at": answer.checked_at,
                }
                for qid, answer in answers.items()
            }
        }
        for quiz_id, answers in results.items()
    }
    return json.dumps({"format": _FORMAT, "quizzes": quizzes}, indent=2, sort_keys=True) + "\n"


def _file_in_the_way(folder: Path) -> Path | None:
    """Return the first of `folder` and its parents that exists but is not a folder."""
    for candidate in (folder, *folder.parents):
        if candidate.exists():
            return None if candidate.is_dir() else candidate
    return None


class ResultStore:
    """Read and write one results file.

    Problems (a corrupt file, a folder that cannot be written) never raise: they are
    appended to `notices` as sentences a student can act on, and the quiz goes on.

    Args:
        path: the results file; default `default_results_path()`.
    """

    def __init__(self, path: str | os.PathLike[str] | None = None) -> None:
        self.path = Path(path) if path is not None else default_results_path()
        self.notices: list[str] = []
        # Answers whose save failed (a full disk, a file briefly locked by another
        # program): every later save writes them too, so one failed write loses nothing.
        self._unsaved: dict[tuple[str, str], SavedAnswer] = {}
        self._write_failures: set[str] = set()
        # Set when the file must not be replaced: it could not be read, is of a newer
        # format, or is damaged and could not be moved aside. Writing would destroy it.
        self._read_only = False

    def _notify(self, message: str) -> None:
        # Every save reads the file again; say each problem once, not once per click.
        if message not in self.notices:
            self.notices.append(message)

    def _read_all(self) -> dict[str, dict[str, SavedAnswer]]:
        try:
            text = self.path.read_text(encoding="utf-8")
        except FileNotFoundError:
            return {}
        except NotADirectoryError:
            # DISTLAB_HOME (or a folder above it) is a file: say so now, not at the first Check.
            self._notify(self._not_a_folder_message())
            return {}
        except UnicodeDecodeError as exc:
            return self._move_aside(f"it is not UTF-8 text ({exc})")
        except OSError as exc:
            # Not damaged, just unreadable (permissions): keep it, and do not overwrite it.
            self._read_only = True
            self._notify(
                f"Your quiz results file {self.path} could not be read ({exc}), "
                "so answers will not be saved."
            )
            return {}
        try:
            return _parse_file(text)
        except _NewerFormatError as exc:
            self._read_only = True
            self._notify(
                f"Your quiz results file {self.path} was written by a newer version of distlab "
                f"({exc}). It is left as it is and answers will not be saved: "
                "update distlab to see and keep your saved answers."
            )
            return {}
        except _CorruptError as exc:
            return self._move_aside(str(exc))

    def _move_aside(self, reason: str) -> dict[str, dict[str, SavedAnswer]]:
        stamp = datetime.now(UTC).strftime("%Y%m%dT%H%M%SZ")
        target = self.path.with_name(f"{self.path.name}.corrupt-{stamp}")
        counter = 1
        while target.exists():
            target = self.path.with_name(f"{self.path.name}.corrupt-{stamp}-{counter}")
            counter += 1
        try:
            os.replace(self.path, target)
        except OSError as exc:
            self._read_only = True
            self._notify(
                f"Your quiz results file {self.path} is damaged: {reason}. "
                f"It could not be moved aside ({exc}), so answers will not be saved "
                "until you move or delete it."
            )
            return {}
        self._notify(
            f"Your quiz results file {self.path} was damaged: {reason}. "
            f"It was moved to {target} and the quiz starts with no saved answers."
        )
        return {}

    def _write_all(self, results: dict[str, dict[str, SavedAnswer]]) -> bool:
        # Returns whether the file now holds `results`.
        if self._read_only:
            return False
        try:
            self.path.parent.mkdir(parents=True, exist_ok=True)
            fd, tmp = tempfile.mkstemp(
                prefix=f".{self.path.name}.", suffix=".tmp", dir=self.path.parent
            )
            try:
                with os.fdopen(fd, "w", encoding="utf-8") as handle:
                    handle.write(_dump(results))
                    handle.flush()
                    os.fsync(handle.fileno())
                os.replace(tmp, self.path)
            except BaseException:
                Path(tmp).unlink(missing_ok=True)
                raise
        except OSError as exc:
            if _file_in_the_way(self.path.parent) is not None:
                message = self._not_a_folder_message()
            else:
                message = f"Your answers could not be saved to {self.path}: {exc}."
            self._write_failures.add(message)
            self._notify(message)
            return False
        # A passing problem is over: its notice would now be wrong.
        self.notices[:] = [notice for notice in self.notices if notice not in self._write_failures]
        return True

    def _not_a_folder_message(self) -> str:
        blocker = _file_in_the_way(self.path.parent)
        where = blocker if blocker is not None else self.path.parent
        return (
            f"Your answers cannot be saved to {self.path}: {where} is a file, not a folder. "
            "Set DISTLAB_HOME to a folder (or unset it to use ~/.distlab)."
        )

    def _open_lock(self, *, create: bool) -> IO[str] | None:
        # Returns the locked sidecar file, or None where no lock can be had; the callers
        # then go on unlocked, as a lock is a safeguard, not a reason to stop the quiz.
        if sys.platform == "win32":
            return None
        import fcntl

        lock_path = self.path.with_name(f".{self.path.name}.lock")
        try:
            if create:
                self.path.parent.mkdir(parents=True, exist_ok=True)
            elif not self.path.parent.is_dir():
                return None  # nothing to read yet, so nothing to guard
            handle = open(lock_path, "a", encoding="utf-8")  # noqa: SIM115 (closed by _locked)
        except OSError:
            return None  # the write that follows reports the folder's problem
        try:
            fcntl.flock(handle.fileno(), fcntl.LOCK_EX)
        except OSError:
            handle.close()  # a file system without locks (some network mounts)
            return None
        return handle

    @contextmanager
    def _locked(self, *, create: bool) -> Iterator[None]:
        # Every read-modify-write of the file runs under this lock: without it, two
        # notebooks checking at once each write back what they read, and one answer is lost.
        handle = self._open_lock(create=create)
        try:
            yield
        finally:
            if handle is not None:
                handle.close()  # closing releases the lock

    def load(self, quiz_id: str) -> dict[str, SavedAnswer]:
        """Return the saved answers of one quiz, keyed by question id (empty if none).

        Args:
            quiz_id: the quiz's id.
        """
        # Locked too: a damaged file is moved aside by exactly one of two readers.
        with self._locked(create=False):
            return dict(self._read_all().get(quiz_id, {}))

    def save(self, quiz_id: str, question_id: str, answer: SavedAnswer) -> None:
        """Save (replace) the answer to one question of one quiz.

        Args:
            quiz_id: the quiz's id.
            question_id: the question's id.
            answer: the answer to keep; other questions and quizzes are kept as they are.
        """
        self._unsaved[quiz_id, question_id] = answer
        with self._locked(create=True):
            results = self._read_all()
            for (unsaved_quiz, unsaved_question), unsaved in self._unsaved.items():
                results.setdefault(unsaved_quiz, {})[unsaved_question] = unsaved
            if self._write_all(results):
                self._unsaved.clear()

    def clear(self, quiz_id: str, *, keep: Iterable[str] = ()) -> None:
        """Forget the saved answers of one quiz; other quizzes are kept.

        Args:
            quiz_id: the quiz's id.
            keep: ids of questions whose answers stay (the quiz's predictions).
        """
        kept = set(keep)
        for key in [key for key in self._unsaved if key[0] == quiz_id and key[1] not in kept]:
            del self._unsaved[key]
        with self._locked(create=True):
            results = self._read_all()
            answers = results.pop(quiz_id, None)
            if answers is None:
                return
            remaining = {qid: answer for qid, answer in answers.items() if qid in kept}
            if remaining:
                results[quiz_id] = remaining
            if remaining != answers:
                self._write_all(results)
