import { describe, expect, it } from "vitest";
import { render, screen, waitFor, within } from "@testing-library/svelte";
import userEvent from "@testing-library/user-event";
import { mockIPC } from "@tauri-apps/api/mocks";
import App from "./App.svelte";
import type { ApplyEvent, DoneView, IpcError, JobStatus, PlanView, ProviderInfo, ScimContext, ScimReport, SecretStatus, SignInResult } from "./ipc";
import { setup } from "./lib/setup.svelte";
import { wizard } from "./lib/wizard.svelte";

const signedIn: SignInResult = {
  demo: true,
  notices: [],
  summary: {
    tenantId: "t1", tenantName: "Contoso", defaultDomain: "contoso.com", verifiedDomains: ["contoso.com"], cloudName: "Simulated",
    user: { id: "u1", displayName: "Adele Vance", userPrincipalName: "adele@contoso.com", mail: null },
    roles: [], licence: "P1", licenceSource: null, capabilities: [], advice: [], links: [],
  },
};

const cloudflare: ProviderInfo = {
  id: "cloudflare", name: "Cloudflare One", description: "Cloudflare Zero Trust Access", protocol: "oidc", docsUrl: "https://developers.cloudflare.com/x",
  secretLifetimeDays: 365, groupsClaimNote: null,
  inputs: [{ id: "team", label: "Cloudflare team name", help: "Zero Trust → Settings", example: "acme", kind: "text", optional: false, secret: false, options: [], default: null }],
  permissions: [{ name: "openid", kind: "delegated", why: "Sign users in", highPrivilege: false }],
  pushInputs: [{ id: "account_id", label: "Cloudflare account ID", help: "h", example: "023e…", kind: "text", optional: false, secret: false, options: [], default: null }],
  signIn: true, scim: false, vendor: null, directorySync: null, custom: null, pushHost: "api.cloudflare.com",
};

const planView: PlanView = {
  intent: { providerId: "cloudflare", uniqueName: "entra-setup-cloudflare-acme", displayName: "Cloudflare Access (acme)", redirectUris: ["https://acme.cloudflareaccess.com/cdn-cgi/access/callback"], secretLifetimeDays: 365, saml: null },
  plan: {
    id: "p1", providerId: "cloudflare", uniqueName: "entra-setup-cloudflare-acme", displayName: "Cloudflare Access (acme)", tenantId: "t1", notes: [], scimUniqueName: null, registration: "sign_in", provisioning: null, inputs: { team: "acme" },
    changes: [
      { seq: 0, app: "sign_in", change: { kind: "upsertApplication", body: { groupMembershipClaims: "SecurityGroup" }, creates: true, differences: [] }, title: "Create the app registration", reason: "r", request: "PATCH /applications(uniqueName='entra-setup-cloudflare-acme')", after: [] },
      { seq: 1, app: "sign_in", change: { kind: "addPassword", displayName: "entra-setup x", end: "2027-11-22T00:00:00Z", lifetimeDays: 365 }, title: "Add a client secret", reason: "r", request: "POST …/addPassword", after: [0] },
    ],
  },
  preflight: { policy: { blocked: false, maxLifetimeDays: null }, users: { sampled: 3, upnDiffersFromMail: [], withoutMail: [], guests: [], overGroupLimit: [], groupCountsUnknown: false }, advice: [{ id: "upn_mail", severity: "warning", title: "Some users' sign-in name is not their email", detail: "d", link: null }], canProceed: true },
  permissions: [{ name: "openid", kind: "delegated", why: "Sign users in", grant: "inFlow", highPrivilege: false }],
  journal: "/tmp/journal.jsonl",
  interrupted: false,
  secrets: [],
  certificates: [],
  rotate: false,
  foreign: [],
  customProfile: null,
};

const done: DoneView = {
  providerName: "Cloudflare One", displayName: "Cloudflare Access (acme)", tenantId: "t1", appId: "app-123", appObjectId: "obj-1", servicePrincipalId: "sp-1",
  secret: { keyId: "k1", hint: "Abc", expires: "2027-11-22T00:00:00Z", handedOver: false },
  consentUrl: null,
  checks: [{ id: "client_secret", title: "The new client secret gets a token", status: "pass", detail: "Accepted at once.", cause: null, fix: null, evidence: null }],
  outputs: [{ id: "api_body", title: "Cloudflare API request body", help: "", format: "json", fileName: null, text: '{"client_secret": "<client secret: use Copy or Save to get it>"}', containsSecret: true }],
  advice: [{ id: "lockout", severity: "warning", title: "Keep a password administrator in Cloudflare One", detail: "d", link: null }],
  links: [{ label: "App registration", url: "https://portal.azure.com/#view/x" }],
  pushInputs: cloudflare.pushInputs, groups: [], groupsClaimNote: null, journal: "/tmp/journal.jsonl", demo: true,
  signIn: true, scim: null, retire: null, saml: null,
};

