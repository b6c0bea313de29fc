"""Kafka plumbing: topic catalogue, admin (readiness + topic creation), publishing."""
