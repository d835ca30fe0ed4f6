"""ActivationTransformer on a tiny random Llama (built in conftest.py) and on the
packaged all-MiniLM-L6-v2, against a straightforward reference: the full model with
``output_hidden_states=True``, one input at a time, no padding."""

import pickle
import sys

import numpy as np
import pytest
from sklearn.base import clone
from sklearn.linear_model import LogisticRegression
from sklearn.pipeline import make_pipeline
from sklearn.utils import get_tags

torch = pytest.importorskip("torch")
pytest.importorskip("transformers")

from skctd import ActivationTransformer  # noqa: E402
from skctd.llm import clear_model_cache, load_model  # noqa: E402

pytestmark = pytest.mark.llm

TEXTS = [
    "How do I bake bread at home?",
    "hello",
    "A patient reports chest pain and shortness of breath since yesterday, "
    "and the doctor asks about the medical history of the family.",
    "Call the weather tool with the city Paris.",
    "The quick brown fox jumps over the lazy dog. " * 3,
    "ok?",
    "Please help me make a plan for my appointment tomorrow morning.",
]
CONVERSATIONS = [
    [{"role": "user", "content": "How do I bake bread?"}],
    [
        {"role": "user", "content": "hello"},
        {"role": "assistant", "content": "Hi! How can I help?"},
        {"role": "user", "content": "Is this high stakes?"},
    ],
    [{"role": "system", "content": "Be safe."}, {"role": "user", "content": "ok"}],
]
POOL = {
    "mean": lambda h: h.mean(0),
    "last": lambda h: h[-1],
    "max": lambda h: h.max(0).values,
    "first": lambda h: h[0],
}


def keyword_expert(X):
    """A toy expert: P(positive) from a keyword."""
    return np.array([0.9 if "bomb" in x or "poison" in x else 0.1 for x in X])


def reference(path, rows, layers, pooling, *, max_length=None, side="right"):
    """The naive computation: full model, output_hidden_states=True, one row at a
    time (no padding at all)."""
    from transformers import AutoModel, AutoTokenizer

    tokenizer = AutoTokenizer.from_pretrained(path)
    model = AutoModel.from_pretrained(path, dtype=torch.float32).eval()
    out = []
    for row in rows:
        if isinstance(row, str):
            ids = tokenizer(row)["input_ids"]
        else:
            text = tokenizer.apply_chat_template(row, tokenize=False)
            ids = tokenizer(text, add_special_tokens=False)["input_ids"]
        if max_length is not None and len(ids) > max_length:
            # the tokenizer's special tokens are kept: the tiny Llama's one BOS
            assert ids[0] == tokenizer.bos_token_id and isinstance(row, str)
            body = ids[1:]
            keep = max_length - 1
            ids = [ids[0]] + (body[:keep] if side == "right" else body[-keep:])
        with torch.no_grad():
            hs = model(
                input_ids=torch.tensor([ids]), output_hidden_states=True
            ).hidden_states
        out.append(torch.cat([POOL[pooling](hs[la][0]) for la in layers]).numpy())
    return np.array(out)


def make(path, **params):
    params = {"device": "cpu", "dtype": "float32", "progress": False, **params}
    return ActivationTransformer(path, **params)


@pytest.fixture(params=["llama", "minilm"])
def model_path(request):
    return request.getfixturevalue(
        "tiny_llama_path" if request.param == "llama" else "minilm_path"
    )


@pytest.mark.parametrize("pooling", ["mean", "last", "max", "first"])
def test_matches_full_model_reference(model_path, pooling):
    n_layers = 3 if "tiny_llama" in model_path else 6
    # 0 = embeddings, a middle layer, and -1 (for Llama: after the final norm)
    layers = [0, 2, -1]
    enc = make(model_path, layer=layers, pooling=pooling, batch_size=3)
    Z = enc.fit_transform(TEXTS)
    ref = reference(model_path, TEXTS, [0, 2, n_layers], pooling)
    assert Z.shape == ref.shape and Z.dtype == np.float32
    np.testing.assert_allclose(Z, ref, atol=1e-5, rtol=1e-5)
    assert enc.layers_ == [0, 2, n_layers] and enc.n_layers_ == n_layers
    # a single layer, tight token budget: every batch shape differs
    Z1 = make(model_path, layer=1, pooling=pooling, max_tokens_per_batch=40).transform(
        TEXTS
    )
    np.testing.assert_allclose(
        Z1, reference(model_path, TEXTS, [1], pooling), atol=1e-5, rtol=1e-5
    )


