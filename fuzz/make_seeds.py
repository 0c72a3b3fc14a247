"""Writes the small seed corpora under fuzz/seeds/ (committed). Each file is one input:
its first byte is the target's mode (see functions/fuzz-targets/src/lib.rs)."""
import json, os, pathlib

root = pathlib.Path(__file__).parent / "seeds"
NOW = 1_800_000_000
ops = (pathlib.Path(__file__).parent.parent / "scripts/chatctl/tests/fixtures/operations.graphql").read_text()

def put(target, name, data):
    d = root / target
    d.mkdir(parents=True, exist_ok=True)
    (d / name).write_bytes(data)

def j(v):
    return json.dumps(v, separators=(",", ":")).encode()

hdr = {"alg": "EdDSA", "typ": "JWT", "kid": "fuzz-ed25519"}
claims = {"sub": "alex", "contexts": ["general", "random"], "iat": NOW - 60, "exp": NOW + 3600}
put("context_token", "signed-valid", b"\x01" + j(claims))
put("context_token", "signed-header-claims", b"\x01" + j(hdr) + b"\0" + j(claims))
put("context_token", "signed-alg-none", b"\x01" + j({"alg": "none", "kid": "fuzz-ed25519"}) + b"\0" + j(claims))
put("context_token", "signed-expired", b"\x01" + j({**claims, "exp": NOW - 3600}))
put("context_token", "signed-bad-context", b"\x01" + j({**claims, "contexts": ["a/b", "", "x" * 300]}))
put("context_token", "signed-typ-at", b"\x01" + j({**hdr, "typ": "at+jwt"}) + b"\0" + j(claims))
put("context_token", "text-three-parts", b"\x00eyJhbGciOiJFZERTQSJ9.e30.AAAA")
put("context_token", "text-garbage", b"\x00not a token at all")

pclaims = {"iss": "https://auth.fuzz.example/", "sub": "client-1", "aud": "context-chat",
           "scope": "chat:read chat:admin", "iat": NOW - 60, "exp": NOW + 600}
put("platform_token", "signed-admin-bearer", b"\x00\x01" + j(pclaims))
put("platform_token", "signed-read-bare", b"\x01\x01" + j({**pclaims, "scope": "chat:read"}))
put("platform_token", "signed-context-token", b"\x00\x01" + j({**pclaims, "contexts": ["general"]}))
put("platform_token", "signed-scp-array", b"\x00\x01" + j({**{k: v for k, v in pclaims.items() if k != "scope"}, "scp": ["chat:admin"]}))
put("platform_token", "text-bearer", b"\x01\x00Bearer a.b.c")

pem = ("-----BEGIN PUBLIC KEY-----\n"
       "MFkwEwYHKoZIzj0CAQYIKoZIzj0DAQcDQgAEEVs/o5+uQbTjL3chynL4wXgUg2R9\n"
       "q9UU8I5mEovUf86QZ7kOBIjJwqnzD1omageEHWwHdBO6B+dFabmdT9POxg==\n"
       "-----END PUBLIC KEY-----\n")
put("jwks", "okp", j({"keys": [{"kty": "OKP", "crv": "Ed25519", "kid": "k1", "alg": "EdDSA",
                                 "x": "11qYAYKxCrfVS_7TyWQHOg7hcvPapiMlrwIaaPcHURo"}]}))
put("jwks", "ec", j({"keys": [{"kty": "EC", "crv": "P-256", "kid": "k2", "alg": "ES256", "use": "sig",
                                "x": "f83OJ3D2xF1Bg8vub9tLe1gHMzV76e8Tus9uPHvRVEU",
                                "y": "x_FEzRu9m36HLN_tue659LNpXW6pCyStikYjKIWI5a0"}]}))
put("jwks", "rsa", j({"keys": [{"kty": "RSA", "kid": "k3", "alg": "RS256", "e": "AQAB",
                                 "n": "0vx7agoebGcQSuuPiLJXZptN9nndrQmbXEps2aiAFbWhM78LhWx4cbbfAAtVT86zwu1RK7aPFFxuhDR1L6tSoc_BJECPebWKRXjBZCiFV4n3oknjhMstn64tZ_2W-5JsGY4Hc5n9yBXArwl93lqt7_RN5w6Cf0h4QyQ5v-65YGjQR0_FDW2QvzqY368QQMicAtaSqzs8KJZgnYb9c7d0zgdAZHzu6qMQvRL5hajrn1n91CbOpbISD08qNLyrdkt-bFTWhAI4vMQFh6WeZu0fM4lFd2NcRwr3XPksINHaQ-G_xBniIqbw0Ls1jF44-csFCur-kEgU8awapJzKnqDKgw"}]}))
put("jwks", "legacy-pem", j({"keys": [{"kid": "legacy", "alg": "ES256", "key": pem}]}))
put("jwks", "mixed-and-broken", j({"keys": [{"kid": "legacy", "key": pem}, {"kty": "EC"}, 7, {"kid": ""}]}))
put("jwks", "no-keys", b'{"keys":{}}')

form = "EventType=onMessageAdded&ConversationSid=CH00112233445566778899aabbccddeeff&MessageSid=IM00112233445566778899aabbccddeeff&Author=alex&Body=Hello+there&DateCreated=2026-11-23T10%3A00%3A00Z&Index=3&ClientIdentity=alex"
put("webhook", "form-signed", b"\x01" + form.encode())
put("webhook", "form-media-signed", b"\x01" + form.replace("&Body=Hello+there", "&Media=%5B%5D").encode())
put("webhook", "form-other-event", b"\x01EventType=onConversationAdded&ConversationSid=CH00112233445566778899aabbccddeeff")
body = {"EventType": "onMessageAdded", "ConversationSid": "CH00112233445566778899aabbccddeeff",
        "MessageSid": "IM00112233445566778899aabbccddeeff", "Author": "sam", "Body": "hi", "Index": 1}
put("webhook", "json-signed", b"\x02" + j(body))
put("webhook", "bad-signature", b"\x00AAAAAAAAAAAAAAAAAAAAAAAAAAA=\n" + form.encode())

def gql(mode, op, variables, name):
    put("graphql", name, bytes([mode]) + j({"query": ops, "operationName": op, "variables": variables}))
gql(0, "createChatToken", {"deviceId": "device-1", "token": "$TOKEN"}, "create-chat-token")
gql(0, "verifyToken", {"token": "$TOKEN"}, "verify-token")
gql(0, "verifyToken", {"token": "a.b.c"}, "verify-token-bad")
gql(0, "enableChannelNotifications", {"channel": "general", "email": "alex@example.org", "token": "$TOKEN"}, "enable-notifications")
gql(0, "verifyEmail", {"email": "alex@example.org", "code": "123456"}, "verify-email")
put("graphql", "virgil", b"\x00" + j({"query": 'mutation { createVirgilToken(token: "$TOKEN") }'}))
put("graphql", "issue", b"\x00" + j({"query": 'mutation { issueChatToken(deviceId: "d", token: "$TOKEN", xid: "x-1") { token xid expiresAt } }'}))
put("graphql", "platform-contexts", b"\x01" + j({"query": 'query { identityContexts(identity: "alex") }'}))
put("graphql", "platform-sync", b"\x01" + j({"query": 'mutation { syncIdentity(identity: "alex", contexts: ["general"]) { joined left } }'}))
put("graphql", "introspection", b"\x00" + j({"query": "{ __schema { types { name fields { name args { name } } } } }"}))
put("graphql", "deep", b"\x00" + j({"query": "{" * 40 + "}" * 40}))
