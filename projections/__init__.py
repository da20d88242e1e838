"""Pure projections of the order bank: deterministic reducers over events, no I/O.

The Faust agents and the replay both call `projections.bank.fold` / `OrderBank.apply`.
"""