def test_last_llama_layer_is_after_the_final_norm(tiny_llama_path):
    """hidden_states[n_layers] is normed for Llama; layer 3 of 3 must match it,
    not the raw output of the last block."""
    _, model = load_model(tiny_llama_path, device="cpu", dtype="float32")
    raw = {}
    handle = model.layers[-1].register_forward_hook(
        lambda m, a, o: raw.setdefault("h", o[0] if isinstance(o, tuple) else o)
    )
    try:
        Z = make(tiny_llama_path, layer=3, pooling="last").transform(["hello"])
    finally:
        handle.remove()
    normed = model.norm(raw["h"])[0, -1].numpy()
    np.testing.assert_allclose(Z[0], normed, atol=1e-5)
    assert np.abs(Z[0] - raw["h"][0, -1].numpy()).max() > 1e-2


@pytest.mark.parametrize(
    "layer, calls", [(0, [0, 0, 0]), (2, [1, 1, 0]), (-1, [1, 1, 1])]
)
def test_runs_only_up_to_the_deepest_layer(tiny_llama_path, layer, calls):
    _, model = load_model(tiny_llama_path, device="cpu", dtype="float32")
    counts = [0, 0, 0]
    handles = [
        block.register_forward_hook(
            lambda m, a, o, i=i: counts.__setitem__(i, counts[i] + 1)
        )
        for i, block in enumerate(model.layers)
    ]
    try:
        make(tiny_llama_path, layer=layer, batch_size=100).transform(TEXTS[:3])
    finally:
        for h in handles:
            h.remove()
    assert counts == calls


def test_order_batching_and_duplicates_change_nothing(tiny_llama_path):
    enc = make(tiny_llama_path, layer=[1, 2], pooling="mean", batch_size=1)
    single = enc.transform(TEXTS)
    rng = np.random.default_rng(0)
    perm = rng.permutation(len(TEXTS))
    for params in [
        {"batch_size": 64, "max_tokens_per_batch": None},
        {"batch_size": 2, "max_tokens_per_batch": 30},
        {"batch_size": 5, "max_tokens_per_batch": 8},
    ]:
        Z = enc.set_params(**params).transform([TEXTS[i] for i in perm])
        np.testing.assert_allclose(Z, single[perm], atol=1e-5)
    # duplicates: computed once, returned for every row
    _, model = load_model(tiny_llama_path, device="cpu", dtype="float32")
    seen = []
    handle = model.embed_tokens.register_forward_hook(
        lambda m, a, o: seen.append(a[0].shape[0])
    )
    try:
        Z = enc.set_params(batch_size=64).transform(TEXTS[:2] * 3 + TEXTS[:1])
    finally:
        handle.remove()
    assert sum(seen) == 2
    np.testing.assert_allclose(Z, single[[0, 1, 0, 1, 0, 1, 0]], atol=1e-5)


