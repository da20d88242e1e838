"""The replay lab: synthetic launches, replays of history, counterfactual policy comparison and reports.

It imports the pure core (`orderbank.projections`) only; log files and terminal views of a snapshot live here too.
"""
