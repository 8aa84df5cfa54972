"""Build a small byte-level BPE tokenizer directory for inference-perf, offline.

    python build_tokenizer.py OUT_DIR

inference-perf loads its tokenizer with transformers' AutoTokenizer from `tokenizer.pretrained_model_name_or_path`;
without network access no hub tokenizer is available, so this trains a byte-level BPE with the `tokenizers` library
on synthetic English text and saves it with `save_pretrained` (tokenizer.json + tokenizer_config.json). The
simulator can load the same tokenizer.json (`inferplane sim --tokenizer OUT_DIR/tokenizer.json`).
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
    from tokenizers import ByteLevelBPETokenizer
    from transformers import PreTrainedTokenizerFast

    out = Path(sys.argv[1])
    bpe = ByteLevelBPETokenizer()
    bpe.train_from_iterator(corpus(), vocab_size=2000, min_frequency=2, special_tokens=["<|endoftext|>"])
    fast = PreTrainedTokenizerFast(tokenizer_object=bpe._tokenizer, eos_token="<|endoftext|>")
    fast.save_pretrained(out)
    print(f"saved a {fast.vocab_size}-token byte-level BPE to {out}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