def test_chat_template_and_system_prompt(tiny_llama_path):
    enc = make(tiny_llama_path, layer=2, pooling="mean")
    Z = enc.transform(CONVERSATIONS)
    np.testing.assert_allclose(
        Z, reference(tiny_llama_path, CONVERSATIONS, [2], "mean"), atol=1e-5
    )
    # the template really changes the tokens read
    raw = make(tiny_llama_path, layer=2, chat_template=False).transform(CONVERSATIONS)
    assert np.abs(raw - Z).max() > 1e-3
    # system_prompt == a system message put first
    with_sp = enc.set_params(system_prompt="Be safe.").transform(CONVERSATIONS[:1])
    explicit = enc.set_params(system_prompt=None).transform(
        [[{"role": "system", "content": "Be safe."}, *CONVERSATIONS[0]]]
    )
    np.testing.assert_allclose(with_sp, explicit, atol=1e-6)
    # chat_template=True: plain strings become one user message
    as_chat = make(tiny_llama_path, layer=2, chat_template=True).transform(["hello"])
    as_conv = enc.transform([[{"role": "user", "content": "hello"}]])
    np.testing.assert_allclose(as_chat, as_conv, atol=1e-6)
    # ... so a mix is unambiguous there: each row as if it were a conversation
    mixed = ["hello", CONVERSATIONS[0]]
    Z_mixed = make(tiny_llama_path, layer=2, chat_template=True).transform(mixed)
    np.testing.assert_allclose(Z_mixed[0], as_conv[0], atol=1e-6)
    np.testing.assert_allclose(Z_mixed[1], Z[0], atol=1e-5)
    with pytest.raises(ValueError, match="chat_template=True"):
        enc.transform(mixed)  # "auto" would read the two kinds differently


def test_conversations_without_a_template_are_role_lines(minilm_path):
    enc = make(minilm_path, layer=3)
    Z = enc.transform(CONVERSATIONS[:2])
    lines = [
        "\n".join(f"{m['role']}: {m['content']}" for m in c) for c in CONVERSATIONS
    ]
    np.testing.assert_allclose(Z, enc.transform(lines[:2]), atol=1e-6)
    with pytest.raises(ValueError, match="has none"):
        make(minilm_path, chat_template=True).transform(["hello"])


def test_truncation_sides(tiny_llama_path):
    long = ["The quick brown fox jumps over the lazy dog. " * 10, "hello"]
    for side in ("right", "left"):
        Z = make(
            tiny_llama_path, layer=2, pooling="mean", max_length=9, truncation_side=side
        ).transform(long)
        ref = reference(tiny_llama_path, long, [2], "mean", max_length=9, side=side)
        np.testing.assert_allclose(Z, ref, atol=1e-5)
    enc = make(tiny_llama_path, max_length=10**6).fit(["x"])
    assert enc.max_length_ == 1024  # capped by max_position_embeddings


def test_cache_hit_needs_no_model(tiny_llama_path, tmp_path, monkeypatch):
    enc = make(tiny_llama_path, layer=[1, 3], pooling="last", cache=tmp_path)
    Z = enc.transform(TEXTS)
    Zc = enc.transform(CONVERSATIONS)

    def no_model(*args, **kwargs):
        raise AssertionError("the model was loaded on a cache hit")

    clear_model_cache()
    monkeypatch.setattr("skctd.llm._loading.load_model", no_model)
    again = make(tiny_llama_path, layer=[1, 3], pooling="last", cache=tmp_path)
    np.testing.assert_array_equal(again.transform(TEXTS[::-1]), Z[::-1])
    np.testing.assert_array_equal(again.transform(CONVERSATIONS), Zc)
    # a single cached layer is reused by a different layer list
    np.testing.assert_array_equal(
        make(tiny_llama_path, layer=3, pooling="last", cache=tmp_path).transform(TEXTS),
        Z[:, 64:],
    )
    # other settings are not served from this cache
    for params in [{"pooling": "mean"}, {"layer": 2}, {"max_length": 4}]:
        with pytest.raises(AssertionError, match="cache hit"):
            again.set_params(**params).transform(TEXTS[:1])
        again.set_params(layer=[1, 3], pooling="last", max_length=512)