function start(handlers: Record<string, (args: Record<string, unknown>) => unknown>, providers: ProviderInfo[] = [cloudflare]) {
  const calls: { cmd: string; args: Record<string, unknown> }[] = [];
  mockIPC((cmd, args) => {
    const a = (args ?? {}) as Record<string, unknown>;
    calls.push({ cmd, args: a });
    if (handlers[cmd]) return handlers[cmd](a);
    if (cmd === "app_info") return { version: "0", defaultClientId: "x", demoUsers: [], logDir: "/tmp", network: { httpsProxy: null, httpProxy: null, noProxy: "" } };
    if (cmd === "resume_session") return { kind: "nothing" };
    if (cmd === "providers") return providers;
    return null;
  });
  wizard.result = signedIn;
  wizard.view = "step";
  wizard.stepIndex = 1;
  setup.providers = null;
  setup.providerId = null;
  setup.inputs = {};
  setup.inputErrors = {};
  setup.reset();
  render(App);
  return calls;
}

describe("setting up a service", () => {
  it("offers a choice input as a list that starts at its default and sends what it shows", async () => {
    const user = userEvent.setup();
    const withChoice: ProviderInfo = {
      ...cloudflare,
      inputs: [
        ...cloudflare.inputs,
        { id: "pkce", label: "Proof Key for Code Exchange (PKCE)", help: "h", example: "true", kind: "choice", optional: true, secret: false, options: [{ value: "true", label: "On" }, { value: "false", label: "Off" }], default: "true" },
      ],
    };
    const calls = start({ check_inputs: () => planView.intent, prepare_setup: () => planView }, [withChoice]);
    const pkce = (await screen.findByLabelText("Proof Key for Code Exchange (PKCE)")) as HTMLSelectElement;
    expect(pkce.tagName).toBe("SELECT");
    expect(pkce.value).toBe("true");
    expect(within(pkce).getByRole("option", { name: "On (default)" })).toBeTruthy();
    await user.selectOptions(pkce, "false");
    await user.type(screen.getByLabelText("Cloudflare team name"), "acme");
    await user.click(screen.getByRole("button", { name: "Continue" }));
    await screen.findByRole("heading", { level: 1, name: "Review & apply" });
    expect(calls.find((c) => c.cmd === "prepare_setup")?.args.inputs).toEqual({ team: "acme", pkce: "false" });
  });

  it("shows a bad input on its field, then plans, reviews, applies and hands over", async () => {
    const user = userEvent.setup();
    let attempt = 0;
    const calls = start({
      check_inputs: () => {
        attempt += 1;
        if (attempt === 1) {
          throw { kind: "inputs", detail: { errors: [{ field: "team", label: "Cloudflare team name", message: "A team name uses lowercase letters, digits and hyphens only (no spaces or dots)." }] } } satisfies IpcError;
        }
        return planView.intent;
      },
      prepare_setup: () => ({ ...planView, preflight: { ...planView.preflight, canProceed: false } }),
      apply_setup: (a) => {
        const ch = a.events as { onmessage: (e: ApplyEvent) => void };
        ch.onmessage({ kind: "started", seq: 0, title: "Create the app registration" });
        ch.onmessage({ kind: "done", seq: 0, detail: "Application (client) ID app-123" });
        return done;
      },
    });
    const team = await screen.findByLabelText("Cloudflare team name");
    await user.type(team, "acme corp");
    await user.click(screen.getByRole("button", { name: "Continue" }));
    await waitFor(() => expect(screen.getByLabelText("Cloudflare team name").getAttribute("aria-invalid")).toBe("true"));
    expect(screen.getByText(/no spaces or dots/)).toBeTruthy();

    await user.clear(screen.getByLabelText("Cloudflare team name"));
    await user.type(screen.getByLabelText("Cloudflare team name"), "acme");
    await user.click(screen.getByRole("button", { name: "Continue" }));
    expect(await screen.findByRole("heading", { level: 1, name: "Register the app" })).toBeTruthy();
    expect(screen.getByText("https://acme.cloudflareaccess.com/cdn-cgi/access/callback")).toBeTruthy();
    expect(screen.getByText("Some users' sign-in name is not their email")).toBeTruthy();
    expect(calls.find((c) => c.cmd === "prepare_setup")?.args.inputs).toEqual({ team: "acme" });

    await user.click(screen.getByRole("button", { name: "Next: Permissions & consent" }));
    expect(await screen.findByText("You grant it now")).toBeTruthy();
    await user.click(screen.getByRole("button", { name: "Next: Review & apply" }));
    expect(await screen.findByText(/Nothing has been written yet/)).toBeTruthy();
    await user.click(screen.getByRole("button", { name: "Apply 2 changes" }));

    expect(await screen.findByRole("heading", { level: 1, name: "Done" })).toBeTruthy();
    expect(screen.getByTestId("done-summary").textContent).toContain("every test passed");
    expect(screen.getByTestId("output-api_body").textContent).toContain("<client secret: use Copy or Save to get it>");
    expect(screen.getByText("Not handed over yet")).toBeTruthy();
    await user.click(screen.getByRole("button", { name: "Copy client secret" }));
    await waitFor(() => expect(calls.some((c) => c.cmd === "copy_secret" && c.args.outputId === null)).toBe(true));
    expect(await screen.findByText(/copied to the clipboard/)).toBeTruthy();
    expect(screen.getByText("Handed over")).toBeTruthy();
    // Nothing the webview received holds a secret.
    expect(JSON.stringify(done)).not.toMatch(/secretText|"value"/);
  });

  it("goes straight to Review & apply when Register app and Permissions have nothing to decide", async () => {
    const user = userEvent.setup();
    start({ check_inputs: () => planView.intent, prepare_setup: () => planView });
    await user.type(await screen.findByLabelText("Cloudflare team name"), "acme");
    await user.click(screen.getByRole("button", { name: "Continue" }));
    expect(await screen.findByRole("heading", { level: 1, name: "Review & apply" })).toBeTruthy();
    expect(screen.getByTestId("skipped").textContent).toContain("Nothing needed deciding on Register app and Permissions & consent: their defaults are in this plan");
    // The pre-flight's warnings, which Register app would have shown, are here instead.
    expect(screen.getByText("Some users' sign-in name is not their email")).toBeTruthy();
    // Each skipped step is still one click away.
    await user.click(screen.getByRole("button", { name: "Open Register app" }));
    expect(await screen.findByRole("heading", { level: 1, name: "Register the app" })).toBeTruthy();
    expect(screen.getByText("https://acme.cloudflareaccess.com/cdn-cgi/access/callback")).toBeTruthy();
  });

  it("offers the consent link and a demo colleague when consent is pending", async () => {
    const user = userEvent.setup();
    const pending: DoneView = { ...done, consentUrl: "http://127.0.0.1:1/t1/v2.0/adminconsent?client_id=app-123", checks: [] };
    start({ demo_colleague_consents: () => ({ ...done, consentUrl: null }) });
    setup.done = pending;
    wizard.goToStep(7);
    expect(await screen.findByText("Send this consent link to a Global Administrator")).toBeTruthy();
    const region = screen.getByRole("region", { name: "Send this consent link to a Global Administrator" });
    expect(within(region).getByText(pending.consentUrl!)).toBeTruthy();
    await user.click(screen.getByRole("button", { name: "Simulate a colleague consenting" }));
    await waitFor(() => expect(screen.queryByText("Send this consent link to a Global Administrator")).toBeNull());
  });
});

