"""The offline CLIP tokenizer must be OpenAI's: same vocabulary, same ids."""

import pytest
from transformers import CLIPTokenizer

from model import checkpoints


@pytest.fixture(scope="module")
def tokenizer(tmp_path_factory):
    out = tmp_path_factory.mktemp("tokenizer")
    checkpoints.write_tokenizer(out)
    return CLIPTokenizer.from_pretrained(out)


def test_vocabulary_has_openai_size_and_specials(tokenizer):
    assert len(tokenizer) == 49408
    assert tokenizer.convert_tokens_to_ids(["<|startoftext|>", "<|endoftext|>"]) == [49406, 49407]


def test_ids_match_openai_clip(tokenizer):
    # Ids published with OpenAI's CLIP tokenizer for "a photo of a cat".
    assert tokenizer("a photo of a cat")["input_ids"] == [49406, 320, 1125, 539, 320, 2368, 49407]


def test_long_text_is_truncated_to_77_tokens(tokenizer):
    ids = tokenizer("bus " * 200, truncation=True, max_length=77)["input_ids"]
    assert len(ids) == 77 and ids[-1] == 49407


def test_random_checkpoint_loads_as_clip(tmp_path):
    from transformers import CLIPImageProcessor, CLIPModel

    checkpoints.write_random_checkpoint(tmp_path, "tiny")
    model = CLIPModel.from_pretrained(tmp_path)
    assert model.config.projection_dim == 128
    assert CLIPImageProcessor.from_pretrained(tmp_path).crop_size == {"height": 224, "width": 224}
