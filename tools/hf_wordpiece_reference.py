#!/usr/bin/python3
"""Reference for the tokenizer golden tests: HuggingFace BertTokenizer's algorithm (slow,
Python version) written out in plain Python from its description, using only Python's own
unicodedata and str.lower(). Debian has no python3-transformers, so this stands in for it.

Algorithm (transformers' BertTokenizer, do_basic_tokenize=True):
  1. Lowercase the text character by character (when do_lower_case), leaving special tokens alone,
     and split the text on the special tokens; each special token is one token.
  2. BasicTokenizer on each other piece: drop NUL, U+FFFD and category C* (except \\t \\n \\r);
     \\t \\n \\r and Zs become spaces; space out CJK ideographs; NFC; split on whitespace; per word:
     lowercase, then (strip_accents is not False) NFD and drop Mn; or NFD+drop Mn when
     strip_accents is True; split every punctuation character (non-alphanumeric printable ASCII, P*)
     into its own word.
  3. WordPiece per word: more than 100 code points -> [UNK]; else greedy longest match from the
     left, continuations prefixed ##; any position with no match -> the whole word is [UNK].
  4. [CLS] A [SEP] (B [SEP]); longest_first truncation removes one token at a time from the end of
     A when A is strictly longer than B, else from B.

Usage:
  /usr/bin/python3 tools/hf_wordpiece_reference.py golden VOCAB OUT.json   # crafted strings -> fixture
  /usr/bin/python3 tools/hf_wordpiece_reference.py corpus VOCAB FILE N EDGEBERT_DLL MODEL_DIR
      # one-off check: the first N non-empty lines of FILE through both tokenizers, differences printed
"""
import json
import subprocess
import sys
import unicodedata

SPECIALS = ["[UNK]", "[SEP]", "[PAD]", "[CLS]", "[MASK]"]
CJK = [(0x4E00, 0x9FFF), (0x3400, 0x4DBF), (0x20000, 0x2A6DF), (0x2A700, 0x2B73F), (0x2B740, 0x2B81F),
       (0x2B820, 0x2CEAF), (0xF900, 0xFAFF), (0x2F800, 0x2FA1F)]


def read_vocab(path):
    vocab = {}
    with open(path, encoding="utf-8") as f:
        for i, line in enumerate(f):
            vocab[line.rstrip("\n")] = i
    return vocab


def is_punct(ch):
    cp = ord(ch)
    if 33 <= cp <= 47 or 58 <= cp <= 64 or 91 <= cp <= 96 or 123 <= cp <= 126:
        return True
    return unicodedata.category(ch)[0] == "P"


def strip_marks(word):
    return "".join(c for c in unicodedata.normalize("NFD", word) if unicodedata.category(c) != "Mn")


def basic_words(text, lower=True, strip_accents=None, chinese=True):
    out = []
    for ch in text:
        cp = ord(ch)
        if cp == 0 or cp == 0xFFFD:
            continue
        if ch in " \t\n\r" or unicodedata.category(ch) == "Zs":
            out.append(" ")
        elif unicodedata.category(ch)[0] == "C":
            continue
        elif chinese and any(a <= cp <= b for a, b in CJK):
            out.append(" " + ch + " ")
        else:
            out.append(ch)
    words = []
    for word in unicodedata.normalize("NFC", "".join(out)).split():
        if lower:
            word = word.lower()
            if strip_accents is not False:
                word = strip_marks(word)
        elif strip_accents:
            word = strip_marks(word)
        piece = ""
        for ch in word:
            if is_punct(ch):
                if piece:
                    words.append(piece)
                words.append(ch)
                piece = ""
            else:
                piece += ch
        if piece:
            words.append(piece)
    return " ".join(words).split()


def wordpiece(word, vocab):
    if len(word) > 100:
        return ["[UNK]"]
    pieces, start = [], 0
    while start < len(word):
        end = len(word)
        while end > start:
            candidate = ("##" if start else "") + word[start:end]
            if candidate in vocab:
                break
            end -= 1
        if end == start:
            return ["[UNK]"]
        pieces.append(candidate)
        start = end
    return pieces


def tokenize(text, vocab, lower=True):
    if lower:
        text = lower_outside_specials(text)
    tokens = []
    for segment, special in split_specials(text):
        if special:
            tokens.append(segment)
        else:
            for w in basic_words(segment, lower=lower):
                tokens.extend(wordpiece(w, vocab))
    return tokens


def lower_outside_specials(text):
    return "".join(seg if special else "".join(c.lower() for c in seg) for seg, special in split_specials(text))


def split_specials(text):
    segments, start, i = [], 0, 0
    ordered = sorted(SPECIALS, key=len, reverse=True)
    while i < len(text):
        hit = next((s for s in ordered if text.startswith(s, i)), None)
        if hit is None:
            i += 1
            continue
        if i > start:
            segments.append((text[start:i], False))
        segments.append((hit, True))
        i += len(hit)
        start = i
    if start < len(text):
        segments.append((text[start:], False))
    return segments


def encode(text, pair, max_length, vocab):
    a = tokenize(text, vocab)
    b = tokenize(pair, vocab) if pair is not None else None
    budget = max_length - (2 if b is None else 3)
    while len(a) + (len(b) if b is not None else 0) > budget:
        if b is None or len(a) > len(b):
            a = a[:-1]
        else:
            b = b[:-1]
    tokens = ["[CLS]"] + a + ["[SEP]"]
    types = [0] * len(tokens)
    if b is not None:
        tokens += b + ["[SEP]"]
        types += [1] * (len(b) + 1)
    unk = vocab["[UNK]"]
    return {"tokens": tokens, "input_ids": [vocab.get(t, unk) for t in tokens], "token_type_ids": types}


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
