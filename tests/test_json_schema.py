"""Output forced to match a JSON schema: llama.cpp through its GBNF grammar, transformers through llguidance.

The same schemas through both grammar paths (lessons 10 and 11 use this for tool calls and synthetic
records); every answer must parse and validate, whatever the small model would have said unforced.
"""

from __future__ import annotations

import json

import jsonschema
import pytest

from course_utils.backends import GenerationOptions
from course_utils.errors import InvalidOption

SCHEMAS = {
    "enum": ({"type": "object", "properties": {"answer": {"enum": ["yes", "no", "maybe"]}}, "required": ["answer"]},
             "Is the sky blue? Answer in JSON."),
    "nested": ({"type": "object", "properties": {"person": {"type": "object", "properties": {"name": {"type": "string"}, "age": {"type": "integer"}},
                                                            "required": ["name", "age"], "additionalProperties": False}},
                "required": ["person"], "additionalProperties": False},
               "Describe a person in JSON."),
    "array": ({"type": "object", "properties": {"primes": {"type": "array", "items": {"type": "integer"}, "minItems": 2, "maxItems": 4}},
               "required": ["primes"], "additionalProperties": False},
              "List some small prime numbers in JSON."),
    "number": ({"type": "object", "properties": {"celsius": {"type": "number"}}, "required": ["celsius"], "additionalProperties": False},
               "At what temperature does water boil? Answer in JSON."),
}


def test_both_local_backends_say_they_can(local_backend):
    assert local_backend.supports_json_schema


@pytest.mark.parametrize("kind", SCHEMAS)
def test_output_parses_and_validates(local_backend, kind):
    schema, question = SCHEMAS[kind]
    result = local_backend.chat([{"role": "user", "content": question}], max_tokens=80, json_schema=schema)
    data = json.loads(result.text)
    jsonschema.validate(data, schema)
    assert result.finish_reason == "stop"  # the document was finished, not cut off by max_tokens


def test_the_mask_changes_what_an_unforced_model_says(transformers_backend):
    schema, question = SCHEMAS["enum"]
    ask = [{"role": "user", "content": question}]
    free = transformers_backend.chat(ask, max_tokens=24).text
    forced = transformers_backend.chat(ask, max_tokens=24, json_schema=schema).text
    with pytest.raises(ValueError):  # unforced, the model answers in prose, not JSON
        json.loads(free)
    assert json.loads(forced)["answer"] in ("yes", "no", "maybe")


def test_without_a_schema_the_loop_is_the_plain_greedy_loop(transformers_backend):
    # the schema path must not leak into ordinary generation: first tokens equal the argmax loop's
    import torch

    ids = transformers_backend.tokenize("The capital of Germany is")
    stream = transformers_backend.generate_ids(ids, GenerationOptions())
    got = [next(stream) for _ in range(4)]
    stream.close()
    history = list(ids)
    with torch.inference_mode():
        for _ in range(4):
            history.append(int(transformers_backend.model(input_ids=torch.tensor([history])).logits[0, -1].argmax()))
    assert got == history[len(ids):]


def test_a_schema_it_cannot_compile_gets_a_fix(transformers_backend):
    with pytest.raises(InvalidOption, match="JSON schema.*Fix:"):
        transformers_backend.chat([{"role": "user", "content": "Hi"}], max_tokens=5, json_schema={"type": "no-such-type"})


def test_llamacpp_strings_never_hold_a_raw_newline(llamacpp):
    """llama-cpp-python's own schema converter admits raw control characters inside a JSON string, which JSON
    forbids. On this prompt the bundled model, so forced, wrote a raw newline into the string (json.loads: "Invalid
    control character"). The course's grammar leaves them out, as llama.cpp's own converter does."""
    schema = {"type": "object", "properties": {"text": {"type": "string", "maxLength": 160}}, "required": ["text"], "additionalProperties": False}
    result = llamacpp.chat([{"role": "user", "content": "Write a haiku (three lines) in the field text."}], max_tokens=200, json_schema=schema)
    assert result.finish_reason == "stop"
    assert set(json.loads(result.text)) == {"text"}  # strict json.loads: a raw control character fails here
