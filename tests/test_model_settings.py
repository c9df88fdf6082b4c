"""`lymphcast train --settings FILE`: any model setting per modality from a JSON file, every name checked first."""

from __future__ import annotations

import json

import pytest

from lymphcast.cohort import LymphCastError
from lymphcast.model_settings import merge_settings, read_model_settings


def write(tmp_path, content) -> object:
    path = tmp_path / "settings.json"
    path.write_text(content if isinstance(content, str) else json.dumps(content))
    return path


def test_settings_are_read_with_lists_as_tuples(tmp_path):
    path = write(tmp_path, {"cytology": {"channels": [4, 8], "ssl_steps": 3}, "fusion": {"stack_fraction": 0.4}})
    assert read_model_settings(path) == {"cytology": {"channels": (4, 8), "ssl_steps": 3},
                                         "fusion": {"stack_fraction": 0.4}}


@pytest.mark.parametrize("content, words", [
    ({"cytolgy": {}}, ["settings.json", "unknown modality 'cytolgy'", "did you mean 'cytology'"]),
    ({"cytology": {"ssl_step": 3}}, ["settings.json", "no setting 'ssl_step'", "did you mean 'ssl_steps'"]),
    ({"ct": {"seed": 3}}, ["no setting 'seed'"]),  # the seed is the command's own --seed
    ({"ct": 3}, ["'ct' must map to an object"]),
    ([1, 2], ["expected a JSON object"]),
    ('{"ct": {"epochs": 3,}}', ["not valid JSON at line 1"]),
])
def test_a_wrong_name_or_shape_is_named(tmp_path, content, words):
    with pytest.raises(LymphCastError) as error:
        read_model_settings(write(tmp_path, content))
    for word in words:
        assert word in str(error.value)


def test_a_missing_file_is_named(tmp_path):
    with pytest.raises(LymphCastError, match="nowhere.json: settings file not found"):
        read_model_settings(tmp_path / "nowhere.json")


def test_flags_win_over_the_file():
    merged = merge_settings({"ct": {"epochs": 5, "size": 24}, "fusion": {"C": 0.5}},
                            {"ct": {"epochs": 2}, "clinical": {}})
    assert merged == {"clinical": {}, "ct": {"epochs": 2, "size": 24}, "fusion": {"C": 0.5}}


def test_the_cli_refuses_a_bad_settings_file_before_training(tmp_path):
    from typer.testing import CliRunner

    from lymphcast.cli import app

    path = write(tmp_path, {"ct": {"epochz": 3}})
    result = CliRunner().invoke(app, ["train", str(tmp_path / "no-cohort"), "--out", str(tmp_path / "model"),
                                      "--settings", str(path)])
    assert result.exit_code != 0 and "no setting 'epochz'" in result.output and "Traceback" not in result.output
    assert not (tmp_path / "model").exists()
