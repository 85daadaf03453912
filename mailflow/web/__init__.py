"""mailflow's web endpoints: plain WSGI applications (`unsubscribe`), and the one module that
serves them over HTTP (`server`, waitress)."""
