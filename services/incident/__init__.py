"""Incident service: incidents and drug-check results (``dcr.incidents``), and the drug alerts
raised from them (``dcr.alerts``)."""