const generic: ProviderInfo = {
  id: "scim", name: "Any SCIM 2.0 service", description: "Provision users and groups", protocol: "scim", docsUrl: "https://learn.microsoft.com/x",
  secretLifetimeDays: 365, groupsClaimNote: null,
  inputs: [{ id: "service", label: "Service name", help: "What to call the app", example: "Acme", kind: "text", optional: false, secret: false, options: [], default: null }],
  permissions: [], pushInputs: [], signIn: false, scim: true, vendor: null, directorySync: null, custom: null, pushHost: null,
};

const scimContext: ScimContext = {
  info: { appName: "Acme (SCIM)", needsPremium: false, endpointHelp: "From the admin console", tokenHelp: "The bearer token", endpointExample: "https://scim.example.com/scim/v2", tokenLifetimeDays: 365, matchSsoGroups: false, advice: [] },
  groupsAllowed: true, licenceNote: "Your tenant has Entra ID P1: you can assign groups.", appExists: false, assigned: [], saved: null, status: null,
  token: { set: false, remembered: false, length: 0 }, demo: true,
};

const report: ScimReport = {
  url: "https://scim.example.com/scim/v2", ready: true, verdict: "Ready for Entra, with 1 warning to read.", useAadOptFlag: true,
  tenantUrl: "https://scim.example.com/scim/v2?aadOptscim062020", totalMillis: 420,
  checks: [
    { id: "test_connection_probe", title: "Entra's Test Connection query answers an empty list", status: "pass", detail: "200", entraImpact: "", rfc: "", fix: null, millis: 12, exchanges: [] },
    { id: "patch_entra_default", title: "Entra's default PATCH format works", status: "warn", detail: "PATCH answered HTTP 400: unknown op Replace", entraImpact: "Handled by the aadOptscim062020 flag", rfc: "RFC 7644 §3.5.2", fix: "Append ?aadOptscim062020 to the tenant URL", millis: 30,
      exchanges: [{ method: "PATCH", url: "https://scim.example.com/scim/v2/Users/1", auth: "bearer <redacted>", requestBody: { Operations: [] }, status: 400, contentType: "application/scim+json", location: null, responseBody: "{}", error: null, millis: 15 }] },
  ],
};

const job: JobStatus = {
  jobId: "scim.1", code: "Active", schedule: "Active", headline: "Provisioning is on: 5 users and 2 groups in sync.", tone: "ok",
  quarantineReason: null, quarantineError: null, nextAttempt: null, lastCycle: "Succeeded", lastCycleEnded: "2026-11-22T10:00:00Z", lastError: null, users: 5, groups: 2, exportedLastCycle: 7,
};

