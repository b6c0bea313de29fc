"""Intake service: visits, refusals, referrals and on-site services (topic ``dcr.visits``)."""
