"""Service layer: every change to data goes through here, with its audit event."""

# Policy results are kept current by session listeners (before every commit): registered here,
# so that whatever writes through a session (web, API, CLI, jobs) keeps them current.
from webapp.services import policy_results as _policy_results  # noqa: E402,F401
