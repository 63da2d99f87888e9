"""Agent runtime: the server that composes the security stages, the client, the supervisor."""
