"""Supply service: harm-reduction supplies, sharps, stock and street needles (``dcr.supplies``)."""
