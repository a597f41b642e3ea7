"""The second retrieval corpus: Python's reference read from the running interpreter, and its questions."""

from __future__ import annotations

import pytest

from course_utils import python_docs as pd
from course_utils.errors import DataError


@pytest.fixture(scope="module")
def corpus():
    return pd.python_docs_corpus()


def test_every_question_has_an_answer_this_python_documents(corpus):
    docs, questions = corpus
    assert len(questions) >= 40 and len(docs) > 2500
    assert len({q.question for q in questions}) == len(questions), "a question is asked twice"
    for q in questions:
        assert q.question.strip() and q.relevant and all(r in docs for r in q.relevant), q


def test_a_document_is_its_name_signature_and_docstring(corpus):
    docs, _ = corpus
    assert docs["shutil.rmtree"].startswith("shutil.rmtree(path")
    assert "Recursively delete a directory tree." in docs["shutil.rmtree"]
    assert docs["str.join"].startswith("str.join(")  # built-ins are named without "builtins."


def test_constants_are_left_out_since_their_docstring_is_their_types(corpus):
    docs, _ = corpus
    assert "math.pi" not in docs and "os.sep" not in docs and "math.sqrt" in docs


def test_members_of_public_bases_are_documented_once_private_bases_are_included(corpus):
    docs, _ = corpus
    assert "pathlib.Path.glob" in docs and "pathlib.PosixPath.glob" not in docs
    assert "argparse.ArgumentParser.add_argument" in docs  # defined on argparse._ActionsContainer


def test_a_question_whose_answers_this_python_lacks_is_an_error(monkeypatch):
    monkeypatch.setattr(pd, "python_docs_questions", lambda: [pd.DocQuestion("frobnicate a list", ("list.frobnicate",))])
    with pytest.raises(DataError, match="list.frobnicate"):
        pd.python_docs_corpus()


def test_missing_ids_are_dropped_from_a_question_that_keeps_one(monkeypatch):
    monkeypatch.setattr(pd, "python_docs_questions", lambda: [pd.DocQuestion("sort in place", ("list.frobnicate", "list.sort"))])
    _, questions = pd.python_docs_corpus()
    assert questions[0].relevant == ("list.sort",)
