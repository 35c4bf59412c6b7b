from tests.xmpp.harness import prosody  # noqa: F401  (the session fixture)
