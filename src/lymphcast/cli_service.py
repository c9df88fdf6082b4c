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


@app.command("serve")
@user_errors
def serve_command(bundle_dir: Path = typer.Argument(..., metavar="BUNDLE", help="Locked bundle folder."),
                  data_dir: Path = typer.Option(Path("lymphcast-data"), "--data", help="Cases, audit trail, tokens."),
                  host: str = typer.Option("127.0.0.1", help="Address to listen on (put a TLS proxy in front for "
                                                             "anything but loopback)."),
                  port: int = typer.Option(8000, min=1, max=65535),
                  tokens: Optional[Path] = typer.Option(None, help="Tokens file (default DATA/tokens.json)."),
                  orthanc: Optional[str] = typer.Option(None, help="Orthanc REST URL to watch for new ultrasound "
                                                                   "images, e.g. http://127.0.0.1:8042."),
                  orthanc_user: Optional[str] = typer.Option(None, help="Orthanc user (password from the "
                                                                        "ORTHANC_PASSWORD environment variable)."),
                  workers: int = typer.Option(1, min=1, max=16, help="Worker processes (each scores in batches; "
                                                                     "one per core)."),
                  allow_unlocked: bool = typer.Option(False, help="Serve a model that was not locked "
                                                                  "(development only).")):
    """Serve a locked bundle: the HTTP API and web page, and optionally the Orthanc watcher that answers each
    ultrasound image with a DICOM SR in the same study."""
    import logging
    import os

    import uvicorn

    from .service.app import create_app
    from .service.core import ServiceCore, ServiceSettings

    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(name)s %(levelname)s %(message)s")
    core = ServiceCore(ServiceSettings(bundle=bundle_dir, data_dir=data_dir, tokens_file=tokens,
                                       allow_unlocked=allow_unlocked))
    watcher = None
    if orthanc:
        from .service.pacs import OrthancClient, OrthancWatcher

        auth = (orthanc_user, os.environ.get("ORTHANC_PASSWORD", "")) if orthanc_user else None
        watcher = OrthancWatcher(OrthancClient(orthanc, auth), core.intake.on_instance).start()
    out.print(f"LymphCast serving bundle {core.bundle.sha256[:12]} on http://{host}:{port} (API docs /api/docs)",
              highlight=False)
    try:
        if workers == 1:
            uvicorn.run(create_app(core), host=host, port=port, log_level="warning", access_log=False)
        else:  # each worker builds its own app from the same settings (the bundle is verified in each)
            import dataclasses
            import json

            os.environ["LYMPHCAST_SERVICE"] = json.dumps({k: (str(v) if isinstance(v, Path) else v) for k, v in
                                                          dataclasses.asdict(core.settings).items()})
            os.environ.setdefault("OMP_NUM_THREADS", "1")  # one core per worker: no oversubscription
            uvicorn.run("lymphcast.service.app:app_from_environment", factory=True, workers=workers, host=host,
                        port=port, log_level="warning", access_log=False)
    finally:
        if watcher is not None:
            watcher.stop()


@app.command("token")
@user_errors
def token_command(user: str = typer.Option(..., help="Who gets the token (a person or a system)."),
                  role: str = typer.Option(..., help="clinician (reads), integration (submits) or admin (manages)."),
                  data_dir: Path = typer.Option(Path("lymphcast-data"), "--data", help="The service's data folder."),
                  tokens: Optional[Path] = typer.Option(None, help="Tokens file (default DATA/tokens.json).")):
    """Issue an access token for the service; it is shown once and stored only as its SHA-256."""
    from .service.auth import TokenStore

    token = TokenStore(tokens or data_dir / "tokens.json").issue(user, role)
    out.print(token, highlight=False)
