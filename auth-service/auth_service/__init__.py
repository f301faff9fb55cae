"""auth-service: sign-up, log-in, JWT issuing and the JWKS."""
