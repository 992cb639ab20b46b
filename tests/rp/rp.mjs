// A relying party of the portal, built on `openid-client` (a certified OpenID
// Connect client), for the browser test tests/e2e/test_oauth_relying_party.py.
//
// It discovers the portal, signs a user in with the authorization code flow and
// PKCE (S256), checks the state, the nonce and the ID token (signature against the
// JWKS, issuer, audience, expiry), reads GET /api/my-account with the access
// token, and can refresh. What it saw is published as JSON for the test to read:
//
//   GET  /login     starts the sign-in (redirects to the portal)
//   GET  /callback  the redirect URI: finishes it, then reads the account
//   GET  /result    what the last sign-in gave (claims, account, token facts)
//   POST /account   reads /api/my-account again with the current access token
//   POST /refresh   uses the refresh token (then the new access token is current)
//
// Configuration from the environment: RP_PORT, RP_ISSUER (the portal's URL),
// RP_CLIENT_ID, RP_CLIENT_SECRET, RP_SCOPE. It listens on 127.0.0.1 only and
// prints "ready <url>" once it has read the portal's discovery document.

import { createServer } from 'node:http';
import { randomBytes } from 'node:crypto';
import * as client from 'openid-client';

const port = Number(process.env.RP_PORT || 0);
const issuer = new URL(process.env.RP_ISSUER || 'http://localhost:8000');
const clientId = process.env.RP_CLIENT_ID;
const clientSecret = process.env.RP_CLIENT_SECRET;
const scope = process.env.RP_SCOPE || 'openid profile email account:read';

if (!clientId || !clientSecret) {
  console.error('RP_CLIENT_ID and RP_CLIENT_SECRET are required');
  process.exit(2);
}

// Discovery checks that the document names this very issuer. Plain http is
// allowed for the local test server only (openid-client refuses it otherwise).
const config = await client.discovery(
  issuer,
  clientId,
  { id_token_signed_response_alg: 'RS256' },
  client.ClientSecretBasic(clientSecret),
  { execute: [client.allowInsecureRequests], timeout: 10 },
);
// Verify the ID token's signature against the portal's JWKS as well.
client.enableNonRepudiationChecks(config);

// One browser per test: pending sign-ins by cookie, and the latest result.
const pending = new Map();
let tokens = null;
let result = { signed_in: false };

function describe(error) {
  return {
    name: error?.name ?? 'Error',
    code: error?.code ?? null,
    error: error?.error ?? error?.cause?.error ?? null,
    status: error?.status ?? error?.response?.status ?? error?.cause?.status ?? null,
    message: String(error?.message ?? error),
  };
}

async function readAccount() {
  const url = new URL('/api/my-account', config.serverMetadata().issuer + '/');
  try {
    const response = await client.fetchProtectedResource(
      config,
      tokens.access_token,
      url,
      'GET',
    );
    const text = await response.text();
    let body = null;
    try {
      body = JSON.parse(text);
    } catch {
      body = text;
    }
    return { status: response.status, body };
  } catch (error) {
    // openid-client raises on a 401 that carries a WWW-Authenticate challenge.
    const described = describe(error);
    return { status: described.status, body: null, error: described };
  }
}

function send(res, status, body, type = 'application/json') {
  const text = type === 'application/json' ? JSON.stringify(body) : body;
  res.writeHead(status, { 'content-type': `${type}; charset=utf-8`, 'cache-control': 'no-store' });
  res.end(text);
}

