// A local OpenID Connect provider for the browser test tests/e2e/test_oidc.py.
//
// One client, one account, oidc-provider's built-in development sign-in and
// consent pages. Development and tests only: the keys are made at start-up and
// everything is kept in memory.
//
//   OIDC_PORT=9999 OIDC_REDIRECT_URIS=http://127.0.0.1:8000/accounts/oidc/localidp/login/callback/ \
//     node tests/oidc/server.js
//
// The port may also be given as the first argument. Prints "ready <issuer>" once
// it listens.

import { randomBytes } from 'node:crypto';
import Provider from 'oidc-provider';

const port = Number.parseInt(process.argv[2] || process.env.OIDC_PORT || '', 10);
if (!Number.isInteger(port) || port <= 0 || port > 65535) {
  console.error('Give the port as the first argument or as OIDC_PORT.');
  process.exit(2);
}
const redirectUris = (process.env.OIDC_REDIRECT_URIS || '')
  .split(',')
  .map((uri) => uri.trim())
  .filter(Boolean);
if (redirectUris.length === 0) {
  console.error('Set OIDC_REDIRECT_URIS to the relying party callback URL(s), comma separated.');
  process.exit(2);
}

const host = '127.0.0.1';
const issuer = `http://${host}:${port}`;

export const ACCOUNT = {
  sub: 'oidc-user-1',
  email: 'oidc.user@example.org',
  email_verified: true,
  name: 'Olivia Dupont',
  given_name: 'Olivia',
  family_name: 'Dupont',
  preferred_username: 'olivia',
};

const configuration = {
  clients: [
    {
      client_id: process.env.OIDC_CLIENT_ID || 'portal-test',
      client_secret: process.env.OIDC_CLIENT_SECRET || 'portal-test-secret',
      redirect_uris: redirectUris,
      grant_types: ['authorization_code'],
      response_types: ['code'],
      scope: 'openid email profile',
    },
  ],
  scopes: ['openid', 'email', 'profile'],
  claims: {
    openid: ['sub'],
    email: ['email', 'email_verified'],
    profile: ['name', 'given_name', 'family_name', 'preferred_username'],
  },
  // Only the one account exists: any other login typed on the development
  // sign-in page finds no account and is asked to sign in again.
  async findAccount(ctx, id) {
    if (id !== ACCOUNT.sub) {
      return undefined;
    }
    return {
      accountId: ACCOUNT.sub,
      async claims() {
        return { ...ACCOUNT };
      },
    };
  },
  features: {
    devInteractions: { enabled: true },
  },
  cookies: { keys: [randomBytes(32).toString('hex')] },
  // Short-lived everything: the provider lives for one test.
  ttl: {
    AccessToken: 600,
    AuthorizationCode: 60,
    IdToken: 600,
    Interaction: 600,
    Grant: 600,
    Session: 600,
  },
};

const provider = new Provider(issuer, configuration);
provider.on('server_error', (ctx, error) => {
  console.error('server_error', error);
});

const server = provider.listen(port, host, () => {
  console.log(`ready ${issuer}`);
});

function stop() {
  server.close(() => process.exit(0));
  setTimeout(() => process.exit(0), 1000).unref();
}
process.on('SIGTERM', stop);
process.on('SIGINT', stop);
