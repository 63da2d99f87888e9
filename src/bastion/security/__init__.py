"""Security stages and primitives: authentication, authorization, rate limits, audit, secrets."""
