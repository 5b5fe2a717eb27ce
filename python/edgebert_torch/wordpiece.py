"""HuggingFace BertTokenizer's algorithm (the slow Python version) in plain Python, from its description:
the tokenizer of the training script and the reference of the C# tokenizer's golden tests
(tools/hf_wordpiece_reference.py). Steps:
  1. Lowercase character by character (do_lower_case), leaving special tokens alone; split the text on the
     special tokens; each special token is one token.
  2. BasicTokenizer on each other piece: drop NUL, U+FFFD and category C* (except \\t \\n \\r); \\t \\n \\r
     and Zs become spaces; space out CJK ideographs; NFC; split on whitespace; per word: lowercase, then
     NFD and drop Mn (unless strip_accents is False); split off every punctuation character
     (non-alphanumeric printable ASCII, P*).
  3. WordPiece per word: more than 100 code points -> [UNK]; else greedy longest match from the left,
     continuations prefixed ##; a position with no match makes the whole word [UNK].
  4. [CLS] A [SEP] (B [SEP]); longest_first truncation removes one token at a time from the end of A when
     A is strictly longer than B, else from B.
"""
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