def test_write_cache_is_read_back_without_the_model(tiny_llama_path, tmp_path, monkeypatch):
    enc = make(tiny_llama_path, layer=[1, 3], pooling="last", cache=tmp_path)
    rows = TEXTS[:3] + CONVERSATIONS[:1] + TEXTS[:1]  # a duplicate too
    planted = np.arange(5 * 128, dtype=np.float64).reshape(5, 128) / 7
    planted[4] = planted[0]
    enc.set_params(chat_template=True).write_cache(rows, planted)

    def no_model(*args, **kwargs):
        raise AssertionError("the model was loaded although the cache was written")

    clear_model_cache()
    monkeypatch.setattr("skctd.llm._loading.load_model", no_model)
    again = make(tiny_llama_path, layer=[1, 3], pooling="last", cache=tmp_path,
                 chat_template=True)
    np.testing.assert_array_equal(again.transform(rows[::-1]), planted[::-1].astype(np.float32))
    # per layer, as transform stores them: one layer alone is served too
    np.testing.assert_array_equal(
        make(tiny_llama_path, layer=3, pooling="last", cache=tmp_path,
             chat_template=True).transform(TEXTS[:2]),
        planted[:2, 64:].astype(np.float32),
    )
    with pytest.raises(AssertionError, match="cache was written"):  # other settings
        again.set_params(pooling="mean").transform(TEXTS[:1])
    with pytest.raises(ValueError, match=r"expected \(2, 128\)"):
        again.write_cache(TEXTS[:2], planted[:3])
    with pytest.raises(ValueError, match="float16"):
        again.write_cache(TEXTS[:2], planted[:2].astype(np.float16))
    with pytest.raises(ValueError, match="NaN"):
        again.write_cache(TEXTS[:1], np.full((1, 128), np.nan))
    with pytest.raises(ValueError, match="cache is None"):
        again.set_params(cache=None).write_cache(TEXTS[:1], planted[:1])


def test_get_tokenizer_is_the_one_used(tiny_llama_path, minilm_path):
    from skctd.llm import has_chat_template

    enc = make(tiny_llama_path)
    tokenizer = enc.get_tokenizer()
    assert has_chat_template(tokenizer)
    assert load_model(tiny_llama_path, device="cpu", dtype="float32")[0] is tokenizer
    assert not has_chat_template(make(minilm_path).get_tokenizer())
    with pytest.raises(ValueError, match="pooling"):
        make(tiny_llama_path, pooling="median").get_tokenizer()


def test_clone_pickle_carry_no_weights(tiny_llama_path):
    enc = make(tiny_llama_path, layer=2)
    Z = enc.fit_transform(TEXTS)
    blob = pickle.dumps(enc)
    assert len(blob) < 5_000
    restored = pickle.loads(blob)
    np.testing.assert_array_equal(restored.transform(TEXTS), Z)
    assert restored.layers_ == [2]
    cloned = clone(enc)
    assert cloned.get_params() == enc.get_params()
    assert not hasattr(cloned, "layers_")
    np.testing.assert_array_equal(cloned.transform(TEXTS), Z)


def test_feature_names_tags_and_output(minilm_path):
    enc = make(minilm_path, layer=[3, -1], output_dtype="float16")
    names = enc.get_feature_names_out()  # from the config, no fit, no model
    assert len(names) == 768 and names[0] == "act_l3_0" and names[-1] == "act_l6_383"
    Z = enc.fit(TEXTS).transform(TEXTS[:2])
    assert Z.dtype == np.float16 and Z.shape == (2, 768)
    tags = get_tags(enc)
    assert tags.input_tags.string and not tags.input_tags.two_d_array
    assert tags.requires_fit is False
    pd = pytest.importorskip("pandas")
    enc.set_params(output_dtype="float32").set_output(transform="pandas")
    X = pd.Series(TEXTS[:3], index=[10, 11, 12])
    df = enc.transform(X)
    assert list(df.columns[:2]) == ["act_l3_0", "act_l3_1"]
    assert list(df.index) == [10, 11, 12]


