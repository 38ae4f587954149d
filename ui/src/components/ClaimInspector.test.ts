import { describe, expect, it } from "vitest";
import { render, screen } from "@testing-library/svelte";
import userEvent from "@testing-library/user-event";
import { mockIPC } from "@tauri-apps/api/mocks";
import ClaimInspector from "./ClaimInspector.svelte";
import type { IpcError, SignInReport } from "../ipc";

const report: SignInReport = {
  protocol: "SAML",
  identity: "adele@contoso.com",
  identitySource: "NameID (emailAddress format)",
  identityNote: "The service will identify this person as adele@contoso.com.",
  claims: [
    { name: "http://schemas.xmlsoap.org/ws/2005/05/identity/claims/emailaddress", short: "emailaddress", values: ["adele@contoso.com"] },
    { name: "http://schemas.microsoft.com/ws/2008/06/identity/claims/groups", short: "groups", values: ["g-1", "g-2"] },
  ],
  groups: [{ id: "g-1", name: "Engineering" }, { id: "g-2", name: null }],
  overage: null,
  verified: "The assertion signature verified with the app's certificate AB12 (SHA-1 thumbprint).",
  warnings: [],
  checkedMs: 7,
};

describe("the claim inspector", () => {
  it("shows who the service will see, every claim and the groups by name", async () => {
    mockIPC((cmd) => (cmd === "test_sign_in" ? report : null));
    render(ClaimInspector, { protocol: "SAML", demo: true });
    await userEvent.click(screen.getByRole("button", { name: "Test sign-in" }));
    expect((await screen.findByTestId("inspected-identity")).textContent).toContain("adele@contoso.com");
    expect(screen.getByText("from NameID (emailAddress format)")).toBeTruthy();
    expect(screen.getByRole("cell", { name: "Engineering" })).toBeTruthy();
    expect(screen.getByRole("cell", { name: "(name not readable)" })).toBeTruthy();
    expect(screen.getByText("emailaddress")).toBeTruthy();
    expect(screen.getByText(/Checked in 7 ms/)).toBeTruthy();
    // Focus moves to the result so a screen reader hears it.
    expect(document.activeElement?.textContent).toBe("What the service will see");
    expect(screen.getByRole("button", { name: "Test again" })).toBeTruthy();
  });

  it("explains group overage instead of an empty group list", async () => {
    mockIPC((cmd) => (cmd === "test_sign_in" ? { ...report, groups: [], overage: "This person is in more groups than a SAML token carries (150)." } : null));
    render(ClaimInspector, { protocol: "SAML", demo: true });
    await userEvent.click(screen.getByRole("button", { name: "Test sign-in" }));
    expect((await screen.findByTestId("group-overage")).textContent).toContain("more groups than a SAML token carries (150)");
  });

  it("says why a refused answer was refused, and stays quiet on cancel", async () => {
    const refused: IpcError = { kind: "auth", detail: { message: "The answer from Entra was refused: the audience does not match.", code: "responseRefused", aadsts: null } };
    let answer: IpcError = refused;
    mockIPC((cmd) => {
      if (cmd === "test_sign_in") throw answer;
      return null;
    });
    render(ClaimInspector, { protocol: "OpenID Connect", demo: false });
    expect(screen.getByText(/Your browser opens/)).toBeTruthy();
    await userEvent.click(screen.getByRole("button", { name: "Test sign-in" }));
    expect(await screen.findByText(/the audience does not match/)).toBeTruthy();
    answer = { kind: "cancelled" };
    await userEvent.click(screen.getByRole("button", { name: "Test sign-in" }));
    await screen.findByRole("button", { name: "Test sign-in" });
    expect(screen.queryByText(/the audience does not match/)).toBeNull();
  });
});
