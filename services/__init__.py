"""The four dcr-platform services. Services never import each other; they share ``shared``."""
