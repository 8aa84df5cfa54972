"""Build a small byte-level BPE tokenizer directory for inference-perf, offline.

    python build_tokenizer.py OUT_DIR

inference-perf loads its tokenizer with transformers' AutoTokenizer from `tokenizer.pretrained_model_name_or_path`;
without network access no hub tokenizer is available, so this builds one with the `tokenizers` library and saves it
with `save_pretrained` (tokenizer.json + tokenizer_config.json). The simulator can load the same tokenizer.json
(`inferplane sim --tokenizer OUT_DIR/tokenizer.json`).

Word-level, not byte-level BPE: inference-perf 0.7 builds prompts of an exact token count by decoding random token
ids and re-encoding the text, and gives up after 20 tries when the count does not converge. With a small byte-level
BPE, random ids decode to text that re-merges into other tokens, and it failed here ("Could not generate a prompt of
exactly 400 tokens after 20 attempts (got 401)"). A word-level vocabulary split on whitespace round-trips exactly.
Run it with the interpreter that has inference-perf installed (it brings transformers and tokenizers).
"""

from __future__ import annotations

import random
import sys
from pathlib import Path

VOCABULARY = (
    "the of and to in is that it for as with was on be by at this are from or an have not they which one you had "
    "but all were we there can been has more if will their so what when would about into time some than them only "
    "system data model request cache server token prefix route gateway pool replica latency batch queue memory"
)


def corpus(lines: int = 20_000, seed: int = 0) -> list[str]:
    rng = random.Random(seed)
    words = VOCABULARY.split()
    return [" ".join(rng.choice(words) for _ in range(rng.randint(5, 40))) for _ in range(lines)]


def main() -> int:
    if len(sys.argv) != 2:
        print(__doc__, file=sys.stderr)
        return 2
    from tokenizers import Tokenizer, models, pre_tokenizers, trainers
    from transformers import PreTrainedTokenizerFast

    out = Path(sys.argv[1])
    tok = Tokenizer(models.WordLevel(unk_token="<unk>"))
    tok.pre_tokenizer = pre_tokenizers.WhitespaceSplit()
    trainer = trainers.WordLevelTrainer(special_tokens=["<unk>", "<|endoftext|>"])
    tok.train_from_iterator(corpus(), trainer=trainer)
    fast = PreTrainedTokenizerFast(tokenizer_object=tok, unk_token="<unk>", eos_token="<|endoftext|>")
    fast.save_pretrained(out)
    print(f"saved a {fast.vocab_size}-token word-level tokenizer to {out}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
