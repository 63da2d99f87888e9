"""The edge WAF: request inspection, managed rules and bot control in front of every agent.

The detection half lives in `request` (turning raw HTTP into decoded, inspectable fields),
`rules` (the `RuleMatch` record), `managed` (one detector module per attack family) and `bots`
(user-agent rules). The engine half (rule groups, actions, the ASGI middleware) builds on them.
"""
