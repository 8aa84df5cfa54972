"""Capacity planning in virtual time: the production picker over simulated replicas (`inferplane simulate`).

The pieces: `events` (the virtual clock), `fleet` (model servers as step engines, configured as `up` would),
`picker` (the real scheduler with a modelled data layer), `driver` (the bench's load against them), `scenario`
(a deployment as fleet and pickers), `whatif` (failures and scale-outs), `planner` (searches), `runner` and
`command`.
"""
