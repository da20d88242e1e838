"""For development on one machine: a local Apache Kafka broker and child processes tied to their parent."""