describe("provisioning with SCIM", () => {
  it("assigns a group, previews, sets the token without it ever coming back, verifies, plans and shows the job", async () => {
    const user = userEvent.setup();
    const TOKEN = "s3cr3t-token-value";
    const calls = start(
      {
        check_inputs: () => ({ ...planView.intent, providerId: "scim" }),
        scim_context: () => scimContext,
        search_people: () => [
          { id: "g1", kind: "Group", displayName: "Engineering", detail: "Security group", assignable: true },
          { id: "g2", kind: "Group", displayName: "All Company", detail: "Microsoft 365 group: not security-enabled, cannot be assigned", assignable: false },
        ],
        preview_sync: () => ({
          syncAll: false, users: 2, groups: 1, disabled: 0, truncated: false,
          nestedOnly: [{ id: "u3", displayName: "Diego Siciliani", upn: "diego@contoso.com", mail: "diego@contoso.com", notes: ["nested"] }],
          sample: [{ id: "u1", displayName: "Adele Vance", upn: "adele@contoso.com", mail: "adele@contoso.com", notes: [] }],
          warnings: [{ id: "nested_groups", severity: "warning", title: "Members of nested groups are not provisioned", detail: "Nested: Platform Team (in Engineering).", link: null }],
        }),
        set_scim_token: () => ({ set: true, remembered: false, length: TOKEN.length }),
        verify_scim: () => report,
        prepare_setup: () => ({ ...planView, plan: { ...planView.plan, scimUniqueName: "entra-setup-scim-acme", registration: null, provisioning: "provisioning", changes: [
          { seq: 0, app: "provisioning", change: { kind: "instantiateApp", templateId: "8adf8e6e-67b2-4cf2-a259-e3dc5476c621", displayName: "Acme (SCIM)", tempName: "Acme (SCIM) (setting up 1)" }, title: "Create the provisioning app", reason: "r", request: "POST /applicationTemplates/…/instantiate", after: [] },
        ] } }),
        apply_setup: () => ({ ...done, providerName: "Any SCIM 2.0 service", displayName: "Acme", signIn: false, secret: null, outputs: [], scim: { appName: "Acme (SCIM)", appId: "a", servicePrincipalId: "sp", jobId: "scim.1", status: job, tenantUrl: report.tenantUrl, syncAll: false, advice: [], links: [] } }),
      },
      [generic],
    );
    await user.type(await screen.findByLabelText("Service name"), "Acme");
    await user.click(screen.getByRole("button", { name: "Continue" }));
    expect(await screen.findByRole("heading", { level: 1, name: "Sync mode" })).toBeTruthy();
    expect(await screen.findByTestId("licence-note")).toBeTruthy();

    await user.click(screen.getByRole("button", { name: "Search" }));
    expect(await screen.findByRole("button", { name: "Add Engineering" })).toBeTruthy();
    expect((screen.getByRole("button", { name: "Add All Company" }) as HTMLButtonElement).disabled).toBe(true);
    await user.click(screen.getByRole("button", { name: "Add Engineering" }));
    expect(within(screen.getByRole("list", { name: "Chosen users and groups" })).getByText("Engineering")).toBeTruthy();
    await user.click(screen.getByRole("button", { name: "Preview who would sync" }));
    const preview = await screen.findByTestId("sync-preview");
    expect(preview.textContent).toContain("2 users and 1 group would be provisioned");
    expect(within(preview).getByText("Members of nested groups are not provisioned")).toBeTruthy();

    await user.click(screen.getByRole("button", { name: "Next: SCIM" }));
    expect(await screen.findByRole("heading", { level: 1, name: "SCIM" })).toBeTruthy();
    await user.type(screen.getByLabelText("Tenant URL (SCIM base URL)"), "https://scim.example.com/scim/v2");
    await user.type(screen.getByLabelText("Token"), TOKEN);
    await user.click(screen.getByRole("button", { name: "Set token" }));
    expect(await screen.findByTestId("token-set")).toBeTruthy();
    expect((screen.getByLabelText("Replace the token") as HTMLInputElement).value).toBe("");

    await user.click(screen.getByRole("button", { name: "Verify endpoint" }));
    const shown = await screen.findByTestId("scim-report");
    expect(shown.textContent).toContain("Ready for Entra, with 1 warning to read.");
    expect(within(screen.getByTestId("check-patch_entra_default")).getByText(/Append \?aadOptscim062020/)).toBeTruthy();
    await user.click(screen.getByRole("button", { name: "Use this URL" }));
    expect((screen.getByLabelText("Tenant URL (SCIM base URL)") as HTMLInputElement).value).toBe(report.tenantUrl);

    await user.click(screen.getByRole("button", { name: "Next: Review & apply" }));
    expect(await screen.findByText("Create the provisioning app")).toBeTruthy();
    const prepared = calls.find((c) => c.cmd === "prepare_setup");
    expect(prepared?.args.scim).toEqual({ tenantUrl: report.tenantUrl, syncAll: false, assign: [{ id: "g1", kind: "Group", displayName: "Engineering" }], tokenExpires: null, start: true });
    await user.click(screen.getByRole("button", { name: "Apply 1 change" }));
    expect(await screen.findByRole("heading", { level: 1, name: "Done" })).toBeTruthy();
    expect(screen.getByTestId("job-status").textContent).toContain("5 users and 2 groups in sync");
    // Graph's UTC time, shown in the admin's own zone; the exact value on hover and for assistive tech.
    const ended = screen.getByTestId("job-status").querySelector("time");
    expect(ended?.getAttribute("datetime")).toBe("2026-11-22T10:00:00Z");
    expect(ended?.textContent).toMatch(/ at /);
    expect(screen.getByTestId("job-status").textContent).not.toContain("2026-11-22T10:00:00Z");
    expect(screen.getByTestId("done-summary").textContent).toContain("Provisioning to Any SCIM 2.0 service is set up");

    // The token went to Rust once, and nothing else the UI sent or received carries it.
    const withToken = calls.filter((c) => JSON.stringify(c.args).includes(TOKEN)).map((c) => c.cmd);
    expect(withToken).toEqual(["set_scim_token"]);
  });
});

