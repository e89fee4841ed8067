"""A real OpenID Connect provider on loopback for the tests: `oidc-provider-mock` (discovery,
JWKS, authorization code flow with its sign-in form, end session, client registration),
run as its own process, with what that package lacks and our service relies on:

- PKCE enforced at the token endpoint (S256 against the challenge of the authorization);
- the client-credentials grant, issuing JWT access tokens (RFC 9068) signed by the
  provider's key, with the audience asked for (`audience` form field);
- signing keys with a `kid`, and key rotation on demand (POST /testing/rotate-keys);
- POST /testing/sign: the provider signs the claims it is given with its current key, so
  that a test can present a token that is well signed but expired, or for another audience.

Run: `python -m tests.identity.provider [--port P]`; it prints `listening <issuer>` once
it accepts connections, and stops on SIGTERM.
"""

from __future__ import annotations

import argparse
import base64
import hashlib
import os
import secrets
import signal
import sys
import threading
import time
from urllib.parse import parse_qs, urlparse

os.environ["AUTHLIB_INSECURE_TRANSPORT"] = "1"  # loopback over plain HTTP

import flask
import oidc_provider_mock
import werkzeug.serving
from authlib import jose
from authlib.oauth2.rfc6749.grants import ClientCredentialsGrant
from authlib.oauth2.rfc9068 import JWTBearerTokenGenerator
from joserfc import jwt
from joserfc.jwk import RSAKey
from oidc_provider_mock._storage import Client, storage

Client.GRANT_TYPES_SUPPORTED = (*Client.GRANT_TYPES_SUPPORTED, "client_credentials")


def _new_key() -> jose.RSAKey:
    return jose.RSAKey.generate_key(is_private=True, options={"kid": secrets.token_hex(8)})


class AccessTokens(JWTBearerTokenGenerator):
    """RFC 9068 access tokens for the client-credentials grant, for the audience asked for."""

    def get_jwks(self):
        return jose.KeySet([storage.jwk]).as_dict(is_private=True)

    def get_allowed_scope(self, client, scope):
        return client.get_allowed_scope(scope or "")

    def get_audiences(self, client, user, scope):
        return flask.request.form.get("audience") or client.get_client_id()


def build_app() -> flask.Flask:
    app = flask.Flask("oidc_provider_mock")  # its templates (the sign-in form) are there
    oidc_provider_mock.init_app(app, require_client_registration=True, require_nonce=True)
    app.secret_key = secrets.token_bytes(16)
    challenges: dict[str, tuple[str, str]] = {}
    state = {"ready": False}

    @app.before_request
    def extend() -> flask.typing.ResponseReturnValue | None:
        server = flask.g._authlib_authorization_server
        if not state["ready"]:
            storage.jwk = _new_key()
            server.register_grant(ClientCredentialsGrant)
            server.register_token_generator(
                "client_credentials", AccessTokens(issuer=flask.request.host_url.rstrip("/"))
            )
            save = server._save_token
            # The package keeps access tokens of a person; a JWT of a client keeps itself.
            server._save_token = lambda token, request: (
                None if request.user is None else save(token, request)
            )
            state["ready"] = True
        form = flask.request.form
        if flask.request.path != "/oauth2/token":
            return None
        if form.get("grant_type") == "client_credentials":  # the package's view refuses it
            return server.create_token_response()
        if form.get("grant_type") == "authorization_code":
            expected = challenges.pop(form.get("code", ""), None)
            verifier = form.get("code_verifier", "")
            if expected is not None:
                digest = hashlib.sha256(verifier.encode()).digest()
                computed = base64.urlsafe_b64encode(digest).rstrip(b"=").decode()
                if expected != (computed, "S256"):
                    return flask.jsonify(
                        error="invalid_grant", error_description="PKCE verification failed"
                    ), 400
        return None

    @app.after_request
    def remember_challenge(response: flask.Response) -> flask.Response:
        if flask.request.path == "/oauth2/authorize" and response.location:
            code = parse_qs(urlparse(response.location).query).get("code", [""])[0]
            challenge = flask.request.args.get("code_challenge")
            if code and challenge:
                method = flask.request.args.get("code_challenge_method", "plain")
                challenges[code] = (challenge, method)
        return response

    @app.post("/testing/rotate-keys")
    def rotate_keys():
        storage.jwk = _new_key()
        return flask.jsonify(kid=storage.jwk.as_dict()["kid"])

    @app.post("/testing/sign")
    def sign():
        body = flask.request.get_json()
        key = RSAKey.import_key(storage.jwk.as_dict(is_private=True))
        header = {"alg": "RS256", "kid": key.kid, "typ": "at+jwt"}
        return jwt.encode(header, body, key), 200, {"content-type": "text/plain"}

    return app


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--port", type=int, default=0)
    port = parser.parse_args().port
    server = werkzeug.serving.make_server("127.0.0.1", port, build_app(), threaded=True)
    signal.signal(signal.SIGTERM, lambda *_: threading.Thread(target=server.shutdown).start())
    print(f"listening http://127.0.0.1:{server.server_port}", flush=True)
    started = time.monotonic()
    server.serve_forever(poll_interval=0.1)
    print(f"stopped after {time.monotonic() - started:.1f} s", file=sys.stderr)


if __name__ == "__main__":
    main()
