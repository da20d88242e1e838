"""orderbank's edges: the event model and codec, Kafka topics, the Faust app, the CLI, the broker launcher."""
