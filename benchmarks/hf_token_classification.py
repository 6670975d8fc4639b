"""The Hugging Face token-classification recipe the PyTorch sides of the NER benchmarks share.

    encode_first_subtoken   tokenizes pre-split words; each word's first sub-token carries its tag
                            id, the other sub-tokens and the special tokens -100 (ignored by the loss)
    first_subtoken_tags     back from logits to one tag per word: argmax at its first sub-token;
                            words cut off by truncation (no sub-token) are "O"
"""

from __future__ import annotations

import numpy as np

IGNORED = -100  # the label PyTorch's cross-entropy skips


def encode_first_subtoken(tokenizer, sentences, label_map, max_length: int):
    """Returns (rows for a `DataCollatorForTokenClassification`, each row's word ids)."""
    encoded = tokenizer([list(s.tokens) for s in sentences], is_split_into_words=True,
                        truncation=True, max_length=max_length)
    rows, word_maps = [], []
    for i, sentence in enumerate(sentences):
        word_ids, labels, previous = encoded.word_ids(i), [], None
        for word in word_ids:
            labels.append(IGNORED if word is None or word == previous else label_map.id(sentence.tags[word]))
            previous = word
        rows.append({**{key: encoded[key][i] for key in encoded.keys()}, "labels": labels})
        word_maps.append(word_ids)
    return rows, word_maps


def first_subtoken_tags(logits, word_maps, sentences, label_map) -> list:
    """One tag per word of each sentence, from the argmax at the word's first sub-token."""
    predicted = []
    for row, word_ids, sentence in zip(logits, word_maps, sentences):
        tags, seen = ["O"] * len(sentence.tokens), set()
        for position, word in enumerate(word_ids):
            if word is not None and word not in seen:
                seen.add(word)
                tags[word] = label_map.tag(int(np.argmax(row[position])))
        predicted.append(tags)
    return predicted
