"""The reference SDK client: what an integrator would copy to talk to a DLS Admin server.

It imports nothing of the server: only the standard library and httpx."""