describe("re-running to rotate the client secret", () => {
  const current: SecretStatus = { keyId: "old-key", displayName: "entra-setup 2026-01-10T09:00Z", hint: "Q~x", created: "2026-01-10T09:00:00Z", expires: "2027-01-10T09:00:00Z", daysLeft: 48, health: "valid", byWizard: true };
  const theirs: SecretStatus = { keyId: "ci-key", displayName: "CI pipeline", hint: "zz9", created: "2025-06-01T00:00:00Z", expires: "2026-11-20T00:00:00Z", daysLeft: -2, health: "expired", byWizard: false };
  const rerun: PlanView = { ...planView, plan: { ...planView.plan, changes: [] }, secrets: [current, theirs] };
  const rotated: PlanView = {
    ...rerun, rotate: true,
    plan: { ...rerun.plan, notes: ["Rotation without downtime: the current secret stays valid."], changes: [
      { seq: 0, app: "sign_in", change: { kind: "addPassword", displayName: "entra-setup 2026-11-22T21:00Z", end: "2027-11-22T00:00:00Z", lifetimeDays: 365 }, title: "Add a new client secret valid for 365 days (until 2027-11-22), next to the current one", reason: "r", request: "POST …/addPassword", after: [] },
    ] },
  };

  it("shows each secret's expiry, plans a rotation, and retires the old secret only after hand-over", async () => {
    const user = userEvent.setup();
    const waiting: DoneView = { ...done, retire: { old: [current], retired: [], ready: false, waitingFor: "Hand the new secret to Cloudflare One first (Copy, Save or Push above).", tested: false } };
    const ready: DoneView = { ...done, secret: { ...done.secret!, handedOver: true }, retire: { old: [current], retired: [], ready: true, waitingFor: null, tested: false } };
    const after: DoneView = { ...ready, retire: { old: [], retired: [current], ready: true, waitingFor: null, tested: false } };
    const calls = start({
      check_inputs: () => planView.intent,
      prepare_setup: (a) => ((a.secret as { rotate: boolean }).rotate ? rotated : rerun),
      recheck_setup: () => ready,
      retire_old_secrets: () => after,
      previous_setups: () => [
        { providerId: "cloudflare", providerName: "Cloudflare One", displayName: "Cloudflare Access (acme)", inputs: { team: "acme" }, lastApplied: "2026-01-10T09:00:00Z", interrupted: false, source: "both", provisions: false },
        { providerId: "pomerium", providerName: "Pomerium", displayName: "Pomerium (auth.corp.example.com)", inputs: { authenticate_url: "https://auth.corp.example.com" }, lastApplied: "2025-12-02T09:00:00Z", interrupted: false, source: "tenant", provisions: false },
      ],
      check_previous_setups: () => [{
        provider: "cloudflare", name: "Cloudflare Access (acme)", source: "both", inputs: { team: "acme" }, lastApplied: "2026-01-10T09:00:00Z",
        secrets: [{ ...current, daysLeft: 12, health: "expiresSoon" }], drift: ["Add a new client secret valid for 365 days (until 2027-11-22), next to the current one"], scim: null,
        attention: ["The client secret expires in 12 days: rotate it (a new secret next to the old one), hand the new one over, then retire the old one."], error: null,
      }],
    });
    // The setup done before is offered with what was typed then, and can be checked as a whole.
    const previous = await screen.findByRole("region", { name: "Set up before in this tenant" });
    expect(within(previous).getByText(/last applied 2026-01-10/)).toBeTruthy();
    // A setup made on another computer is found in the tenant, and says so.
    expect(within(previous).getByText(/created 2025-12-02/)).toBeTruthy();
    expect(within(previous).getAllByText("found in the tenant; no journal on this computer")).toHaveLength(1);
    await user.click(within(previous).getByRole("button", { name: "Check all for expiry and drift" }));
    expect(await within(previous).findByText(/The client secret expires in 12 days/)).toBeTruthy();
    expect(within(previous).queryByText("Nothing needs attention")).toBeNull();
    await user.click(within(previous).getByRole("button", { name: "Re-run Cloudflare Access (acme)" }));
    expect(await screen.findByRole("heading", { level: 1, name: "Register the app" })).toBeTruthy();
    const table = screen.getByRole("table", { name: /2 secrets, newest first/ });
    expect(within(table).getByText("Valid for 48 more days")).toBeTruthy();
    expect(within(table).getByText("Expired 2 days ago")).toBeTruthy();
    expect(within(table).getByText(/Not made by the wizard/)).toBeTruthy();
    expect(screen.getByText(/An existing secret from the wizard is still valid/)).toBeTruthy();

    await user.click(screen.getByLabelText("Rotate the client secret now"));
    await waitFor(() => expect(screen.getByText(/next to the current one\./)).toBeTruthy());
    expect(calls.find((c) => c.cmd === "prepare_setup")?.args.inputs).toEqual({ team: "acme" });
    const asked = calls.filter((c) => c.cmd === "prepare_setup").map((c) => c.args.secret);
    expect(asked).toEqual([{ days: null, rotate: false }, { days: null, rotate: true }]);
    expect((screen.getByLabelText("Rotate the client secret now") as HTMLInputElement).checked).toBe(true);

    setup.done = waiting;
    wizard.goToStep(7);
    const card = await screen.findByRole("region", { name: "Retire the old secret" });
    expect(within(card).getByText(/Hand the new secret to Cloudflare One first/)).toBeTruthy();
    expect((within(card).getByRole("button", { name: "Retire the old secret…" }) as HTMLButtonElement).disabled).toBe(true);

    await user.click(screen.getByRole("button", { name: "Copy client secret" }));
    await waitFor(() => expect(calls.some((c) => c.cmd === "recheck_setup")).toBe(true));
    const retireButton = await within(card).findByRole("button", { name: "Retire the old secret…" });
    await waitFor(() => expect((retireButton as HTMLButtonElement).disabled).toBe(false));
    expect(screen.getByText(/copied to the clipboard/)).toBeTruthy();
    expect(calls.some((c) => c.cmd === "retire_old_secrets")).toBe(false);

    await user.click(retireButton);
    await user.click(within(card).getByRole("button", { name: "Yes, retire it" }));
    expect(await within(card).findByText(/Retired: "entra-setup 2026-01-10T09:00Z"/)).toBeTruthy();
    expect(calls.filter((c) => c.cmd === "retire_old_secrets")).toHaveLength(1);
  });
});

