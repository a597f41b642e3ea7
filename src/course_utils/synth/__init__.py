"""Synthetic data: let the local model write labelled examples, keep only those that pass checks, train on them.

The pipeline (lesson 11)::

    records = generate_qa(backend, passages)                # JSON forced by a schema (llama.cpp grammar)
    records = generate_qa(backend, passages, strategy="spans")  # the answer must be a span of the passage
    run = generate_for_answers(backend, passages, tries=3)  # the code picks the span, the model writes its question
    report = clean(run.delivered)                           # deduplicate, then schema + content checks, with reasons
    report.pass_rate, report.interval(), report.reasons     # how much of what the model wrote is usable
    examples = to_lora_examples(report.valid)               # the format lesson 08's LoRA training reads
    tuned = cached_adapter(base, tokenizer, examples)       # trained once per data set, then reloaded
    answer_reading(tuned.model, tokenizer, squad(limit=40)) # held-out questions written by people

One module per step::

    generation.py  prompts, answer candidates, schemas, generate_qa, generate_for_answers (retries)
    validation.py  normalize_text, deduplicate, validate_record, ValidationReport, clean
    finetune.py    to_lora_examples, write_jsonl, cached_adapter, answer_reading (SQuAD F1 / exact match)

Taught in: lesson 11 (section 6) and lab 11 (the validator).
"""

from __future__ import annotations

from .finetune import (
    INSTRUCTION,
    AdapterRun,
    ReadingScores,
    adapter_key,
    adapter_recipe,
    answer_reading,
    cached_adapter,
    lora_prompt,
    to_lora_examples,
    write_jsonl,
)
from .generation import (
    EXAMPLE_PASSAGE,
    QUESTION_PROMPT,
    QUESTION_STARTS,
    SPANS_PROMPT,
    STRATEGIES,
    SYSTEM_PROMPT,
    PipelineResult,
    answer_candidates,
    answer_kind,
    generate_for_answers,
    generate_qa,
    qa_messages,
    question_messages,
    question_schema,
    ranked_candidates,
    short_passage,
    spans_schema,
)
from .validation import (
    EXAMPLE_RECORD,
    QA_SCHEMA,
    STOP_WORDS,
    ValidationReport,
    clean,
    content_words,
    deduplicate,
    normalize_text,
    type_mismatch,
    validate_all,
    validate_record,
)

__all__ = [
    "EXAMPLE_PASSAGE", "EXAMPLE_RECORD", "INSTRUCTION", "QA_SCHEMA", "QUESTION_PROMPT", "QUESTION_STARTS",
    "SPANS_PROMPT", "STOP_WORDS", "STRATEGIES", "SYSTEM_PROMPT", "AdapterRun", "PipelineResult",
    "ReadingScores", "ValidationReport", "adapter_key", "adapter_recipe", "answer_candidates", "answer_kind", "answer_reading",
    "cached_adapter", "clean", "content_words", "deduplicate", "generate_for_answers", "generate_qa", "lora_prompt",
    "normalize_text", "qa_messages", "question_messages", "question_schema", "ranked_candidates", "short_passage",
    "spans_schema", "to_lora_examples", "type_mismatch", "validate_all", "validate_record", "write_jsonl",
]
