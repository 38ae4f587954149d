// The UI's only door to the Rust side. Components import from here, never from
// @tauri-apps/api directly; the command wrappers and types are generated from Rust.
import { Channel } from "@tauri-apps/api/core";
import { commands } from "./bindings";
import type { Adoption, ApplyEvent, Assignee, IpcError, Method, SamlFile, ScimChoice, SecretChoice, Settings, SignInEvent, SignInRequest, SignInResult } from "./bindings";

export type * from "./bindings";

/** A failed command, carrying the typed error the Rust side returned. */
export class IpcFailure extends Error {
  readonly error: IpcError;
  constructor(error: IpcError) {
    super(messageOf(error));
    this.error = error;
    this.name = "IpcFailure";
  }
}

/** The plain-language message of any IPC error. */
export function messageOf(error: IpcError): string {
  switch (error.kind) {
    case "cancelled":
      return "Cancelled.";
    case "notSignedIn":
      return "Sign in first.";
    case "inputs":
      return error.detail.errors.map((e) => `${e.label}: ${e.message}`).join(" ");
    default:
      return error.detail.message;
  }
}

/** Turns anything thrown by a command into a typed error. */
export function asIpcError(e: unknown): IpcError {
  if (e instanceof IpcFailure) return e.error;
  if (e && typeof e === "object" && "kind" in e) return e as IpcError;
  return { kind: "internal", detail: { message: e instanceof Error ? e.message : String(e) } };
}

async function unwrap<T>(p: Promise<{ status: "ok"; data: T } | { status: "error"; error: IpcError }>): Promise<T> {
  const r = await p;
  if (r.status === "error") throw new IpcFailure(r.error);
  return r.data;
}

function channel<T>(onEvent: (e: T) => void): Channel<T> {
  const c = new Channel<T>();
  c.onmessage = onEvent;
  return c;
}

export const ipc = {
  appInfo: () => commands.appInfo(),
  settingsGet: () => commands.settingsGet(),
  settingsSet: (value: Settings) => unwrap(commands.settingsSet(value)),
  signIn: (request: SignInRequest, onEvent: (e: SignInEvent) => void): Promise<SignInResult> =>
    unwrap(commands.signIn(request, channel(onEvent))),
  signInDemo: (upn: string, method: Method, onEvent: (e: SignInEvent) => void): Promise<SignInResult> =>
    unwrap(commands.signInDemo(upn, method, channel(onEvent))),
  signInCancel: () => commands.signInCancel(),
  testSignIn: () => unwrap(commands.testSignIn()),
  activateCertificate: () => unwrap(commands.activateCertificate()),
  retireOldCertificates: () => unwrap(commands.retireOldCertificates()),
  resumeSession: () => unwrap(commands.resumeSession()),
  signOut: () => unwrap(commands.signOut()),
  openLink: (url: string, providerId: string | null) => unwrap(commands.openLink(url, providerId)),
  uiReady: () => commands.uiReady().catch(() => undefined),
  checkForUpdate: () => unwrap(commands.checkForUpdate()),
  restartToUpdate: () => unwrap(commands.restartToUpdate()),
  providers: () => unwrap(commands.providers()),
  checkInputs: (providerId: string, inputs: Record<string, string>, secretDays: number | null) =>
    unwrap(commands.checkInputs(providerId, inputs, secretDays)),
  importSpMetadata: (url: string | null) => unwrap(commands.importSpMetadata(url)),
  prepareSetup: (
    providerId: string,
    inputs: Record<string, string>,
    secret: SecretChoice,
    scim: ScimChoice | null,
    onEvent: (e: SignInEvent) => void,
  ) => unwrap(commands.prepareSetup(providerId, inputs, secret, scim, channel(onEvent))),
  applySetup: (adopt: Adoption | null, onEvent: (e: ApplyEvent) => void) => unwrap(commands.applySetup(adopt, channel(onEvent))),
  recheckSetup: () => unwrap(commands.recheckSetup()),
  demoColleagueConsents: () => unwrap(commands.demoColleagueConsents()),
  copySecret: (outputId: string | null) => unwrap(commands.copySecret(outputId)),
  saveOutput: (outputId: string) => unwrap(commands.saveOutput(outputId)),
  keepSecret: () => unwrap(commands.keepSecret()),
  pushToProvider: (inputs: Record<string, string>) => unwrap(commands.pushToProvider(inputs)),
  undoSetup: () => unwrap(commands.undoSetup()),
  retireOldSecrets: () => unwrap(commands.retireOldSecrets()),
  saveSamlFile: (which: SamlFile) => unwrap(commands.saveSamlFile(which)),
  confirmPasswordAdmin: () => unwrap(commands.confirmPasswordAdmin()),
  previousSetups: () => unwrap(commands.previousSetups()),
  checkPreviousSetups: (onEvent: (e: SignInEvent) => void) => unwrap(commands.checkPreviousSetups(channel(onEvent))),
  scimContext: (providerId: string, inputs: Record<string, string>, onEvent: (e: SignInEvent) => void) =>
    unwrap(commands.scimContext(providerId, inputs, channel(onEvent))),
  searchPeople: (query: string, groups: boolean) => unwrap(commands.searchPeople(query, groups)),
  previewSync: (providerId: string, syncAll: boolean, assigned: Assignee[]) => unwrap(commands.previewSync(providerId, syncAll, assigned)),
  setScimToken: (token: string, remember: boolean, tenantUrl: string, providerId: string, inputs: Record<string, string>) =>
    unwrap(commands.setScimToken(token, remember, tenantUrl, providerId, inputs)),
  forgetScimToken: (providerId: string, inputs: Record<string, string>) => unwrap(commands.forgetScimToken(providerId, inputs)),
  useDemoScim: () => unwrap(commands.useDemoScim()),
  verifyScim: (url: string, writeTests: boolean) => unwrap(commands.verifyScim(url, writeTests)),
  chooseScimCert: () => unwrap(commands.chooseScimCert()),
  forgetScimCert: () => unwrap(commands.forgetScimCert()),
  scimStatus: () => unwrap(commands.scimStatus()),
  scimOnDemand: (userId: string) => unwrap(commands.scimOnDemand(userId)),
  scimLogs: () => unwrap(commands.scimLogs()),
  vendorStatus: (providerId: string, inputs: Record<string, string>, onEvent: (e: SignInEvent) => void) =>
    unwrap(commands.vendorStatus(providerId, inputs, channel(onEvent))),
  demoConnectVendor: (providerId: string, inputs: Record<string, string>, onEvent: (e: SignInEvent) => void) =>
    unwrap(commands.demoConnectVendor(providerId, inputs, channel(onEvent))),
};
