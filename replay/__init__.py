"""The replay lab: synthetic launches, replays of history, counterfactual policy comparison and reports."""
