"""The one HTTP -> event -> Kafka mechanism the intake, supply and incident services share:
authenticate -> validate -> pseudonymise -> publish (idempotently) -> answer."""