describe("SAML single sign-on", () => {
  it("hands over the metadata URL, fingerprints and files, and is not done until a password administrator is confirmed", async () => {
    const user = userEvent.setup();
    const samlDone: DoneView = {
      ...done, providerName: "Acme Files", displayName: "Acme Files", secret: null, pushInputs: [], outputs: [], signIn: false, links: [],
      checks: [{ id: "saml_metadata", title: "The app's federation metadata carries its signing certificate", status: "pass", detail: "ok", cause: null, fix: null, evidence: null }],
      saml: {
        metadataUrl: "https://login.microsoftonline.com/t1/federationmetadata/2007-06/federationmetadata.xml?appid=a1",
        idpEntityId: "https://sts.windows.net/t1/", ssoUrl: "https://login.microsoftonline.com/t1/saml2", logoutUrl: "https://login.microsoftonline.com/t1/saml2",
        entityId: "https://files.example.com/saml/metadata", replyUrls: ["https://files.example.com/saml/acs"], relayState: null,
        certificateSha1: "AA:BB", certificateSha256: "AA:BB:CC", certificateExpires: "2029-11-30T00:00:00Z",
        ways: [{ title: "Metadata URL (recommended)", detail: "renews itself" }, { title: "Metadata XML file", detail: "upload again" }, { title: "Certificate fingerprint", detail: "by hand" }],
        passwordAdminConfirmed: false,
        newCertificate: null,
        oldCertificate: null,
        retiredCertificates: [],
      },
    };
    const calls = start({ save_saml_file: () => "/home/adele/federation-metadata.xml" });
    setup.done = samlDone;
    wizard.goToStep(7);
    expect(await screen.findByTestId("saml-metadata-url")).toBeTruthy();
    expect(screen.getByTestId("done-summary").textContent).toContain("confirm below that an administrator of Acme Files can still sign in");
    expect(screen.getByText("AA:BB:CC")).toBeTruthy();
    expect(screen.getAllByRole("listitem").some((li) => li.textContent?.startsWith("Metadata URL (recommended)."))).toBe(true);
    await user.click(screen.getByRole("button", { name: "Save metadata XML…" }));
    expect(await screen.findByText("The federation metadata saved to /home/adele/federation-metadata.xml.")).toBeTruthy();
    expect(calls.some((c) => c.cmd === "save_saml_file" && c.args.which === "metadata")).toBe(true);
    await user.click(screen.getByRole("button", { name: "An administrator of Acme Files still signs in with a password" }));
    expect(await screen.findByText("Confirmed: an administrator still signs in with a password.")).toBeTruthy();
    expect(calls.some((c) => c.cmd === "confirm_password_admin")).toBe(true);
    expect(screen.getByTestId("done-summary").textContent).toContain("Single sign-on for Acme Files is set up and every test passed.");
  });
});

