"""Verifies a Verdict access token with PyJWT, an independent implementation.

usage: verify_jwt.py JWKS_FILE TOKEN_FILE ISSUER AUDIENCE
Prints the subject on success; exits non-zero with the reason otherwise.
"""
import json
import sys

import jwt

jwks_path, token_path, issuer, audience = sys.argv[1:5]
with open(jwks_path) as f:
    jwks = jwt.PyJWKSet.from_dict(json.load(f))
with open(token_path) as f:
    token = f.read().strip()
kid = jwt.get_unverified_header(token)["kid"]
key = next(k for k in jwks.keys if k.key_id == kid)
claims = jwt.decode(token, key.key, algorithms=["EdDSA"], issuer=issuer, audience=audience)
print(claims["sub"])
