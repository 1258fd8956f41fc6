"""Settings profiles: base (shared), local (quick start), test, production."""
