"""A settings file for `lymphcast train --settings FILE`: any model setting, per modality, without a flag for each.

The file is a JSON object {modality: {setting: value}} — e.g. {"cytology": {"ssl_steps": 300, "max_tiles": 512},
"fusion": {"stack_fraction": 0.4}} — whose names are checked against the models' own settings before anything
trains, so a typing error is named (file, modality, setting) instead of surfacing deep inside training. JSON
lists become tuples (the models' sizes, e.g. channels, are tuples). Flags given on the command line win over
the file.
"""

from __future__ import annotations

import json
from pathlib import Path

from .cohort import LymphCastError
from .cohort.values import did_you_mean

FUSION = "fusion"


def _accepted(name: str) -> list[str]:
    if name == FUSION:
        from .fusion.model import FusionModel as model
    else:
        from .modalities.registry import model_class

        model = model_class(name)
    return [p for p in model.setting_names() if p != "seed"]  # the seed is the command's own --seed


def _tuples(value):
    if isinstance(value, list):
        return tuple(_tuples(v) for v in value)
    if isinstance(value, dict):
        return {k: _tuples(v) for k, v in value.items()}
    return value


def read_model_settings(path: Path) -> dict[str, dict]:
    """{modality (or "fusion"): {setting: value}} from a JSON settings file, every name checked."""
    from .modalities.registry import KNOWN

    path = Path(path)
    try:
        data = json.loads(path.read_text(encoding="utf-8"))
    except FileNotFoundError:
        raise LymphCastError(f"{path}: settings file not found") from None
    except (OSError, UnicodeDecodeError) as exc:
        raise LymphCastError(f"{path}: cannot read the settings file ({exc})") from None
    except json.JSONDecodeError as exc:
        raise LymphCastError(f"{path}: not valid JSON at line {exc.lineno}, column {exc.colno} ({exc.msg})") from None
    if not isinstance(data, dict):
        raise LymphCastError(f"{path}: expected a JSON object {{modality: {{setting: value}}}}, "
                             f"not {type(data).__name__}")
    names = (*KNOWN, FUSION)
    out = {}
    for modality, settings in data.items():
        if modality not in names:
            raise LymphCastError(f"{path}: unknown modality '{modality}'{did_you_mean(modality, names)}; "
                                 f"known: {', '.join(names)}")
        if not isinstance(settings, dict):
            raise LymphCastError(f"{path}: '{modality}' must map to an object of settings, "
                                 f"not {type(settings).__name__}")
        accepted = _accepted(modality)
        for key in settings:
            if key not in accepted:
                raise LymphCastError(f"{path}: the {modality} model has no setting '{key}'"
                                     f"{did_you_mean(key, accepted)}; its settings: {', '.join(accepted)}")
        out[modality] = _tuples(settings)
    return out


def merge_settings(from_file: dict[str, dict], from_flags: dict[str, dict]) -> dict[str, dict]:
    """The file's settings under the command line's flags (a flag wins where both set the same setting)."""
    names = set(from_file) | set(from_flags)
    return {name: {**from_file.get(name, {}), **from_flags.get(name, {})} for name in sorted(names)}
