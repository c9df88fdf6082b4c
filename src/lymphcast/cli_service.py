"""Commands for deployment: lock a trained model into a bundle, and serve a bundle beside PACS and the record."""

from __future__ import annotations

from pathlib import Path
from typing import Optional

import typer

from .cli import app, out, user_errors


@app.command("bundle")
@user_errors
def bundle_command(model_dir: Path = typer.Argument(..., metavar="MODEL", help="Trained model folder."),
                   target: Path = typer.Option(..., "--out", help="Folder for the locked bundle."),
                   note: str = typer.Option("", help="Why this model is deployed (kept in the model card)."),
                   overwrite: bool = typer.Option(False, help="Replace an existing bundle.")):
    """Lock a trained model for the service: weights as safetensors, settings, thresholds, calibration, model card
    and a SHA-256 list of every file, checked on every load."""
    from .bundle import lock_bundle

    digest = lock_bundle(model_dir, target, note=note, overwrite=overwrite)
    out.print(f"locked bundle written to {target} (bundle sha256 {digest[:12]}); check by hand with "
              f"`cd {target} && sha256sum -c SHA256SUMS`", highlight=False, soft_wrap=True)
