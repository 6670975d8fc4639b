"""`kerastune-nlp serve PATH`: a local model server speaking TF Serving's REST (and gRPC) API."""

from __future__ import annotations

import argparse
import signal
import threading

from kerastune_nlp.errors import ConfigError
from kerastune_nlp.inference.artifacts import PATH_FORMS


def add_parser(commands) -> argparse.ArgumentParser:
    parser = commands.add_parser(
        "serve", help="serve a model over TF Serving's REST API (plus :entities, /health, /metrics)",
        allow_abbrev=False,  # `--version 3` must not quietly mean --versions 3
        formatter_class=argparse.RawDescriptionHelpFormatter,
        description="Serve a model with TF Serving's REST API: GET /v1/models/<name>[/versions/<v>][/metadata], "
                    "POST /v1/models/<name>[/versions/<v>]:predict, plus :entities (NER), GET /health and GET "
                    "/metrics. Concurrent requests are merged into batches. A model base folder is watched for "
                    f"new numbered version folders, which are served without a restart.\n\nPATH: {PATH_FORMS}.")
    parser.add_argument("path", metavar="PATH", help="what to serve (see above)")
    parser.add_argument("--host", default="127.0.0.1", help="interface to bind (default 127.0.0.1; 0.0.0.0 for all)")
    parser.add_argument("--port", type=int, default=8501, help="REST port (default 8501, as TF Serving)")
    parser.add_argument("--grpc-port", type=int, help="also serve TF Serving's gRPC API on this port (TF Serving "
                                                      "uses 8500); off by default")
    parser.add_argument("--model-name", help="name to serve under (default: from PATH); picks one model of an "
                                             "export folder")
    parser.add_argument("--max-batch-size", type=int, default=32,
                        help="most instances merged into one predictor call (default 32; 1 = no batching)")
    parser.add_argument("--batch-timeout-ms", type=float, default=5.0,
                        help="longest wait for more requests to merge, in ms (default 5)")
    parser.add_argument("--no-batching", action="store_true", help="serve requests one at a time")
    parser.add_argument("--versions", type=int, default=2, help="newest versions served at once (default 2)")
    parser.add_argument("--poll-seconds", type=float, default=2.0,
                        help="seconds between scans for new version folders (default 2; 0 = never)")
    parser.add_argument("--max-instances", type=int, default=1024, help="most instances per request (default 1024)")
    parser.add_argument("--max-body-bytes", type=int, default=4 * 1024 * 1024,
                        help="largest request body in bytes (default 4194304 = 4 MiB)")
    return parser


def run(args) -> None:
    from kerastune_nlp.serving.registry import ServingOptions, resolve_source

    if not 0 <= args.port <= 65535 or (args.grpc_port is not None and not 0 <= args.grpc_port <= 65535):
        raise ConfigError(f"Expected ports between 0 and 65535. Received: `--port`={args.port}, "
                          f"`--grpc-port`={args.grpc_port}.")
    options = ServingOptions(model_name=args.model_name, max_batch_size=args.max_batch_size,
                             batch_timeout_ms=args.batch_timeout_ms, batching=not args.no_batching,
                             versions=args.versions, poll_seconds=args.poll_seconds,
                             max_instances=args.max_instances, max_body_bytes=args.max_body_bytes)
    source = resolve_source(args.path, args.model_name)  # a wrong PATH is refused before TensorFlow loads
    print(f"Loading {source.name!r} from {args.path} ...", flush=True)
    from kerastune_nlp.serving.background import serve_in_background

    handle = serve_in_background(args.path, args.host, args.port, grpc_port=args.grpc_port,
                                 log_level="info" if getattr(args, "verbose", False) else "warning",
                                 **{k: v for k, v in vars(options).items()})
    versions = handle.registry.available()
    grpc = f"; gRPC on port {handle.grpc_port}" if handle.grpc_port is not None else ""
    print(f"Serving {source.name!r} versions {versions or '(none yet: waiting for a version folder)'} at "
          f"{handle.url}/v1/models/{source.name}{grpc}. Ctrl-C to stop.", flush=True)
    if threading.current_thread() is threading.main_thread():
        signal.signal(signal.SIGTERM, _interrupt)  # `kill` or `docker stop` stop as cleanly as Ctrl-C
        # A process started in the background of a script inherits SIGINT ignored; Ctrl-C must still stop it.
        signal.signal(signal.SIGINT, _interrupt)
    try:
        handle.wait()
    except KeyboardInterrupt:
        print("\nStopping (answering requests in flight) ...", flush=True)
    finally:
        handle.stop()
    print("Stopped.", flush=True)


def _interrupt(signum, frame) -> None:
    raise KeyboardInterrupt
