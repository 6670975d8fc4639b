"""Serving: a local model server speaking TF Serving's REST and gRPC APIs, and clients for both.

Server: `kerastune-nlp serve PATH` or, in-process,
`kerastune_nlp.serving.background.serve_in_background(PATH)`; modules
`protocol` (request parsing, answer shapes), `batching`, `registry`
(versions, hot reload), `metrics`, `app` (REST routes), `grpc_front`.
"""
