// An independently written OpenID Provider (panva's certified `oidc-provider`, from npm) for
// testing the wizard's OAuth client against something we did not write.
//
//   node tests/oidc/provider.mjs [port]     prints "READY <issuer>" when listening
//
// One public native client, `entra-setup-test`, with PKCE required (S256 only), loopback redirects
// on any port (RFC 8252), refresh tokens and the device flow. Interactions (login and consent)
// complete automatically as the account `admin`, so tests need no browser; a request carrying
// `login_hint=deny` is refused with access_denied instead.
import http from "node:http";
import Provider, { errors } from "oidc-provider";

const port = Number(process.argv[2] ?? 0);
const GRAPH = "https://graph.example.test";
const graphScopes = ["User.Read", "RoleManagement.Read.Directory", "LicenseAssignment.Read.All"].map((s) => `${GRAPH}/${s}`);

const server = http.createServer();
await new Promise((r) => server.listen(port, "127.0.0.1", r));
const issuer = `http://127.0.0.1:${server.address().port}`;

const provider = new Provider(issuer, {
  clients: [
    {
      client_id: "entra-setup-test",
      application_type: "native",
      token_endpoint_auth_method: "none",
      redirect_uris: ["http://127.0.0.1/", "http://localhost/"],
      grant_types: ["authorization_code", "refresh_token", "urn:ietf:params:oauth:grant-type:device_code"],
      response_types: ["code"],
    },
  ],
  pkce: { required: () => true },
  // Put profile claims in the id token, as Microsoft does.
  conformIdTokenClaims: false,
  scopes: ["openid", "profile", "offline_access", "email", ...graphScopes],
  claims: { openid: ["sub"], profile: ["name", "preferred_username"], email: ["email"] },
  features: { devInteractions: { enabled: false }, deviceFlow: { enabled: true } },
  interactions: { url: (_ctx, interaction) => `/interaction/${interaction.uid}` },
  cookies: { keys: ["entra-setup-test-cookie-key"] },
  findAccount: async (_ctx, sub) => ({
    accountId: sub,
    claims: async () => ({ sub, name: "Test Admin", preferred_username: "admin@example.test", email: "admin@example.test" }),
  }),
  ttl: { DeviceCode: 60 },
});
provider.proxy = false;

// Completes every interaction as `admin`, granting what was asked for.
async function interaction(req, res) {
  try {
    const details = await provider.interactionDetails(req, res);
    const { prompt, params } = details;
    if (params.login_hint === "deny") {
      return provider.interactionFinished(req, res, { error: "access_denied", error_description: "The user declined." }, { mergeWithLastSubmission: false });
    }
    if (prompt.name === "login") {
      return provider.interactionFinished(req, res, { login: { accountId: "admin" } }, { mergeWithLastSubmission: false });
    }
    const grant = details.grantId ? await provider.Grant.find(details.grantId) : new provider.Grant({ accountId: details.session.accountId, clientId: params.client_id });
    const missing = prompt.details;
    if (missing.missingOIDCScope) grant.addOIDCScope(missing.missingOIDCScope.join(" "));
    if (missing.missingOIDCClaims) grant.addOIDCClaims(missing.missingOIDCClaims);
    for (const [resource, scopes] of Object.entries(missing.missingResourceScopes ?? {})) grant.addResourceScope(resource, scopes.join(" "));
    const grantId = await grant.save();
    return provider.interactionFinished(req, res, { consent: { grantId } }, { mergeWithLastSubmission: true });
  } catch (e) {
    res.statusCode = 500;
    res.end(String(e));
  }
}

const callback = provider.callback();
server.on("request", (req, res) => {
  if (req.url.startsWith("/interaction/")) return void interaction(req, res);
  callback(req, res);
});
provider.on("server_error", (_ctx, e) => console.error("server_error", e));
void errors;
console.log(`READY ${issuer}`);
