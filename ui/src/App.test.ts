import { describe, expect, it } from "vitest";
import { render, screen, waitFor, within } from "@testing-library/svelte";
import userEvent from "@testing-library/user-event";
import { mockIPC } from "@tauri-apps/api/mocks";
import App from "./App.svelte";
import type { IpcError, SignInEvent, SignInResult } from "./ipc";
import { wizard } from "./lib/wizard.svelte";

const summary: SignInResult = {
  demo: true,
  notices: [],
  summary: {
    tenantId: "b2d5c2a4-6f1e-4c8b-9a3d-1e2f3a4b5c6d",
    tenantName: "Contoso",
    defaultDomain: "contoso.com",
    verifiedDomains: ["contoso.onmicrosoft.com", "contoso.com"],
    cloudName: "Simulated",
    user: { id: "u1", displayName: "Megan Bowen", userPrincipalName: "megan@contoso.com", mail: null },
    roles: [{ templateId: "158c047a-c907-4556-b7ef-446551a6b5f7", name: "Cloud Application Administrator", source: "active" }],
    licence: "P1",
    licenceSource: "SPE_E3",
    capabilities: [
      { id: "application_permissions", title: "Grant Microsoft Graph application permissions", allowed: false, detail: "Needs Privileged Role Administrator or Global Administrator." },
    ],
    advice: [{ id: "no_privileged_role", severity: "warning", title: "Application permissions will need a colleague", detail: "Only a Privileged Role Administrator can grant them.", link: null }],
    links: [{ label: "Tenant overview", url: "https://portal.azure.com/#view/x" }],
  },
};

const demoUsers = [
  { tenantId: "t1", tenantName: "Contoso", tenantDomain: "contoso.com", upn: "adele@contoso.com", displayName: "Adele Vance", description: "Global Administrator, P1" },
  { tenantId: "t1", tenantName: "Contoso", tenantDomain: "contoso.com", upn: "megan@contoso.com", displayName: "Megan Bowen", description: "Cloud Application Administrator, P1" },
];

type Handler = (cmd: string, args: Record<string, unknown>) => unknown;

function setup(overrides: Record<string, Handler> = {}) {
  const calls: { cmd: string; args: Record<string, unknown> }[] = [];
  mockIPC((cmd, args) => {
    const a = (args ?? {}) as Record<string, unknown>;
    calls.push({ cmd, args: a });
    if (overrides[cmd]) return overrides[cmd](cmd, a);
    switch (cmd) {
      case "app_info":
        return { version: "0.1.0", defaultClientId: "14d82eec-204b-4c2f-b7e8-296a70dab67e", demoUsers, logDir: "/tmp", network: { httpsProxy: "http://proxy.contoso.example:3128/", httpProxy: null, noProxy: "intranet.contoso.example" } };
      case "resume_session":
        return { kind: "nothing" };
      case "settings_get":
        return { cloud: { kind: "global" }, tenant: "", method: "browser", clientId: null };
      case "settings_set":
        return a.value;
      default:
        return null;
    }
  });
  return calls;
}

function emit(args: Record<string, unknown>, e: SignInEvent) {
  (args.events as { onmessage: (e: SignInEvent) => void }).onmessage(e);
}

async function fresh() {
  wizard.view = "welcome";
  wizard.result = null;
  wizard.error = null;
  wizard.progress = null;
  wizard.resumeNote = null;
  render(App);
  await screen.findByRole("button", { name: "Try the demo tenant" });
}

