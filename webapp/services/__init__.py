"""Service layer: every change to data goes through here, with its audit event."""
