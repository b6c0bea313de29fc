"""The evidence report for the council (issue 15): ``dcr report`` and ``GET /v1/reports``."""
