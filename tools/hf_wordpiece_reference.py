#!/usr/bin/python3
"""Reference for the tokenizer golden tests: HuggingFace BertTokenizer's algorithm (slow,
Python version) written out in plain Python from its description, using only Python's own
unicodedata and str.lower(). Debian has no python3-transformers, so this stands in for it.

The algorithm lives in python/edgebert_torch/wordpiece.py (also the tokenizer of its training script).

Usage:
  /usr/bin/python3 tools/hf_wordpiece_reference.py golden VOCAB OUT.json   # crafted strings -> fixture
  /usr/bin/python3 tools/hf_wordpiece_reference.py corpus VOCAB FILE N EDGEBERT_DLL MODEL_DIR
      # one-off check: the first N non-empty lines of FILE through both tokenizers, differences printed
"""
import json
import os
import subprocess
import sys
import unicodedata

sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "python"))
from edgebert_torch.wordpiece import encode, read_vocab  # noqa: E402

CASES = [
    ("café naïve Ångström résumé façade", None, 512),
    ("cafe\u0301 nai\u0308ve A\u030angstro\u0308m", None, 512),           # combining marks
    ("Crème brûlée, jalapeño, Œuvre, straße, İstanbul, ΣΟΦΙΑ", None, 512),
    ("I love it 😀😂👍🏽 so much🎉!", None, 512),                            # emoji (So, modifiers)
    ("$5 + 3 = 8 ^ 2 | x ~ y, 20°C © 2024 ™ € £ ¥ ± × ÷ ≤ √ ∞", None, 512),  # Sc Sm Sk So symbols
    ("line one\nline two\ttabbed\r\nwindows\u00a0nbsp\u2003em\u2028ls", None, 512),
    ("中文字符 和 日本語のテキスト and 한국어 text", None, 512),                 # CJK, kana, Hangul
    ("ctrl\u0001chars\u0007here\u200bzero\u200dwidth\ufeffbom\u00adshy\ufffdrepl\x00nul", None, 512),
    ("a" * 101 + " " + "b" * 100 + " " + "antidisestablishmentarianism" * 4, None, 512),  # words > 100 chars
    ("this is _not_ a __dunder__ name, snake_case_word and _emphasis_.", None, 512),
    ("Hello [MASK] world[SEP]again [cls] [UNK]x", None, 512),              # special tokens in text
    ("U.S.A. e-mail don't \"quoted\" (paren) [bracket] {brace} <angle> #hash @at", None, 512),
    ("Ǆungla ﬁne ﬂow ｆｕｌｌｗｉｄｔｈ ２０２４ ①②③ ½ x² H₂O", None, 512),         # compatibility characters
    ("Ελληνικά Русский текст עברית العربية हिन्दी ไทย", None, 512),
    ("", None, 512),
    ("   \t\n  ", None, 512),
    ("The quick brown fox jumps over the lazy dog near the riverbank today", "A much shorter pair", 12),
    ("short", "the second sentence is clearly the longer of the two parts here", 10),
    ("equal length one two", "equal length three four", 9),
    ("one two three four five six seven eight nine ten", None, 6),
    ("naïve café", "Ångström 😀 $", 512),
]


def golden(vocab_path, out_path):
    vocab = read_vocab(vocab_path)
    cases = [dict(text=t, pair=p, max_length=m, **encode(t, p, m, vocab)) for t, p, m in CASES]
    doc = {"generator": "tools/hf_wordpiece_reference.py", "python": sys.version.split()[0],
           "unicodedata": unicodedata.unidata_version, "vocab": "bert-base-uncased/vocab.txt", "cases": cases}
    with open(out_path, "w", encoding="utf-8") as f:
        json.dump(doc, f, ensure_ascii=True, indent=1)
        f.write("\n")
    print(f"wrote {len(cases)} cases to {out_path}")


def corpus(vocab_path, path, n, dll, model_dir):
    vocab = read_vocab(vocab_path)
    lines = [l.strip() for l in open(path, encoding="utf-8") if l.strip()][:n]
    differ = 0
    for line in lines:
        expected = encode(line, None, 512, vocab)["input_ids"]
        got = json.loads(subprocess.run(["dotnet", dll, "tokenize", "--model", model_dir, "--max-len", "512", line],
                                        capture_output=True, text=True, check=True).stdout)["input_ids"]
        if got != expected:
            differ += 1
            print("DIFF:", line[:80])
    print(f"{len(lines)} lines, {differ} differ")


if __name__ == "__main__":
    if sys.argv[1] == "golden":
        golden(sys.argv[2], sys.argv[3])
    else:
        corpus(sys.argv[2], sys.argv[3], int(sys.argv[4]), sys.argv[5], sys.argv[6])
