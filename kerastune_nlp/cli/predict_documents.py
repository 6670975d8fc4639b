"""`kerastune-nlp predict` on documents: input lines grouped into documents for a model with context.

A NER model trained with document context (`--context-size`) reads each
sentence with its neighbours. Its input lines are read as documents: one
sentence per line; a blank line or a `-DOCSTART-` line (CoNLL's marker)
ends a document. Every input line still gets one output line, in order:
a sentence its answer (plus `"document"`, the document's number from 1), a
blank line `{"blank": true}`, a `-DOCSTART-` line `{"document_start": true}`.
"""

from __future__ import annotations

import json

from kerastune_nlp.data.conll import DOCSTART


def group_documents(lines: list[str]) -> list[list[int]]:
    """Indices of the sentence lines of each document (documents end at blank and -DOCSTART- lines)."""
    documents, current = [], []
    for index, line in enumerate(lines):
        if not line or line.startswith(DOCSTART):
            if current:
                documents.append(current)
            current = []
        else:
            current.append(index)
    if current:
        documents.append(current)
    return documents


def document_lines(predictor, lines: list[str], output_format: str, aggregation: str):
    """One output line per input line, each sentence read with its document's context."""
    documents = group_documents(lines)
    answers: dict = {}
    if documents:
        sentences = [[lines[i] for i in document] for document in documents]
        if output_format == "jsonl":
            results = predictor.predict_json(documents=sentences, aggregation=aggregation)
        else:
            results = predictor.predict(documents=sentences)
        for number, (document, result) in enumerate(zip(documents, results), 1):
            for index, answer in zip(document, result):
                answers[index] = (number, answer)
    for n, line in enumerate(lines, 1):
        if output_format == "jsonl":
            if not line:
                record = {"line": n, "blank": True}
            elif line.startswith(DOCSTART):
                record = {"line": n, "text": line, "document_start": True}
            else:
                number, answer = answers[n - 1]
                answer = {k: v for k, v in answer.items() if k not in ("start", "end")}  # the whole line
                record = {"line": n, "text": line, "document": number, **answer}
            yield json.dumps(record, ensure_ascii=False, default=str)
        elif not line or line.startswith(DOCSTART):
            yield line
        else:
            yield predictor.task.format_prediction(line, answers[n - 1][1])