describe("importing a SAML service's metadata", () => {
  it("fills the Entity ID, Reply URLs and logout URL from a metadata URL and says what it left out", async () => {
    const user = userEvent.setup();
    const text = (id: string, label: string, optional = false) => ({ id, label, help: "h", example: "e", kind: "text" as const, optional, secret: false, options: [], default: null });
    const samlProvider: ProviderInfo = {
      id: "saml", name: "Any SAML service", description: "SAML", protocol: "saml", docsUrl: "https://learn.microsoft.com/x", secretLifetimeDays: 365, groupsClaimNote: null,
      inputs: [text("name", "Service name"), text("entity_id", "Identifier (Entity ID)"), { ...text("reply_url", "Reply URL (Assertion Consumer Service URL)"), kind: "url_list" }, text("logout_url", "Logout URL", true)],
      permissions: [], pushInputs: [], signIn: false, scim: false, vendor: null, directorySync: null, custom: null, pushHost: null,
    };
    const calls = start({
      import_sp_metadata: () => ({ entityId: "https://wiki.example.org/shibboleth", replyUrls: ["https://wiki.example.org/Shibboleth.sso/SAML2/POST"], skippedAcs: ["https://wiki.example.org/Shibboleth.sso/SAML2/Artifact (HTTP-Artifact)"], logoutUrl: "https://wiki.example.org/Shibboleth.sso/SLO/Redirect", signsRequests: true }),
    }, [samlProvider]);
    await user.click(await screen.findByRole("radio", { name: /Any SAML service/ }));
    expect(screen.queryByLabelText("Client secret lifetime")).toBeNull();
    // No Graph permissions, no SCIM: those steps say so in the rail.
    const rail = screen.getByRole("navigation", { name: "Wizard steps" });
    expect(within(rail).getAllByText("Not needed for Any SAML service")).toHaveLength(3);
    await user.type(screen.getByLabelText("Metadata URL"), "https://wiki.example.org/Shibboleth.sso/Metadata");
    await user.click(screen.getByRole("button", { name: "Import" }));
    await waitFor(() => expect((screen.getByLabelText("Identifier (Entity ID)") as HTMLInputElement).value).toBe("https://wiki.example.org/shibboleth"));
    expect((screen.getByLabelText(/Reply URL/) as HTMLInputElement).value).toBe("https://wiki.example.org/Shibboleth.sso/SAML2/POST");
    expect((screen.getByLabelText(/Logout URL/) as HTMLInputElement).value).toBe("https://wiki.example.org/Shibboleth.sso/SLO/Redirect");
    expect(screen.getByText(/Left out \(Entra answers by HTTP-POST only\)/)).toBeTruthy();
    expect(calls.find((c) => c.cmd === "import_sp_metadata")?.args.url).toBe("https://wiki.example.org/Shibboleth.sso/Metadata");
  });
});

