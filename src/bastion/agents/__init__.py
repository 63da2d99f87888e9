"""Agents built on the runtime. Each module defines one agent's methods and card."""
