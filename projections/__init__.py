"""The pure core of the order bank: the event model, its codec, and deterministic reducers over events. No I/O.

Everything else imports it and it imports nothing of `orderbank.engine` or `orderbank.replay`: the Faust agents and
the replay lab fold events with the same `orderbank.projections.bank.OrderBank`.
"""