def test_pipeline_and_cascade_featurizer(minilm_path):
    rng = np.random.default_rng(0)
    positive = ["bomb", "poison", "weapon", "overdose", "attack"]
    negative = ["bread", "garden", "music", "weather", "holiday"]
    X, y = [], []
    for i in range(60):
        words = positive if i % 2 else negative
        X.append(f"Tell me about the {words[i % 5]} number {rng.integers(1000)}.")
        y.append(i % 2)
    y = np.array(y)
    pipe = make_pipeline(make(minilm_path, layer=6), LogisticRegression(max_iter=500))
    pipe.fit(X, y)
    assert (pipe.predict(X) == y).mean() > 0.9
    from skctd import CalibratedDelegationCascade

    cascade = CalibratedDelegationCascade(
        keyword_expert,
        featurizer=make(minilm_path, layer=6),
        alpha=0.3,
        delta=0.2,
        signal="uncertainty",
        cv=3,
        random_state=0,
    )
    cascade.fit(X, y)
    assert cascade.featurizer_.layers_ == [6]
    assert cascade.predict(X[:5]).shape == (5,)


@pytest.mark.parametrize(
    "X, match",
    [
        (["ok", ""], r"X\[1\] is an empty or whitespace-only string"),
        (["ok", "  "], r"X\[1\] is an empty or whitespace-only string"),
        (["ok", None], r"X\[1\] is missing"),
        (["ok", float("nan")], r"X\[1\] is missing"),
        (["ok", [{"role": "user", "content": "hi"}]], r"mixes texts and conversations"),
        ([[{"role": "user"}]], r"X\[0\]: message 0 must be a dict"),
        ([[]], r"X\[0\] is an empty conversation"),
        ("just one text", r"wrap it in a list"),
        ([3], r"X\[0\] is a int"),
    ],
)
def test_bad_inputs(tiny_llama_path, X, match):
    enc = make(tiny_llama_path)
    with pytest.raises((ValueError, TypeError), match=match):
        enc.fit(X)
    with pytest.raises((ValueError, TypeError), match=match):
        enc.transform(X)


@pytest.mark.parametrize(
    "params, match",
    [
        ({"layer": 4}, r"layer=4 is out of range .* 3 blocks"),
        ({"layer": [-5]}, r"out of range"),
        ({"layer": []}, r"empty list"),
        ({"layer": [1.5]}, r"list of ints"),
        ({"pooling": "median"}, r"pooling"),
        ({"max_length": 0}, r"max_length"),
        ({"truncation_side": "middle"}, r"truncation_side"),
        ({"chat_template": 3}, r"chat_template"),
    ],
)
def test_bad_params(tiny_llama_path, params, match):
    with pytest.raises((ValueError, TypeError), match=match):
        make(tiny_llama_path, **params).fit(["hello"])


def test_empty_input_and_missing_dependency(tiny_llama_path, monkeypatch):
    Z = make(tiny_llama_path, layer=[1, 2]).transform([])
    assert Z.shape == (0, 128)
    import skctd.llm._loading as loading

    monkeypatch.setattr(loading, "_CONFIG_CACHE", {})
    monkeypatch.setitem(sys.modules, "transformers", None)
    with pytest.raises(ImportError, match=r"skctd\[llm\]"):
        make(tiny_llama_path).fit(["hello"])


@pytest.mark.slow
def test_smollm2_gguf_layer_15(smollm2_model):
    """The packaged SmolLM2-135M-Instruct (GGUF): layer 15 of 30 through the hooks
    equals hidden_states[15] of the full model."""
    path, kwargs = smollm2_model
    enc = make("smollm2", layer=[15, -1], pooling="last", batch_size=4)
    rows = TEXTS[:4]
    Z = enc.fit_transform(rows)
    assert enc.n_layers_ == 30 and enc.hidden_size_ == 576 and Z.shape == (4, 1152)
    tokenizer, model = load_model(
        path, device="cpu", dtype="float32", model_kwargs=kwargs
    )
    ref = []
    for text in rows:
        ids = torch.tensor([tokenizer(text)["input_ids"]])
        with torch.no_grad():
            hs = model(input_ids=ids, output_hidden_states=True).hidden_states
        ref.append(torch.cat([hs[15][0, -1], hs[30][0, -1]]).numpy())
    np.testing.assert_allclose(Z, np.array(ref), atol=1e-4, rtol=1e-4)
    conv = enc.transform(CONVERSATIONS[1:2])
    assert conv.shape == (1, 1152) and np.isfinite(conv).all()
