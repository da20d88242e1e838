"""The order bank for people: a customer's order page, the operations dashboard and the policy page, as
server-rendered HTML with inline SVG charts and live updates over server-sent events. Served by the stream
worker (orderbank.engine.stream.pages) and, without a broker, from a folded log (`orderbank serve`).
Knows nothing of Kafka or Faust: a `Source` hands it the facts."""
