"""An RFC 7662 client from PyPI (authlib) against the real introspection endpoint.

authlib's OAuth2Session sends the introspection request, authenticating with HTTP Basic
(client_secret_basic, the API key as the client secret); authlib's resource-server validator
then judges each answer. Prints one JSON object with what authlib concluded.

Usage: python introspect_authlib.py URL API_KEY GOOD_TOKEN REVOKED_TOKEN
"""

import json
import sys

from authlib.integrations.requests_client import OAuth2Session
from authlib.oauth2.rfc6750 import InsufficientScopeError, InvalidTokenError
from authlib.oauth2.rfc7662 import IntrospectionToken, IntrospectTokenValidator

url, api_key, good, revoked = sys.argv[1:5]
session = OAuth2Session(
    client_id="gateway",
    client_secret=api_key,
    token_endpoint_auth_method="client_secret_basic",
)


class TookenValidator(IntrospectTokenValidator):
    def introspect_token(self, token_string):
        response = session.introspect_token(
            url, token=token_string, token_type_hint="access_token"
        )
        response.raise_for_status()
        return IntrospectionToken(response.json())


validator = TookenValidator()
verdict = {}

token = validator.authenticate_token(good)
validator.validate_token(token, ["tokens:read"], None)
verdict["good"] = {
    "client_id": token.get_client_id(),
    "scope": token.get_scope(),
    "expires_at": token.get_expires_at(),
    "sub": token.sub,
    "token_type": token.token_type,
    "iat": token.iat,
}
try:
    validator.validate_token(token, ["tokens:write"], None)
    verdict["wrong_scope"] = "accepted"
except InsufficientScopeError as error:
    verdict["wrong_scope"] = error.error

answer = validator.authenticate_token(revoked)
try:
    validator.validate_token(answer, [], None)
    verdict["revoked"] = "accepted"
except InvalidTokenError as error:
    verdict["revoked"] = error.error
verdict["revoked_answer"] = dict(answer)

print(json.dumps(verdict))
