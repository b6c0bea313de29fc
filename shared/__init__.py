"""dcr-platform's shared package: event contracts and the plumbing every service uses.

Contracts and plumbing only: no single service's business logic lives here.
"""
