"""Wire protocol: JSON-RPC 2.0 framing, the A2A v1.0 data model, error codes, agent card."""
