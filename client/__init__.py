"""The reference client (``dls_client``) and the tooling built on it (``tools``: simulator, load
generator, benchmarks). The server never imports this package."""
