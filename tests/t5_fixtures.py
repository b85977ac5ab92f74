"""A tiny random T5 encoder folder built offline: a flan-t5-shaped config (gated-gelu feed-forward,
relative attention buckets), seeded random weights and a word-level tokenizer over a small caption
vocabulary that ends every sequence with ``</s>`` as T5's does. It stands in for google/flan-t5-large
(AudioLDM 2's text encoder), which cannot be downloaded here; both ``T5EncoderModel.from_pretrained``
and ``AutoTokenizer.from_pretrained`` load the folder."""

from __future__ import annotations

from pathlib import Path

SPECIALS = ["<pad>", "</s>", "<unk>"]  # ids 0, 1, 2 as in T5's sentencepiece vocabulary
WORDS = """
a an the and of in on with while by at from to into over under near then after before as is are
dog dogs cat cats bird birds rooster cow cows horse sheep goat duck ducks frog frogs insects bees
man men woman women child children baby people crowd person boy girl speaker audience
barks barking bark meows purring chirp chirping chirps sing singing sings crows quacking croaking
buzzing neighs bleats moos
talks talking speaks speaking laughs laughing cries crying shouts shouting whispers whispering
cheers cheering claps clapping applause footsteps walking running breathing snoring coughing
car cars truck bus train engine motorcycle airplane helicopter siren horn boat ship bicycle
traffic vehicle passes passing idling revving accelerating honks honking whistle
rain raining falling thunder wind blowing storm water waves ocean river stream waterfall fire crackling
leaves rustling birdsong forest street city park kitchen room distance background foreground
music piano guitar drum drums violin flute trumpet bell bells melody song beat playing plays
electronic loud quiet soft gentle heavy light fast slow distant nearby low high pitched deep
door knocking knocks closes opens slams glass breaks breaking clock ticking phone ringing rings
typing keyboard dishes clanking cutting frying sizzling pouring splashing dripping flowing
hammer drilling sawing machine motor humming beeping alarm static noise sound sounds loudly softly
one two three several many some other again followed continues stops starts briefly repeatedly
""".split()


def vocabulary() -> dict[str, int]:
    """Token -> id: the T5 specials first, then the caption words and the punctuation."""
    vocab = {token: i for i, token in enumerate(SPECIALS)}
    for word in [*WORDS, ",", "."]:
        vocab.setdefault(word, len(vocab))
    return vocab


# Captions of 3, 4, 8 and 13 words (4, 5, 9 and 14 tokens with the appended </s>).
T5_CAPTIONS: list[str] = [
    "a dog barks",
    "rain falling on leaves",
    "a man speaks while a crowd cheers loudly",
    "a car engine idling then accelerating as a siren passes in the distance",
]


def write_tiny_t5(
    folder: Path,
    d_model: int = 32,
    layers: int = 2,
    heads: int = 2,
    seed: int = 0,
    *,
    d_ff: int | None = None,
    vocab_size: int | None = None,
) -> Path:
    """Write a random T5 encoder (``save_pretrained``) and its tokenizer into ``folder``; returns ``folder``.

    ``d_ff`` (default ``2 * d_model``) and ``vocab_size`` (default the tokenizer's vocabulary rounded up to a
    multiple of 8) let it take flan-t5-large's shapes (d_ff 2816, vocab_size 32128); the tokenizer stays the small
    word-level one, so the ids past it are embedding rows no caption reaches."""
    import torch
    from tokenizers import Tokenizer, models, normalizers, pre_tokenizers, processors
    from transformers import PreTrainedTokenizerFast, T5Config, T5EncoderModel

    folder.mkdir(parents=True, exist_ok=True)
    vocab = vocabulary()
    backend = Tokenizer(models.WordLevel(vocab=vocab, unk_token="<unk>"))
    backend.normalizer = normalizers.Lowercase()
    backend.pre_tokenizer = pre_tokenizers.Whitespace()
    backend.post_processor = processors.TemplateProcessing(
        single="$A </s>", pair="$A </s> $B </s>", special_tokens=[("</s>", vocab["</s>"])]
    )
    tokenizer = PreTrainedTokenizerFast(
        tokenizer_object=backend, pad_token="<pad>", eos_token="</s>", unk_token="<unk>", model_max_length=512
    )
    tokenizer.save_pretrained(str(folder))

    if vocab_size is not None and vocab_size < len(vocab):
        raise ValueError(f"vocab_size={vocab_size} does not cover the tokenizer's {len(vocab)} tokens")
    config = T5Config(
        vocab_size=vocab_size or -(-len(vocab) // 8) * 8,  # rounded up like flan-t5's 32128
        d_model=d_model,
        d_kv=d_model // heads,
        d_ff=d_ff or 2 * d_model,
        num_layers=layers,
        num_decoder_layers=layers,
        num_heads=heads,
        feed_forward_proj="gated-gelu",
        dropout_rate=0.0,
        tie_word_embeddings=False,
        pad_token_id=vocab["<pad>"],
        eos_token_id=vocab["</s>"],
        decoder_start_token_id=vocab["<pad>"],
    )
    torch.manual_seed(seed)
    T5EncoderModel(config).eval().save_pretrained(str(folder))
    return folder
