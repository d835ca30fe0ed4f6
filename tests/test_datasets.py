import json
from pathlib import Path

import pytest

from skctd.datasets import read_dataset

DATA = Path(__file__).resolve().parents[1].parent / "shared" / "data"


def _write(tmp_path, rows, name="d.jsonl"):
    p = tmp_path / name
    p.write_text("\n".join(json.dumps(r) for r in rows) + "\n")
    return p


def test_read_jsonl_text_and_conversation(tmp_path):
    conv = [{"role": "user", "content": "hi"}]
    p = _write(tmp_path, [{"id": "a", "inputs": "x", "label": 1, "group": "g"}, {"id": "b", "inputs": conv, "label": 0, "group": "h"}])
    b = read_dataset(p)
    assert b.inputs == ["x", conv] and list(b.label) == [1, 0] and list(b.id) == ["a", "b"]


@pytest.mark.parametrize(
    ("row", "msg"),
    [({"inputs": "x"}, "line 2: missing field 'label'"), ({"inputs": "x", "label": 2}, "line 2: field 'label' must be 0 or 1"),
     ({"inputs": " ", "label": 1}, "line 2: field 'inputs' is an empty or whitespace-only string"), ({"label": 1}, "line 2: missing field 'inputs'")],
)
def test_errors_name_line_and_field(tmp_path, row, msg):
    p = _write(tmp_path, [{"inputs": "ok", "label": 0}, row])
    with pytest.raises(ValueError, match=msg):
        read_dataset(p)


def test_bad_json_line(tmp_path):
    p = tmp_path / "d.jsonl"
    p.write_text('{"inputs": "a", "label": 0}\n{oops\n')
    with pytest.raises(ValueError, match="line 2: invalid JSON"):
        read_dataset(p)


def test_csv_with_json_conversation(tmp_path):
    pd = pytest.importorskip("pandas")
    p = tmp_path / "d.csv"
    pd.DataFrame({"text": ['[{"role": "user", "content": "hi"}]', "plain"], "y": [1, 0], "e": [0.9, 0.1]}).to_csv(p, index=False)
    b = read_dataset(p, input_column="text", label_column="y", expert_column="e", group_column=None, id_column=None)
    assert b.inputs[0] == [{"role": "user", "content": "hi"}] and b.inputs[1] == "plain"
    assert list(b.expert) == [0.9, 0.1]


def test_xstest():
    path = DATA / "xstest" / "xstest.jsonl"
    if not path.exists():
        pytest.skip(f"{path} absent")
    b = read_dataset(path)
    assert len(b.inputs) == 450 and b.label.sum() == 200


def test_folder_of_shards_reads_every_shard_in_name_order(tmp_path):
    pd = pytest.importorskip("pandas")
    pytest.importorskip("pyarrow")
    conv = [{"role": "user", "content": "hi"}]
    _write(tmp_path, [{"inputs": "b0", "label": 1}, {"inputs": conv, "label": 0}], "part-1.jsonl")
    _write(tmp_path, [{"inputs": "a0", "label": 0}], "part-0.jsonl")
    pd.DataFrame({"inputs": ['[{"role": "user", "content": "yo"}]', "c1"], "label": [1, 0]}).to_parquet(
        tmp_path / "part-2.parquet"
    )
    (tmp_path / "README.txt").write_text("not data")
    b = read_dataset(tmp_path)
    assert b.inputs == ["a0", "b0", conv, [{"role": "user", "content": "yo"}], "c1"]
    assert list(b.label) == [0, 1, 0, 1, 0]
    assert list(b.id) == ["0", "1", "2", "3", "4"]  # positions in the whole folder
    with pytest.raises(ValueError, match=r"part-1.jsonl, line 2: field 'label'"):
        _write(tmp_path, [{"inputs": "b0", "label": 1}, {"inputs": "x", "label": 5}], "part-1.jsonl")
        read_dataset(tmp_path)


def test_folder_without_data_files_is_an_error(tmp_path):
    (tmp_path / "notes.txt").write_text("x")
    with pytest.raises(ValueError, match="folder without data files"):
        read_dataset(tmp_path)
    with pytest.raises(FileNotFoundError, match="no such file or folder"):
        read_dataset(tmp_path / "missing")
