"""Business logic: `async verb_noun(session, *, ...)`. Services flush; the caller commits."""
