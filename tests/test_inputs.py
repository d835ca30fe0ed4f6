"""One notion of a valid input (skctd.utils.check_inputs), the same for every reader
of raw inputs: ActivationTransformer, TransformersJudge, OpenAIJudge and
read_dataset accept and reject exactly the same rows."""

import json
import math
import re
import sys
from pathlib import Path

import numpy as np
import pytest

sys.path.insert(0, str(Path(__file__).resolve().parent))

from _openai_server import OpenAITestServer  # noqa: E402

from skctd import OpenAIJudge  # noqa: E402
from skctd.datasets import read_dataset  # noqa: E402
from skctd.utils import check_input, check_inputs, is_conversation  # noqa: E402

CONV = [{"role": "user", "content": "How do I bake bread?"}]
GOOD = {
    "text": "How do I bake bread?",
    "inst_text": "[INST] hello [/INST]",  # starts with "[": still a text
    "json_looking_text": json.dumps(CONV),  # a string is a text, whatever it spells
    "conversation": CONV,
    "conversation_extra_keys": [
        {"role": "system", "content": "Be safe."},
        {"role": "user", "content": "ok", "name": "alice"},
    ],
}
# every bad row can be written in JSON (so read_dataset sees it too)
BAD = {
    "empty": ("", r"empty or whitespace-only string"),
    "blank": ("  ", r"empty or whitespace-only string"),
    "newlines_tabs": ("\n\t ", r"empty or whitespace-only string"),
    "none": (None, r"missing"),
    "nan": (math.nan, r"missing"),
    "empty_conversation": ([], r"empty conversation"),
    "message_without_content": ([{"role": "user"}], r"message 0 must be a dict"),
    "content_not_a_string": (
        [{"role": "user", "content": 3}],
        r"message 0 must be a dict",
    ),
    "list_of_strings": (["hello"], r"message 0 must be a dict"),
    "second_message_bad": (
        [{"role": "user", "content": "hi"}, {"role": "assistant"}],
        r"message 1 must be a dict",
    ),
    "number": (3, r"is a int"),
    "bare_message": ({"role": "user", "content": "hi"}, r"is a dict"),
}


# -- the rule itself ------------------------------------------------------------------
@pytest.mark.parametrize("key", GOOD)
def test_rule_accepts(key):
    row = GOOD[key]
    assert check_inputs([row]) == [row]
    assert is_conversation(row) == (not isinstance(row, str))


@pytest.mark.parametrize("key", BAD)
def test_rule_rejects_naming_the_row(key):
    row, match = BAD[key]
    with pytest.raises((ValueError, TypeError), match=r"X\[1\]" + ".*" + match):
        check_inputs([GOOD["text"], row])
    with pytest.raises((ValueError, TypeError), match=match):
        check_input(row, name="the row")
    assert not is_conversation(row)


def test_canonical_forms():
    assert check_inputs(np.array(["a", "b"])) == ["a", "b"]
    assert type(check_inputs(np.array(["a"]))[0]) is str
    tuple_conv = tuple(CONV)
    (row,) = check_inputs([tuple_conv])
    assert row == CONV and isinstance(row, list) and row[0] is not CONV[0]
    assert check_input(np.array(CONV, dtype=object)) == CONV


# -- every reader applies it -----------------------------------------------------------
@pytest.fixture(scope="module")
def server():
    with OpenAITestServer() as srv:
        yield srv


def _accepts_openai(server, row, on_error="raise"):
    judge = OpenAIJudge("m", base_url=server.base_url, on_error=on_error, max_retries=0)
    return judge.score_with_report([row])[0]


def _accepts_dataset(tmp_path, row):
    path = tmp_path / "d.jsonl"
    path.write_text(json.dumps({"inputs": row, "label": 1}) + "\n")
    return read_dataset(path).inputs


@pytest.mark.parametrize("key", GOOD)
def test_openai_judge_and_reader_accept(key, server, tmp_path):
    row = GOOD[key]
    scores = _accepts_openai(server, row)
    assert np.isfinite(scores).all()
    inputs = _accepts_dataset(tmp_path, row)
    if isinstance(row, str):
        assert inputs == [row]  # never decoded from JSON in a JSON file
    else:
        assert inputs == [[{"role": m["role"], "content": m["content"]} for m in row]]


@pytest.mark.parametrize("key", BAD)
def test_openai_judge_and_reader_reject(key, server, tmp_path):
    row, match = BAD[key]
    server.reset()
    with pytest.raises((ValueError, TypeError), match=match):
        _accepts_openai(server, row)
    assert server.requests == []
    # under on_error="fallback" the row fails alone, counted (issue 11, item 4)
    judge = OpenAIJudge("m", base_url=server.base_url, on_error="fallback")
    scores, report = judge.score_with_report([GOOD["text"], row])
    assert np.isfinite(scores[0]) and np.isnan(scores[1])
    assert report.failed_rows == [1] and any(re.search(match, e) for e in report.errors)
    assert len(server.requests) == 1
    with pytest.raises(ValueError, match=r"line 1|missing field"):
        _accepts_dataset(tmp_path, row)


def test_reader_csv_cells(tmp_path):
    pd = pytest.importorskip("pandas")
    cells = [
        json.dumps(CONV),  # a JSON array of objects: a conversation
        "[INST] hello [/INST]",  # not JSON: a text
        "[1, 2]",  # JSON, but not messages: a text
        "plain",
    ]
    path = tmp_path / "d.csv"
    pd.DataFrame({"inputs": cells, "label": [1, 0, 1, 0]}).to_csv(path, index=False)
    assert read_dataset(path).inputs == [CONV, *cells[1:]]
    bad = tmp_path / "bad.csv"
    pd.DataFrame(
        {"inputs": ["ok", json.dumps([{"role": "user"}])], "label": [0, 1]}
    ).to_csv(bad, index=False)
    with pytest.raises(ValueError, match=r"line 3: field 'inputs': message 0"):
        read_dataset(bad)


@pytest.mark.llm
@pytest.mark.parametrize("key", BAD)
def test_local_models_reject_the_same_rows(key, tiny_llama_path):
    from skctd import ActivationTransformer, TransformersJudge

    row, match = BAD[key]
    encoder = ActivationTransformer(tiny_llama_path, device="cpu", progress=False)
    judge = TransformersJudge(tiny_llama_path, device="cpu")
    for call in (encoder.fit, encoder.transform, judge.score):
        with pytest.raises((ValueError, TypeError), match=r"X\[1\].*" + match):
            call([GOOD["text"], row])


@pytest.mark.llm
def test_local_models_accept_the_same_rows(tiny_llama_path):
    from skctd import ActivationTransformer, TransformersJudge

    rows = list(GOOD.values())
    encoder = ActivationTransformer(
        tiny_llama_path, device="cpu", progress=False, chat_template=True
    )
    Z = encoder.fit_transform(rows)
    assert Z.shape == (len(rows), 64) and np.isfinite(Z).all()
    for row in rows:  # one kind per call under chat_template="auto"
        assert ActivationTransformer(tiny_llama_path, device="cpu").transform(
            [row]
        ).shape == (1, 64)
    judge = TransformersJudge(tiny_llama_path, device="cpu")
    assert np.isfinite(judge.score(rows)).all()