function escapeHtml(value) {
  return String(value).replace(/[&<>"']/g, (c) => `&#${c.charCodeAt(0)};`);
}

function page(title, paragraphs) {
  const items = paragraphs.map(([id, text]) => `<p id="${id}">${escapeHtml(text)}</p>`).join('');
  return `<!doctype html><html lang="en"><head><meta charset="utf-8"><title>${escapeHtml(
    title,
  )}</title></head><body><h1>${escapeHtml(title)}</h1>${items}</body></html>`;
}

function cookie(req, name) {
  for (const part of (req.headers.cookie || '').split(';')) {
    const [key, ...rest] = part.trim().split('=');
    if (key === name) return rest.join('=');
  }
  return null;
}

let redirectUri = null;

async function login(req, res) {
  const verifier = client.randomPKCECodeVerifier();
  const state = client.randomState();
  const nonce = client.randomNonce();
  const sid = randomBytes(16).toString('hex');
  pending.set(sid, { verifier, state, nonce });
  const url = client.buildAuthorizationUrl(config, {
    redirect_uri: redirectUri,
    scope,
    state,
    nonce,
    code_challenge: await client.calculatePKCECodeChallenge(verifier),
    code_challenge_method: 'S256',
  });
  res.writeHead(302, {
    location: url.href,
    'set-cookie': `rp_sid=${sid}; HttpOnly; Path=/; SameSite=Lax`,
  });
  res.end();
}

async function callback(req, res) {
  const sid = cookie(req, 'rp_sid');
  const attempt = sid && pending.get(sid);
  if (!attempt) {
    result = { signed_in: false, error: { message: 'no sign-in was started here' } };
    return send(res, 400, page('Sign-in failed', [['error', result.error.message]]), 'text/html');
  }
  pending.delete(sid);
  const currentUrl = new URL(req.url, redirectUri);
  try {
    tokens = await client.authorizationCodeGrant(config, currentUrl, {
      pkceCodeVerifier: attempt.verifier,
      expectedState: attempt.state,
      expectedNonce: attempt.nonce,
      idTokenExpected: true,
    });
  } catch (error) {
    result = { signed_in: false, error: describe(error) };
    return send(res, 400, page('Sign-in failed', [['error', result.error.message]]), 'text/html');
  }
  const claims = tokens.claims();
  let userinfo = null;
  try {
    userinfo = await client.fetchUserInfo(config, tokens.access_token, claims.sub);
  } catch (error) {
    userinfo = { error: describe(error) };
  }
  const account = await readAccount();
  result = {
    signed_in: true,
    claims,
    userinfo,
    account,
    token_type: tokens.token_type,
    expires_in: tokens.expiresIn(),
    scope: tokens.scope,
    has_refresh_token: Boolean(tokens.refresh_token),
  };
  const username = account.body?.username ?? '';
  return send(
    res,
    200,
    page('Signed in with the portal', [
      ['username', username],
      ['subject', claims.sub],
    ]),
    'text/html',
  );
}

async function refresh(req, res) {
  if (!tokens?.refresh_token) return send(res, 409, { ok: false, message: 'not signed in' });
  const before = tokens;
  try {
    tokens = await client.refreshTokenGrant(config, before.refresh_token);
  } catch (error) {
    return send(res, 200, { ok: false, ...describe(error) });
  }
  return send(res, 200, {
    ok: true,
    expires_in: tokens.expiresIn(),
    scope: tokens.scope,
    new_access_token: tokens.access_token !== before.access_token,
    new_refresh_token: Boolean(tokens.refresh_token) && tokens.refresh_token !== before.refresh_token,
  });
}

const server = createServer(async (req, res) => {
  const { pathname } = new URL(req.url, 'http://127.0.0.1');
  try {
    if (req.method === 'GET' && pathname === '/login') return await login(req, res);
    if (req.method === 'GET' && pathname === '/callback') return await callback(req, res);
    if (req.method === 'GET' && pathname === '/result') return send(res, 200, result);
    if (req.method === 'POST' && pathname === '/account') {
      if (!tokens) return send(res, 409, { message: 'not signed in' });
      return send(res, 200, await readAccount());
    }
    if (req.method === 'POST' && pathname === '/refresh') return await refresh(req, res);
    return send(res, 404, { message: 'not found' });
  } catch (error) {
    return send(res, 500, describe(error));
  }
});

server.listen(port, '127.0.0.1', () => {
  const url = `http://127.0.0.1:${server.address().port}`;
  redirectUri = `${url}/callback`;
  console.log(`ready ${url}`);
});

for (const signal of ['SIGTERM', 'SIGINT']) {
  process.on(signal, () => server.close(() => process.exit(0)));
}