describe("the wizard", () => {
  it("offers only a real tenant in a build without the demo tenant", async () => {
    setup({
      app_info: () => ({ version: "0.1.0", defaultClientId: "x", demoUsers: [], logDir: "/tmp", network: { httpsProxy: null, httpProxy: null, noProxy: "" } }),
    });
    wizard.view = "welcome";
    render(App);
    await waitFor(() => expect(wizard.info?.demoUsers).toEqual([]));
    expect(screen.getByRole("button", { name: "Sign in to Microsoft Entra" })).toBeTruthy();
    expect(screen.queryByRole("button", { name: "Try the demo tenant" })).toBeNull();
    expect(screen.queryByRole("heading", { name: "Demo tenant" })).toBeNull();
  });

  it("welcomes with both ways in and lists all eight steps, unbuilt ones marked", async () => {
    setup();
    await fresh();
    expect(screen.getByRole("button", { name: "Sign in to Microsoft Entra" })).toBeTruthy();
    const rail = screen.getByRole("navigation", { name: "Wizard steps" });
    const steps = within(rail).getAllByRole("button");
    expect(steps).toHaveLength(8);
    expect(within(rail).queryAllByText("Not built yet")).toHaveLength(0);
    expect(steps[0].getAttribute("aria-current")).toBe("step");
  });

  it("signs in to the demo as the chosen user and shows the tenant summary", async () => {
    const user = userEvent.setup();
    const calls = setup({
      sign_in_demo: (_c, args) => {
        emit(args, { kind: "tenantFound", tenantId: "t1" });
        emit(args, { kind: "redeeming" });
        return summary;
      },
    });
    await fresh();
    await user.click(screen.getByRole("button", { name: "Try the demo tenant" }));
    await user.click(await screen.findByRole("radio", { name: /Megan Bowen/ }));
    await user.click(screen.getByRole("button", { name: "Sign in to the demo tenant" }));
    expect(await screen.findByRole("heading", { level: 1, name: "Contoso" })).toBeTruthy();
    const call = calls.find((c) => c.cmd === "sign_in_demo");
    expect(call?.args.upn).toBe("megan@contoso.com");
    expect(call?.args.method).toBe("browser");
    expect(screen.getByTestId("licence").textContent).toContain("Entra ID P1");
    expect(screen.getByText("Application permissions will need a colleague")).toBeTruthy();
    expect(screen.getByTestId("capability-application_permissions").textContent).toContain("not allowed");
    // The rail now marks sign-in as done.
    expect(screen.getByText("Signed in")).toBeTruthy();
  });

  it("shows the device code, a copy button and a countdown while waiting", async () => {
    const user = userEvent.setup();
    let release: (v: SignInResult) => void = () => {};
    setup({
      sign_in_demo: (_c, args) => {
        emit(args, { kind: "deviceCode", userCode: "ABCD2345X", verificationUri: "https://microsoft.com/devicelogin", expiresAt: new Date(Date.now() + 900_000).toISOString(), message: null });
        return new Promise<SignInResult>((r) => (release = r));
      },
    });
    await fresh();
    await user.click(screen.getByRole("button", { name: "Try the demo tenant" }));
    await user.click(await screen.findByRole("radio", { name: /Device code/ }));
    await user.click(screen.getByRole("button", { name: "Sign in to the demo tenant" }));
    expect((await screen.findByTestId("device-code")).textContent).toBe("ABCD2345X");
    expect(screen.getByRole("button", { name: "Copy code: ABCD2345X" })).toBeTruthy();
    expect(screen.getByTestId("countdown").textContent).toMatch(/^1[45]:\d\d$/);
    expect(screen.getByRole("button", { name: "Cancel sign-in" })).toBeTruthy();
    release(summary);
    expect(await screen.findByRole("heading", { level: 1, name: "Contoso" })).toBeTruthy();
  });

  it("puts a bad tenant's message on the tenant field", async () => {
    const user = userEvent.setup();
    const invalid: IpcError = { kind: "invalid", detail: { field: "tenant", message: "'contoso..com' is not a tenant the wizard can sign in to: the domain has an empty part." } };
    setup({
      settings_set: () => {
        throw invalid;
      },
      sign_in: () => {
        throw invalid;
      },
    });
    await fresh();
    await user.click(screen.getByRole("button", { name: "Sign in to Microsoft Entra" }));
    const input = await screen.findByLabelText(/Tenant/);
    await user.type(input, "contoso..com");
    await user.click(screen.getByRole("button", { name: "Sign in" }));
    // The form is shown again with the message on the field, which gets the focus.
    await waitFor(() => expect(screen.getByLabelText(/Tenant/).getAttribute("aria-invalid")).toBe("true"));
    const field = screen.getByLabelText(/Tenant/) as HTMLInputElement;
    expect(field.value).toBe("contoso..com");
    expect(screen.getByText(/the domain has an empty part/)).toBeTruthy();
    expect(field.getAttribute("aria-describedby")).toContain("tenant-error");
    await waitFor(() => expect(document.activeElement).toBe(field));
  });

  it("offers a verified update with Restart to update, and installs only on that click", async () => {
    const user = userEvent.setup();
    const calls = setup({
      check_for_update: () => ({ kind: "ready", version: "0.2.0", currentVersion: "0.1.0", notes: "Faster SCIM checks." }),
    });
    await fresh();
    const banner = await screen.findByRole("status", { name: "Update" });
    expect(within(banner).getByText(/Entra Setup 0.2.0 is ready/)).toBeTruthy();
    expect(calls.some((c) => c.cmd === "restart_to_update")).toBe(false);
    await user.click(within(banner).getByRole("button", { name: "Restart to update" }));
    await waitFor(() => expect(calls.some((c) => c.cmd === "restart_to_update")).toBe(true));
  });

  it("says when an update was refused for its signature", async () => {
    setup({
      check_for_update: () => ({ kind: "refused", version: "0.2.0", message: "The download of version 0.2.0 does not carry Entra Setup's release signature, so it was discarded and nothing was installed." }),
    });
    await fresh();
    const alert = await screen.findByRole("alert", { name: "Update refused" });
    expect(within(alert).getByText(/nothing was installed/)).toBeTruthy();
    expect(within(alert).queryByRole("button", { name: "Restart to update" })).toBeNull();
  });

  it("shows the proxy and the trust store it uses under Advanced", async () => {
    const user = userEvent.setup();
    setup();
    await fresh();
    await user.click(screen.getByRole("button", { name: "Sign in to Microsoft Entra" }));
    await user.click(await screen.findByText("Advanced"));
    const net = screen.getByLabelText("Network");
    expect(within(net).getByText("http://proxy.contoso.example:3128/")).toBeTruthy();
    expect(within(net).getByText("intranet.contoso.example, and this computer")).toBeTruthy();
    expect(within(net).getByText(/this computer's trust store/)).toBeTruthy();
  });

  it("shows Graph's code and request-id in the error details", async () => {
    const user = userEvent.setup();
    setup({
      sign_in: () => {
        throw {
          kind: "graph",
          detail: { message: "You are not allowed to do this.", code: "Authorization_RequestDenied", status: 403, requestId: "rid-123", clientRequestId: "crid-456", method: "GET", path: "/subscribedSkus" },
        } satisfies IpcError;
      },
    });
    await fresh();
    await user.click(screen.getByRole("button", { name: "Sign in to Microsoft Entra" }));
    await user.click(await screen.findByRole("button", { name: "Sign in" }));
    const alert = await screen.findByRole("alert");
    expect(alert.textContent).toContain("You are not allowed to do this.");
    expect(alert.textContent).toContain("rid-123");
    expect(alert.textContent).toContain("Authorization_RequestDenied");
  });

  it("says when a saved sign-in could not be resumed", async () => {
    setup({ resume_session: () => ({ kind: "failed", userPrincipalName: "adele@contoso.com", message: "Your saved sign-in is no longer valid." }) });
    wizard.view = "welcome";
    wizard.result = null;
    render(App);
    expect(await screen.findByText(/Your saved sign-in for adele@contoso.com could not be resumed/)).toBeTruthy();
  });
});
