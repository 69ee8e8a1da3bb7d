// panva's openid-client (OpenID-certified, strict) as a relying party of wxlogin, in two steps
// so that the test in between can take a browser through the scan:
//   node openid-client.mjs start FILE            prints the authorization URL (PKCE, nonce, state)
//   node openid-client.mjs finish FILE CALLBACK  code grant, userinfo, refresh, the logout
//                                                URL; prints JSON
// FILE holds {issuer, client_id, client_secret, redirect_uri}; `start` adds what `finish` needs.
import { readFileSync, writeFileSync } from 'node:fs';
import * as client from 'openid-client';

const [step, file, callback] = process.argv.slice(2);
const saved = JSON.parse(readFileSync(file, 'utf8'));
const config = await client.discovery(
  new URL(saved.issuer), saved.client_id, saved.client_secret, undefined,
  { execute: [client.allowInsecureRequests] }, // the test's issuer is http on 127.0.0.1
);

if (step === 'start') {
  const verifier = client.randomPKCECodeVerifier();
  const nonce = client.randomNonce();
  const state = client.randomState();
  const url = client.buildAuthorizationUrl(config, {
    redirect_uri: saved.redirect_uri,
    scope: 'openid profile offline_access',
    code_challenge: await client.calculatePKCECodeChallenge(verifier),
    code_challenge_method: 'S256',
    nonce,
    state,
  });
  writeFileSync(file, JSON.stringify({ ...saved, verifier, nonce, state }));
  console.log(url.href);
} else if (step === 'finish') {
  const tokens = await client.authorizationCodeGrant(config, new URL(callback), {
    pkceCodeVerifier: saved.verifier,
    expectedNonce: saved.nonce,
    expectedState: saved.state,
    idTokenExpected: true,
  });
  const claims = tokens.claims();
  const userinfo = await client.fetchUserInfo(config, tokens.access_token, claims.sub);
  const refreshed = await client.refreshTokenGrant(config, tokens.refresh_token);
  let reuse = 'accepted';
  try {
    await client.refreshTokenGrant(config, tokens.refresh_token); // spent: must be refused
  } catch (error) {
    reuse = error.error ?? error.code ?? String(error);
  }
  const logout = client.buildEndSessionUrl(config, {
    id_token_hint: tokens.id_token,
    post_logout_redirect_uri: saved.post_logout_redirect_uri,
    state: 'bye',
  });
  console.log(JSON.stringify({
    claims, userinfo, refreshed: refreshed.claims(), reuse,
    scope: tokens.scope, token_type: tokens.token_type, logout: logout.href,
  }));
} else {
  throw new Error(`unknown step ${step}`);
}