describe("a service that owns its Entra apps (Firezone)", () => {
  const firezone: ProviderInfo = {
    id: "firezone", name: "Firezone", description: "Firezone's own apps", protocol: "vendor", docsUrl: "https://www.firezone.dev/x",
    secretLifetimeDays: 365, groupsClaimNote: null, inputs: [], pushInputs: [], signIn: false, scim: false,
    permissions: [{ name: "Directory.Read.All", kind: "application", why: "reads groups", highPrivilege: true }],
    vendor: { apps: ["Firezone Authentication", "Firezone Directory Sync"], consoleSteps: "In Firezone's admin portal: Settings → Directory Sync → Verify Now." },
    directorySync: { assignTo: "Firezone Authentication", assignToNote: "n", assignedLabel: "Assigned groups only", allLabel: "All groups", whereToChoose: "Settings → Directory Sync", schedule: "Firezone syncs about every two hours.", nestedCount: true },
    custom: null, pushHost: null,
  };
  const missing = {
    providerName: "Firezone", consoleUrl: null, consoleSteps: "In Firezone's admin portal: Settings → Directory Sync → Verify Now.", complete: false, demo: true, roleNote: null as string | null,
    handOver: [{ label: "Tenant ID", value: "t1" }],
    consents: [
      { app: "auth", name: "Firezone Authentication", status: "missing" as const, missing: ["openid (delegated)"], granted: [], message: "\"Firezone Authentication\" is not in this tenant yet.", spId: null, extra: [], ownerTenant: null, verifiedPublisher: null },
      { app: "sync", name: "Firezone Directory Sync", status: "missing" as const, missing: ["Directory.Read.All (application)"], granted: [], message: "\"Firezone Directory Sync\" is not in this tenant yet.", spId: null, extra: [], ownerTenant: null, verifiedPublisher: null },
    ],
  };
  const connected = {
    ...missing, complete: true,
    consents: missing.consents.map((c) => ({ ...c, status: "complete" as const, granted: c.missing, missing: [], message: "", spId: "sp" })),
  };

  it("waits for the vendor's consent, then offers the vendor's own sync modes and plans them", async () => {
    const user = userEvent.setup();
    const calls = start(
      {
        check_inputs: () => ({ ...planView.intent, providerId: "firezone" }),
        vendor_status: () => missing,
        demo_connect_vendor: () => connected,
        scim_context: () => ({ ...scimContext, info: { ...scimContext.info, appName: "Firezone Authentication" }, licenceNote: "Your tenant has Entra ID P1: \"Assigned groups only\" works." }),
        search_people: () => [{ id: "g1", kind: "Group", displayName: "Engineering", detail: "Security group", assignable: true }],
        prepare_setup: () => ({ ...planView, plan: { ...planView.plan, registration: null, changes: [
          { seq: 0, app: "auth", change: { kind: "requireAssignment", required: true, was: false }, title: "Require assignment on \"Firezone Authentication\"", reason: "r", request: "PATCH", after: [] },
        ] } }),
      },
      [firezone],
    );
    await user.click(await screen.findByRole("button", { name: "Next: Connect Firezone" }));
    expect(await screen.findByRole("heading", { level: 1, name: "Permissions & consent" })).toBeTruthy();
    const apps = await screen.findByTestId("vendor-apps");
    expect(within(apps).getAllByText("Not in this tenant")).toHaveLength(2);
    expect(screen.getByRole("button", { name: "Copy the Tenant ID: t1" })).toBeTruthy();
    await user.click(screen.getByRole("button", { name: "Connect Firezone (demo: its console, as you)" }));
    await waitFor(() => expect(within(screen.getByTestId("vendor-apps")).getAllByText("Connected")).toHaveLength(2));
    expect(screen.getByText("Firezone is connected: every app is here, enabled and consented.")).toBeTruthy();

    await user.click(screen.getByRole("button", { name: "Next: Sync mode" }));
    expect(await screen.findByRole("heading", { level: 1, name: "Sync mode" })).toBeTruthy();
    expect(await screen.findByText("Assigned groups only")).toBeTruthy();
    expect(screen.getByText("All groups")).toBeTruthy();
    await user.click(screen.getByRole("button", { name: "Search" }));
    await user.click(await screen.findByRole("button", { name: "Add Engineering" }));
    await user.click(screen.getByRole("button", { name: "Next: Review & apply" }));
    expect(await screen.findByText("Require assignment on \"Firezone Authentication\"")).toBeTruthy();
    const prepared = calls.find((c) => c.cmd === "prepare_setup");
    expect(prepared?.args.scim).toEqual({ tenantUrl: "", syncAll: false, assign: [{ id: "g1", kind: "Group", displayName: "Engineering" }], tokenExpires: null, start: true });
  });
});

describe("an app someone else registered first", () => {
  const foreign: PlanView = {
    ...planView,
    foreign: [{
      app: "sign_in", displayName: "Cloudflare Access (acme)", appObjectId: "obj-squat", appId: "app-squat", knownHere: false,
      owners: [{ id: "alex-id", displayName: "Alex Wilber", userPrincipalName: "alex@contoso.com", owns: "applications/obj-squat" }],
      credentials: [{ kind: "secret", id: "key-alex", name: "alex's secret", hint: "starts Xy1", end: "2027-01-01T00:00:00Z", on: "applications/obj-squat" }],
      redirectUris: ["https://harvest.alex.example/callback"],
    }],
  };

  it("never skips Register app, shows who else holds the app, and applies only after Adopt, with what to keep", async () => {
    const user = userEvent.setup();
    const calls = start({ check_inputs: () => planView.intent, prepare_setup: () => foreign, apply_setup: () => done });
    await user.type(await screen.findByLabelText("Cloudflare team name"), "acme");
    await user.click(screen.getByRole("button", { name: "Continue" }));
    // Not skipped to Review: the app is not the wizard's alone.
    await screen.findByRole("heading", { level: 1, name: "Register the app" });
    const facts = screen.getByRole("region", { name: "This app is not the wizard's alone" });
    expect(within(facts).getByText(/alex@contoso.com/)).toBeTruthy();
    expect(within(facts).getByText(/alex's secret/)).toBeTruthy();
    expect(within(facts).getByText("https://harvest.alex.example/callback")).toBeTruthy();
    const next = screen.getByRole("button", { name: "Next: Permissions & consent" }) as HTMLButtonElement;
    expect(next.disabled).toBe(true);
    // Keep the redirect URI, then adopt.
    await user.click(within(facts).getByRole("checkbox", { name: /harvest.alex.example/ }));
    await user.click(within(facts).getByRole("button", { name: "Adopt this app" }));
    expect(next.disabled).toBe(false);
    expect(setup.adoption).toEqual({ keep: ["https://harvest.alex.example/callback"] });
    await setup.apply();
    expect(calls.find((c) => c.cmd === "apply_setup")?.args.adopt).toEqual({ keep: ["https://harvest.alex.example/callback"] });
  });

  it("applies with no adoption unless the admin chose it", async () => {
    const calls = start({ apply_setup: () => done });
    setup.plan = planView;
    await setup.apply();
    expect(calls.find((c) => c.cmd === "apply_setup")?.args.adopt).toBeNull();
  });
});
